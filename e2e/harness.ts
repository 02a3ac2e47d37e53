/**
 * The test page's script (e2e/harness.html): puts the real LlmClient + worker on `window.harness`
 * so browser tests can drive the engine with `page.evaluate` and no UI in between.
 */
import { LlmClient } from '../workers/client.ts';
import { probeWorkerGpu, type GpuProbe } from './gpu-probe.ts';

/** Outcome of a promise as plain data: page.evaluate would otherwise drop an error's class and code. */
export type Settled<T> = { ok: true; value: T } | { ok: false; name: string; code: string; message: string };

export interface Harness {
  ready: true;
  /** A client with its own worker, created on first use. */
  client: LlmClient;
  /** Another client (another worker), for tests that need two or a fresh one. */
  newClient(): LlmClient;
  /** WebGPU as a module worker sees it. */
  probeWorkerGpu(): Promise<GpuProbe>;
  /** Awaits `p`; a rejection becomes `{ ok: false, code, ... }` instead of a thrown error. */
  settle<T>(p: Promise<T>): Promise<Settled<T>>;
}

declare global {
  interface Window {
    harness: Harness;
  }
}

async function settle<T>(p: Promise<T>): Promise<Settled<T>> {
  try {
    return { ok: true, value: await p };
  } catch (e) {
    const err = e as { name?: unknown; code?: unknown; message?: unknown };
    return { ok: false, name: String(err?.name ?? 'Error'), code: typeof err?.code === 'string' ? err.code : 'unknown', message: String(err?.message ?? e) };
  }
}

window.harness = {
  ready: true,
  client: new LlmClient(),
  newClient: () => new LlmClient(),
  probeWorkerGpu,
  settle,
};
