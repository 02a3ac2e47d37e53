/**
 * The TTT pipeline: stage order and events, the restore guarantee (after success, error and
 * stop in every stage), compare mode, and a real run on the stories260K CPU model.
 */
import { describe, expect, it } from 'vitest';
import { askModelOf, askRetrieverOf } from '../../../models/ask/in-process.ts';
import { askCompare, askQuestion } from '../../../models/ask/pipeline.ts';
import type { AskEvent, AskModel, AskRetriever, GenerateOutcome } from '../../../models/ask/types.ts';
import { AbortError, EngineError, InvalidInputError } from '../../../models/errors.ts';
import { NodeDirSource } from '../../../node/io/node-source.ts';
import { LlamaModel } from '../../../models/llama-model.ts';
import { promptFormat } from '../../../models/prompt-format.ts';
import type { CorpusRecord } from '../../../models/retrieval/record.ts';
import { HAS_SHARED, sharedPath, warnIfNoShared } from '../../helpers/shared.ts';

warnIfNoShared('the TTT pipeline on the stories260K CPU model');

const RECORD: CorpusRecord = {
  id: 'r1', question: 'Why do the toes hurt in gout?', reasoning: 'Urate crystals form in cool joints.', answer: 'Urate crystals.',
  source: 'test', license: 'CC0', department: null,
};
const OTHER: CorpusRecord = { ...RECORD, id: 'r2', question: 'What is anaemia?', answer: 'Low haemoglobin.' };

/** A scripted model: records every call; `failAt` makes one stage throw; `abortAt` aborts the signal there. */
function fakeModel(opts: { failAt?: 'train' | 'generate'; controller?: AbortController; abortAt?: 'train' | 'generate'; text?: (trained: boolean) => string } = {}) {
  const calls: string[] = [];
  let trained = false;
  const model: AskModel = {
    description: { source: 'fake', backend: 'cpu', weights: 'f32', precision: 'f32' },
    preparePrompt: async (question, req) => {
      calls.push(`prompt:${req.system}`);
      return { ids: [1, 2, 3], format: promptFormat('card'), requested: req.system ?? 'o1', fallback: 'shorter', contextTokens: 512, answerTokens: Math.min(req.maxNewTokens, 509) };
    },
    ensureAdapter: async (c) => void calls.push(`adapter:${c.rank}`),
    train: async (trace, format, onStep, signal) => {
      calls.push(`train:${trace.id}:${format.style}`);
      if (opts.abortAt === 'train') opts.controller!.abort();
      if (signal?.aborted) throw new AbortError();
      if (opts.failAt === 'train') throw new EngineError('device-lost', 'lost');
      trained = true;
      onStep({ step: 1, steps: 2, loss: 2.5, ms: 3 });
      onStep({ step: 2, steps: 2, loss: 2.0, ms: 3 });
      return { losses: [2.5, 2.0], finalLoss: 1.8, stepMs: [3, 3], tokensTrained: 10, sequenceTokens: 20, truncated: false };
    },
    generate: async (ids, o, onToken, signal): Promise<GenerateOutcome> => {
      calls.push(`generate:${o.maxNewTokens}:${o.sampling.kind}`);
      if (opts.failAt === 'generate') throw new EngineError('gpu-oom', 'oom');
      const text = opts.text?.(trained) ?? '**Thought**\nthinking\n**Summarization**\nanswer';
      onToken(text.slice(0, 5), 1);
      if (opts.abortAt === 'generate') opts.controller!.abort();
      if (signal?.aborted) return { ids: [7], text: text.slice(0, 5), stopReason: 'aborted', timings: timings() };
      onToken(text.slice(5), 2); // token events carry the new text only
      return { ids: [7, 8], text, stopReason: 'eos', timings: timings() };
    },
    resetAdapter: async () => {
      trained = false;
      calls.push('reset');
    },
  };
  return { model, calls };
}

function timings() {
  return { prefillTokens: 3, prefillMs: 1, decodeTokens: 1, decodeMs: 1, prefillTokensPerSecond: 3000, decodeTokensPerSecond: 1000 };
}

const retriever: AskRetriever = {
  retrieve: async (q, k) => ({ results: [RECORD, OTHER].slice(0, k).map((record, rank) => ({ record, score: 1 - rank / 10, rank })), retriever: 'lexical', ms: 1 }),
};

describe('askQuestion (scripted model)', () => {
  it('runs prepare -> retrieve -> train -> answer -> restore, with events in that order and one record', async () => {
    const { model, calls } = fakeModel();
    const events: AskEvent[] = [];
    const r = await askQuestion('Why gout?', { ttt: true, steps: 2, k: 2, rank: 4 }, { model, retriever }, { onEvent: (e) => events.push(e), id: 'fixed' });
    expect(calls).toEqual(['prompt:o1', 'adapter:4', 'train:r1:card', 'generate:509:greedy', 'reset']);
    const kinds = events.map((e) => (e.type === 'stage' ? `stage:${e.stage}` : e.type));
    expect(kinds).toEqual(['stage:preparing', 'prompt', 'stage:retrieving', 'retrieved', 'stage:training', 'ttt-step', 'ttt-step',
      'stage:answering', 'token', 'token', 'stage:restoring', 'restored', 'done']);
    expect(r).toMatchObject({
      id: 'fixed', mode: 'ttt', status: 'done', restored: true, question: 'Why gout?',
      prompt: { style: 'card', requested: 'o1', fallback: 'shorter', tokens: 3 },
      retrieval: { retriever: 'lexical', k: 2, top: RECORD, results: [{ id: 'r1', score: 1, rank: 0 }, { id: 'r2', score: 0.9, rank: 1 }] },
      ttt: { losses: [2.5, 2.0], finalLoss: 1.8 },
      answer: { reasoning: 'thinking', summary: 'answer', structured: true, tokens: 2, stopReason: 'eos' },
    });
    expect(r.timings.ttftMs).not.toBeNull();
    expect(r.timings.thoughtMs).toBeGreaterThanOrEqual(r.timings.ttftMs!);
    expect(r.timings.restoreMs).not.toBeNull();
    expect(r.settings.steps).toBe(2);
  });

  it('without TTT: no retrieval, no adapter, no reset', async () => {
    const { model, calls } = fakeModel();
    const r = await askQuestion('Why gout?', { ttt: false, temperature: 0.7, seed: 3 }, { model, retriever: null });
    expect(calls).toEqual(['prompt:o1', 'generate:509:sample']);
    expect(r).toMatchObject({ mode: 'base', retrieval: null, ttt: null, restored: false, timings: { retrieveMs: null, trainMs: null, restoreMs: null } });
  });

  it('restores the adapter when training or generation fails, and rethrows the typed error', async () => {
    for (const failAt of ['train', 'generate'] as const) {
      const { model, calls } = fakeModel({ failAt });
      const err = await askQuestion('Q?', { ttt: true }, { model, retriever }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(EngineError);
      expect((err as EngineError).code).toBe(failAt === 'train' ? 'device-lost' : 'gpu-oom');
      expect(calls.at(-1)).toBe('reset');
    }
  });

  it('a stop while training throws AbortError after the restore; a stop while answering keeps the text', async () => {
    const c1 = new AbortController();
    const a = fakeModel({ controller: c1, abortAt: 'train' });
    await expect(askQuestion('Q?', { ttt: true }, { model: a.model, retriever }, { signal: c1.signal })).rejects.toBeInstanceOf(AbortError);
    expect(a.calls.at(-1)).toBe('reset');

    const c2 = new AbortController();
    const b = fakeModel({ controller: c2, abortAt: 'generate' });
    const r = await askQuestion('Q?', { ttt: true }, { model: b.model, retriever }, { signal: c2.signal });
    expect(r).toMatchObject({ status: 'stopped', restored: true, answer: { stopReason: 'aborted', text: '**Tho' } });
    expect(b.calls.at(-1)).toBe('reset');
  });

  it('a stop during retrieval never touches the adapter', async () => {
    const c = new AbortController();
    const { model, calls } = fakeModel();
    const slow: AskRetriever = { retrieve: async (_q, _k, signal) => { c.abort(); if (signal?.aborted) throw new AbortError(); throw new Error('unreachable'); } };
    await expect(askQuestion('Q?', { ttt: true }, { model, retriever: slow }, { signal: c.signal })).rejects.toBeInstanceOf(AbortError);
    expect(calls).toEqual(['prompt:o1']);
  });

  it('refuses TTT without a retriever, an empty question, an empty corpus and bad settings', async () => {
    const { model } = fakeModel();
    await expect(askQuestion('Q?', { ttt: true }, { model })).rejects.toThrow(/needs a corpus/);
    await expect(askQuestion('  ', { ttt: false }, { model })).rejects.toThrow(/question is empty/);
    const empty: AskRetriever = { retrieve: async () => ({ results: [], retriever: 'embedding', ms: 0 }) };
    await expect(askQuestion('Q?', { ttt: true }, { model, retriever: empty })).rejects.toThrow(/corpus is empty/);
    await expect(askQuestion('Q?', { ttt: false, topP: 2 }, { model })).rejects.toBeInstanceOf(InvalidInputError);
    await expect(askQuestion('Q?', { ttt: false, targets: [] }, { model })).rejects.toThrow(/targets/);
  });
});

describe('askCompare (scripted model)', () => {
  it('answers without TTT first, then with, same settings, and says whether they differ', async () => {
    const { model, calls } = fakeModel({ text: (trained) => (trained ? 'adapted' : 'base') });
    const runs: string[] = [];
    const r = await askCompare('Q?', { steps: 2, seed: 9, temperature: 0.5 }, { model, retriever }, { onEvent: (run, e) => e.type === 'done' && runs.push(run) });
    expect(runs).toEqual(['without', 'with']);
    expect(r.without).toMatchObject({ mode: 'base', answer: { text: 'base' } });
    expect(r.with).toMatchObject({ mode: 'ttt', answer: { text: 'adapted' }, restored: true });
    expect(r.without.settings).toEqual({ ...r.with.settings, ttt: false });
    expect(r.differ).toBe(true);
    expect(r.without.timings.thoughtMs).toBeNull(); // no Thought heading: nothing to time
    expect(calls.filter((c) => c.startsWith('generate'))).toEqual(['generate:509:sample', 'generate:509:sample']);
  });
});

describe.skipIf(!HAS_SHARED)('askQuestion on stories260K (CPU, f32)', () => {
  it('trains on the retrieved trace, answers, restores: the next base answer equals a fresh one', async () => {
    const llm = await LlamaModel.load(new NodeDirSource(sharedPath('golden', 'stories260K-hf', 'f32')), { backend: 'cpu', weights: 'f32' });
    const model = askModelOf(llm, 'stories260K');
    const records = [
      { ...RECORD, question: 'Lily went to the park.', reasoning: 'She saw a big red ball and played with it.', answer: 'Lily was happy.' },
      OTHER,
    ];
    const lexical = askRetrieverOf({
      retrieve: async (q, k) => ({
        results: records.map((record, i) => ({ record, score: record.question === q ? 1 : 0.1, rank: i })).slice(0, k),
        timings: { embedMs: 0, searchMs: 0, totalMs: 0 },
      }),
    });
    const settings = { steps: 3, lr: 1e-2, maxNewTokens: 24, maxTrainTokens: 256, rank: 4, alpha: 8 };
    const base1 = await askQuestion('Once upon a time', { ...settings, ttt: false }, { model });
    const adapted = await askQuestion('Lily went to the park.', { ...settings, ttt: true }, { model, retriever: lexical });
    const base2 = await askQuestion('Once upon a time', { ...settings, ttt: false }, { model });
    expect(adapted.retrieval?.top?.question).toBe('Lily went to the park.');
    expect(adapted.ttt?.losses).toHaveLength(3);
    expect(adapted.ttt!.finalLoss).toBeLessThan(adapted.ttt!.losses[0]!);
    expect(adapted.prompt.style).toBe('card'); // the o1 prompt does not fit 512 tokens
    expect(adapted.prompt.fallback).toMatch(/512-token context/);
    expect(adapted.restored).toBe(true);
    expect(base1.answer.tokens).toBeGreaterThan(0);
    expect(base2.answer.text).toBe(base1.answer.text);
    expect(base2.answer.summary).toBe(base1.answer.text.trim()); // no markers: all answer
  });
});
