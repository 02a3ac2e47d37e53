/**
 * npm run smoke:8b [-- --layers N] [--vocab V] [--context N] [--f32-activations] [--json]
 *
 * FineMedLM-o1's full shape (32 layers, 4096 hidden, 14336 FFN, 32/8 heads, vocab 128,256) with
 * seeded synthetic weights, end to end on Dawn with 4-bit weights: the memory plan
 * (planMemory + describePlan) against what the allocator accounts, per category; the load
 * (weights generated as they are read: syntheticSource, never held whole); a 16-token prefill and
 * 2 decode tokens; one TTT step on 64 tokens (attachAdapter / trainingSequence / train); reset,
 * and the logits of the fixed 16-token prompt after the reset bit-identical to its prefill before
 * any adapter was attached (and the adapted model's logits different from them). Times each phase. Progress on stderr; a readable summary, then one JSON line, the last on stdout (with
 * --json only the JSON line). Exit 1 when a check fails or on any GPU error. Not part of CI.
 *   --layers N          decoder layers (default 32)
 *   --vocab V           vocabulary (default 128256; the Llama 3.1 tokenizer from ../shared is used
 *                       when V is 128256 and it is there, else seeded token ids)
 *   --context N         KV-cache tokens (default 4096, what the app loads)
 *   --f32-activations   f32 activations and KV cache (default f16 where the adapter has shader-f16)
 */
import { existsSync, readFileSync } from 'node:fs';
import { freemem, loadavg } from 'node:os';
import { join } from 'node:path';
import { InvalidInputError } from '../models/errors.ts';
import type { GpuLlama } from '../models/gpu/gpu-llama.ts';
import { LlamaModel } from '../models/llama-model.ts';
import { describePlan, planMemory, type MemoryPlan } from '../models/memory-plan.ts';
import { promptFormat } from '../models/prompt-format.ts';
import { resolveTttConfig, TTT_DEFAULTS } from '../models/ttt/config.ts';
import type { Trace } from '../models/ttt/training-text.ts';
import { nodeGpu } from '../node/gpu/node-gpu.ts';
import { SHARED } from '../tests/helpers/shared.ts';
import { finemedLayerConfig } from './bench/synthetic-checkpoint.ts';
import { formatMemoryCheck, memoryCheck, type MemoryCheck } from './bench/smoke-memory.ts';
import { syntheticSource } from './bench/synthetic-source.ts';
import { numberFlag, parseArgs } from './cli-args.ts';
import { cliGpuErrors, EXIT_FAILED, EXIT_OK, printResult, runCli, UsageError } from './cli-errors.ts';

const USAGE = 'usage: npm run --silent smoke:8b -- [--layers N] [--vocab V] [--context N] [--f32-activations] [--json]';
const FULL_VOCAB = 128256;
const PREFILL_TOKENS = 16;
const DECODE_TOKENS = 2;
const TTT_TOKENS = 64;
const TOKENIZER_DIR = join(SHARED, 'models/llama-3.1-tokenizer');
const TRACES = join(SHARED, 'data/traces.jsonl');
const PROMPT = 'A 54-year-old man has sudden severe pain and swelling of the big toe after a night of drinking. What is the most likely diagnosis, and how is it confirmed?';

const log = (line: string) => process.stderr.write(line + '\n');
const since = (t: number) => performance.now() - t;
const s = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

function positiveInt(v: number, name: string): number {
  if (!Number.isInteger(v) || v < 1) throw new UsageError(`--${name} must be a positive integer, got ${v}`);
  return v;
}

/** Seeded ids in [0, V) (no tokenizer): a fixed prompt the reset check can repeat. */
function seededIds(n: number, vocab: number, seed: number): number[] {
  let x = seed >>> 0;
  return Array.from({ length: n }, () => {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    return x % vocab;
  });
}

/** Bit patterns equal, element by element (a NaN equals the same NaN); lengths checked first. */
function bitIdentical(a: Float32Array, b: Float32Array): { identical: boolean; differing: number; maxAbsDiff: number } {
  if (a.length !== b.length || a.length === 0) return { identical: false, differing: Math.max(a.length, b.length), maxAbsDiff: Infinity };
  const ua = new Uint32Array(a.buffer, a.byteOffset, a.length), ub = new Uint32Array(b.buffer, b.byteOffset, b.length);
  let differing = 0, maxAbsDiff = 0;
  for (let i = 0; i < ua.length; i++) {
    if (ua[i] === ub[i]) continue;
    differing++;
    maxAbsDiff = Math.max(maxAbsDiff, Math.abs(a[i] - b[i]));
  }
  return { identical: differing === 0, differing, maxAbsDiff };
}

/** Traces looked at for the training sequence (tokenizing them all would take a while). */
const TRACES_SEEN = 64;

/**
 * The training sequence: with the tokenizer, the trace of ../shared (of the first 64) that leaves
 * the most tokens to train on once cut to 64; else seeded ids with the loss on the second half.
 */
function trainingData(model: LlamaModel, vocab: number): { ids: number[]; lossMask: number[]; from: string } {
  if (model.tokenizer && existsSync(TRACES)) {
    const traces = readFileSync(TRACES, 'utf8').split('\n').filter((l) => l.trim()).slice(0, TRACES_SEEN).map((l) => JSON.parse(l) as Trace & { id?: string });
    let best: { ids: number[]; lossMask: number[]; tokensTrained: number; id: string } | null = null;
    for (const t of traces) {
      try {
        // 'plain' (no chat template): Llama 3.1's template alone takes ~25 of the 64 tokens.
        const seq = model.trainingSequence(t, { format: promptFormat('plain') });
        if (seq.ids.length === TTT_TOKENS && seq.tokensTrained > (best?.tokensTrained ?? 0)) best = { ...seq, id: t.id ?? '?' };
      } catch (e) {
        if (!(e instanceof InvalidInputError)) throw e; // a question too long for 64 tokens: try the next
      }
    }
    if (best) return { ids: best.ids, lossMask: best.lossMask, from: `trace ${best.id} (plain prompt)` };
  }
  const ids = seededIds(TTT_TOKENS, vocab, 7);
  return { ids, lossMask: ids.map((_, i) => (i >= TTT_TOKENS / 2 ? 1 : 0)), from: 'seeded ids' };
}

function memoryOf(plan: MemoryPlan, check: MemoryCheck) {
  return { describe: describePlan(plan), byCategory: check.byCategory, total: check.total, peak: check.peak, equal: check.equal, buffers: plan.buffers.length };
}

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2), ['json', 'f32-activations'], ['layers', 'vocab', 'context']);
  if (args.command !== undefined) throw new UsageError(`unexpected argument "${args.command}"`);
  const layers = positiveInt(numberFlag(args, 'layers', 32), 'layers');
  const vocab = positiveInt(numberFlag(args, 'vocab', FULL_VOCAB), 'vocab');
  const maxContext = positiveInt(numberFlag(args, 'context', 4096), 'context');
  if (maxContext < TTT_TOKENS) throw new UsageError(`--context must be at least ${TTT_TOKENS} (the TTT length), got ${maxContext}`);
  const json = args.flags.has('json');
  const config = finemedLayerConfig(layers, vocab);
  const useTokenizer = vocab === FULL_VOCAB && existsSync(join(TOKENIZER_DIR, 'tokenizer.json'));
  const t0 = performance.now();
  const phases: Record<string, number> = {};
  const rssAt: Record<string, number> = {};
  const mark = (name: string, t: number) => {
    phases[name] = since(t);
    rssAt[name] = process.memoryUsage().rss;
    log(`  ${name}: ${s(phases[name])} (host RSS ${(rssAt[name] / 1e9).toFixed(2)} GB)`);
  };
  log(`smoke:8b: FineMedLM-o1 shape, ${layers} layers, vocab ${vocab}, context ${maxContext}, q4 weights, load average ${loadavg()[0].toFixed(1)}`);

  // A preview before the long load (f16 assumed unless asked for f32; the check below uses the
  // engine's own precision, prefill chunk and limits). lavapipe keeps GPU buffers in host memory.
  const preview = planMemory(config, { weights: 'q4', precision: args.flags.has('f32-activations') ? 'f32' : 'f16', maxContext, ttt: { rank: TTT_DEFAULTS.rank, targets: TTT_DEFAULTS.targets, maxTokens: TTT_TOKENS } });
  log(`  plan: ${describePlan(preview)}; host memory free ${(freemem() / 1e9).toFixed(1)} GB`);
  if (preview.peak > freemem()) log(`  warning: the plan's peak (${(preview.peak / 1e9).toFixed(1)} GB) exceeds free host memory; a software adapter (lavapipe) keeps GPU buffers in host memory`);

  let t = performance.now();
  const model = await LlamaModel.load(syntheticSource(config, { tokenizerDir: useTokenizer ? TOKENIZER_DIR : undefined }), {
    backend: 'webgpu', gpu: cliGpuErrors.watch(nodeGpu()), weights: 'q4', precision: args.flags.has('f32-activations') ? 'f32' : 'auto', maxContext,
    onProgress: (() => {
      let next = 0;
      return (p) => {
        if (p.phase !== 'weights' || p.loadedBytes < next) return;
        next += p.totalBytes / 20;
        log(`  load ${((100 * p.loadedBytes) / p.totalBytes).toFixed(0)}% (${p.tensor}, ${s(since(t))})`);
      };
    })(),
  });
  mark('load', t);
  try {
    const engine = model.engine as GpuLlama;
    const limits = engine.ctx.limits;
    const planOpts = { weights: 'q4' as const, precision: engine.precision, maxContext: engine.maxContext, maxBatch: engine.maxBatch, limits };
    const loadPlan = planMemory(config, planOpts);
    const afterLoad = memoryCheck(loadPlan, engine.alloc);
    log(formatMemoryCheck(`memory after load: ${describePlan(loadPlan)}`, afterLoad));

    const prompt = model.tokenizer ? model.encodePrompt(PROMPT).slice(0, PREFILL_TOKENS) : seededIds(PREFILL_TOKENS, vocab, 3);
    if (prompt.length !== PREFILL_TOKENS) throw new InvalidInputError(`the prompt has ${prompt.length} tokens, expected ${PREFILL_TOKENS}`);
    t = performance.now();
    const gen = await model.generate(prompt, { maxNewTokens: DECODE_TOKENS + 1, stopIds: [] });
    mark('generate', t);
    log(`  prefill ${PREFILL_TOKENS} tokens ${s(gen.timings.prefillMs)}, ${gen.timings.decodeTokens} decode tokens ${s(gen.timings.decodeMs)}, ids ${gen.ids.join(',')} (${gen.stopReason})`);
    const afterGenerate = memoryCheck(loadPlan, engine.alloc);

    t = performance.now();
    const ttt = resolveTttConfig({ steps: 1, maxTokens: TTT_TOKENS });
    await model.attachAdapter(ttt);
    mark('attachAdapter', t);
    const tttPlan = planMemory(config, { ...planOpts, ttt: { rank: ttt.rank, alpha: ttt.alpha, targets: ttt.targets, maxTokens: ttt.maxTokens } });
    const afterAdapter = memoryCheck(tttPlan, engine.alloc);
    log(formatMemoryCheck(`memory with the adapter: ${describePlan(tttPlan)}`, afterAdapter));

    // The reference: the prompt's logits before any training (the prefill above, no adapter yet).
    const before = gen.lastLogits;
    const data = trainingData(model, vocab);
    t = performance.now();
    const trained = await model.train(data.ids, data.lossMask);
    mark('train', t);
    log(`  TTT: ${data.ids.length} tokens from ${data.from}, ${trained.tokensTrained} trained, loss ${trained.lossAtStart.toFixed(4)} -> ${trained.finalLoss.toFixed(4)}`);
    t = performance.now();
    const adapted = await model.logits(prompt);
    mark('logitsAfterTraining', t);
    t = performance.now();
    model.resetAdapter();
    const afterReset = await model.logits(prompt);
    mark('resetAndLogits', t);

    const reset = bitIdentical(before, afterReset);
    const trainingMoved = bitIdentical(before, adapted);
    const finite = [before, adapted, afterReset].every((l) => l.every(Number.isFinite));
    const memoryEqual = afterLoad.equal && afterGenerate.equal && afterAdapter.equal;
    const ok = reset.identical && !trainingMoved.identical && finite && memoryEqual && gen.ids.length === DECODE_TOKENS + 1;
    const usage = process.resourceUsage();
    const result = {
      smoke: '8b', ok, date: new Date().toISOString(), loadAverage: loadavg()[0],
      model: { layers, vocab, hiddenSize: config.hiddenSize, intermediateSize: config.intermediateSize, heads: config.numHeads, kvHeads: config.numKvHeads, weights: 'q4', precision: engine.precision, maxContext: engine.maxContext, maxBatch: engine.maxBatch, tokenizer: useTokenizer },
      device: { maxStorageBufferBindingSize: limits.maxStorageBufferBindingSize, maxBufferSize: limits.maxBufferSize },
      phasesMs: phases,
      totalMs: since(t0),
      memory: { afterLoad: memoryOf(loadPlan, afterLoad), afterGenerate: { equal: afterGenerate.equal, total: afterGenerate.total }, withAdapter: memoryOf(tttPlan, afterAdapter) },
      host: { maxRssBytes: usage.maxRSS * 1024, rssAtPhase: rssAt },
      generate: { promptTokens: prompt.length, ids: gen.ids, stopReason: gen.stopReason, timings: gen.timings },
      ttt: { tokens: data.ids.length, from: data.from, tokensTrained: trained.tokensTrained, lossAtStart: trained.lossAtStart, finalLoss: trained.finalLoss, stepMs: trained.timings.stepMs, rank: ttt.rank, targets: ttt.targets.length, lr: ttt.lr },
      logits: {
        length: before.length, finite,
        resetBitIdentical: reset.identical, resetDiffering: reset.differing, resetMaxAbsDiff: reset.maxAbsDiff,
        trainingChangedLogits: !trainingMoved.identical, trainingMaxAbsDiff: trainingMoved.maxAbsDiff, trainingDiffering: trainingMoved.differing,
      },
    };
    if (!json) {
      process.stdout.write([
        `smoke:8b ${ok ? 'OK' : 'FAILED'}: ${layers} layers, vocab ${vocab}, ${engine.precision} activations, context ${engine.maxContext}, total ${s(result.totalMs)}`,
        `phases: ${Object.entries(phases).map(([k, v]) => `${k} ${s(v)}`).join(', ')}`,
        `prefill ${PREFILL_TOKENS} tokens ${s(gen.timings.prefillMs)}; ${gen.timings.decodeTokens} decode tokens ${s(gen.timings.decodeMs)}`,
        formatMemoryCheck(`memory with the adapter (plan: ${describePlan(tttPlan)})`, afterAdapter),
        `TTT step on ${data.ids.length} tokens: loss ${trained.lossAtStart.toFixed(4)} -> ${trained.finalLoss.toFixed(4)}; logits after reset bit-identical: ${reset.identical}; training changed them: ${!trainingMoved.identical}`,
        `host max RSS ${(result.host.maxRssBytes / 1e9).toFixed(2)} GB`,
        '',
      ].join('\n'));
    }
    await printResult(result);
    return ok ? EXIT_OK : EXIT_FAILED;
  } finally {
    model.dispose();
  }
}

void runCli(main, () => USAGE);
