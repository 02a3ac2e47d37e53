/**
 * Runs ./gpu-probe.worker.ts in a module worker and reports WebGPU as a worker sees it. Works from
 * any page of the dev server: the harness imports it, and a test on the app page can inline the
 * same call as `new Worker('/e2e/gpu-probe.worker.ts', { type: 'module' })`.
 */
export interface GpuProbe {
  inWorker: true;
  hasGpu: boolean;
  adapter: {
    vendor: string;
    architecture: string;
    description: string;
    isFallbackAdapter: boolean;
    features: string[];
    maxBufferSize: number;
    maxStorageBufferBindingSize: number;
  } | null;
}

export function probeWorkerGpu(timeoutMs = 30_000): Promise<GpuProbe> {
  const worker = new Worker(new URL('./gpu-probe.worker.ts', import.meta.url), { type: 'module' });
  return new Promise<GpuProbe>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`The GPU probe worker gave no answer in ${timeoutMs} ms.`)), timeoutMs);
    worker.onmessage = (ev: MessageEvent<{ ok: true; result: GpuProbe } | { ok: false; message: string }>) => {
      if (ev.data.ok) resolve(ev.data.result);
      else reject(new Error(ev.data.message));
    };
    worker.onerror = (ev) => reject(new Error(`The GPU probe worker failed to run: ${ev.message || 'see the console'}`));
  }).finally(() => worker.terminate());
}
