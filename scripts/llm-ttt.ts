/**
 * `npm run llm -- ttt`: LoRA test-time training from the command line (the engine's own trainer,
 * CPU reference or WebGPU through Dawn). Reproduces the golden LoRA files: loss and gradients at a
 * given adapter, and a few Adam steps from it.
 *
 *   npm run --silent llm -- ttt --model <dir|url> --ids 1,2,3 --mask 0,0,1
 *     [--lora-init point.safetensors [--zero-b] | --seed S] [--rank R] [--alpha A] [--targets q,k,v,o,gate,up,down]
 *     [--steps N] [--lr X] [--beta1 B1] [--beta2 B2] [--eps E] [--weight-decay W] [--max-grad-norm G|none]
 *     --backend cpu|webgpu [--f32] [--lm-head q4|q8|f32] [--precision auto|f16|f32] [--max-context N] [--max-tokens N]
 *     [--grads grads.safetensors] [--out adapter.safetensors] --json
 *
 * The last stdout line is one JSON object:
 *   {"loss_at_start", "losses" (before each step), "final_loss", "tokens_trained", "config", "init",
 *    "grads", "out", "backend", "weights", "precision", "memory", "timings"}.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { PROJECTIONS, type Projection } from '../models/config.ts';
import { InvalidInputError, NotFoundError } from '../models/errors.ts';
import type { LlamaModel } from '../models/llama-model.ts';
import { inspectLora, loadLora, saveLora, zeroB, type LoraWeights } from '../models/lora/adapter.ts';
import { resolveTttConfig, TTT_DEFAULTS, type TttConfig } from '../models/ttt/config.ts';
import { validateTrainingSequence } from '../models/ttt/validate.ts';
import { idList, optionalNumberFlag, stringFlag, stringList, type CommandSpec, type ParsedArgs } from './cli-args.ts';
import { UsageError } from './cli-errors.ts';

export const TTT_USAGE = `usage: npm run --silent llm -- ttt --model <dir|url> --ids 1,2,3 --mask 0,0,1
  [--lora-init point.safetensors [--zero-b] | --seed S] [--rank R] [--alpha A] [--targets q,k,v,o,gate,up,down]
  [--steps N] [--lr X] [--beta1 B] [--beta2 B] [--eps E] [--weight-decay W] [--max-grad-norm G|none]
  --backend cpu|webgpu [--f32] [--lm-head q4|q8|f32] [--precision auto|f16|f32] [--max-context N] [--max-tokens N]
  [--grads grads.safetensors] [--out adapter.safetensors] [--json]
  Defaults: rank/targets from --lora-init (else rank ${TTT_DEFAULTS.rank}, all seven projections), alpha from the
  file's metadata (else 2 * rank), seed ${TTT_DEFAULTS.seed},
  steps ${TTT_DEFAULTS.steps}, lr ${TTT_DEFAULTS.lr}, Adam betas ${TTT_DEFAULTS.beta1}/${TTT_DEFAULTS.beta2}, eps ${TTT_DEFAULTS.eps},
  weight decay ${TTT_DEFAULTS.weightDecay}, no gradient clipping, --max-tokens = the sequence length.`;

export const TTT_SPEC: CommandSpec = {
  switches: ['json', 'f32', 'zero-b'],
  valued: [
    'model', 'ids', 'mask', 'lora-init', 'seed', 'rank', 'alpha', 'targets', 'steps', 'lr', 'beta1', 'beta2', 'eps',
    'weight-decay', 'max-grad-norm', 'backend', 'precision', 'max-context', 'max-tokens', 'grads', 'out', 'lm-head',
  ],
};

const SHORT_TARGETS: Record<string, Projection> = {
  q: 'q_proj', k: 'k_proj', v: 'v_proj', o: 'o_proj', gate: 'gate_proj', up: 'up_proj', down: 'down_proj',
};

/**
 * "q,v,down" -> ['q_proj', 'v_proj', 'down_proj']; full names and "all" are accepted too.
 * @example parseTargets('q,k_proj') // ['q_proj', 'k_proj']
 */
export function parseTargets(text: string): Projection[] {
  const out: Projection[] = [];
  for (const name of stringList(text)) {
    if (name === 'all') { out.push(...PROJECTIONS); continue; }
    const p = SHORT_TARGETS[name] ?? (PROJECTIONS.includes(name as Projection) ? (name as Projection) : undefined);
    if (!p) throw new UsageError(`--targets: unknown projection "${name}"; use some of ${Object.keys(SHORT_TARGETS).join(', ')} (or their *_proj names, or "all")`);
    out.push(p);
  }
  if (out.length === 0) throw new UsageError('--targets is empty');
  return [...new Set(out)];
}

/** --max-grad-norm: a positive number, or "none" / 0 for no clipping (the default). */
function maxGradNorm(args: ParsedArgs): number | null {
  const v = stringFlag(args, 'max-grad-norm');
  if (v === undefined || v === 'none' || v === 'off') return null;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new UsageError(`--max-grad-norm must be a positive number or "none", got "${v}"`);
  return n === 0 ? null : n;
}

/** A mask flag: 0/1 per id (other values reach the trainer's validation, which names them). */
function maskList(args: ParsedArgs): number[] {
  const v = stringFlag(args, 'mask');
  if (v === undefined) throw new UsageError('--mask is required (0/1 per id; 1 marks a token to predict)');
  return idList(v, 'mask');
}

async function readLoraFile(path: string): Promise<Uint8Array> {
  try {
    return new Uint8Array(await readFile(path));
  } catch (e) {
    const code = (e as { code?: unknown }).code;
    if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'EISDIR') throw new NotFoundError(`--lora-init: no adapter file at ${path}.`);
    throw e;
  }
}

async function writeOutput(flag: string, path: string, bytes: Uint8Array): Promise<void> {
  try {
    await writeFile(path, bytes);
  } catch (e) {
    throw new InvalidInputError(`--${flag}: cannot write ${path}: ${(e as Error).message}`);
  }
}

/**
 * The `ttt` command. `loadModel` loads the model named by --model/--backend/--f32/--precision
 * (scripts/llm.ts passes its loader, so both commands load models the same way).
 */
export async function tttCommand(args: ParsedArgs, loadModel: (args: ParsedArgs) => Promise<LlamaModel>): Promise<unknown> {
  const t0 = performance.now();
  // Everything that needs no model is parsed first, so usage errors come before a slow load.
  const idsFlag = stringFlag(args, 'ids');
  if (idsFlag === undefined) throw new UsageError('--ids is required (comma-separated token ids)');
  const ids = idList(idsFlag, 'ids');
  const mask = maskList(args);
  // The checks that need no model (lengths, 0/1 mask, some token to predict) before a slow load;
  // vocabulary and context are checked by the trainer once the model is known.
  validateTrainingSequence(ids, mask, Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER);
  const initPath = stringFlag(args, 'lora-init');
  if (initPath !== undefined && args.flags.has('seed')) throw new UsageError('give --lora-init or --seed, not both (--seed initialises A when there is no --lora-init)');
  const initBytes = initPath !== undefined ? await readLoraFile(initPath) : null;
  const info = initBytes ? inspectLora(initBytes, initPath) : null;
  if (info && info.rank === null) throw new NotFoundError(`--lora-init: ${initPath} holds no LoRA tensors (expected PEFT names such as model.layers.0.self_attn.q_proj.weight.lora_A).`);

  const rank = optionalNumberFlag(args, 'rank') ?? info?.rank ?? TTT_DEFAULTS.rank;
  const targets = stringFlag(args, 'targets') !== undefined ? parseTargets(stringFlag(args, 'targets')!) : info?.targets.length ? info.targets : [...PROJECTIONS];
  const metaAlpha = info?.metadata.alpha !== undefined ? Number(info.metadata.alpha) : undefined;
  const alpha = optionalNumberFlag(args, 'alpha') ?? (Number.isFinite(metaAlpha) ? metaAlpha! : (rank * TTT_DEFAULTS.alpha) / TTT_DEFAULTS.rank);
  const cfg: TttConfig = resolveTttConfig({
    rank, alpha, targets,
    steps: optionalNumberFlag(args, 'steps'),
    lr: optionalNumberFlag(args, 'lr'),
    beta1: optionalNumberFlag(args, 'beta1'),
    beta2: optionalNumberFlag(args, 'beta2'),
    eps: optionalNumberFlag(args, 'eps'),
    weightDecay: optionalNumberFlag(args, 'weight-decay'),
    seed: optionalNumberFlag(args, 'seed'),
    maxTokens: optionalNumberFlag(args, 'max-tokens') ?? Math.max(2, ids.length),
  });
  cfg.maxGradNorm = maxGradNorm(args);
  const gradsPath = stringFlag(args, 'grads');
  const outPath = stringFlag(args, 'out');

  const tLoad = performance.now();
  const model = await loadModel(args);
  const loadMs = performance.now() - tLoad;
  try {
    let lora: LoraWeights | undefined;
    if (initBytes) {
      lora = loadLora(initBytes, model.config, { rank: cfg.rank, alpha: cfg.alpha, targets: cfg.targets }, { name: initPath, allowMissingB: true });
      if (args.flags.has('zero-b')) zeroB(lora);
    }
    const tAttach = performance.now();
    await model.attachAdapter({ ...cfg, lora });
    const attachMs = performance.now() - tAttach;

    let gradsMs: number | null = null;
    let gradsLoss: number | null = null;
    if (gradsPath !== undefined) {
      const tg = performance.now();
      const g = await model.lossAndGrads(ids, mask);
      gradsMs = performance.now() - tg;
      gradsLoss = g.loss;
      await writeOutput('grads', gradsPath, saveLora(g.grads, { suffix: '.grad' }));
    }

    const json = args.flags.has('json');
    const r = await model.train(ids, mask, json ? undefined : (s) => {
      process.stderr.write(`step ${s.step}/${s.steps}: loss before ${s.loss.toFixed(6)} (${s.ms.toFixed(1)} ms)\n`);
    }, {
      steps: cfg.steps, lr: cfg.lr, beta1: cfg.beta1, beta2: cfg.beta2, eps: cfg.eps, weightDecay: cfg.weightDecay,
      // null (no clipping) must override the attached config's value, so pass it explicitly.
      maxGradNorm: cfg.maxGradNorm,
    });
    if (outPath !== undefined) await writeOutput('out', outPath, saveLora(await model.adapter()));

    return {
      loss_at_start: r.lossAtStart,
      losses: r.losses,
      final_loss: r.finalLoss,
      tokens_trained: r.tokensTrained,
      config: {
        rank: cfg.rank, alpha: cfg.alpha, scale: cfg.alpha / cfg.rank, targets: cfg.targets, steps: cfg.steps, lr: cfg.lr,
        beta1: cfg.beta1, beta2: cfg.beta2, eps: cfg.eps, weight_decay: cfg.weightDecay, max_grad_norm: cfg.maxGradNorm,
        max_tokens: cfg.maxTokens,
      },
      init: initPath !== undefined
        ? { from: 'file', path: initPath, file_has_b: info!.hasB, zero_b: args.flags.has('zero-b') }
        : { from: 'seed', seed: cfg.seed },
      grads: gradsPath !== undefined ? { path: gradsPath, loss: gradsLoss } : null,
      out: outPath ?? null,
      backend: model.backend,
      weights: model.weights,
      precision: model.precision,
      memory: model.memory(),
      timings: {
        load_ms: loadMs, attach_ms: attachMs, grads_ms: gradsMs, train_ms: r.timings.totalMs, step_ms: r.timings.stepMs,
        total_ms: performance.now() - t0,
      },
    };
  } finally {
    model.dispose();
  }
}
