/**
 * Dawn with faults on request, for the tests of GPU errors as typed errors (models/gpu/error-scope.ts).
 * A validation error is Dawn's own (a buffer created with an invalid usage). An out-of-memory error
 * cannot be provoked on lavapipe (it maps buffers lazily: ten 4 GiB buffers "fit" in 23 GB), so it
 * is reported the way a driver reports one: a GPUOutOfMemoryError from the innermost open
 * out-of-memory scope around the allocation (or, with none open, an `uncapturederror` event).
 */
import { wrap } from '../../node/gpu/gpu-diagnostics.ts';
import { nodeGpu } from '../../node/gpu/node-gpu.ts';

export interface FaultyGpu {
  /** Pass as LoadOptions.gpu: every device it gives is watched and can be faulted. */
  gpu: GPU;
  /** The devices requested so far (the real ones), in order. */
  devices: GPUDevice[];
  /** Messages of uncaptured errors of those devices (an error a scope caught never lands here). */
  uncaptured: string[];
  /** The next buffer labelled `label` is reported out of memory, as a driver would. */
  oomOn(label: string): void;
  /** The next buffer labelled `label` gets an invalid usage: a real WebGPU validation error. */
  invalidOn(label: string): void;
}

/**
 * @example
 *   const f = faultyGpu();
 *   f.oomOn('model.norm.weight');
 *   await expect(LlamaModel.load(src, { backend: 'webgpu', gpu: f.gpu })).rejects.toBeInstanceOf(GpuOutOfMemoryError);
 */
export function faultyGpu(): FaultyGpu {
  const gpu = nodeGpu();
  const oom = new Set<string>(), invalid = new Set<string>();
  const devices: GPUDevice[] = [];
  const uncaptured: string[] = [];

  const faulty = (device: GPUDevice): GPUDevice => {
    // The device's open scopes, innermost last; an injected error waits in its scope until popped.
    const scopes: { filter: GPUErrorFilter; injected: GPUError | null }[] = [];
    device.addEventListener('uncapturederror', (e) => uncaptured.push((e as GPUUncapturedErrorEvent).error.message));
    return wrap(device, {
      pushErrorScope: (filter: GPUErrorFilter) => {
        scopes.push({ filter, injected: null });
        device.pushErrorScope(filter);
      },
      popErrorScope: async () => {
        const s = scopes.pop();
        const real = await device.popErrorScope();
        return s?.injected ?? real;
      },
      createBuffer: (d: GPUBufferDescriptor) => {
        const label = d.label ?? '';
        if (invalid.delete(label)) return device.createBuffer({ ...d, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.STORAGE });
        const buffer = device.createBuffer(d);
        if (oom.delete(label)) {
          const error = new GPUOutOfMemoryError(`Out of memory allocating "${label}" (${d.size} bytes), injected by the test.`);
          const scope = scopes.findLast((s) => s.filter === 'out-of-memory');
          if (scope) scope.injected ??= error;
          else device.dispatchEvent(new GPUUncapturedErrorEvent('uncapturederror', { error }));
        }
        return buffer;
      },
    });
  };

  const adapterOf = (adapter: GPUAdapter): GPUAdapter => wrap(adapter, {
    requestDevice: async (d?: GPUDeviceDescriptor) => {
      const device = await adapter.requestDevice(d);
      devices.push(device);
      return faulty(device);
    },
  });

  return {
    gpu: wrap(gpu, { requestAdapter: async (o?: GPURequestAdapterOptions) => { const a = await gpu.requestAdapter(o); return a && adapterOf(a); } }),
    devices,
    uncaptured,
    oomOn: (label) => void oom.add(label),
    invalidOn: (label) => void invalid.add(label),
  };
}
