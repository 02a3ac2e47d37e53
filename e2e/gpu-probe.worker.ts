/**
 * Module worker for the WebGPU-in-worker smoke test: requests an adapter and posts back what it
 * found (GpuProbe in ./gpu-probe.ts), or the error.
 */
import type { GpuProbe } from './gpu-probe.ts';

const scope = self as unknown as DedicatedWorkerGlobalScope;

async function probe(): Promise<GpuProbe> {
  const gpu = (scope.navigator as WorkerNavigator & { gpu?: GPU }).gpu;
  if (!gpu) return { inWorker: true, hasGpu: false, adapter: null };
  const adapter = await gpu.requestAdapter();
  if (!adapter) return { inWorker: true, hasGpu: true, adapter: null };
  const info = adapter.info as GPUAdapterInfo & { isFallbackAdapter?: boolean };
  return {
    inWorker: true,
    hasGpu: true,
    adapter: {
      vendor: info.vendor,
      architecture: info.architecture,
      description: info.description,
      isFallbackAdapter: info.isFallbackAdapter ?? (adapter as GPUAdapter & { isFallbackAdapter?: boolean }).isFallbackAdapter ?? false,
      features: [...adapter.features].sort(),
      maxBufferSize: adapter.limits.maxBufferSize,
      maxStorageBufferBindingSize: adapter.limits.maxStorageBufferBindingSize,
    },
  };
}

probe().then(
  (result) => scope.postMessage({ ok: true, result }),
  (e: unknown) => scope.postMessage({ ok: false, message: e instanceof Error ? e.message : String(e) }),
);
