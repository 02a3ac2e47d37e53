/**
 * Runs a multiple-choice evaluation through the TTT pipeline (models/ask/pipeline.ts: the app's own
 * retrieve -> train -> answer -> restore, never a copy): for each item and mode, the pipeline's
 * answer, its extracted letter, one log line. Mode 'both' uses askCompare, so the answers without
 * and with TTT share settings and seed. Resumable: answers already in the log are not run again,
 * and each one is appended as soon as it is done.
 *
 * A pipeline refusal (an 'invalid-input' error: the prompt does not fit the model's context,
 * nothing retrieved) is logged with its error and counted as skipped, not wrong. Any other error
 * (device lost, out of memory, a stop) ends the run without logging the unfinished answer, so a
 * rerun does it again.
 */
import { askCompare, askQuestion, type AskDeps, type CompareResult } from '../ask/pipeline.ts';
import { resolveAskSettings, type AskPreset, type AskSettings } from '../ask/settings.ts';
import type { AskEvent, AskRecord, ModelDescription } from '../ask/types.ts';
import { AbortError, EngineError, InvalidInputError, throwIfAborted } from '../errors.ts';
import { EvalLogError } from './errors.ts';
import { extractAnswer } from './extract.ts';
import { mcqQuestionText, type McqItem } from './items.ts';
import { EVAL_LOG_VERSION, logKey, type EvalLog, type EvalLogLine, type EvalMode } from './log.ts';

export type EvalModes = EvalMode | 'both';

/** The modes a run answers in, off first. */
export function modesOf(m: EvalModes): EvalMode[] {
  if (m === 'both') return ['off', 'on'];
  if (m === 'off' || m === 'on') return [m];
  throw new InvalidInputError(`modes must be off, on or both, got ${JSON.stringify(m)}.`);
}

export interface EvalProgress {
  /** Answers logged for these items and modes, resumed ones included. */
  done: number;
  total: number;
  /** Answers that were in the log before this run. */
  resumed: number;
  item: string;
  benchmark: string;
  mode: EvalMode;
  letter: string | null;
  gold: string;
  /** null: refused (skipped). */
  correct: boolean | null;
  /** Since this run started. */
  elapsedMs: number;
  /** Time left at this run's pace; null before the first answer. */
  etaMs: number | null;
}

export interface RunEvalOptions {
  modes: EvalModes;
  /** Pipeline settings (ttt is set per mode); resolved with `preset` like the app's. */
  settings?: Partial<AskSettings>;
  preset?: AskPreset;
  deps: AskDeps;
  log: EvalLog;
  signal?: AbortSignal;
  onProgress?: (p: EvalProgress) => void;
  /** The pipeline's events of each answer (stages, TTT steps, tokens). */
  onEvent?: (item: McqItem, mode: EvalMode, e: AskEvent) => void;
  now?: () => Date;
}

export interface RunEvalResult {
  /** The log's lines for these items and modes, in log order (resumed ones included). */
  lines: EvalLogLine[];
  /** Answers run now, and found in the log already. */
  ran: number;
  resumed: number;
  /** Refused answers of this run. */
  skipped: number;
  ms: number;
}

/**
 * @example
 *   const log = new MemoryEvalLog();
 *   const { lines } = await runEval(items, { modes: 'both', settings: { steps: 1, maxNewTokens: 256 }, deps: { model, retriever }, log });
 *   const summary = summarizeEval(lines, items, { log: 'memory' });
 */
export async function runEval(items: readonly McqItem[], opts: RunEvalOptions): Promise<RunEvalResult> {
  const t0 = performance.now();
  const modes = modesOf(opts.modes);
  const { deps, log, signal } = opts;
  const settings = resolveAskSettings({ ...opts.settings, ttt: false }, opts.preset);
  if (modes.includes('on') && !deps.retriever) throw new InvalidInputError('TTT on needs a corpus to retrieve from: give a retriever (an index or a corpus), or run with TTT off.');

  const before = await log.lines();
  checkSameRun(before, settings, deps.model.description);
  const done = new Set(before.map((l) => logKey(l.item, l.mode)));
  const total = items.length * modes.length;
  const resumed = items.reduce((n, it) => n + modes.filter((m) => done.has(logKey(it.id, m))).length, 0);
  let ran = 0, skipped = 0;

  const appendLine = async (line: EvalLogLine): Promise<void> => {
    await log.append(line);
    done.add(logKey(line.item, line.mode));
    ran++;
    if (line.correct === null) skipped++;
    const elapsedMs = performance.now() - t0;
    const left = total - resumed - ran;
    opts.onProgress?.({
      done: resumed + ran, total, resumed, item: line.item, benchmark: line.benchmark, mode: line.mode, letter: line.letter, gold: line.gold,
      correct: line.correct, elapsedMs, etaMs: (elapsedMs / ran) * left,
    });
  };
  const record = (item: McqItem, mode: EvalMode, r: AskRecord) => {
    if (r.status === 'stopped') throw new AbortError();
    return appendLine(answerLine(item, mode, r, opts.now));
  };
  const refuse = async (item: McqItem, which: EvalMode[], e: EngineError) => {
    for (const mode of which) await appendLine(refusalLine(item, mode, e, { ...settings, ttt: mode === 'on' }, deps.model.description, opts.now));
  };

  for (const item of items) {
    const missing = modes.filter((m) => !done.has(logKey(item.id, m)));
    if (missing.length === 0) continue;
    throwIfAborted(signal);
    const question = mcqQuestionText(item);
    const common = { signal, now: opts.now, retrievalQuery: item.question };
    if (missing.length === 2) {
      let without: AskRecord | null = null;
      let result: CompareResult | null = null;
      let failure: unknown = null;
      try {
        result = await askCompare(question, settings, deps, {
          ...common, ids: { without: logKey(item.id, 'off'), with: logKey(item.id, 'on') },
          onEvent: (run, e) => {
            if (run === 'without' && e.type === 'done') without = e.record;
            opts.onEvent?.(item, run === 'without' ? 'off' : 'on', e);
          },
        });
      } catch (e) {
        failure = e;
      }
      if (result) {
        await record(item, 'off', result.without);
        await record(item, 'on', result.with);
        continue;
      }
      const finished = without as AskRecord | null;
      if (finished?.status === 'done') await record(item, 'off', finished); // keep the half that finished
      if (!isRefusal(failure)) throw failure;
      await refuse(item, finished ? ['on'] : ['off', 'on'], failure);
    } else {
      const mode = missing[0]!;
      let r: AskRecord;
      try {
        r = await askQuestion(question, { ...settings, ttt: mode === 'on' }, deps, {
          ...common, id: logKey(item.id, mode), onEvent: opts.onEvent && ((e) => opts.onEvent!(item, mode, e)),
        });
      } catch (e) {
        if (!isRefusal(e)) throw e;
        await refuse(item, [mode], e);
        continue;
      }
      await record(item, mode, r);
    }
  }

  const ids = new Set(items.map((i) => i.id));
  const lines = (await log.lines()).filter((l) => ids.has(l.item) && modes.includes(l.mode));
  return { lines, ran, resumed, skipped, ms: performance.now() - t0 };
}

/** The pipeline refused this item (its input), as opposed to failing. */
function isRefusal(e: unknown): e is EngineError {
  return e instanceof EngineError && e.code === 'invalid-input';
}

function answerLine(item: McqItem, mode: EvalMode, r: AskRecord, now?: () => Date): EvalLogLine {
  const { letter, method } = extractAnswer(r.answer.text, item.options);
  const top = r.retrieval?.results[0];
  return {
    v: EVAL_LOG_VERSION, item: item.id, benchmark: item.benchmark, mode, gold: item.answer, options: Object.keys(item.options).length,
    letter, correct: letter === item.answer, method,
    retrieval: top ? { id: top.id, score: top.score, retriever: r.retrieval!.retriever } : null,
    ttt: r.ttt ? { losses: r.ttt.losses, finalLoss: r.ttt.finalLoss, tokensTrained: r.ttt.tokensTrained, truncated: r.ttt.truncated } : null,
    output: r.answer.text,
    prompt: { style: r.prompt.style, tokens: r.prompt.tokens, fallback: r.prompt.fallback },
    stopReason: r.answer.stopReason, timings: r.timings, settings: r.settings, model: r.model, error: null,
    at: (now?.() ?? new Date()).toISOString(),
  };
}

function refusalLine(item: McqItem, mode: EvalMode, e: EngineError, settings: AskSettings, model: ModelDescription, now?: () => Date): EvalLogLine {
  return {
    v: EVAL_LOG_VERSION, item: item.id, benchmark: item.benchmark, mode, gold: item.answer, options: Object.keys(item.options).length,
    letter: null, correct: null, method: null, retrieval: null, ttt: null, output: '', prompt: null, stopReason: null, timings: null,
    settings, model: { ...model }, error: { code: e.code, message: e.message }, at: (now?.() ?? new Date()).toISOString(),
  };
}

/** A resumed log must come from the same settings and model, or its numbers would mix two experiments. */
function checkSameRun(lines: readonly EvalLogLine[], settings: AskSettings, model: ModelDescription): void {
  const first = lines[0];
  if (!first) return;
  const differs: string[] = [];
  for (const k of Object.keys(settings) as (keyof AskSettings)[]) {
    if (k !== 'ttt' && JSON.stringify(first.settings[k]) !== JSON.stringify(settings[k])) differs.push(`${k} ${JSON.stringify(first.settings[k])} -> ${JSON.stringify(settings[k])}`);
  }
  for (const k of ['source', 'backend', 'weights', 'precision'] as const) {
    if (first.model[k] !== model[k]) differs.push(`model ${k} ${JSON.stringify(first.model[k])} -> ${JSON.stringify(model[k])}`);
  }
  if (differs.length > 0) {
    throw new EvalLogError(`The evaluation log was written by a run with other settings (${differs.join('; ')}); resume with the same settings, or write to another output folder.`);
  }
}
