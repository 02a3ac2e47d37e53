/**
 * The Evaluate view's log in IndexedDB, one row per answer as it is done: a stopped or reloaded
 * run resumes where it stopped (the runner skips what is logged), and the log downloads as JSONL.
 */
import { logKey, type EvalLog, type EvalLogLine } from '../../workers/eval-session.ts';
import { appendEvalLine, evalRunLines } from './db.ts';

export class IdbEvalLog implements EvalLog {
  private cache: EvalLogLine[] | null = null;

  constructor(readonly run: string) {}

  async lines(): Promise<EvalLogLine[]> {
    this.cache ??= await evalRunLines(this.run);
    return [...this.cache];
  }

  async done(): Promise<Set<string>> {
    return new Set((await this.lines()).map((l) => logKey(l.item, l.mode)));
  }

  async append(line: EvalLogLine): Promise<void> {
    const all = await this.lines();
    await appendEvalLine(this.run, logKey(line.item, line.mode), all.length, line);
    this.cache!.push(line);
  }

  async toJsonl(): Promise<string> {
    return (await this.lines()).map((l) => JSON.stringify(l) + '\n').join('');
  }
}
