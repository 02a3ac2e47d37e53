import { describe, expect, it } from 'vitest';
import { Adam, globalNorm } from '../../../models/optim/adam.ts';

/** torch.optim.AdamW, written out per element in f64. */
function reference(p0: number[], gs: number[][], o: { lr: number; b1: number; b2: number; eps: number; wd: number }): number[] {
  const p = [...p0], m = p.map(() => 0), v = p.map(() => 0);
  gs.forEach((g, s) => {
    const t = s + 1;
    for (let i = 0; i < p.length; i++) {
      p[i] *= 1 - o.lr * o.wd;
      m[i] = o.b1 * m[i] + (1 - o.b1) * g[i];
      v[i] = o.b2 * v[i] + (1 - o.b2) * g[i] * g[i];
      p[i] -= (o.lr * m[i]) / (1 - o.b1 ** t) / (Math.sqrt(v[i] / (1 - o.b2 ** t)) + o.eps);
    }
  });
  return p;
}

describe('Adam', () => {
  const p0 = [0.5, -0.25, 1, 0];
  const gs = [[0.1, -0.2, 0.3, 0], [0.05, 0.1, -0.3, 1e-3], [-0.2, 0.02, 0.3, 0]];

  it('bias-corrected Adam and decoupled weight decay as torch AdamW', () => {
    for (const wd of [0, 0.1]) {
      const p = Float32Array.from(p0);
      const adam = new Adam([p]);
      for (const g of gs) adam.step([Float32Array.from(g)], { lr: 0.01, weightDecay: wd });
      const ref = reference(p0, gs, { lr: 0.01, b1: 0.9, b2: 0.999, eps: 1e-8, wd });
      for (let i = 0; i < 4; i++) expect(p[i]).toBeCloseTo(ref[i], 6);
      expect(adam.stepCount).toBe(3);
    }
  });

  it('first step moves every parameter with a gradient by about lr', () => {
    const p = Float32Array.from(p0);
    new Adam([p]).step([Float32Array.from(gs[0])], { lr: 0.01 });
    expect(p[0] - p0[0]).toBeCloseTo(-0.01, 6);
    expect(p[1] - p0[1]).toBeCloseTo(0.01, 6);
    expect(p[3]).toBe(0); // zero gradient: no move
  });

  it('global gradient-norm clipping scales every gradient by max / (norm + 1e-6)', () => {
    const g = [Float32Array.from([3, 0]), Float32Array.from([0, 4])];
    expect(globalNorm(g)).toBe(5);
    const clipped = [new Float32Array(2), new Float32Array(2)];
    const a = new Adam(clipped);
    const info = a.step(g, { lr: 0.1, maxGradNorm: 1, beta1: 0, beta2: 0 });
    expect(info.gradNorm).toBe(5);
    expect(info.clipScale).toBeCloseTo(1 / (5 + 1e-6), 12);
    expect(new Adam([new Float32Array(2)]).step([Float32Array.from([0.3, 0.4])], { lr: 0.1, maxGradNorm: 1 }).clipScale).toBe(1);
    expect(g[0][0]).toBe(3); // gradients are not modified
  });

  it('reset clears moments and step count', () => {
    const p = Float32Array.from(p0), q = Float32Array.from(p0);
    const a = new Adam([p]);
    a.step([Float32Array.from(gs[0])], { lr: 0.01 });
    a.reset();
    p.set(p0);
    a.step([Float32Array.from(gs[1])], { lr: 0.01 });
    new Adam([q]).step([Float32Array.from(gs[1])], { lr: 0.01 });
    expect(p).toEqual(q);
    expect(a.stepCount).toBe(1);
    expect(() => a.step([new Float32Array(3)], { lr: 0.01 })).toThrow(RangeError);
  });
});
