import { beforeAll, describe, expect, it } from 'vitest';
import { Adam } from '../../../models/optim/adam.ts';
import { grid1D } from '../../../models/gpu/pipelines.ts';
import {
  ADAM_PARAMS_BYTES, adamUpdateWgsl, gradNormFinalWgsl, gradNormGroups, gradNormPartialWgsl, packAdamParams,
} from '../../../models/gpu/wgsl/adam.ts';
import { expectNoGpuErrors, gpuContext, relErr } from '../../helpers/gpu.ts';
import { KernelHarness } from '../../helpers/kernel-harness.ts';
import { mulberry32 } from '../../helpers/random-model.ts';

// More workgroups than one grid dimension holds (65,535 of 256 threads), as the 8B LoRA's 81,920:
// grid1D splits the dispatch over (x, y) and the kernel flattens it back (wgsl/common.ts flatIndex).
// 66,537 groups: y = 2 rows of 33,269 (one spare group past the end, which must do nothing).
const WG = 256, MAX_GROUPS = 65535;
const N = (MAX_GROUPS + 1002) * WG - 133; // 17,033,339 floats, 68 MB per buffer (4 buffers on the GPU)

describe('GPU Adam over more than 65,535 workgroups vs models/optim/adam.ts (Dawn)', () => {
  let h: KernelHarness;
  beforeAll(async () => { h = new KernelHarness(await gpuContext(false)); });
  expectNoGpuErrors();

  it('2 steps with clipping and weight decay over 17M parameters: every element equals the CPU update', async () => {
    const grid = grid1D(N, WG);
    expect(Math.ceil(N / WG)).toBeGreaterThan(MAX_GROUPS);
    expect(grid[1]).toBeGreaterThan(1); // the split path, not one row
    expect(grid[0]).toBeLessThanOrEqual(MAX_GROUPS);
    expect(grid[0] * grid[1] * WG).toBeGreaterThanOrEqual(N);

    const rand = mulberry32(11);
    const params = Float32Array.from({ length: N }, () => (rand() * 2 - 1) * 0.5);
    const init = params.slice();
    const cpu = new Adam([params]);
    const opts = { lr: 1e-2, maxGradNorm: 100, weightDecay: 0.1 };
    const groups = gradNormGroups(N);
    const p = h.storage(init), g = h.empty(N * 4), m = h.empty(N * 4), v = h.empty(N * 4);
    const partials = h.empty(groups * 4), stats = h.empty(16), size = h.uniform([N, 0]);
    const hp = h.ctx.device.createBuffer({ size: ADAM_PARAMS_BYTES, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
    for (let step = 1; step <= 2; step++) {
      const grad = Float32Array.from({ length: N }, () => (rand() * 2 - 1) * step);
      const info = cpu.step([grad], opts);
      expect(info.clipScale).toBeLessThan(1); // the case really clips
      h.ctx.device.queue.writeBuffer(g, 0, grad);
      h.ctx.device.queue.writeBuffer(hp, 0, packAdamParams({ ...opts, step, partials: groups }));
      await h.run(gradNormPartialWgsl(), [size, g, partials], [groups, 1, 1]);
      await h.run(gradNormFinalWgsl(), [hp, partials, stats], [1, 1, 1]);
      await h.run(adamUpdateWgsl(), [hp, size, stats, p, g, m, v], grid);
    }
    const got = await h.readF32(p, N);
    expect(got.length).toBe(N);
    const delta = (x: Float32Array) => x.map((y, i) => y - init[i]);
    expect(relErr(got, params)).toBeLessThan(1e-5);
    // The elements only the second grid row reaches (past 65,535 groups) moved as on the CPU:
    // a kernel that ignored workgroup_id.y would leave them (or overwrite the first row's) wrong.
    const tail = MAX_GROUPS * WG;
    expect(relErr(delta(got).subarray(tail), delta(params).subarray(tail))).toBeLessThan(1e-5);
    expect(relErr(delta(got).subarray(0, tail), delta(params).subarray(0, tail))).toBeLessThan(1e-5);
    let worst = 0;
    for (let i = 0; i < N; i++) worst = Math.max(worst, Math.abs(got[i] - params[i]));
    expect(worst).toBeLessThan(1e-6 + 1e-5 * opts.lr * 10);
  }, 120_000);
});
