/**
 * Exports of a history entry: JSON (the stored entry, exactly) and Markdown (for reading and
 * sharing: question, answers, what was retrieved and trained, settings, timings).
 */
import type { AskRecord } from '../../workers/ask-session.ts';
import type { HistoryEntry } from './entry.ts';

export function entryToJson(entry: HistoryEntry): string {
  return JSON.stringify(entry, null, 2);
}

const fmt = (ms: number | null): string => (ms === null ? '–' : ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(0)} ms`);

function recordMarkdown(r: AskRecord, title: string): string {
  const lines = [`## ${title}`, ''];
  if (r.answer.reasoning) lines.push('<details><summary>Reasoning</summary>', '', quote(r.answer.reasoning), '', '</details>', '');
  lines.push(r.answer.summary || '_(no answer text)_', '');
  if (r.retrieval) {
    lines.push(`**Retrieved (${r.retrieval.retriever})**`, '');
    for (const h of r.retrieval.results) lines.push(`- ${h.score.toFixed(3)} · \`${h.id}\` · ${h.question.replace(/\s+/g, ' ').slice(0, 160)}`);
    lines.push('');
  }
  if (r.ttt) lines.push(`**Test-time training**: ${r.ttt.losses.length} steps, loss ${r.ttt.losses.map((l) => l.toFixed(4)).join(' → ')} → ${r.ttt.finalLoss.toFixed(4)}, ${r.ttt.tokensTrained} tokens trained; adapters cleared: ${r.restored ? 'yes' : 'no'}`, '');
  const t = r.timings;
  lines.push(
    `**Timings**: retrieve ${fmt(t.retrieveMs)} · train ${fmt(t.trainMs)} · first token ${fmt(t.ttftMs)} · ${t.decodeTokensPerSecond.toFixed(1)} tok/s · restore ${fmt(t.restoreMs)} · total ${fmt(t.totalMs)}`,
    '',
    `**Model**: ${r.model.source} (${r.model.backend}, ${r.model.weights}, ${r.model.precision}); prompt: ${r.prompt.style}${r.prompt.fallback ? ` (${r.prompt.fallback})` : ''}`,
    '',
    `**Settings**: steps ${r.settings.steps}, lr ${r.settings.lr}, rank ${r.settings.rank}, alpha ${r.settings.alpha}, targets ${r.settings.targets.join(', ')}, temperature ${r.settings.temperature}, seed ${r.settings.seed}`,
    '',
  );
  return lines.join('\n');
}

function quote(text: string): string {
  return text.split('\n').map((l) => `> ${l}`).join('\n');
}

/** @example download('answer.md', entryToMarkdown(entry), 'text/markdown') */
export function entryToMarkdown(entry: HistoryEntry): string {
  const head = [`# ${entry.question.replace(/\s+/g, ' ')}`, '', `_${entry.createdAt} · FineMed TTT · not medical advice_`, ''];
  const body = entry.mode === 'compare'
    ? [recordMarkdown(entry.records[0]!, 'Without TTT'), recordMarkdown(entry.records[1]!, 'With TTT'), `The two answers ${entry.differ ? 'differ' : 'are identical'}.`, '']
    : [recordMarkdown(entry.records[0]!, 'Answer')];
  return [...head, ...body].join('\n');
}
