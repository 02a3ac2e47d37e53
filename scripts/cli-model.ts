/**
 * Loading the language model from a CLI's flags (shared by `llm` and `eval`): `--model <dir|url|repo>`
 * (`--hub URL` where the command has it), `--backend cpu|webgpu`, `--f32` (else 4-bit),
 * `--lm-head q4|q8|f32` (default q8 with 4-bit weights: models/weights-plan.ts resolveLmHead),
 * `--precision auto|f16|f32`, `--max-context N` and the weight-cache flags of ./cli-cache.ts.
 */
import { existsSync } from 'node:fs';
import type { Backend, LmHeadFormat, Precision } from '../models/api.ts';
import { nodeGpu } from '../node/gpu/node-gpu.ts';
import { NodeDirSource } from '../node/io/node-source.ts';
import type { ModelSource } from '../models/io/source.ts';
import { UrlModelSource } from '../models/io/url-source.ts';
import { LlamaModel } from '../models/llama-model.ts';
import { hubBase } from '../models/retrieval/hub.ts';
import { cacheFromArgs } from './cli-cache.ts';
import { numberFlag, stringFlag, type ParsedArgs } from './cli-args.ts';
import { cliGpuErrors, UsageError } from './cli-errors.ts';

/** The model flags every command that loads a model accepts (the cache flags come from withCacheFlags). */
export const MODEL_FLAGS = { switches: ['f32'], valued: ['model', 'backend', 'precision', 'max-context', 'lm-head'] } as const;

/**
 * A folder; an `https://` URL in Hugging Face `resolve/<revision>/` layout; or a hub repo `org/name`
 * that is not a folder here, read from `<hub>/org/name/resolve/main/` (hub: `--hub`, else
 * FINEMED_HUB, else huggingface.co).
 * @example modelSource('hongzhouyu/FineMedLM-o1'); // UrlModelSource of https://huggingface.co/hongzhouyu/FineMedLM-o1/resolve/main/
 */
export function modelSource(model: string, hub: string | undefined = process.env.FINEMED_HUB): ModelSource {
  if (/^https?:\/\//.test(model)) return new UrlModelSource(model.endsWith('/') ? model : model + '/');
  if (!existsSync(model) && /^[A-Za-z0-9][\w.-]*\/[\w.-]+$/.test(model)) return new UrlModelSource(`${hubBase(hub)}${model}/resolve/main/`);
  return new NodeDirSource(model);
}

/**
 * @example const model = await loadModelFromArgs(parseArgs(['--model', dir, '--backend', 'cpu', '--f32'], ['f32'], ['model', 'backend']));
 */
export async function loadModelFromArgs(args: ParsedArgs): Promise<LlamaModel> {
  const model = stringFlag(args, 'model');
  if (!model) throw new UsageError('--model is required');
  const backend = (stringFlag(args, 'backend') ?? 'webgpu') as Backend;
  if (backend !== 'cpu' && backend !== 'webgpu') throw new UsageError(`--backend must be cpu or webgpu, got ${backend}`);
  const precision = (stringFlag(args, 'precision') ?? 'auto') as Precision;
  const lmHead = stringFlag(args, 'lm-head') as LmHeadFormat | undefined;
  if (lmHead !== undefined && lmHead !== 'q4' && lmHead !== 'q8' && lmHead !== 'f32') throw new UsageError(`--lm-head must be q4, q8 or f32, got ${lmHead}`);
  return LlamaModel.load(modelSource(model, stringFlag(args, 'hub') ?? process.env.FINEMED_HUB), {
    backend,
    weights: args.flags.has('f32') ? 'f32' : 'q4',
    lmHead,
    precision,
    maxContext: args.flags.has('max-context') ? numberFlag(args, 'max-context') : undefined,
    gpu: backend === 'webgpu' ? cliGpuErrors.watch(nodeGpu()) : undefined, // Dawn's error text to stderr
    cache: cacheFromArgs(args),
  });
}
