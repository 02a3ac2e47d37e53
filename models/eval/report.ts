/**
 * The summary of an evaluation log: accuracy with 95% Wilson intervals per mode, overall and per
 * benchmark, chance next to it (1 / number of options), and with both modes the paired difference
 * on-minus-off with McNemar's exact test. Skipped answers (refused by the pipeline, e.g. a prompt
 * longer than the model's context) are counted apart, never as wrong; an answer with no letter
 * found is wrong.
 */
import type { AskSettings } from '../ask/settings.ts';
import type { ModelDescription } from '../ask/types.ts';
import { KNOWN_BENCHMARKS, chanceOf, type McqItem } from './items.ts';
import { logKey, type EvalLogLine, type EvalMode } from './log.ts';
import { modesOf, type EvalModes } from './runner.ts';
import { accuracyOf, comparePaired, type Accuracy, type PairedComparison } from './stats.ts';

export interface ModeResult extends Accuracy {
  /** Refused by the pipeline; not in n. */
  skipped: number;
  /** Answered, but no letter could be extracted (counted wrong). */
  noAnswer: number;
}

export interface GroupResult {
  items: number;
  /** Mean of 1 / number of options: the accuracy of guessing. */
  chance: number;
  accuracy: { off?: ModeResult; on?: ModeResult };
  /** With both modes: on-minus-off over the items answered both ways. */
  mcnemar?: PairedComparison;
}

export interface EvalSummary extends GroupResult {
  modes: EvalMode[];
  byBenchmark: Record<string, GroupResult>;
  /** Refused answers per mode, and their reasons (one per kind of message, with an example). */
  skipped: { off?: number; on?: number; reasons: { code: string; count: number; example: string }[] };
  /** Answers of these items and modes not in the log yet (an unfinished run). */
  missing: number;
  model: ModelDescription | null;
  /** The run's pipeline settings (ttt aside). */
  settings: Omit<AskSettings, 'ttt'> | null;
  log: string;
}

/**
 * @example
 *   const s = summarizeEval(lines, items, { modes: 'both', log: 'out/log.jsonl' });
 *   s.accuracy.on?.accuracy; s.mcnemar?.p; s.byBenchmark.pubmedqa.chance; // 1/3
 */
export function summarizeEval(lines: readonly EvalLogLine[], items: readonly McqItem[], opts: { modes: EvalModes; log: string }): EvalSummary {
  const modes = modesOf(opts.modes);
  const byKey = new Map(lines.map((l) => [logKey(l.item, l.mode), l]));
  const group = (its: readonly McqItem[]): GroupResult => {
    const out: GroupResult = { items: its.length, chance: its.length === 0 ? 0 : its.reduce((s, it) => s + chanceOf(it), 0) / its.length, accuracy: {} };
    for (const mode of modes) {
      const ls = its.map((it) => byKey.get(logKey(it.id, mode))).filter((l): l is EvalLogLine => l !== undefined);
      const answered = ls.filter((l) => l.correct !== null);
      out.accuracy[mode] = {
        ...accuracyOf(answered.filter((l) => l.correct).length, answered.length),
        skipped: ls.length - answered.length,
        noAnswer: answered.filter((l) => l.letter === null).length,
      };
    }
    if (modes.length === 2) {
      const pairs = its.flatMap((it) => {
        const off = byKey.get(logKey(it.id, 'off'))?.correct;
        const on = byKey.get(logKey(it.id, 'on'))?.correct;
        return off != null && on != null ? [{ off, on }] : [];
      });
      out.mcnemar = comparePaired(pairs);
    }
    return out;
  };

  const names = [...new Set(items.map((i) => i.benchmark))].sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
  const byBenchmark = Object.fromEntries(names.map((n) => [n, group(items.filter((i) => i.benchmark === n))]));
  const ids = new Set(items.map((i) => i.id));
  const ours = lines.filter((l) => ids.has(l.item) && modes.includes(l.mode));
  const refused = ours.filter((l) => l.error !== null);
  const reasons = new Map<string, { code: string; count: number; example: string }>();
  for (const l of refused) {
    // One reason per kind of message: the same refusal with other token counts is the same reason.
    const kind = `${l.error!.code}:${l.error!.message.replace(/\d+/g, '#')}`;
    const r = reasons.get(kind) ?? { code: l.error!.code, count: 0, example: l.error!.message };
    r.count++;
    reasons.set(kind, r);
  }
  const skipped: EvalSummary['skipped'] = { reasons: [...reasons.values()] };
  for (const mode of modes) skipped[mode] = refused.filter((l) => l.mode === mode).length;
  const first = ours[0];
  let settings: EvalSummary['settings'] = null;
  if (first) {
    const { ttt: _ttt, ...rest } = first.settings;
    settings = rest;
  }
  return {
    ...group(items), modes, byBenchmark, skipped, missing: items.length * modes.length - ours.length,
    model: first ? { ...first.model } : null, settings, log: opts.log,
  };
}

function rank(name: string): number {
  const i = (KNOWN_BENCHMARKS as readonly string[]).indexOf(name);
  return i < 0 ? KNOWN_BENCHMARKS.length : i;
}

const pct = (x: number) => `${(100 * x).toFixed(1)}%`;

function accCell(a: ModeResult | undefined): string {
  if (!a || a.accuracy === null) return '–';
  return `${pct(a.accuracy)} (${pct(a.ci95.low)}–${pct(a.ci95.high)}) ${a.correct}/${a.n}`;
}

function signed(x: number | null): string {
  if (x === null) return '–';
  return `${x > 0 ? '+' : x < 0 ? '−' : '±'}${(100 * Math.abs(x)).toFixed(1)} pt`;
}

function pValue(p: number): string {
  return p >= 0.001 ? p.toFixed(3) : p.toExponential(1);
}

/**
 * The summary as a Markdown table with a legend.
 * @example await writeFile('out/summary.md', evalMarkdown(summary));
 */
export function evalMarkdown(s: EvalSummary): string {
  const both = s.modes.length === 2;
  const head = ['Benchmark', 'Items', 'Chance', ...s.modes.map((m) => `TTT ${m}`), ...(both ? ['On − off', 'b / c', 'McNemar p'] : []), 'Skipped'];
  const row = (name: string, g: GroupResult) => [
    name, String(g.items), pct(g.chance), ...s.modes.map((m) => accCell(g.accuracy[m])),
    ...(both ? [signed(g.mcnemar!.difference), `${g.mcnemar!.b} / ${g.mcnemar!.c}`, pValue(g.mcnemar!.p)] : []),
    s.modes.map((m) => String(g.accuracy[m]?.skipped ?? 0)).join(' / '),
  ];
  const rows = [...Object.entries(s.byBenchmark).map(([n, g]) => row(n, g)), row('**All**', s)];
  const table = [head, head.map(() => '---'), ...rows].map((r) => `| ${r.join(' | ')} |`).join('\n');

  const notes: string[] = [];
  if (s.model) notes.push(`Model: ${s.model.source} (${s.model.backend}, ${s.model.weights} weights, ${s.model.precision}).`);
  if (s.settings) {
    const t = s.settings;
    notes.push(`Settings: ${t.steps} TTT step${t.steps === 1 ? '' : 's'} at lr ${t.lr}, rank ${t.rank}, alpha ${t.alpha}, ≤${t.maxTrainTokens} trained tokens; ≤${t.maxNewTokens} new tokens, ${t.temperature === 0 ? 'greedy' : `temperature ${t.temperature}, top-p ${t.topP}, seed ${t.seed}`}; system prompt ${t.system}.`);
  }
  notes.push('Accuracy over the answered items with its 95% Wilson interval; chance = 1 / number of options (what guessing scores). An answer with no letter found counts as wrong.');
  if (both) notes.push('On − off: the paired difference in accuracy over items answered both ways; b = right without TTT and wrong with it, c = wrong without and right with; p: McNemar\'s exact test (two-sided).');
  notes.push([`Skipped (${s.modes.join(' / ')}): refused by the pipeline, not counted as wrong.`, ...s.skipped.reasons.map((r) => `- ${r.count} × ${r.code}, e.g. "${r.example}"`)].join('\n'));
  const none = s.modes.filter((m) => (s.accuracy[m]?.noAnswer ?? 0) > 0).map((m) => `${m} ${s.accuracy[m]!.noAnswer}`);
  if (none.length > 0) notes.push(`No letter found: ${none.join(', ')}.`);
  if (s.missing > 0) notes.push(`Unfinished: ${s.missing} answers not run yet; rerun the same command to resume.`);
  notes.push(`Log: ${s.log}`);
  return `${table}\n\n${notes.join('\n\n')}\n`;
}
