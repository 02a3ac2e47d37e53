/**
 * lm_head precision on the golden models: KL(f32 || q4 body + q4 head) against KL(f32 || q4 body
 * + q8 head) (and an f32 head, for scale) over every position of the golden prompts, and greedy
 * agreement with the f32 model over 32 tokens, for stories260K (tied head) and the tiny
 * Llama-3.1 model (untied). Runs on the CPU reference, which equals the WebGPU path within 1e-4
 * per logit for every format (tests/models/lm-head-precision.test.ts). Prints a table, then one
 * JSON line as its last output.
 *
 * Usage: `npm run bench:lm-head` (needs ../shared/golden)
 */
import { readFileSync } from 'node:fs';
import { openCheckpoint } from '../../models/checkpoint.ts';
import { CpuLlama } from '../../models/cpu/cpu-llama.ts';
import { NodeDirSource } from '../../node/io/node-source.ts';
import { HAS_SHARED, sharedPath } from '../../tests/helpers/shared.ts';
import { measureLmHeads, type HeadPrecision } from './lm-head-measure.ts';

/** The golden models: checkpoint folder and the forward golden whose prompts are measured. */
export const LM_HEAD_MODELS = [
  { name: 'stories260K', dir: 'golden/stories260K-hf/f32', golden: 'golden/forward-stories260K.json' },
  { name: 'tiny-llama31-random', dir: 'golden/tiny-llama31-random', golden: 'golden/forward-tiny-llama31-random.json' },
] as const;

/** The prompts of a forward golden file. */
export function goldenPrompts(file: string): number[][] {
  const g = JSON.parse(readFileSync(sharedPath(file), 'utf8')) as { cases: { ids: number[] }[] };
  return g.cases.map((c) => c.ids);
}

async function main(): Promise<void> {
  if (!HAS_SHARED) {
    console.error('bench:lm-head needs ../shared/golden (the golden checkpoints); it is absent here.');
    process.exitCode = 1;
    return;
  }
  const result: Record<string, HeadPrecision[]> = {};
  for (const m of LM_HEAD_MODELS) {
    const ck = await openCheckpoint(new NodeDirSource(sharedPath(m.dir)));
    const prompts = goldenPrompts(m.golden);
    const t0 = performance.now();
    result[m.name] = await measureLmHeads((weights, lmHead) => CpuLlama.load(ck.config, ck, { weights, lmHead, maxContext: 512 }), prompts, ['q4', 'q8', 'f32']);
    console.error(`[${m.name}] ${prompts.length} prompts, ${result[m.name][0].positions} positions, ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  }
  // vs f32: the whole model's error; vs q4+f32: the head's own (same 4-bit body, f32 head).
  console.log('model                weights  KL(f32||x) mean   max    greedy=f32  prefix  KL(q4+f32||x)  greedy=q4+f32');
  for (const [name, rows] of Object.entries(result)) {
    for (const r of rows) {
      const n = r.greedyTotal;
      console.log(`${name.padEnd(20)} ${('q4+' + r.lmHead).padEnd(8)} ${r.meanKl.toExponential(3).padStart(14)} ${r.maxKl.toExponential(2).padStart(9)} ${`${r.greedyAgree}/${n}`.padStart(10)} ${`${r.greedyPrefix}/${n}`.padStart(7)} ${r.headMeanKl.toExponential(3).padStart(14)} ${`${r.headGreedyAgree}/${n}`.padStart(14)}`);
    }
  }
  const round = (r: HeadPrecision) => ({ ...r, meanKl: +r.meanKl.toPrecision(4), maxKl: +r.maxKl.toPrecision(4), headMeanKl: +r.headMeanKl.toPrecision(4) });
  console.log(JSON.stringify({ bench: 'lm-head-precision', backend: 'cpu', body: 'q4', models: Object.fromEntries(Object.entries(result).map(([k, rows]) => [k, rows.map(round)])) }));
}

await main();
