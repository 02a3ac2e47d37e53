/**
 * Per-dispatch GPU timing of code we do not modify (the trainer's passes), from outside: while
 * `instrument` runs, every command encoder the device makes is wrapped, and each compute pass is
 * recorded and re-encoded as one pass per dispatch, each pass with timestamp writes at its start
 * and end (`timestamp-query`; Dawn on lavapipe and Chromium's SwiftShader both have it). The
 * commands are the caller's own, in the caller's order and command buffers: the instrumented
 * step is a real step, only split into more passes. Without `timestamp-query`, `replayWallTimes`
 * re-runs the recorded dispatches one submit each and takes wall time per dispatch
 * (onSubmittedWorkDone), which includes the submit overhead.
 *
 * @example
 *   const timer = new KernelTimer(device);
 *   await timer.instrument(() => trainer.lossAndGrads(ids, mask));
 *   const times = await timer.results(); // [{ pipeline, bind, ns }] in dispatch order
 */

export interface RecordedDispatch {
  pipeline: GPUComputePipeline;
  /** Bind groups in effect at the dispatch (index -> group). */
  groups: (GPUBindGroup | null)[];
  workgroups: [number, number, number];
}

export interface TimedDispatch extends RecordedDispatch {
  /** GPU time of the dispatch in nanoseconds (its pass's end minus start timestamp). */
  ns: number;
}

/** The WebGPU spec allows at most 4096 queries per query set: 2 per dispatch. */
const DISPATCHES_PER_SET = 2048;

interface QueryBlock {
  set: GPUQuerySet;
  resolve: GPUBuffer;
  read: GPUBuffer;
  dispatches: RecordedDispatch[];
}

export class KernelTimer {
  readonly timestamps: boolean;
  private readonly device: GPUDevice;
  private blocks: QueryBlock[] = [];
  private recorded: RecordedDispatch[] = [];
  private restore: (() => void) | null = null;

  constructor(device: GPUDevice, opts: { timestamps?: boolean } = {}) {
    this.device = device;
    this.timestamps = (opts.timestamps ?? true) && device.features.has('timestamp-query');
  }

  /** Instruments every command encoder the device makes from now until uninstall(). */
  install(): void {
    if (this.restore) return;
    const device = this.device as GPUDevice & { createCommandEncoder: GPUDevice['createCommandEncoder'] };
    const own = Object.prototype.hasOwnProperty.call(device, 'createCommandEncoder');
    const original = device.createCommandEncoder;
    const make = original.bind(device);
    device.createCommandEncoder = (desc?: GPUCommandEncoderDescriptor) => this.wrapEncoder(make(desc));
    this.restore = () => {
      if (own) device.createCommandEncoder = original;
      else delete (device as unknown as Record<string, unknown>).createCommandEncoder;
    };
  }

  /** Encoders made from now on are the device's own again (ones already made stay instrumented). */
  uninstall(): void {
    this.restore?.();
    this.restore = null;
  }

  /** Runs `fn` with every command encoder of the device instrumented. */
  async instrument<R>(fn: () => Promise<R>): Promise<R> {
    this.install();
    try {
      return await fn();
    } finally {
      this.uninstall();
    }
  }

  /** Every dispatch recorded so far, in order. */
  get dispatches(): readonly RecordedDispatch[] {
    return this.recorded;
  }

  /**
   * GPU time of every dispatch recorded so far (waits for the GPU). With timestamps these come
   * from the instrumented passes; otherwise from `replayWallTimes`.
   */
  async results(): Promise<TimedDispatch[]> {
    if (!this.timestamps) return this.replayWallTimes();
    const out: TimedDispatch[] = [];
    for (const b of this.blocks) {
      await b.read.mapAsync(GPUMapMode.READ);
      const ts = new BigUint64Array(b.read.getMappedRange().slice(0));
      b.read.unmap();
      b.dispatches.forEach((d, i) => {
        const ns = Number(ts[2 * i + 1] - ts[2 * i]);
        out.push({ ...d, ns: ns > 0 ? ns : 0 });
      });
      b.set.destroy();
      b.resolve.destroy();
      b.read.destroy();
    }
    this.blocks = [];
    this.recorded = [];
    return out;
  }

  /** Re-runs each recorded dispatch alone (one submit, then onSubmittedWorkDone): wall time per dispatch. */
  async replayWallTimes(): Promise<TimedDispatch[]> {
    const q = this.device.queue;
    await q.onSubmittedWorkDone();
    const out: TimedDispatch[] = [];
    for (const d of this.recorded) {
      const enc = this.device.createCommandEncoder({ label: 'kernel timer replay' });
      const pass = enc.beginComputePass();
      pass.setPipeline(d.pipeline);
      d.groups.forEach((g, i) => { if (g) pass.setBindGroup(i, g); });
      pass.dispatchWorkgroups(...d.workgroups);
      pass.end();
      const t0 = performance.now();
      q.submit([enc.finish()]);
      await q.onSubmittedWorkDone();
      out.push({ ...d, ns: (performance.now() - t0) * 1e6 });
    }
    this.recorded = [];
    return out;
  }

  private wrapEncoder(enc: GPUCommandEncoder): GPUCommandEncoder {
    const timer = this;
    const own: QueryBlock[] = []; // query sets written by this encoder only
    return new Proxy(enc, {
      get(target, prop) {
        if (prop === 'beginComputePass') {
          return (desc?: GPUComputePassDescriptor) => timer.recordingPass(target, desc, own);
        }
        if (prop === 'finish') {
          return (desc?: GPUCommandBufferDescriptor) => {
            timer.resolveInto(target, own);
            return target.finish(desc);
          };
        }
        const v = Reflect.get(target, prop, target);
        return typeof v === 'function' ? v.bind(target) : v;
      },
    });
  }

  /** A pass that records its dispatches, and on end() encodes them one pass each (timed) into `enc`. */
  private recordingPass(enc: GPUCommandEncoder, desc: GPUComputePassDescriptor | undefined, own: QueryBlock[]): GPUComputePassEncoder {
    const list: RecordedDispatch[] = [];
    let pipeline: GPUComputePipeline | null = null;
    const groups: (GPUBindGroup | null)[] = [];
    const pass = {
      label: desc?.label ?? '',
      setPipeline: (p: GPUComputePipeline) => { pipeline = p; },
      setBindGroup: (i: number, g: GPUBindGroup | null, offsets?: Iterable<number>) => {
        if (offsets && [...offsets].length) throw new Error('KernelTimer: dynamic offsets are not supported.');
        groups[i] = g;
      },
      dispatchWorkgroups: (x: number, y = 1, z = 1) => {
        if (!pipeline) throw new Error('KernelTimer: dispatch without a pipeline.');
        list.push({ pipeline, groups: [...groups], workgroups: [x, y, z] });
      },
      dispatchWorkgroupsIndirect: () => { throw new Error('KernelTimer: indirect dispatch is not supported.'); },
      pushDebugGroup: () => {}, popDebugGroup: () => {}, insertDebugMarker: () => {},
      end: () => {
        for (const d of list) {
          let timestampWrites: GPUComputePassTimestampWrites | undefined;
          if (this.timestamps) {
            const [block, i] = this.slot(own);
            timestampWrites = { querySet: block.set, beginningOfPassWriteIndex: 2 * i, endOfPassWriteIndex: 2 * i + 1 };
            block.dispatches.push(d);
          }
          const p = enc.beginComputePass({ label: desc?.label, timestampWrites });
          p.setPipeline(d.pipeline);
          d.groups.forEach((g, i) => { if (g) p.setBindGroup(i, g); });
          p.dispatchWorkgroups(...d.workgroups);
          p.end();
          this.recorded.push(d);
        }
      },
    };
    return pass as unknown as GPUComputePassEncoder;
  }

  /** The query block of this encoder and index for its next timed dispatch (a new block every 2048). */
  private slot(own: QueryBlock[]): [QueryBlock, number] {
    let b = own[own.length - 1];
    if (!b || b.dispatches.length >= DISPATCHES_PER_SET) {
      const bytes = DISPATCHES_PER_SET * 2 * 8;
      b = {
        set: this.device.createQuerySet({ type: 'timestamp', count: DISPATCHES_PER_SET * 2 }),
        resolve: this.device.createBuffer({ size: bytes, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC }),
        read: this.device.createBuffer({ size: bytes, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST }),
        dispatches: [],
      };
      this.blocks.push(b);
      own.push(b);
    }
    return [b, b.dispatches.length];
  }

  /** Before an instrumented encoder finishes: resolve the queries its passes wrote. */
  private resolveInto(enc: GPUCommandEncoder, own: QueryBlock[]): void {
    for (const b of own) {
      const n = b.dispatches.length * 2;
      if (n === 0) continue;
      enc.resolveQuerySet(b.set, 0, n, b.resolve, 0);
      enc.copyBufferToBuffer(b.resolve, 0, b.read, 0, n * 8);
    }
    own.length = 0;
  }
}
