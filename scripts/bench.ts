/**
 * npm run bench [-- --quick] [--reps N] [--tokens N] [--no-browser] [--no-node] [--out DIR]
 *
 * Decode speed of our engine against transformers.js 4.3.1, side by side in one run, on the same
 * adapter: stories260K, prompt ids [1,403,407,261,378], exactly `tokens` (128) greedy tokens, our
 * LlamaModel on ../shared/golden/stories260K-hf/f32 and transformers.js on
 * ../shared/models/stories260K (model.onnx / model_q4.onnx), f32 and 4-bit weights.
 *   - headless Chromium: ours on WebGPU; theirs on `webgpu` and on `wasm`; a cold page (a new
 *     browser context) per run;
 *   - Node: ours on Dawn; theirs on onnxruntime-node's CPU (a reference).
 * Each configuration `reps` times (default 3; --quick: 1 repetition and no wasm runs). Reports
 * medians with min and max of load (config + weights + pipelines), time to first token and decode
 * tokens/s, cold (first generation) and warm (the same again on the loaded model), the
 * ours/theirs ratio, whether the greedy tokens of the f32 runs agree, and our GPU
 * work per decode token (dispatches, passes, submits, readback waits) and pipelines compiled.
 * Then, in Node on Dawn, the figures of the existing benches (--no-extras skips them): one
 * FineMedLM-o1-shaped layer (random 4-bit weights) prefill and decode, the 4-bit matvec's bandwidth
 * as a share of a copy kernel (bench:engine), one TTT step of that layer (bench:ttt), and retrieval
 * query latency, voy and exact (bench:retrieval).
 * Writes bench-results/<date>-<adapter>.json and .md; prints the table, then one JSON line.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { launchChromium, newPage, startServer } from '../e2e/support/index.ts';
import { runOurs, runTheirs, type DecodeRun, type DecodeSpec } from '../e2e/decode-bench.ts';
import { configureTransformers } from '../models/retrieval/transformers-env.ts';
import { nodeGpu } from '../node/gpu/node-gpu.ts';
import { NodeDirSource } from '../node/io/node-source.ts';
import { HAS_SHARED, SHARED } from '../tests/helpers/shared.ts';
import { numberFlag, parseArgs } from './cli-args.ts';
import { runEngineBench, type EngineBenchResult } from './bench/engine-bench.ts';
import { runIndexBench, type IndexBenchRow } from './bench/index-bench.ts';
import { runTttBench } from './bench/ttt-bench.ts';
import { loadVoyNode } from '../node/retrieval/voy-node.ts';
import { EXIT_OK, printResult, runCli, UsageError } from './cli-errors.ts';

const USAGE = 'usage: npm run --silent bench -- [--quick] [--reps N] [--tokens N] [--no-browser] [--no-node] [--out DIR]';
const PROMPT = [1, 403, 407, 261, 378];
const OURS_DIR = 'golden/stories260K-hf/f32';
const THEIRS_MODEL = 'stories260K';

interface Summary { median: number; min: number; max: number }
interface ConfigResult {
  where: 'chromium' | 'node';
  impl: DecodeRun['impl'];
  device: string;
  weights: 'f32' | 'q4';
  runs: DecodeRun[];
  errors: string[];
  loadMs?: Summary; ttftMs?: Summary; decodeTokensPerSecond?: Summary; warmUpMs?: Summary;
  warmTtftMs?: Summary; warmDecodeTokensPerSecond?: Summary;
}

function summary(xs: number[]): Summary | undefined {
  if (!xs.length) return undefined;
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return { median: s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2, min: s[0], max: s.at(-1)! };
}

function summarize(c: ConfigResult): ConfigResult {
  const of = (f: (r: DecodeRun) => number | undefined) => summary(c.runs.flatMap((r) => { const v = f(r); return v === undefined ? [] : [v]; }));
  return {
    ...c, loadMs: of((r) => r.loadMs), ttftMs: of((r) => r.ttftMs), decodeTokensPerSecond: of((r) => r.decodeTokensPerSecond),
    warmTtftMs: of((r) => r.warm?.ttftMs), warmDecodeTokensPerSecond: of((r) => r.warm?.decodeTokensPerSecond), warmUpMs: of((r) => r.warmUpMs),
  };
}

/** Ids agreeing from the start, of the shorter run. */
function agreement(a: number[], b: number[]): { equal: boolean; prefix: number; length: number } {
  let prefix = 0;
  while (prefix < a.length && prefix < b.length && a[prefix] === b[prefix]) prefix++;
  return { equal: a.length === b.length && prefix === a.length, prefix, length: Math.min(a.length, b.length) };
}

const fmt = (s: Summary | undefined, d = 0) => (s ? `${s.median.toFixed(d)} (${s.min.toFixed(d)}–${s.max.toFixed(d)})` : '—');

function table(results: ConfigResult[]): string {
  const rows = ['| where | impl | device | weights | load ms | TTFT ms | decode tok/s | warm TTFT ms | warm decode tok/s | dispatches / passes / submits / readbacks per token | pipelines | warm-up ms (prefill kernels, after) |', '|---|---|---|---|---|---|---|---|---|---|---|---|'];
  for (const c of results) {
    const k = c.runs[0]?.counts;
    const counts = k ? `${k.dispatchesPerToken.toFixed(0)} / ${k.passesPerToken.toFixed(0)} / ${k.submitsPerToken.toFixed(0)} / ${k.readbacksPerToken.toFixed(0)}` : '—';
    const err = c.errors.length ? ` (${c.errors.length} failed: ${c.errors[0].slice(0, 80)})` : '';
    rows.push(`| ${c.where} | ${c.impl} | ${c.device} | ${c.weights} | ${fmt(c.loadMs)} | ${fmt(c.ttftMs)} | ${fmt(c.decodeTokensPerSecond, 1)}${err} | ${fmt(c.warmTtftMs)} | ${fmt(c.warmDecodeTokensPerSecond, 1)} | ${counts} | ${k?.pipelines ?? '—'} | ${fmt(c.warmUpMs)} |`);
  }
  return rows.join('\n');
}

/** ours/theirs per (where, weights), theirs on its GPU device in the browser and CPU in Node. */
function ratios(results: ConfigResult[]): { where: string; weights: string; theirs: string; decode: number; ttft: number; load: number }[] {
  const out = [];
  for (const o of results.filter((c) => c.impl === 'ours')) {
    for (const t of results.filter((c) => c.impl === 'transformers.js' && c.where === o.where && c.weights === o.weights)) {
      if (!o.decodeTokensPerSecond || !t.decodeTokensPerSecond || !o.ttftMs || !t.ttftMs || !o.loadMs || !t.loadMs) continue;
      out.push({
        where: o.where, weights: o.weights, theirs: t.device,
        decode: o.decodeTokensPerSecond.median / t.decodeTokensPerSecond.median,
        ttft: t.ttftMs.median / o.ttftMs.median,
        load: o.loadMs.median / t.loadMs.median,
      });
    }
  }
  return out;
}

interface Extras {
  adapter: string;
  layer: EngineBenchResult['layer'];
  bandwidth: EngineBenchResult['bandwidth'];
  tttStep?: { tokens: number; stepMs: number; weights: string };
  retrieval: IndexBenchRow[];
  errors: string[];
}

/** The existing benches' headline figures, in Node on Dawn, sized to keep the whole bench within 10 minutes on 2 cores. */
async function extraFigures(quick: boolean, log: (s: string) => void): Promise<Extras> {
  const errors: string[] = [];
  const engine = await runEngineBench(nodeGpu(), { layerPrefillTokens: quick ? 32 : 64, decodeSteps: 8, log: (l) => log(`engine: ${l}`) });
  const out: Extras = { adapter: engine.adapter, layer: engine.layer, bandwidth: engine.bandwidth, retrieval: [], errors };
  try {
    const ttt = await runTttBench(nodeGpu(), { storiesTokens: [], storiesSteps: 0, layerTokens: 32, layerSteps: 1, headTokens: 0, headVocab: 0, targetTokens: 1024, skip: { stories: true, head: true }, log: (l) => log(`ttt: ${l}`) });
    const c = ttt.cases[0];
    if (c) out.tttStep = { tokens: c.tokens, stepMs: c.stepMs, weights: c.weights };
  } catch (e) {
    errors.push(`ttt: ${(e as Error).message.split('\n')[0]}`);
  }
  out.retrieval = await runIndexBench({ counts: quick ? [1000, 10000] : [1000, 30000], dims: [384], queries: 50, k: 5, voy: await loadVoyNode(), log: (l) => log(`retrieval: ${l}`) });
  return out;
}

function extrasTable(x: Extras): string {
  const rows = [`Node on Dawn (${x.adapter}):`, '', '| figure | value |', '|---|---|'];
  rows.push(`| FineMedLM-o1 layer (4-bit), prefill ${x.layer.prefillTokens} tokens | ${x.layer.prefillMs.toFixed(0)} ms |`);
  rows.push(`| FineMedLM-o1 layer (4-bit), decode | ${x.layer.decodeMsPerToken.toFixed(2)} ms / token |`);
  for (const b of x.bandwidth) rows.push(`| 4-bit matvec ${b.matrix}: ${b.matvecGBps.toFixed(1)} GB/s vs copy ${b.copyGBps.toFixed(1)} GB/s | ${(100 * b.ratio).toFixed(0)}% of a copy |`);
  if (x.tttStep) rows.push(`| TTT step, one FineMedLM-o1 layer, ${x.tttStep.tokens} tokens (${x.tttStep.weights}) | ${x.tttStep.stepMs.toFixed(0)} ms |`);
  for (const r of x.retrieval) rows.push(`| retrieval ${r.kind}, ${r.count} x ${r.dims}, top-5 query | ${r.queryMedianMs.toFixed(2)} ms median, ${r.queryP95Ms.toFixed(2)} ms p95 |`);
  for (const e of x.errors) rows.push(`| failed | ${e} |`);
  return rows.join('\n');
}

await runCli(async () => {
  const args = parseArgs(process.argv.slice(2), ['quick', 'no-browser', 'no-node', 'no-extras'], ['reps', 'tokens', 'out']);
  if (args.positional.length) throw new UsageError(`unexpected argument ${args.positional[0]}`);
  if (!HAS_SHARED) throw new UsageError(`../shared is absent (${SHARED}): the bench needs its stories260K models.`);
  const quick = args.flags.has('quick');
  const reps = numberFlag(args, 'reps', quick ? 1 : 3);
  const spec: DecodeSpec & { weights: never } = { prompt: PROMPT, tokens: numberFlag(args, 'tokens', 128) } as never;
  const results: ConfigResult[] = [];
  let adapter = 'unknown';
  // Wall clock per phase: the bench must finish within 10 minutes on a 2-core machine.
  const t0 = performance.now(), seconds: Record<string, number> = {};
  const since = () => Math.round((performance.now() - t0) / 1000);
  const phaseDone = (name: string) => { seconds[name] = since() - Object.values(seconds).reduce((a, b) => a + b, 0); };
  const log = (s: string) => console.error(`[${since()} s] ${s}`);

  if (!args.flags.has('no-browser')) {
    const server = await startServer();
    const browser = await launchChromium();
    try {
      const configs: { impl: DecodeRun['impl']; device: string; weights: 'f32' | 'q4' }[] = [];
      for (const weights of ['f32', 'q4'] as const) {
        configs.push({ impl: 'ours', device: 'webgpu', weights }, { impl: 'transformers.js', device: 'webgpu', weights });
        if (!quick) configs.push({ impl: 'transformers.js', device: 'wasm', weights });
      }
      const found = configs.map((c): ConfigResult => ({ where: 'chromium', ...c, runs: [], errors: [] }));
      for (let rep = 0; rep < reps; rep++) {
        for (const c of found) {
          // A cold page per run: a new browser context, nothing cached from the previous run.
          const page = await newPage(browser, server.url + 'e2e/bench-harness.html');
          try {
            page.setDefaultTimeout(0);
            await page.waitForFunction(() => window.decodeBench?.ready === true);
            if (adapter === 'unknown') adapter = await page.evaluate(() => window.decodeBench.adapter());
            const s = { ...spec, weights: c.weights };
            const run = c.impl === 'ours'
              ? await page.evaluate(({ url, s }) => window.decodeBench.ours(url, s), { url: `/shared/${OURS_DIR}/`, s })
              : await page.evaluate(({ s, device, model }) => window.decodeBench.theirs('/shared/models/', model, device, s), { s, device: c.device, model: THEIRS_MODEL });
            c.runs.push(run);
            log(`chromium ${c.impl} ${c.device} ${c.weights} #${rep + 1}: load ${run.loadMs.toFixed(0)} ms, TTFT ${run.ttftMs.toFixed(0)} ms, ${run.decodeTokensPerSecond.toFixed(1)} tok/s, ${run.ids.length} tokens`);
          } catch (e) {
            c.errors.push((e as Error).message.split('\n')[0]);
            log(`chromium ${c.impl} ${c.device} ${c.weights} #${rep + 1}: failed: ${c.errors.at(-1)}`);
          } finally {
            await page.context().close();
          }
        }
      }
      results.push(...found.map(summarize));
    } finally {
      await browser.close();
      await server.close();
    }
  }

  phaseDone('browser');

  if (!args.flags.has('no-node')) {
    configureTransformers({ allowRemoteModels: false, localModelPath: join(SHARED, 'models') });
    for (const weights of ['f32', 'q4'] as const) {
      for (const impl of ['ours', 'transformers.js'] as const) {
        const c: ConfigResult = { where: 'node', impl, device: impl === 'ours' ? 'dawn' : 'cpu', weights, runs: [], errors: [] };
        for (let rep = 0; rep < reps; rep++) {
          try {
            const s = { ...spec, weights };
            const run = impl === 'ours' ? await runOurs(new NodeDirSource(join(SHARED, OURS_DIR)), nodeGpu(), s) : await runTheirs(THEIRS_MODEL, 'cpu', s);
            c.runs.push({ ...run, device: c.device });
            log(`node ${impl} ${c.device} ${weights} #${rep + 1}: load ${run.loadMs.toFixed(0)} ms, TTFT ${run.ttftMs.toFixed(0)} ms, ${run.decodeTokensPerSecond.toFixed(1)} tok/s`);
          } catch (e) {
            c.errors.push((e as Error).message.split('\n')[0]);
            log(`node ${impl} ${weights} #${rep + 1}: failed: ${c.errors.at(-1)}`);
          }
        }
        results.push(summarize(c));
      }
    }
  }

  phaseDone('node');
  const extras = args.flags.has('no-extras') ? null : await extraFigures(quick, log);
  phaseDone('extras');

  // Greedy tokens of the f32 runs: ours against each of theirs (first run of each).
  const oursF32 = results.filter((c) => c.impl === 'ours' && c.weights === 'f32' && c.runs.length);
  const agree = results.filter((c) => c.impl === 'transformers.js' && c.weights === 'f32' && c.runs.length).flatMap((t) =>
    oursF32.map((o) => ({ ours: `${o.where} ${o.device}`, theirs: `${t.where} ${t.device}`, ...agreement(o.runs[0].ids, t.runs[0].ids) })));
  const r = ratios(results);
  const date = new Date().toISOString().slice(0, 10);
  const slug = adapter.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '') || 'node';
  const md = [
    `# npm run bench, ${date}`,
    '',
    `stories260K, prompt ${JSON.stringify(PROMPT)}, ${spec.tokens} greedy tokens, ${reps} repetition(s) (median (min–max)); browser adapter: ${adapter}. transformers.js 4.3.1.`,
    '',
    table(results),
    '',
    '| where | weights | theirs on | decode ours/theirs | TTFT theirs/ours | load ours/theirs |',
    '|---|---|---|---|---|---|',
    ...r.map((x) => `| ${x.where} | ${x.weights} | ${x.theirs} | ${x.decode.toFixed(2)} | ${x.ttft.toFixed(1)}x | ${x.load.toFixed(2)} |`),
    '',
    `Warm runs repeat their cold run's tokens: ${results.every((c) => c.runs.every((x) => x.warm?.sameIds !== false)) ? 'every run' : results.filter((c) => c.runs.some((x) => x.warm?.sameIds === false)).map((c) => `not ${c.where} ${c.impl} ${c.device} ${c.weights}`).join(', ')}.`,
    '',
    'Greedy tokens, f32: ' + (agree.map((a) => `ours ${a.ours} vs theirs ${a.theirs}: ${a.equal ? 'identical' : `first ${a.prefix} of ${a.length} equal`}`).join('; ') || '—'),
    ...(extras ? ['', extrasTable(extras)] : []),
    '',
    `Wall clock: ${Object.entries(seconds).map(([k, v]) => `${k} ${v} s`).join(', ')}; total ${since()} s.`,
  ].join('\n');
  const dir = resolve(String(args.flags.get('out') ?? 'bench-results'));
  mkdirSync(dir, { recursive: true });
  const base = join(dir, `${date}-${slug}`);
  const json = { date, adapter, prompt: PROMPT, tokens: spec.tokens, reps, quick, seconds: { ...seconds, total: since() }, extras, results: results.map((c) => ({ ...c, runs: c.runs.map((x) => ({ ...x, ids: x.ids.length })) })), ratios: r, agreement: agree };
  writeFileSync(`${base}.json`, JSON.stringify(json, null, 2));
  writeFileSync(`${base}.md`, md + '\n');
  await new Promise<void>((ok) => process.stdout.write(`${md}\n\nwritten: ${base}.json, ${base}.md\n`, () => ok()));
  await printResult({ ratios: r, agreement: agree, file: `${base}.json` });
  return EXIT_OK;
}, () => USAGE);
