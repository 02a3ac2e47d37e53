import { beforeAll, describe, expect, it } from 'vitest';
import { Adam, type AdamOptions } from '../../../models/optim/adam.ts';
import { grid1D } from '../../../models/gpu/pipelines.ts';
import {
  ADAM_PARAMS_BYTES, adamUpdateWgsl, gradNormFinalWgsl, gradNormGroups, gradNormPartialWgsl, packAdamParams,
} from '../../../models/gpu/wgsl/adam.ts';
import { expectNoGpuErrors, gpuContext, relErr } from '../../helpers/gpu.ts';
import { KernelHarness } from '../../helpers/kernel-harness.ts';
import { mulberry32 } from '../../helpers/random-model.ts';

const rand = mulberry32(7);
const randn = (n: number, s = 1) => Float32Array.from({ length: n }, () => (rand() * 2 - 1) * s);


const concat = (...a: Float32Array[]) => {
  const out = new Float32Array(a.reduce((s, x) => s + x.length, 0));
  let o = 0;
  for (const x of a) { out.set(x, o); o += x.length; }
  return out;
};

describe('GPU Adam vs models/optim/adam.ts (Dawn)', () => {
  let h: KernelHarness;
  beforeAll(async () => { h = new KernelHarness(await gpuContext(false)); });
  expectNoGpuErrors();

  const cases: [string, Omit<AdamOptions, 'lr'>][] = [
    ['no clipping, no decay', {}],
    ['clipping and weight decay', { maxGradNorm: 5, weightDecay: 0.1, beta1: 0.8, beta2: 0.99 }],
  ];
  for (const [name, opts] of cases) {
    it(`3 steps over two flat buffers (${name})`, async () => {
      const lr = 1e-2;
      // Three tensors of odd sizes in two flat buffer sets: [t0 t1] and [t2].
      const tensors = [randn(1000, 0.5), randn(37, 0.5), randn(5003, 0.5)];
      const init = tensors.map((t) => t.slice());
      const cpu = new Adam(tensors);
      const sets = [concat(init[0], init[1]), init[2]].map((p) => ({
        n: p.length, p: h.storage(p), g: h.empty(p.length * 4), m: h.empty(p.length * 4), v: h.empty(p.length * 4),
      }));
      const groups = sets.map((s) => gradNormGroups(s.n));
      const partials = h.empty(groups.reduce((a, b) => a + b) * 4), stats = h.empty(16);
      let slot = 0;
      const sizes = sets.map((s, i) => { const u = h.uniform([s.n, slot]); slot += groups[i]; return u; });
      const hp = h.ctx.device.createBuffer({ size: ADAM_PARAMS_BYTES, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });

      for (let step = 1; step <= 3; step++) {
        const grads = tensors.map((t) => randn(t.length, step));
        const info = cpu.step(grads, { lr, ...opts });
        h.ctx.device.queue.writeBuffer(sets[0].g, 0, concat(grads[0], grads[1]));
        h.ctx.device.queue.writeBuffer(sets[1].g, 0, grads[2]);
        h.ctx.device.queue.writeBuffer(hp, 0, packAdamParams({ lr, ...opts, step, partials: slot }));
        for (let i = 0; i < sets.length; i++) await h.run(gradNormPartialWgsl(), [sizes[i], sets[i].g, partials], [groups[i], 1, 1]);
        await h.run(gradNormFinalWgsl(), [hp, partials, stats], [1, 1, 1]);
        for (let i = 0; i < sets.length; i++) {
          const s = sets[i];
          await h.run(adamUpdateWgsl(), [hp, sizes[i], stats, s.p, s.g, s.m, s.v], grid1D(s.n, 256));
        }
        const st = await h.readF32(stats, 4);
        expect(Math.abs(st[1] - info.gradNorm) / info.gradNorm).toBeLessThan(1e-6);
        expect(Math.abs(st[2] - info.clipScale) / info.clipScale).toBeLessThan(1e-6);
        if (opts.maxGradNorm === undefined) expect(st[2]).toBe(1);
        else expect(info.clipScale).toBeLessThan(1); // the case really clips
      }
      const got = concat(await h.readF32(sets[0].p, sets[0].n), await h.readF32(sets[1].p, sets[1].n));
      const ref = concat(...tensors), p0 = concat(...init);
      expect(relErr(got, ref)).toBeLessThan(1e-5);
      // Stricter: the 3-step change of the parameters, not just their values.
      expect(relErr(got.map((x, i) => x - p0[i]), ref.map((x, i) => x - p0[i]))).toBeLessThan(1e-5);
    });
  }
});
