import { DeviceLostError, GpuUnavailableError } from '../errors.ts';
import type { BindingLimits } from './buffer-sizes.ts';
import { GpuErrorScopes } from './error-scope.ts';

export interface GpuContext {
  device: GPUDevice;
  /** True when kernels may store activations in f16 (adapter has shader-f16 and it was enabled). */
  f16: boolean;
  adapterInfo: { vendor: string; architecture: string; device: string; description: string; isFallback: boolean };
  hasTimestamps: boolean;
  /** Rejected with DeviceLostError when the device is lost (never resolves otherwise). */
  lost: Promise<never>;
  /** Error scopes and loss state of the device: GPU errors as typed errors (./error-scope.ts). */
  errors: GpuErrorScopes;
  /**
   * The buffer limits the engine plans, splits and checks against: the device's, or lower where
   * acquireGpu was asked for lower ones (tests force small limits to exercise the row blocks).
   */
  limits: BindingLimits;
}

/**
 * Requests an adapter and a device with the adapter's own values of the limits the engine relies
 * on: buffer and storage-binding size (the WebGPU defaults, 256 MiB and 128 MiB, are below an 8B
 * model's 263 MB 4-bit embedding and lm_head), storage buffers per stage, and workgroup memory,
 * size and count. What even those limits cannot hold is reported before any download by
 * checkPlan (models/memory-plan.ts), naming the buffer and the limit. `limits` lowers the
 * buffer limits the engine uses (GpuContext.limits), e.g. to test the row-block splitting.
 * @example
 *   const ctx = await acquireGpu(navigator.gpu, { f16: true });
 */
export async function acquireGpu(gpu: GPU | undefined, opts: { f16?: boolean; powerPreference?: GPUPowerPreference; limits?: Partial<BindingLimits> } = {}): Promise<GpuContext> {
  if (!gpu) throw new GpuUnavailableError('WebGPU is not available here (no navigator.gpu). Use Chrome 113+ or the CPU backend for tiny models.');
  const adapter = await gpu.requestAdapter({ powerPreference: opts.powerPreference ?? 'high-performance' });
  if (!adapter) throw new GpuUnavailableError('No WebGPU adapter was found (the GPU may be blocklisted or disabled).');
  const wantF16 = (opts.f16 ?? true) && adapter.features.has('shader-f16');
  const features: GPUFeatureName[] = [];
  if (wantF16) features.push('shader-f16');
  const hasTimestamps = adapter.features.has('timestamp-query');
  if (hasTimestamps) features.push('timestamp-query');
  const l = adapter.limits;
  const device = await adapter.requestDevice({
    requiredFeatures: features,
    requiredLimits: {
      maxBufferSize: l.maxBufferSize,
      maxStorageBufferBindingSize: l.maxStorageBufferBindingSize,
      maxStorageBuffersPerShaderStage: l.maxStorageBuffersPerShaderStage,
      maxComputeWorkgroupStorageSize: l.maxComputeWorkgroupStorageSize,
      maxComputeInvocationsPerWorkgroup: l.maxComputeInvocationsPerWorkgroup,
      maxComputeWorkgroupSizeX: l.maxComputeWorkgroupSizeX,
      maxComputeWorkgroupSizeY: l.maxComputeWorkgroupSizeY,
      maxComputeWorkgroupsPerDimension: l.maxComputeWorkgroupsPerDimension,
    },
  });
  const info = adapter.info;
  const lost = device.lost.then((i) => {
    throw new DeviceLostError(`The GPU device was lost (${i.reason}): ${i.message || 'no details'}. Reload the model to continue.`);
  });
  lost.catch(() => {}); // observed by whoever awaits it; never an unhandled rejection
  // Lower limits are the engine's own: WebGPU never grants a device less than its defaults.
  const lower = (k: keyof BindingLimits) => Math.min(device.limits[k], opts.limits?.[k] ?? Infinity);
  return {
    device,
    limits: { maxBufferSize: lower('maxBufferSize'), maxStorageBufferBindingSize: lower('maxStorageBufferBindingSize') },
    f16: wantF16,
    hasTimestamps,
    lost,
    errors: new GpuErrorScopes(device, lost),
    adapterInfo: {
      vendor: info?.vendor ?? '',
      architecture: info?.architecture ?? '',
      device: info?.device ?? '',
      description: info?.description ?? '',
      isFallback: (info as { isFallbackAdapter?: boolean } | undefined)?.isFallbackAdapter ?? false,
    },
  };
}
