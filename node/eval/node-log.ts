/**
 * Node only: the evaluation log as a JSONL file. Each line is written whole and fsynced before
 * append() resolves, so an interruption loses at most the line being written; on open, a torn
 * last line (no newline) is cut off the file and its answer runs again.
 */
import { open, readFile, truncate, type FileHandle } from 'node:fs/promises';
import { logKey, parseEvalLog, type EvalLog, type EvalLogLine } from '../../models/eval/log.ts';

export class NodeEvalLog implements EvalLog {
  private constructor(
    readonly path: string,
    private readonly fh: FileHandle,
    private readonly all: EvalLogLine[],
    /** The torn last line dropped on open, or null. */
    readonly droppedTorn: string | null,
  ) {}

  /**
   * Opens (or creates) the log at `path`.
   * @example const log = await NodeEvalLog.open('out/log.jsonl'); try { await runEval(items, { ..., log }); } finally { await log.close(); }
   */
  static async open(path: string): Promise<NodeEvalLog> {
    let text = '';
    try {
      text = await readFile(path, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
    const parsed = parseEvalLog(text);
    if (parsed.torn !== null) await truncate(path, Buffer.byteLength(text.slice(0, parsed.completeLength), 'utf8'));
    const fh = await open(path, 'a');
    return new NodeEvalLog(path, fh, parsed.lines, parsed.torn);
  }

  async done(): Promise<Set<string>> {
    return new Set(this.all.map((l) => logKey(l.item, l.mode)));
  }

  async append(line: EvalLogLine): Promise<void> {
    await this.fh.write(JSON.stringify(line) + '\n');
    await this.fh.sync();
    this.all.push(line);
  }

  async lines(): Promise<EvalLogLine[]> {
    return [...this.all];
  }

  async close(): Promise<void> {
    await this.fh.close();
  }
}
