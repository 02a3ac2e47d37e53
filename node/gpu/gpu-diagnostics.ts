/**
 * Uncaptured GPU errors of a Node process, away from stdout. Dawn (the `webgpu` package) prints an
 * uncaptured error's text on stdout unless a listener prevents the event's default, so a CLI's
 * JSON result could be preceded by it. Every device of a watched GPU gets a listener that prevents
 * that, writes the text to the `report` sink (stderr in a CLI) and keeps the first error as a typed
 * EngineError (models/gpu/error-scope.ts), so the CLI can refuse its result and exit non-zero.
 * Errors that the engine's own error scopes catch never reach it (they are not uncaptured).
 */
import type { EngineError } from '../../models/errors.ts';
import { gpuError } from '../../models/gpu/error-scope.ts';

/** Forwards everything to `target` (methods bound to it), except `over`'s properties. */
export function wrap<T extends object>(target: T, over: Partial<Record<PropertyKey, unknown>>): T {
  return new Proxy(target, {
    get(t, prop) {
      if (prop in over) return over[prop];
      const v = Reflect.get(t, prop, t) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(t) : v;
    },
  });
}

export class UncapturedGpuErrors {
  /** Every uncaptured error's message, in order. */
  readonly messages: string[] = [];
  private firstError: EngineError | null = null;

  /** @param report where each error's text goes (one line each), e.g. `(s) => process.stderr.write(s)`. */
  constructor(private readonly report: (text: string) => void) {}

  /**
   * The same GPU, whose devices report here. Watch the GPU before requesting devices from it.
   * @example const errors = new UncapturedGpuErrors((s) => process.stderr.write(s)); const gpu = errors.watch(nodeGpu());
   */
  watch(gpu: GPU): GPU {
    const watchDevice = (device: GPUDevice): GPUDevice => {
      device.addEventListener('uncapturederror', (ev) => this.record(ev as GPUUncapturedErrorEvent));
      return device;
    };
    const watchAdapter = (adapter: GPUAdapter): GPUAdapter => wrap(adapter, {
      requestDevice: async (d?: GPUDeviceDescriptor) => watchDevice(await adapter.requestDevice(d)),
    });
    return wrap(gpu, {
      requestAdapter: async (o?: GPURequestAdapterOptions) => {
        const a = await gpu.requestAdapter(o);
        return a && watchAdapter(a);
      },
    });
  }

  /** The first uncaptured error, typed (GpuValidationError, GpuOutOfMemoryError, GpuInternalError), or null. */
  get first(): EngineError | null {
    return this.firstError;
  }

  /** Throws the first uncaptured error, if any. */
  throwIfAny(): void {
    if (this.firstError) throw this.firstError;
  }

  private record(ev: GPUUncapturedErrorEvent): void {
    ev.preventDefault(); // Dawn's default is printing it on stdout
    const error = gpuError(ev.error, 'GPU work outside any engine call');
    this.firstError ??= error;
    this.messages.push(ev.error.message);
    this.report(`GPU error (${error.code}, uncaptured): ${ev.error.message.trim()}\n`);
  }
}
