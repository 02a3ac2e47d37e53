/**
 * GPU errors as typed errors, at the engine's boundary rather than around every kernel: a load, a
 * forward pass (prefill or one decode step) or a training run executes inside validation,
 * out-of-memory and internal error scopes (pushed and popped in pairs, even when the call throws),
 * and its GPU waits are raced against the device's `lost` promise. Whatever WebGPU reports
 * becomes GpuValidationError, GpuOutOfMemoryError or GpuInternalError and the call rejects: no
 * result computed by a failed command is returned. A lost device makes the call in flight and every
 * later one reject with DeviceLostError at once. Errors outside any scope (`uncapturederror`, e.g.
 * from a reset between calls) are kept and reject the next call, whose inputs they may have spoilt.
 */
import { DeviceLostError, EngineError, GpuInternalError, GpuOutOfMemoryError, GpuValidationError } from '../errors.ts';

type Filter = 'validation' | 'out-of-memory' | 'internal';

/** Pushed in this order, so popped validation first. */
const FILTERS: readonly Filter[] = ['internal', 'out-of-memory', 'validation'];

/** How long a call that failed with a non-engine error (an aborted mapAsync) waits for `lost` to explain it. */
const LOST_GRACE_MS = 100;

/** The kind of a GPUError; by class where the WebGPU globals exist, else by name (another realm, a proxy). */
function kindOf(error: GPUError): Filter {
  const g = globalThis as { GPUOutOfMemoryError?: abstract new (...a: never[]) => GPUError; GPUInternalError?: abstract new (...a: never[]) => GPUError };
  const name = (error as { constructor?: { name?: string } }).constructor?.name;
  if ((g.GPUOutOfMemoryError && error instanceof g.GPUOutOfMemoryError) || name === 'GPUOutOfMemoryError') return 'out-of-memory';
  if ((g.GPUInternalError && error instanceof g.GPUInternalError) || name === 'GPUInternalError') return 'internal';
  return 'validation';
}

/**
 * The typed error of a WebGPU error reported during `what`; `kind` is the scope's filter when it
 * came from a scope (which only catches its own kind).
 * @example throw gpuError(await device.popErrorScope() as GPUError, 'the prefill', 'validation');
 */
export function gpuError(error: GPUError, what: string, kind: Filter = kindOf(error)): EngineError {
  const detail = error.message.trim();
  if (kind === 'out-of-memory') {
    return new GpuOutOfMemoryError(`GPU out of memory during ${what}: ${detail} Try 4-bit weights, a shorter context, or closing other GPU-heavy tabs.`);
  }
  if (kind === 'internal') return new GpuInternalError(`The GPU failed a command during ${what} (internal error): ${detail}`);
  return new GpuValidationError(`WebGPU rejected a command during ${what}, so its result was discarded: ${detail}`);
}

/** Per-step checks of a run (see GpuErrorScopes.stepChecks). */
export interface StepChecks<E> {
  /** Pass as the run's step callback: checks the step's GPU work, then forwards the event. */
  onStep(event: E): void;
  /** Pass as the run's signal: aborted by the caller's signal, or by the first GPU error. */
  signal: AbortSignal;
  /** Await after the run, whether it resolved or threw: throws the first GPU error, if any. */
  finish(): Promise<void>;
}

/**
 * The error scopes and device-loss state of one device (GpuContext.errors, made by acquireGpu).
 * @example
 *   const logits = await ctx.errors.run('the prefill', () => gpuModel.forward(ids));
 */
export class GpuErrorScopes {
  private lostError: DeviceLostError | null = null;
  /** The first uncaptured error not yet reported to a caller. */
  private uncaptured: EngineError | null = null;

  constructor(private readonly device: GPUDevice, private readonly lost: Promise<never>) {
    lost.catch((e: unknown) => {
      this.lostError = e instanceof DeviceLostError ? e : new DeviceLostError(`The GPU device was lost: ${String(e)}. Load the model again.`);
    });
    device.addEventListener('uncapturederror', (ev: Event) => {
      // Only reached by work outside every scope; the browser still logs it to the console.
      this.uncaptured ??= gpuError((ev as GPUUncapturedErrorEvent).error, 'GPU work outside any call (it may have spoilt the next one)');
    });
  }

  /** True once the device is lost: every call rejects with DeviceLostError. */
  get isLost(): boolean {
    return this.lostError !== null;
  }

  /** Throws the DeviceLostError when the device is lost. */
  throwIfLost(): void {
    if (this.lostError) throw this.lostError;
  }

  /**
   * Runs `fn` inside the three error scopes, its result raced against device loss. Rejects with
   * DeviceLostError (lost before or during the call), a GPU error reported during it (typed, see
   * gpuError), or `fn`'s own error, in that order; resolves with `fn`'s result only when the
   * device reported nothing. Runs may nest (each pops what it pushed).
   * @example await ctx.errors.run('loading the weights', () => GpuLlama.load(src, ctx, opts));
   */
  async run<R>(what: string, fn: () => Promise<R>): Promise<R> {
    this.throwIfLost();
    this.throwUncaptured();
    for (const f of FILTERS) this.device.pushErrorScope(f);
    let value: R | undefined;
    let failed = false, failure: unknown;
    try {
      const pending = fn();
      pending.catch(() => {}); // when `lost` wins the race, its later rejection is no unhandled one
      value = await Promise.race([pending, this.lost]);
    } catch (e) {
      failed = true;
      failure = e;
    }
    const scoped = await this.popScopes(what);
    this.throwIfLost();
    if (failed && !(failure instanceof EngineError)) {
      // A wait that device loss aborted (mapAsync's AbortError) can settle before `lost` does.
      await Promise.race([this.lost.catch(() => {}), new Promise((r) => setTimeout(r, LOST_GRACE_MS))]);
      this.throwIfLost();
    }
    if (scoped) throw scoped;
    this.throwUncaptured();
    if (failed) throw failure;
    return value as R;
  }

  /**
   * Step-wise checking inside a run whose steps report through a callback (training): at each
   * step the run's scopes are closed and reopened (nothing of the run may have scopes of its own
   * open then), the step's event is forwarded only once its GPU work reported no error, and the
   * first error aborts the remaining steps and is thrown by `finish`.
   * @example
   *   const checks = ctx.errors.stepChecks((s) => `training step ${s.step}`, onStep, signal);
   *   try { await trainer.train(ids, mask, { ...o, signal: checks.signal }, checks.onStep); } finally { await checks.finish(); }
   */
  stepChecks<E>(what: (event: E) => string, onStep: ((event: E) => void) | undefined, signal?: AbortSignal): StepChecks<E> {
    const controller = new AbortController();
    const forwardAbort = () => controller.abort(signal?.reason);
    if (signal?.aborted) forwardAbort();
    else signal?.addEventListener('abort', forwardAbort, { once: true });
    let first: EngineError | null = null;
    let chain: Promise<void> = Promise.resolve();
    return {
      signal: controller.signal,
      onStep: (event) => {
        const label = what(event);
        const pops = FILTERS.map(() => this.pop());
        for (const f of FILTERS) this.device.pushErrorScope(f);
        chain = chain.then(async () => {
          const err = await this.firstError(pops, label);
          if (err && !first) {
            first = err;
            controller.abort(err);
          }
          if (!first && !this.lostError) onStep?.(event);
        });
      },
      finish: async () => {
        signal?.removeEventListener('abort', forwardAbort);
        await chain;
        if (first) throw first;
      },
    };
  }

  /** Pops the scopes a run pushed; never rejects, never waits on a lost device. */
  private popScopes(what: string): Promise<EngineError | null> {
    return this.firstError(FILTERS.map(() => this.pop()), what);
  }

  private pop(): Promise<GPUError | null> {
    try {
      return this.device.popErrorScope().catch(() => null);
    } catch {
      return Promise.resolve(null); // an implementation that throws instead of rejecting
    }
  }

  /** The first error of popped scopes (`pops` in pop order: validation, out-of-memory, internal). */
  private async firstError(pops: Promise<GPUError | null>[], what: string): Promise<EngineError | null> {
    const errors = await Promise.race([Promise.all(pops), this.lost.catch(() => null)]);
    if (!errors) return null;
    const popOrder = [...FILTERS].reverse();
    const i = errors.findIndex((e) => e !== null);
    return i < 0 ? null : gpuError(errors[i]!, what, popOrder[i]);
  }

  private throwUncaptured(): void {
    const e = this.uncaptured;
    this.uncaptured = null;
    if (e) throw e;
  }
}
