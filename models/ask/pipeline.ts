/**
 * The TTT pipeline, written once: for one question, retrieve (top-k, top-1 used) -> adapt (N Adam
 * steps on the retrieved trace) -> generate (streamed) -> restore (reset the adapter, always, in
 * a `finally`: also on stop and on error). The app, `llm ask` and the evaluation harness all call
 * it; compare mode is the same call twice, without and with TTT, with the same seed and settings.
 */
import { AbortError, InvalidInputError, throwIfAborted } from '../errors.ts';
import { splitAnswer } from './output-split.ts';
import { resolveAskSettings, samplingOf, tttConfigOf, type AskPreset, type AskSettings } from './settings.ts';
import {
  ASK_RECORD_VERSION,
  type AskEvent,
  type AskModel,
  type AskRecord,
  type AskRetriever,
  type RetrievalSummary,
  type TrainOutcome,
} from './types.ts';

export interface AskDeps {
  model: AskModel;
  /** Needed when settings.ttt is on. */
  retriever?: AskRetriever | null;
}

export interface AskOptions {
  signal?: AbortSignal;
  onEvent?: (e: AskEvent) => void;
  /** Settings preset under the overrides (e.g. 'paper'); default 'default'. */
  preset?: AskPreset;
  /** Record id and time (tests, resumable evaluation); default a random UUID and now. */
  id?: string;
  now?: () => Date;
  /** Text to retrieve the training trace with; default the question. The evaluation retrieves with an MCQ's stem, not its options and instructions. */
  retrievalQuery?: string;
}

/**
 * Answers one question, with TTT when `settings.ttt`. Throws typed errors (AbortError when stopped
 * before the answer started); a stop while answering returns the record with status 'stopped'.
 * Whatever happens after training started, the adapter is reset before this returns or throws.
 * @example
 *   const record = await askQuestion('Crushing chest pain while shovelling snow?', { ttt: true, steps: 3 },
 *     { model, retriever }, { onEvent: (e) => e.type === 'ttt-step' && console.log(e.loss) });
 *   record.answer.summary; record.ttt?.losses; record.timings.ttftMs;
 */
export async function askQuestion(question: string, overrides: Partial<AskSettings>, deps: AskDeps, opts: AskOptions = {}): Promise<AskRecord> {
  const settings = resolveAskSettings(overrides, opts.preset);
  const { model, retriever } = deps;
  const { signal } = opts;
  const emit = opts.onEvent ?? (() => {});
  const t0 = performance.now();
  const createdAt = (opts.now?.() ?? new Date()).toISOString();
  if (question.trim() === '') throw new InvalidInputError('The question is empty.');
  if (settings.ttt && !retriever) throw new InvalidInputError('Test-time training needs a corpus to retrieve from; open or import one first, or turn TTT off.');

  emit({ type: 'stage', stage: 'preparing' });
  const prepared = await model.preparePrompt(question, { system: settings.system, customSystem: settings.customSystem, maxNewTokens: settings.maxNewTokens }, signal);
  const prompt: AskRecord['prompt'] = {
    style: prepared.format.style, requested: prepared.requested, fallback: prepared.fallback, tokens: prepared.ids.length, answerTokens: prepared.answerTokens,
  };
  emit({ type: 'prompt', prompt });

  let retrieval: RetrievalSummary | null = null;
  let ttt: TrainOutcome | null = null;
  let retrieveMs: number | null = null, trainMs: number | null = null, restoreMs: number | null = null;
  let restored = false;
  let adapting = false;
  try {
    if (settings.ttt) {
      throwIfAborted(signal);
      emit({ type: 'stage', stage: 'retrieving' });
      const r = await retriever!.retrieve(opts.retrievalQuery ?? question, settings.k, signal);
      retrieveMs = r.ms;
      const top = r.results[0]?.record ?? null;
      retrieval = {
        retriever: r.retriever, k: settings.k, top, ms: r.ms,
        results: r.results.map(({ record, score, rank }) => ({ id: record.id, score, rank, question: record.question, source: record.source, license: record.license })),
      };
      emit({ type: 'retrieved', retrieval });
      if (!top) throw new InvalidInputError('Nothing was retrieved to train on: the corpus is empty.');

      throwIfAborted(signal);
      emit({ type: 'stage', stage: 'training' });
      const t1 = performance.now();
      await model.ensureAdapter({ ...tttConfigOf(settings) }, signal);
      adapting = true; // from here on the adapter may hold trained weights: restore it whatever happens
      ttt = await model.train(top, prepared.format, (s) => emit({ type: 'ttt-step', ...s }), signal);
      trainMs = performance.now() - t1;
    }

    throwIfAborted(signal);
    emit({ type: 'stage', stage: 'answering' });
    const tg = performance.now();
    let ttft: number | null = null;
    const thought = new ThoughtClock();
    let soFar = '';
    const gen = await model.generate(prepared.ids, { maxNewTokens: prepared.answerTokens, sampling: samplingOf(settings) }, (text, tokens) => {
      const now = performance.now();
      ttft ??= now - tg;
      soFar += text;
      thought.observe(soFar, now - tg);
      emit({ type: 'token', text, tokens });
    }, signal);
    const generateMs = performance.now() - tg;

    if (adapting) {
      emit({ type: 'stage', stage: 'restoring' });
      const tr = performance.now();
      adapting = false;
      await model.resetAdapter();
      restoreMs = performance.now() - tr;
      restored = true;
      emit({ type: 'restored', ms: restoreMs });
    }

    const parts = splitAnswer(gen.text, { done: true });
    const record: AskRecord = {
      version: ASK_RECORD_VERSION,
      id: opts.id ?? globalThis.crypto.randomUUID(),
      createdAt,
      question: question.trim(),
      mode: settings.ttt ? 'ttt' : 'base',
      status: gen.stopReason === 'aborted' ? 'stopped' : 'done',
      settings,
      model: { ...model.description },
      prompt,
      retrieval,
      ttt,
      answer: { text: gen.text, reasoning: parts.reasoning, summary: parts.answer, structured: parts.structured, tokens: gen.ids.length, stopReason: gen.stopReason },
      timings: {
        retrieveMs, trainMs, ttftMs: ttft, thoughtMs: thought.ms ?? (parts.structured ? generateMs : null), prefillMs: gen.timings.prefillMs, decodeTokensPerSecond: gen.timings.decodeTokensPerSecond,
        generateMs, restoreMs, totalMs: performance.now() - t0,
      },
      restored: settings.ttt ? restored : false,
    };
    emit({ type: 'done', record });
    return record;
  } finally {
    // Reached with `adapting` still set only on a stop or an error after training began.
    if (adapting) {
      emit({ type: 'stage', stage: 'restoring' });
      const tr = performance.now();
      await model.resetAdapter();
      emit({ type: 'restored', ms: performance.now() - tr });
    }
  }
}

/**
 * How long the model thought: from the generate call until its Summarization heading appeared.
 * Decided once per answer: output that does not open with a Thought heading is not watched further.
 */
class ThoughtClock {
  ms: number | null = null;
  private watching = true;

  observe(text: string, elapsedMs: number): void {
    if (!this.watching) return;
    const parts = splitAnswer(text, { done: false });
    if (!parts.structured && text.trim().length >= 16) this.watching = false;
    else if (parts.phase === 'answering' && parts.structured) {
      this.ms = elapsedMs;
      this.watching = false;
    }
  }
}

export interface CompareResult {
  without: AskRecord;
  with: AskRecord;
  /** The two answers' full texts differ. */
  differ: boolean;
}

/**
 * Compare mode: the same question without TTT, then with it, same settings and seed. Events are
 * tagged with the run they belong to.
 * @example
 *   const { without, with: adapted, differ } = await askCompare(q, settings, deps, { onEvent: (run, e) => show(run, e) });
 */
export async function askCompare(
  question: string,
  overrides: Partial<AskSettings>,
  deps: AskDeps,
  opts: Omit<AskOptions, 'onEvent' | 'id'> & { onEvent?: (run: 'without' | 'with', e: AskEvent) => void; ids?: { without: string; with: string } } = {},
): Promise<CompareResult> {
  const run = (ttt: boolean) => askQuestion(question, { ...overrides, ttt }, deps, {
    signal: opts.signal, now: opts.now, preset: opts.preset, id: ttt ? opts.ids?.with : opts.ids?.without, retrievalQuery: opts.retrievalQuery,
    onEvent: opts.onEvent && ((e) => opts.onEvent!(ttt ? 'with' : 'without', e)),
  });
  const without = await run(false);
  if (without.status === 'stopped') throw new AbortError();
  const adapted = await run(true);
  return { without, with: adapted, differ: without.answer.text !== adapted.answer.text };
}
