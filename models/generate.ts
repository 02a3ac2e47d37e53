import type { GenerateOptions, GenerateResult } from './api.ts';
import { AbortError, InvalidInputError } from './errors.ts';
import { sampleToken, seededRandom, validateSampling } from './sampling.ts';
import { TextStreamDecoder, type Tokenizer } from './tokenizer.ts';

function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

/** What generation needs from a backend: the CPU reference and the WebGPU model both provide it. */
export interface ForwardBackend {
  readonly maxContext: number;
  forward(ids: number[], opts?: { allLogits?: boolean }): Promise<Float32Array> | Float32Array;
  /** Optional: forward, then only the argmax of the last logits (the GPU reads back 4 bytes, not V * 4); used by greedy decode. */
  forwardArgmax?(ids: number[]): Promise<number>;
  resetCache(): void;
}

/**
 * Prefill + KV-cache decode: runs the prompt, then one token at a time until an eos/stop id,
 * maxNewTokens, or the signal aborts (then the tokens so far are returned with stopReason
 * 'aborted' and the model stays usable: the next call starts from an empty cache).
 * @example
 *   const r = await generate(gpuModel, tokenizer, ids, [128009], { maxNewTokens: 32 });
 */
export async function generate(
  backend: ForwardBackend, tokenizer: Tokenizer | null, promptIds: number[], eosIds: number[], opts: GenerateOptions,
): Promise<GenerateResult> {
  const sampling = opts.sampling ?? { kind: 'greedy' };
  validateSampling(sampling);
  if (!Number.isInteger(opts.maxNewTokens) || opts.maxNewTokens < 0) throw new InvalidInputError(`maxNewTokens must be a non-negative integer, got ${opts.maxNewTokens}.`);
  if (promptIds.length === 0) throw new InvalidInputError('The prompt is empty.');
  if (promptIds.length > backend.maxContext) throw new InvalidInputError(`The prompt has ${promptIds.length} tokens; the context holds ${backend.maxContext}.`);
  const stop = new Set([...eosIds, ...(opts.stopIds ?? [])]);
  const rand = seededRandom(sampling.kind === 'sample' ? sampling.seed : 0);
  const stream = tokenizer ? new TextStreamDecoder(tokenizer, { skipSpecialTokens: true }) : null;
  let text = '';
  const ids: number[] = [];
  const aborted = () => opts.signal?.aborted ?? false;
  if (aborted()) throw new AbortError();

  backend.resetCache();
  const t0 = performance.now();
  let logits = await backend.forward(promptIds);
  const lastLogits = logits.slice(0, logits.length);
  const t1 = performance.now();
  let stopReason: GenerateResult['stopReason'] = 'max-tokens';
  let decodeSteps = 0;
  // Greedy decode on a backend that can: the next id is argmax'd where the logits are.
  const argmaxStep = sampling.kind === 'greedy' && backend.forwardArgmax ? backend.forwardArgmax.bind(backend) : null;
  let nextId: number | null = null;
  while (ids.length < opts.maxNewTokens) {
    if (aborted()) { stopReason = 'aborted'; break; }
    const id = nextId ?? sampleToken(logits, sampling, rand);
    if (stop.has(id)) { stopReason = 'eos'; break; }
    ids.push(id);
    const piece = stream ? stream.push(id) : '';
    text += piece;
    opts.onToken?.(id, piece);
    if (ids.length >= opts.maxNewTokens) break;
    if (promptIds.length + ids.length >= backend.maxContext) { stopReason = 'max-tokens'; break; }
    if (argmaxStep) {
      nextId = await argmaxStep([id]);
      decodeSteps++;
      continue;
    }
    const next = backend.forward([id]);
    // A synchronous (CPU) forward never yields: give the event loop a turn per token so a
    // worker can receive "cancel" and the page can paint.
    logits = next instanceof Float32Array ? (await yieldToEventLoop(), next) : await next;
    decodeSteps++;
  }
  if (stream) text += stream.flush();
  const t2 = performance.now();
  const prefillMs = t1 - t0, decodeMs = t2 - t1;
  return {
    ids,
    text,
    lastLogits,
    stopReason,
    timings: {
      prefillTokens: promptIds.length,
      prefillMs,
      decodeTokens: decodeSteps,
      decodeMs,
      prefillTokensPerSecond: promptIds.length / (prefillMs / 1000),
      decodeTokensPerSecond: decodeSteps > 0 ? decodeSteps / (decodeMs / 1000) : 0,
    },
  };
}
