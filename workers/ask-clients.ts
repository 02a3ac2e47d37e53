/**
 * The TTT pipeline's two interfaces (models/ask/types.ts) over the worker clients, so the app runs
 * the same pipeline as the CLI with the model and the index in their workers. An AbortSignal
 * becomes a cancel request to the worker that is doing the work.
 */
import type { AskModel, AskRetriever, RetrieverKind } from '../models/ask/types.ts';
import { AbortError } from '../models/errors.ts';
import type { LlmClient } from './client.ts';
import type { ModelInfo } from './protocol.ts';
import type { RetrievalClient } from './retrieval-client.ts';

/** Runs `fn`, calling `cancel` if `signal` aborts meanwhile; an already aborted signal never starts it. */
async function cancellable<R>(signal: AbortSignal | undefined, cancel: () => void, fn: () => Promise<R>): Promise<R> {
  if (signal?.aborted) throw new AbortError();
  signal?.addEventListener('abort', cancel, { once: true });
  try {
    return await fn();
  } finally {
    signal?.removeEventListener('abort', cancel);
  }
}

/**
 * @example
 *   const info = await llm.load(source, { backend: 'webgpu' });
 *   const record = await askQuestion(question, settings, { model: askModelOfClient(llm, info), retriever });
 */
export function askModelOfClient(client: LlmClient, info: ModelInfo): AskModel {
  return {
    description: { source: info.source, backend: info.backend, weights: info.weights, precision: info.precision },
    preparePrompt: (question, request, signal) => cancellable(signal, () => {}, () => client.preparePrompt(question, request)),
    ensureAdapter: async (config, signal) => {
      await cancellable(signal, () => {}, () => client.ensureAdapter(config));
    },
    train: (trace, format, onStep, signal) => cancellable(signal, () => client.cancel(), async () => {
      const { question, reasoning, answer } = trace;
      const r = await client.ttt({ trace: { question, reasoning, answer }, format }, onStep);
      return {
        losses: r.losses, finalLoss: r.finalLoss, stepMs: r.timings.stepMs, tokensTrained: r.tokensTrained,
        sequenceTokens: r.sequence.tokens, truncated: r.sequence.truncated,
      };
    }),
    generate: (ids, options, onToken, signal) => cancellable(signal, () => client.cancel(), async () => {
      let tokens = 0;
      const r = await client.generate({ ids, options }, ({ text }) => onToken(text, ++tokens));
      return { ids: r.ids, text: r.text, stopReason: r.stopReason, timings: r.timings };
    }),
    resetAdapter: () => client.resetAdapter(),
  };
}

/** @example const retriever = askRetrieverOfClient(retrievalClient); */
export function askRetrieverOfClient(client: RetrievalClient): AskRetriever {
  return {
    retrieve: async (question, k, signal) => {
      if (signal?.aborted) throw new AbortError();
      const call = client.retrieve(question, k);
      const r = await cancellable(signal, () => call.cancel(), () => call);
      return { results: r.results, retriever: (r as { retriever?: RetrieverKind }).retriever ?? 'embedding', ms: r.timings.totalMs };
    },
  };
}
