/**
 * The pipeline's two interfaces over in-process objects: a LlamaModel and a Retriever (or the
 * lexical index) in the same thread. Used by the Node CLI, the evaluation harness and tests; the
 * app uses the worker-client twins in workers/ask-clients.ts.
 */
import type { LlamaModel } from '../llama-model.ts';
import type { RetrieveResult } from '../retrieval/retriever.ts';
import type { AskModel, AskRetriever, ModelDescription, RetrieverKind } from './types.ts';

/**
 * @example
 *   const model = askModelOf(await LlamaModel.load(source, { backend: 'webgpu', gpu }), 'test-org/stories260K');
 */
export function askModelOf(m: LlamaModel, source: string): AskModel {
  const description: ModelDescription = { source, backend: m.backend, weights: m.weights, precision: m.precision };
  return {
    description,
    preparePrompt: async (question, request) => m.answerPrompt(question, request),
    ensureAdapter: async (config) => {
      await m.ensureAdapter(config);
    },
    train: async (trace, format, onStep, signal) => {
      const seq = m.trainingSequence(trace, { format });
      const r = await m.train(seq.ids, seq.lossMask, onStep, { signal });
      return {
        losses: r.losses, finalLoss: r.finalLoss, stepMs: r.timings.stepMs, tokensTrained: r.tokensTrained,
        sequenceTokens: seq.ids.length, truncated: seq.truncated,
      };
    },
    generate: async (ids, options, onToken, signal) => {
      let tokens = 0;
      const r = await m.generate(ids, { ...options, signal, onToken: (_id, text) => onToken(text, ++tokens) });
      return { ids: r.ids, text: r.text, stopReason: r.stopReason, timings: r.timings };
    },
    resetAdapter: async () => m.resetAdapter(),
  };
}

/** Anything with the Retriever's retrieve(): the embedding Retriever or the lexical index. */
export interface InProcessRetriever {
  retrieve(question: string, k: number, signal?: AbortSignal): Promise<RetrieveResult & { retriever?: RetrieverKind }>;
}

/** @example const retriever = askRetrieverOf(await Retriever.create(await loadIndex(store), embedder, { index: 'exact' })); */
export function askRetrieverOf(r: InProcessRetriever): AskRetriever {
  return {
    retrieve: async (question, k, signal) => {
      const out = await r.retrieve(question, k, signal);
      return { results: out.results, retriever: out.retriever ?? 'embedding', ms: out.timings.totalMs };
    },
  };
}
