/**
 * How much the lm_head's precision costs: for a checkpoint and a set of prompts, the mean KL
 * divergence KL(f32 || q4 body + head) over every position of every prompt, and the agreement of
 * 32 greedy tokens with the f32 model's, for each lm_head format. The reference is the model with
 * f32 weights; the variants keep the 4-bit body and change only the head (and a tied embedding,
 * the same matrix). Used by scripts/bench/lm-head-precision.ts and tests/models/lm-head-precision.test.ts.
 */
import type { LmHeadFormat, WeightFormat } from '../../models/api.ts';
import { argmax } from '../../models/sampling.ts';

/** The part of CpuLlama / GpuLlama the measurement drives. */
export interface HeadEngine {
  forward(ids: number[], o?: { allLogits?: boolean }): Promise<Float32Array> | Float32Array;
  resetCache(): void;
  dispose?(): void;
}

/** Loads the model with these weight and lm_head formats. */
export type HeadEngineFactory = (weights: WeightFormat, lmHead: LmHeadFormat) => Promise<HeadEngine>;

export interface HeadPrecision {
  /** 'q4' body with this head ('f32' weights and head for the reference row). */
  lmHead: LmHeadFormat;
  /** Mean and largest KL(f32 || this) in nats over every position of every prompt. */
  meanKl: number;
  maxKl: number;
  positions: number;
  /** Greedy tokens equal to the f32 model's at the same step, of `greedyTotal`. */
  greedyAgree: number;
  greedyTotal: number;
  /** Tokens before the first greedy disagreement, summed over the prompts. */
  greedyPrefix: number;
  /**
   * The head's own error: mean KL(q4 body + f32 head || q4 body + this head) over the same
   * positions, and greedy agreement with that model (the body's 4-bit noise left out).
   */
  headMeanKl: number;
  headGreedyAgree: number;
}

/** KL(p || q) in nats of the softmaxes of two logit rows (f64 accumulation). */
export function klOfLogits(p: ArrayLike<number>, q: ArrayLike<number>): number {
  if (p.length !== q.length || p.length === 0) throw new Error(`klOfLogits: lengths ${p.length} and ${q.length}`);
  const lse = (x: ArrayLike<number>) => {
    let m = -Infinity;
    for (let i = 0; i < x.length; i++) m = Math.max(m, x[i]);
    let s = 0;
    for (let i = 0; i < x.length; i++) s += Math.exp(x[i] - m);
    return m + Math.log(s);
  };
  const lp = lse(p), lq = lse(q);
  let kl = 0;
  for (let i = 0; i < p.length; i++) {
    const a = p[i] - lp;
    kl += Math.exp(a) * (a - (q[i] - lq));
  }
  return Math.max(0, kl);
}

interface Reference { logits: Float32Array[]; tokens: number[][] }

async function reference(m: HeadEngine, prompts: number[][], greedyTokens: number): Promise<Reference> {
  const out: Reference = { logits: [], tokens: [] };
  for (const ids of prompts) {
    m.resetCache();
    out.logits.push(Float32Array.from(await m.forward(ids, { allLogits: true })));
    out.tokens.push(await greedy(m, ids, greedyTokens));
  }
  m.dispose?.();
  return out;
}

async function greedy(m: HeadEngine, ids: number[], n: number): Promise<number[]> {
  m.resetCache();
  let logits = await m.forward(ids);
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    out.push(argmax(logits));
    if (i + 1 < n) logits = await m.forward([out[i]]);
  }
  return out;
}

/**
 * One row per head format in `heads` (4-bit body), against the f32 model and against the 4-bit
 * body with an f32 head.
 * @example
 *   const rows = await measureLmHeads((w, h) => CpuLlama.load(ck.config, ck, { weights: w, lmHead: h, maxContext: 512 }), prompts, ['q4', 'q8']);
 */
export async function measureLmHeads(make: HeadEngineFactory, prompts: number[][], heads: LmHeadFormat[], greedyTokens = 32): Promise<HeadPrecision[]> {
  if (prompts.length === 0) throw new Error('measureLmHeads: no prompts');
  const f32 = await reference(await make('f32', 'f32'), prompts, greedyTokens);
  const body = await reference(await make('q4', 'f32'), prompts, greedyTokens);
  const rows: HeadPrecision[] = [];
  for (const head of heads) {
    const m = await make('q4', head);
    let sum = 0, max = 0, headSum = 0, positions = 0, agree = 0, prefix = 0, headAgree = 0;
    for (const [i, ids] of prompts.entries()) {
      m.resetCache();
      const all = await m.forward(ids, { allLogits: true });
      const V = all.length / ids.length;
      if (all.length !== f32.logits[i].length || !Number.isInteger(V)) throw new Error(`measureLmHeads: ${all.length} logits, expected ${f32.logits[i].length}`);
      for (let t = 0; t < ids.length; t++) {
        const row = all.subarray(t * V, (t + 1) * V);
        const kl = klOfLogits(f32.logits[i].subarray(t * V, (t + 1) * V), row);
        sum += kl;
        max = Math.max(max, kl);
        headSum += klOfLogits(body.logits[i].subarray(t * V, (t + 1) * V), row);
        positions++;
      }
      const toks = await greedy(m, ids, greedyTokens);
      agree += toks.filter((tok, j) => tok === f32.tokens[i][j]).length;
      headAgree += toks.filter((tok, j) => tok === body.tokens[i][j]).length;
      const first = toks.findIndex((tok, j) => tok !== f32.tokens[i][j]);
      prefix += first < 0 ? greedyTokens : first;
    }
    m.dispose?.();
    rows.push({
      lmHead: head, meanKl: sum / positions, maxKl: max, positions, greedyAgree: agree, greedyTotal: prompts.length * greedyTokens, greedyPrefix: prefix,
      headMeanKl: headSum / positions, headGreedyAgree: headAgree,
    });
  }
  return rows;
}
