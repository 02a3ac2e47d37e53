/**
 * LoRA test-time training through the real LLM worker in headless Chromium (WebGPU on SwiftShader,
 * f32 weights), against the float64 PyTorch reference in ../shared/golden (see its README): the
 * loss and every gradient at the golden point, the 5-step Adam trajectory and final adapter (both
 * after reset-adapter and from a fresh attach with zeroB), reset back to the exact base model,
 * cancellation mid-training, and typed errors for misuse; and 4-bit weights, whose gradients and
 * trajectory are held to the CPU 4-bit reference computed here in Node. Adapter and gradient bytes
 * come back as safetensors and are decoded here, in Node, with the project's safetensors reader.
 */
import { readFileSync } from 'node:fs';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openCheckpoint } from '../models/checkpoint.ts';
import { PROJECTIONS } from '../models/config.ts';
import { CpuLlama } from '../models/cpu/cpu-llama.ts';
import { CpuTrainer } from '../models/cpu/cpu-trainer.ts';
import { NodeDirSource } from '../node/io/node-source.ts';
import { loadLora, saveLora, zeroB } from '../models/lora/adapter.ts';
import { toFloat32 } from '../models/safetensors/dtype.ts';
import { parseSafetensorsHeader } from '../models/safetensors/header.ts';
import { relErr } from '../tests/helpers/gpu.ts';
import { HAS_SHARED, sharedPath, warnIfNoShared } from '../tests/helpers/shared.ts';
import { HARNESS_PATH, openHarness, STORIES_URL, type HarnessSession } from './support/index.ts';

warnIfNoShared('LoRA TTT through the LLM worker (golden stories260K adapters)');

const POINT_URL = '/shared/golden/lora-stories260K-point.safetensors';
/** An adapter for another model (hidden 64 too, but GQA 8:2 and FFN 128): a shape mismatch here. */
const OTHER_MODEL_URL = '/shared/golden/lora-tiny-llama31-random-point.safetensors';

interface LoraGolden {
  rank: number;
  alpha: number;
  ids: number[];
  loss_mask: number[];
  loss_at_point: number;
  adam: { lr: number; beta1: number; beta2: number; eps: number; weight_decay: number };
  ttt_losses_before_each_step: number[];
  ttt_loss_after_last_step: number;
}
interface ForwardGolden {
  cases: { ids: number[]; greedy_32: number[] | null }[];
}

/** Every tensor of a safetensors file, as f32, by name. */
function readTensors(bytes: Uint8Array, name: string): Map<string, Float32Array> {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const len = Number(dv.getBigUint64(0, true));
  const header = parseSafetensorsHeader(name, bytes.subarray(8, 8 + len), bytes.byteLength);
  const out = new Map<string, Float32Array>();
  for (const [n, info] of header.tensors) out.set(n, toFloat32(bytes.subarray(info.begin, info.end), info.dtype, n));
  return out;
}

/** Compares every reference tensor with the engine's (same names, same sizes); returns the worst. */
function compareTensors(got: Map<string, Float32Array>, ref: Map<string, Float32Array>, bound: number): { worst: number; worstName: string } {
  expect(ref.size).toBeGreaterThan(0);
  expect([...got.keys()].sort()).toEqual([...ref.keys()].sort());
  let worst = 0, worstName = '';
  const bad: string[] = [];
  for (const [name, r] of ref) {
    const g = got.get(name)!;
    expect(g.length, name).toBe(r.length);
    const e = relErr(g, r);
    if (!(e < bound)) bad.push(`${name}: ${e.toExponential(2)}`);
    if (!(e <= worst)) [worst, worstName] = [e, name];
  }
  expect(bad, `tensors over ${bound} relative error`).toEqual([]);
  return { worst, worstName };
}

// Bounds: relative (per tensor by norm of the difference, as the golden README), the same as
// tests/models/gpu/gpu-trainer-golden.test.ts' (~10x the worst of lavapipe and SwiftShader).
// Measured here on SwiftShader stories260K / tiny-llama31-random (the CPU worker is tighter).
const F32 = {
  loss: 3e-6, // measured 1.2e-7 / 3.0e-8
  grad: 6e-5, // measured 5.4e-6 / 4.4e-6
  trajLoss: 1e-4, // measured 7.2e-6 / 8.7e-7
  finalAB: 8e-4, // measured 5.0e-5 / 6.3e-6
};
/** q4 weights on SwiftShader against the CPU q4 reference computed here in Node (f32 rounding only). */
const Q4_VS_CPU = {
  loss: 3e-6, // measured 2.6e-7
  grad: 1e-4, // measured 6.7e-6 (lavapipe 9.2e-6)
  trajLoss: 1.5e-4, // measured 1.7e-6 (lavapipe 1.1e-5)
};

const fromBase64 = (s: string) => new Uint8Array(Buffer.from(s, 'base64'));
const relLoss = (a: number, ref: number) => Math.abs(a - ref) / Math.abs(ref);

let session: HarnessSession | undefined;
let page: Page;
const report: string[] = [];

beforeAll(async () => {
  if (!HAS_SHARED) return;
  session = await openHarness(HARNESS_PATH);
  page = session.page;
});
afterAll(async () => {
  if (report.length) console.log(`\n[ttt e2e] ${report.join('\n[ttt e2e] ')}\n`);
  await session?.close();
});

describe.skipIf(!HAS_SHARED)('LoRA TTT through the LLM worker (WebGPU f32, stories260K)', () => {
  const g = (): LoraGolden => JSON.parse(readFileSync(sharedPath('golden', 'lora-stories260K.json'), 'utf8'));
  const prompt = (): { ids: number[]; greedy_32: number[] } => {
    const c = (JSON.parse(readFileSync(sharedPath('golden', 'forward-stories260K.json'), 'utf8')) as ForwardGolden).cases[0]!;
    return { ids: c.ids, greedy_32: c.greedy_32! };
  };
  const goldenFile = (suffix: string) => {
    const name = `lora-stories260K-${suffix}.safetensors`;
    return readTensors(new Uint8Array(readFileSync(sharedPath('golden', name))), name);
  };
  /** The golden Adam settings as ttt options: no clipping (the product default clips at 1). */
  const adam = () => {
    const a = g().adam;
    return { lr: a.lr, beta1: a.beta1, beta2: a.beta2, eps: a.eps, weightDecay: a.weight_decay, maxGradNorm: null };
  };
  /** Base-model logits of the golden prompt before any adapter: reset must give them back bit for bit. */
  let baseLogits: number[] = [];

  it('attach the golden point (loraInit bytes, transferred): loss and every gradient near the golden', async () => {
    const { ids, loss_mask: mask, loss_at_point } = g();
    const p = prompt();
    const r = await page.evaluate(
      async ({ url, pointUrl, ids, mask, promptIds }) => {
        const h = window.harness;
        const t0 = performance.now();
        await h.client.load({ kind: 'url', url }, { backend: 'webgpu', weights: 'f32' });
        const t1 = performance.now();
        // One token: the logits are the prompt's; the golden greedy_32 is checked after reset-adapter.
        const base = await h.client.generate({ ids: promptIds, options: { maxNewTokens: 1, includeLogits: true } });
        const bytes = await h.fetchBytes(pointUrl);
        const size = bytes.byteLength;
        const t2 = performance.now();
        const adapter = await h.client.attachAdapter({ config: { rank: 4, alpha: 8 }, loraInit: bytes });
        const t3 = performance.now();
        const lg = await h.client.lossAndGrads({ ids, mask });
        const ms = { load: t1 - t0, generate: t2 - t1, attach: t3 - t2, lossAndGrads: performance.now() - t3 };
        return { base, size, detached: bytes.byteLength === 0, adapter, loss: lg.loss, tokensTrained: lg.tokensTrained, grads: h.base64(lg.grads!), ms };
      },
      { url: STORIES_URL, pointUrl: POINT_URL, ids, mask, promptIds: p.ids },
    );
    expect(r.base.ids).toEqual(p.greedy_32.slice(0, 1));
    baseLogits = r.base.lastLogits!;
    expect(r.size).toBe(99968);
    expect(r.detached).toBe(true); // transferred to the worker, not copied
    expect(r.adapter).toMatchObject({
      config: { rank: 4, alpha: 8, targets: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'] },
      fromFile: true,
      bZero: false,
    });
    expect(r.adapter.parameters).toBe([...goldenFile('point').values()].reduce((n, t) => n + t.length, 0));
    expect(r.tokensTrained).toBe(mask.slice(1).filter((m) => m === 1).length);
    const lossErr = relLoss(r.loss, loss_at_point);
    expect(lossErr).toBeLessThan(F32.loss);
    const { worst, worstName } = compareTensors(readTensors(fromBase64(r.grads), 'grads'), goldenFile('grads'), F32.grad);
    report.push(`point: loss ${r.loss.toFixed(7)} vs ${loss_at_point.toFixed(7)} (rel ${lossErr.toExponential(2)}); worst grad rel err ${worst.toExponential(2)} (${worstName}); ms: ${Object.entries(r.ms).map(([k, v]) => `${k} ${v.toFixed(0)}`).join(', ')}`);
  });

  it('reset-adapter gives the TTT start (point A, B = 0): 5 Adam steps follow the golden losses and final adapter', async () => {
    const gold = g();
    const r = await page.evaluate(
      async ({ ids, mask, options }) => {
        const h = window.harness;
        await h.client.resetAdapter();
        const steps: { step: number; steps: number; loss: number; ms: number }[] = [];
        const ttt = await h.client.ttt({ ids, mask, options: { ...options, steps: 5 } }, (s) => steps.push(s));
        return { ttt, steps, adapter: h.base64(await h.client.getAdapter()) };
      },
      { ids: gold.ids, mask: gold.loss_mask, options: adam() },
    );
    expectTrajectory(r.ttt, r.steps, r.adapter, 'after reset');
  });

  function expectTrajectory(
    ttt: { lossAtStart: number; losses: number[]; finalLoss: number; tokensTrained: number; timings: { totalMs: number; stepMs: number[] }; sequence: { tokens: number; promptTokens: number } },
    steps: { step: number; steps: number; loss: number; ms: number }[],
    adapterB64: string,
    label: string,
  ): void {
    const gold = g();
    expect(steps.map((s) => [s.step, s.steps])).toEqual([1, 2, 3, 4, 5].map((s) => [s, 5]));
    expect(steps.map((s) => s.loss)).toEqual(ttt.losses);
    expect(ttt.sequence).toEqual({ tokens: gold.ids.length, promptTokens: 12, truncated: false });
    expect(ttt.lossAtStart).toBe(ttt.losses[0]);
    const lossErrs = ttt.losses.map((l, i) => relLoss(l, gold.ttt_losses_before_each_step[i]!));
    const finalErr = relLoss(ttt.finalLoss, gold.ttt_loss_after_last_step);
    expect(ttt.losses).toHaveLength(gold.ttt_losses_before_each_step.length);
    expect(Math.max(...lossErrs), `losses ${ttt.losses.join(', ')}`).toBeLessThan(F32.trajLoss);
    expect(finalErr).toBeLessThan(F32.trajLoss);
    const { worst, worstName } = compareTensors(readTensors(fromBase64(adapterB64), 'adapter'), goldenFile('ttt-final'), F32.finalAB);
    report.push(
      `trajectory (${label}): worst loss rel err ${Math.max(...lossErrs, finalErr).toExponential(2)}, worst final A/B rel err ${worst.toExponential(2)} (${worstName}); ` +
        `step ms ${ttt.timings.stepMs.map((m) => m.toFixed(0)).join(' ')}`,
    );
  }

  it('after reset-adapter the model is the base model: bit-identical logits and the golden greedy_32', async () => {
    const p = prompt();
    const r = await page.evaluate(async (ids) => {
      const h = window.harness;
      await h.client.resetAdapter();
      return h.client.generate({ ids, options: { maxNewTokens: 32, includeLogits: true } });
    }, p.ids);
    expect(r.ids).toEqual(p.greedy_32);
    expect(baseLogits).toHaveLength(512);
    expect(r.lastLogits).toEqual(baseLogits);
  });

  it('cancel during a 50-step TTT: typed aborted error, the model still generates, reset clears the partial update', async () => {
    const gold = g();
    const p = prompt();
    const r = await page.evaluate(
      async ({ ids, mask, options, promptIds }) => {
        const h = window.harness;
        const seen: number[] = [];
        const cancelled = await h.settle(
          h.client.ttt({ ids, mask, options: { ...options, steps: 50 } }, (s) => {
            seen.push(s.step);
            if (s.step === 1) h.client.cancel();
          }),
        );
        const busy = h.client.busy;
        const partial = h.base64(await h.client.getAdapter());
        const adapted = await h.client.generate({ ids: promptIds, options: { maxNewTokens: 4 } });
        await h.client.resetAdapter();
        const base = await h.client.generate({ ids: promptIds, options: { maxNewTokens: 1, includeLogits: true } });
        return { cancelled, seen, busy, partial, adapted, base };
      },
      { ids: gold.ids, mask: gold.loss_mask, options: adam(), promptIds: p.ids },
    );
    expect(r.cancelled).toMatchObject({ ok: false, code: 'aborted' });
    expect(r.seen.length).toBeGreaterThanOrEqual(1);
    expect(r.seen.length).toBeLessThan(50);
    expect(r.busy).toBe(false);
    // The steps done before the cancel stay applied (B moved off zero) until reset-adapter.
    const partialB = [...readTensors(fromBase64(r.partial), 'partial').entries()].filter(([n]) => n.endsWith('lora_B'));
    expect(partialB.some(([, b]) => b.some((v) => v !== 0))).toBe(true);
    expect(r.adapted.ids).toHaveLength(4);
    expect(r.base.ids).toEqual(p.greedy_32.slice(0, 1));
    expect(r.base.lastLogits).toEqual(baseLogits);
    report.push(`cancel: stopped after ${r.seen.length} of 50 steps`);
  });

  it('a second attach replaces the adapter with a fresh one (B = 0); misuse gives typed errors', async () => {
    const gold = g();
    const r = await page.evaluate(
      async ({ ids, mask }) => {
        const h = window.harness;
        const c = h.client;
        return {
          secondAttach: await h.settle(c.attachAdapter({ config: { rank: 4, alpha: 8 } })),
          noTarget: await h.settle(c.ttt({ ids, mask: mask.map(() => 0), options: { steps: 1 } })),
          outOfVocab: await h.settle(c.lossAndGrads({ ids: [...ids.slice(0, -1), 512], mask })),
          tooLong: await h.settle(c.ttt({ ids: new Array<number>(5000).fill(1), mask: new Array<number>(5000).fill(1) })),
          unknownOption: await h.settle(c.ttt({ ids, mask, options: { steps: 1, rank: 8 } as never })),
          badInput: await h.settle(c.ttt({ ids, options: {} } as never)),
          badLr: await h.settle(c.ttt({ ids, mask, options: { lr: -1 } })),
        };
      },
      { ids: gold.ids, mask: gold.loss_mask },
    );
    // Changing the adapter's shape (the app's settings) needs no reload: the old one is freed.
    expect(r.secondAttach).toMatchObject({ ok: true, value: { fromFile: false, bZero: true, config: { rank: 4, alpha: 8 } } });
    expect((r.secondAttach as { value: { parameters: number } }).value.parameters).toBeGreaterThan(0);
    expect(r.noTarget).toMatchObject({ ok: false, code: 'invalid-input', message: expect.stringContaining('no token to predict') });
    expect(r.outOfVocab).toMatchObject({ ok: false, code: 'invalid-input', message: expect.stringContaining('outside the vocabulary') });
    expect(r.tooLong).toMatchObject({ ok: false, code: 'invalid-input' });
    expect(r.unknownOption).toMatchObject({ ok: false, code: 'invalid-input', message: expect.stringContaining('Unknown ttt option "rank"') });
    expect(r.badInput).toMatchObject({ ok: false, code: 'invalid-input' });
    expect(r.badLr).toMatchObject({ ok: false, code: 'invalid-input' });
  });

  // The zeroB flag is applied by the worker to the loaded weights before attaching, whatever the
  // backend; on WebGPU the same start (point A, B = 0) is what reset-adapter gave above. The CPU
  // reference backend re-runs the flow in a fresh worker in milliseconds, where a second WebGPU
  // load plus 5 SwiftShader steps would cost over a minute.
  it('a fresh worker (CPU backend): typed errors before an adapter, wrong-shape file refused, attach with zeroB follows the golden trajectory', async () => {
    const gold = g();
    const r = await page.evaluate(
      async ({ url, pointUrl, otherUrl, ids, mask, options }) => {
        const h = window.harness;
        const c = h.newClient();
        try {
          const noModel = await h.settle(c.ttt({ ids, mask }));
          // Context above the config's 512: the trace below is in the FineMed chat prompt (593 tokens here).
          await c.load({ kind: 'url', url }, { backend: 'cpu', weights: 'f32', maxContext: 1024 });
          const noAdapter = await h.settle(c.ttt({ ids, mask }));
          const noAdapterBytes = await h.settle(c.getAdapter());
          const wrongShape = await h.settle(c.attachAdapter({ loraInit: await h.fetchBytes(otherUrl) }));
          const notSafetensors = await h.settle(c.attachAdapter({ loraInit: new Uint8Array([1, 2, 3]).buffer }));
          const adapter = await c.attachAdapter({ config: { rank: 4, alpha: 8 }, loraInit: await h.fetchBytes(pointUrl), zeroB: true });
          const steps: { step: number; steps: number; loss: number; ms: number }[] = [];
          const ttt = await c.ttt({ ids, mask, options: { ...options, steps: 5 } }, (s) => steps.push(s));
          const final = h.base64(await c.getAdapter());
          // A text trace in the model's chat template, cut to maxTokens in the reasoning (the CPU
          // engine lets a new adapter replace the old one).
          const traced = await c.attachAdapter({ config: { rank: 2, targets: ['q_proj', 'v_proj'], maxTokens: 700, steps: 1, lr: 1e-3 } });
          const reasoning = 'Lily went to the park. She saw a big dog. The dog was happy and ran around. '.repeat(6);
          const trace = await c.ttt({ trace: { question: 'What did Lily see?', reasoning, answer: 'A big dog.' } });
          return { noModel, noAdapter, noAdapterBytes, wrongShape, notSafetensors, adapter, ttt, steps, final, traced, trace };
        } finally {
          c.terminate();
        }
      },
      { url: STORIES_URL, pointUrl: POINT_URL, otherUrl: OTHER_MODEL_URL, ids: gold.ids, mask: gold.loss_mask, options: adam() },
    );
    expect(r.noModel).toMatchObject({ ok: false, code: 'invalid-input', message: expect.stringContaining('No model is loaded') });
    expect(r.noAdapter).toMatchObject({ ok: false, code: 'invalid-input', message: expect.stringContaining('No adapter is attached') });
    expect(r.noAdapterBytes).toMatchObject({ ok: false, code: 'invalid-input' });
    expect(r.wrongShape).toMatchObject({ ok: false, code: 'weights-mismatch' });
    expect(r.notSafetensors).toMatchObject({ ok: false, code: 'weights-format' });
    expect(r.adapter).toMatchObject({ fromFile: true, bZero: true, config: { rank: 4, alpha: 8 } });
    expectTrajectory(r.ttt, r.steps, r.final, 'CPU worker, attach zeroB');
    expect(r.traced).toMatchObject({ fromFile: false, bZero: true, config: { rank: 2, alpha: 16, targets: ['q_proj', 'v_proj'], maxTokens: 700, steps: 1 } });
    expect(r.traced.parameters).toBe(5 * 2 * (64 + 64 + 64 + 32)); // 5 layers, rank 2, q (64 -> 64) and v (64 -> 32)
    const seq = r.trace.sequence;
    expect(seq.truncated).toBe(true);
    expect(seq.tokens).toBeLessThanOrEqual(700);
    expect(seq.tokens).toBeGreaterThan(650);
    expect(seq.promptTokens).toBeGreaterThan(500);
    expect(r.trace.tokensTrained).toBe(seq.tokens - seq.promptTokens);
    expect(r.trace.losses).toHaveLength(1);
    expect(r.trace.finalLoss).toBeLessThan(r.trace.lossAtStart);
    report.push(`trace (CPU worker): ${seq.tokens} tokens, ${seq.promptTokens} prompt, ${r.trace.tokensTrained} trained, loss ${r.trace.lossAtStart.toFixed(3)} -> ${r.trace.finalLoss.toFixed(3)}, ${r.trace.timings.totalMs.toFixed(0)} ms`);
  });
});

describe.skipIf(!HAS_SHARED)('LoRA TTT through the LLM worker (WebGPU f32, tiny-llama31-random: llama3 rope, GQA, untied head)', () => {
  const name = 'tiny-llama31-random';
  const g = (): LoraGolden => JSON.parse(readFileSync(sharedPath('golden', `lora-${name}.json`), 'utf8'));
  const goldenFile = (suffix: string) => {
    const file = `lora-${name}-${suffix}.safetensors`;
    return readTensors(new Uint8Array(readFileSync(sharedPath('golden', file))), file);
  };

  it('loss and every gradient at the point; the 5-step trajectory and final adapter after reset', async () => {
    const gold = g();
    const a = gold.adam;
    const r = await page.evaluate(
      async ({ url, pointUrl, ids, mask, options }) => {
        const h = window.harness;
        const client = h.newClient(); // a worker of its own: one adapter per model load
        await client.load({ kind: 'url', url }, { backend: 'webgpu', weights: 'f32' });
        await client.attachAdapter({ config: { rank: 4, alpha: 8 }, loraInit: await h.fetchBytes(pointUrl) });
        const lg = await client.lossAndGrads({ ids, mask, returnGrads: true });
        await client.resetAdapter();
        const ttt = await client.ttt({ ids, mask, options: { ...options, steps: 5 } }, () => {});
        const adapter = h.base64(await client.getAdapter());
        client.terminate();
        return { loss: lg.loss, grads: h.base64(lg.grads!), ttt, adapter };
      },
      {
        url: `/shared/golden/${name}/`, pointUrl: `/shared/golden/lora-${name}-point.safetensors`, ids: gold.ids, mask: gold.loss_mask,
        options: { lr: a.lr, beta1: a.beta1, beta2: a.beta2, eps: a.eps, weightDecay: a.weight_decay, maxGradNorm: null },
      },
    );
    expect(relLoss(r.loss, gold.loss_at_point)).toBeLessThan(F32.loss);
    const grads = compareTensors(readTensors(fromBase64(r.grads), 'grads'), goldenFile('grads'), F32.grad);
    expect(r.ttt.losses).toHaveLength(gold.ttt_losses_before_each_step.length);
    const lossErrs = [...r.ttt.losses, r.ttt.finalLoss].map((l: number, i: number) => relLoss(l, [...gold.ttt_losses_before_each_step, gold.ttt_loss_after_last_step][i]!));
    expect(Math.max(...lossErrs)).toBeLessThan(F32.trajLoss);
    const final = compareTensors(readTensors(fromBase64(r.adapter), 'adapter'), goldenFile('ttt-final'), F32.finalAB);
    report.push(`${name}: loss rel ${relLoss(r.loss, gold.loss_at_point).toExponential(2)}, worst grad ${grads.worst.toExponential(2)}, trajectory worst loss rel ${Math.max(...lossErrs).toExponential(2)}, final A/B worst ${final.worst.toExponential(2)}`);
  });
});

describe.skipIf(!HAS_SHARED)('4-bit TTT through the LLM worker (WebGPU q4 on SwiftShader, stories260K)', () => {
  const g = (): LoraGolden => JSON.parse(readFileSync(sharedPath('golden', 'lora-stories260K.json'), 'utf8'));
  const STEPS = 2;

  it('gradients equal the CPU q4 reference computed in Node; the loss falls at every step; reset gives the base logits bit for bit', async () => {
    const gold = g();
    const a = gold.adam;
    const options = { lr: a.lr, beta1: a.beta1, beta2: a.beta2, eps: a.eps, weightDecay: a.weight_decay, maxGradNorm: null };
    const promptIds = gold.ids.slice(0, 12);
    const r = await page.evaluate(
      async ({ url, pointUrl, ids, mask, options, promptIds, steps }) => {
        const h = window.harness;
        const client = h.newClient(); // a worker of its own: another weight format
        try {
          const info = await client.load({ kind: 'url', url }, { backend: 'webgpu', weights: 'q4' });
          const base = await client.generate({ ids: promptIds, options: { maxNewTokens: 1, includeLogits: true } });
          await client.attachAdapter({ config: { rank: 4, alpha: 8 }, loraInit: await h.fetchBytes(pointUrl) });
          const lg = await client.lossAndGrads({ ids, mask, returnGrads: true });
          await client.resetAdapter(); // (point A, B = 0)
          const ttt = await client.ttt({ ids, mask, options: { ...options, steps } }, () => {});
          const adapted = await client.generate({ ids: promptIds, options: { maxNewTokens: 1, includeLogits: true } });
          await client.resetAdapter();
          const after = await client.generate({ ids: promptIds, options: { maxNewTokens: 1, includeLogits: true } });
          return { info, base: base.lastLogits!, loss: lg.loss, grads: h.base64(lg.grads!), ttt, adapted: adapted.lastLogits!, after: after.lastLogits! };
        } finally {
          client.terminate();
        }
      },
      { url: STORIES_URL, pointUrl: POINT_URL, ids: gold.ids, mask: gold.loss_mask, options, promptIds, steps: STEPS },
    );
    expect(r.info).toMatchObject({ backend: 'webgpu', weights: 'q4', precision: 'f32' });
    // The CPU 4-bit reference (dequantizes exactly as the GPU stores the weights), here in Node.
    const ck = await openCheckpoint(new NodeDirSource(sharedPath('golden/stories260K-hf/f32')));
    const cpu = await CpuLlama.load(ck.config, ck, { weights: 'q4', maxContext: 64 });
    const loraCfg = { rank: gold.rank, alpha: gold.alpha, targets: [...PROJECTIONS] };
    const point = () => loadLora(new Uint8Array(readFileSync(sharedPath('golden', 'lora-stories260K-point.safetensors'))), ck.config, loraCfg);
    const ref = new CpuTrainer(cpu, point()).lossAndGrads(gold.ids, gold.loss_mask);
    const lossErr = relLoss(r.loss, ref.loss);
    expect(lossErr).toBeLessThan(Q4_VS_CPU.loss);
    const refGrads = readTensors(saveLora(ref.grads, { suffix: '.grad' }), 'cpu q4 grads');
    const grads = compareTensors(readTensors(fromBase64(r.grads), 'grads'), refGrads, Q4_VS_CPU.grad);
    // The trajectory: falls at every step and follows the CPU q4 one.
    const start = point();
    zeroB(start);
    const rc = await new CpuTrainer(cpu, start).train(gold.ids, gold.loss_mask, { steps: STEPS, lr: a.lr, beta1: a.beta1, beta2: a.beta2, eps: a.eps, weightDecay: a.weight_decay });
    const seq = [...r.ttt.losses, r.ttt.finalLoss], want = [...rc.losses, rc.finalLoss];
    expect(seq).toHaveLength(STEPS + 1);
    expect(want).toHaveLength(STEPS + 1);
    for (let i = 1; i < seq.length; i++) expect(seq[i]).toBeLessThan(seq[i - 1]!);
    const trajErr = Math.max(...seq.map((l, i) => relLoss(l, want[i]!)));
    expect(trajErr).toBeLessThan(Q4_VS_CPU.trajLoss);
    // Adapted logits differ; after reset they are the base model's, bit for bit.
    expect(r.base).toHaveLength(512);
    expect(r.adapted).toHaveLength(512);
    expect(r.adapted).not.toEqual(r.base);
    expect(r.after).toEqual(r.base);
    report.push(`q4 (SwiftShader vs CPU q4): loss rel ${lossErr.toExponential(2)}, worst grad rel ${grads.worst.toExponential(2)} (${grads.worstName}), trajectory worst loss rel ${trajErr.toExponential(2)}; losses ${seq.map((x) => x.toFixed(4)).join(' > ')}`);
  });
});
