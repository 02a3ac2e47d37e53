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
  /** The bytes at `url` (e.g. a golden adapter under /shared/); throws on a non-2xx answer. */
  fetchBytes(url: string): Promise<ArrayBuffer>;
  /** Base64 of bytes: page.evaluate cannot return an ArrayBuffer, but a string crosses intact. */
  base64(bytes: ArrayBuffer): string;
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

async function fetchBytes(url: string): Promise<ArrayBuffer> {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`GET ${url}: HTTP ${res.status}`);
  return res.arrayBuffer();
}

function base64(bytes: ArrayBuffer): string {
  const u8 = new Uint8Array(bytes);
  let s = '';
  for (let i = 0; i < u8.length; i += 0x8000) s += String.fromCharCode(...u8.subarray(i, i + 0x8000));
  return btoa(s);
}

// A test page must never reload under a running test: other people's edits to files in the
// module graph make Vite broadcast a full reload (its watcher stays on despite server.watch: null,
// which mergeConfig drops). Pointing the reload at another .html page makes Vite's client skip it.
import.meta.hot?.on('vite:beforeFullReload', (payload: { path?: string }) => {
  console.warn(`[harness] ignored a Vite full reload (${payload.path ?? 'a changed module'}); the test page keeps running the code it loaded.`);
  payload.path = '/__e2e-harness-never-reloads__.html';
});

window.harness = {
  ready: true,
  client: new LlmClient(),
  newClient: () => new LlmClient(),
  probeWorkerGpu,
  settle,
  fetchBytes,
  base64,
};
