/**
 * `npm run eval`: multiple-choice evaluation through the TTT pipeline (models/eval/, which calls
 * models/ask/pipeline.ts: the app's own retrieve -> train -> answer -> restore).
 *
 *   npm run --silent eval -- run --model <dir|url|repo> [--hub URL] --data <jsonl> [--index <dir> [--embedder <dir|repo>] | --corpus <jsonl>]
 *     [--ttt off|on|both] [--limit N] [--sample N --seed S] --out <dir> [--json]
 *     [--preset paper] [--steps N] [--lr X] [--rank R] [--alpha A] [--targets q,k,...] [--max-train-tokens N]
 *     [--max-new N] [--temperature T] [--top-p P] [--decode-seed S] [--k N] [--system o1|card|none|custom]
 *     --backend cpu|webgpu [--f32] [--precision auto|f16|f32] [--max-context N] [--cache-dir DIR | --no-cache]
 *
 * Writes <out>/log.jsonl (one line per item and mode, appended and fsynced as each answer is done:
 * rerunning the same command resumes), <out>/summary.json and <out>/summary.md. Progress on stderr
 * (a bar with ETA on a terminal, else one line per answer). stdout: the Markdown table, or with
 * --json the summary object as the last line. A failure prints {"error": {"name", "code", "message"}}
 * and exits 1 for an engine or input error, 2 for a malformed command line (code "usage"); the
 * convention of every CLI, in scripts/cli-errors.ts.
 *
 *   npm run --silent eval -- extract < lines.jsonl
 *
 * reads {"output": "...", "options": {"A": "...", ...}} lines and prints {"letter": "B"} (or null)
 * for each; a bad line prints {"error": {"name", "code", "message"}, "line": N} in its place
 * (exit 1 at the end).
 */
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { askModelOf } from '../models/ask/in-process.ts';
import { resolveAskSettings } from '../models/ask/settings.ts';
import { AbortError } from '../models/errors.ts';
import { McqFormatError } from '../models/eval/errors.ts';
import { extractLetter } from '../models/eval/extract.ts';
import { parseMcqJsonl, selectItems } from '../models/eval/items.ts';
import type { EvalMode } from '../models/eval/log.ts';
import { NodeEvalLog } from '../node/eval/node-log.ts';
import { evalMarkdown, summarizeEval, type EvalSummary } from '../models/eval/report.ts';
import { modesOf, runEval, type EvalModes, type EvalProgress } from '../models/eval/runner.ts';
import { optionalNumberFlag, parseCommandArgs, stringFlag, type CommandSpec, type ParsedArgs } from './cli-args.ts';
import { ASK_SETTING_FLAGS, openRetrieverFromArgs, settingsFromArgs } from './cli-ask.ts';
import { CACHE_USAGE, withCacheFlags } from './cli-cache.ts';
import { cliErrorJson, runCli, UsageError } from './cli-errors.ts';
import { loadModelFromArgs, MODEL_FLAGS } from './cli-model.ts';

const RUN_USAGE = `usage: npm run --silent eval -- run --model <dir|url|repo> [--hub URL] --data <jsonl> [--index <dir> [--embedder <dir|repo>] [--search voy|exact] | --corpus <jsonl>]
  [--ttt off|on|both (default both)] [--limit N] [--sample N --seed S] --out <dir> [--json] [--on-bad-line stop|skip]
  [--preset paper] [--steps N] [--lr X] [--rank R] [--alpha A] [--targets q,k,v,o,gate,up,down] [--max-train-tokens N]
  [--max-new N] [--temperature T (0 = greedy)] [--top-p P] [--decode-seed S] [--k N] [--system o1|card|none|custom] [--custom-system "..."]
  --backend cpu|webgpu [--f32] [--precision auto|f16|f32] [--max-context N] ${CACHE_USAGE}
  --index or --corpus (BM25, no embedder) is needed for --ttt on/both; --seed seeds --sample, --decode-seed the sampling.`;
const EXTRACT_USAGE = 'usage: npm run --silent eval -- extract < lines.jsonl   (each line {"output": "...", "options": {"A": "...", ...}})';
const USAGE = `${RUN_USAGE}\n${EXTRACT_USAGE.replace(/^usage: /, '   or: ')}`;

const COMMANDS: Record<string, CommandSpec> = {
  run: withCacheFlags({
    switches: ['json', ...MODEL_FLAGS.switches],
    valued: [
      ...MODEL_FLAGS.valued, 'hub', 'data', 'index', 'embedder', 'search', 'corpus', 'ttt', 'limit', 'sample', 'seed', 'out', 'on-bad-line',
      'decode-seed', ...ASK_SETTING_FLAGS,
    ],
  }),
  extract: { switches: [], valued: [] },
};

/** Everything about the run the summary files and the --json line carry besides the log's numbers. */
type RunOutput = EvalSummary & {
  selection: { data: string; limit: number | null; sample: number | null; seed: number | null };
  retriever: string | null;
  run: { ran: number; resumed: number; skipped: number; ms: number } | null;
};

async function runCommand(args: ParsedArgs): Promise<RunOutput> {
  const data = stringFlag(args, 'data');
  const outDir = stringFlag(args, 'out');
  if (!data) throw new UsageError('--data is required');
  if (!outDir) throw new UsageError('--out is required');
  if (!stringFlag(args, 'model')) throw new UsageError('--model is required');
  const mode = (stringFlag(args, 'ttt') ?? 'both') as EvalModes;
  if (!['off', 'on', 'both'].includes(mode)) throw new UsageError(`--ttt must be off, on or both, got "${mode}"`);
  const onBadLine = stringFlag(args, 'on-bad-line') ?? 'stop';
  if (onBadLine !== 'stop' && onBadLine !== 'skip') throw new UsageError(`--on-bad-line must be stop or skip, got "${onBadLine}"`);
  const sample = optionalNumberFlag(args, 'sample');
  const seed = optionalNumberFlag(args, 'seed');
  if (seed !== undefined && sample === undefined) throw new UsageError('--seed seeds --sample; give --sample N too (the decoding seed is --decode-seed)');
  const limit = optionalNumberFlag(args, 'limit');
  const { overrides, preset } = settingsFromArgs(args, 'decode-seed');
  resolveAskSettings(overrides, preset); // a bad value is refused before anything loads
  const modes = modesOf(mode);

  const parsed = parseMcqJsonl(await readFile(data, 'utf8'), { onBadLine });
  if (parsed.badLines.length > 0) process.stderr.write(`eval: skipped ${parsed.badLines.length} bad lines of ${data} (first: line ${parsed.badLines[0]!.line}: ${parsed.badLines[0]!.reason})\n`);
  const items = selectItems(parsed.items, { limit, sample, seed });
  const opened = await openRetrieverFromArgs(args);
  if (modes.includes('on') && !opened) {
    throw new UsageError('--ttt on/both needs --index <dir> (embedding index) or --corpus <jsonl> (BM25) to retrieve the training trace from');
  }

  await mkdir(outDir, { recursive: true });
  const logPath = join(outDir, 'log.jsonl');
  const log = await NodeEvalLog.open(logPath);
  if (log.droppedTorn !== null) process.stderr.write(`eval: dropped the torn last line of ${logPath} (an interrupted write); its answer runs again\n`);
  const controller = new AbortController();
  const onSigint = () => {
    process.stderr.write('\neval: stopping after the current answer is cleaned up; rerun the same command to resume\n');
    controller.abort();
  };
  process.once('SIGINT', onSigint);
  const selection = { data, limit: limit ?? null, sample: sample ?? null, seed: sample !== undefined ? (seed ?? 0) : null };
  const finish = async (run: RunOutput['run']): Promise<RunOutput> => {
    const summary = summarizeEval(await log.lines(), items, { modes: mode, log: logPath });
    const out: RunOutput = { ...summary, selection, retriever: opened?.description ?? null, run };
    await writeAtomic(join(outDir, 'summary.json'), JSON.stringify(out, null, 2) + '\n');
    await writeAtomic(join(outDir, 'summary.md'), evalMarkdown(summary));
    return out;
  };

  let llm: Awaited<ReturnType<typeof loadModelFromArgs>> | null = null;
  const progress = progressPrinter(process.stderr);
  try {
    llm = await loadModelFromArgs(args);
    const already = (await log.done()).size;
    process.stderr.write(`eval: ${items.length} items x ${modes.length} mode${modes.length > 1 ? 's' : ''} (${modes.join(', ')})` +
      `${already > 0 ? `, ${already} answers in ${logPath} already` : ''}; retriever: ${opened?.description ?? 'none'}\n`);
    const r = await runEval(items, {
      modes: mode, settings: overrides, preset, deps: { model: askModelOf(llm, stringFlag(args, 'model')!), retriever: opened?.retriever ?? null },
      log, signal: controller.signal, onProgress: progress,
    });
    progress.end();
    return await finish({ ran: r.ran, resumed: r.resumed, skipped: r.skipped, ms: r.ms });
  } catch (e) {
    progress.end();
    // What is logged so far, for a look before resuming.
    const partial = (await log.done()).size > 0 ? await finish(null).catch(() => null) : null;
    if (e instanceof AbortError && controller.signal.aborted) {
      const total = items.length * modes.length;
      throw new AbortError(`Stopped with ${partial ? total - partial.missing : 0} of ${total} answers in ${logPath}; rerun the same command to resume.`);
    }
    throw e;
  } finally {
    process.off('SIGINT', onSigint);
    llm?.dispose();
    await opened?.close();
    await log.close();
  }
}

/** Written beside and renamed, so a reader never sees half a summary. */
async function writeAtomic(path: string, text: string): Promise<void> {
  await writeFile(`${path}.tmp`, text);
  await rename(`${path}.tmp`, path);
}

function duration(ms: number): string {
  const s = Math.round(ms / 1000);
  return s >= 3600 ? `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`
    : s >= 60 ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s` : `${s}s`;
}

/** A bar redrawn in place on a terminal; one line per answer otherwise (CI logs, pipes). */
function progressPrinter(stream: NodeJS.WriteStream): ((p: EvalProgress) => void) & { end(): void } {
  const tty = stream.isTTY === true;
  let drawn = false;
  const outcome = (p: EvalProgress) => (p.correct === null ? 'skipped' : `${p.letter ?? 'no letter'} (gold ${p.gold}) ${p.correct ? 'right' : 'wrong'}`);
  const print = (p: EvalProgress) => {
    const eta = p.etaMs === null ? '' : ` · ETA ${duration(p.etaMs)}`;
    if (!tty) {
      stream.write(`${p.done}/${p.total} ${p.item} ${p.mode}: ${outcome(p)} · ${duration(p.elapsedMs)}${eta}\n`);
      return;
    }
    const width = 24;
    const filled = Math.round((width * p.done) / p.total);
    // Counts and times first: a narrow terminal cuts the item name, not the ETA.
    const line = `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${p.done}/${p.total} ${Math.floor((100 * p.done) / p.total)}% · ${duration(p.elapsedMs)}${eta} · ${p.item} ${p.mode as EvalMode}: ${outcome(p)}`;
    stream.write(`\r\x1b[K${line.slice(0, (stream.columns ?? 120) - 1)}`);
    drawn = true;
  };
  return Object.assign(print, {
    end: () => {
      if (drawn) stream.write('\n');
      drawn = false;
    },
  });
}

/** `eval extract`: one {"letter"} line per input line, errors in place of bad lines. */
async function extractCommand(): Promise<number> {
  let n = 0, bad = 0;
  for await (const raw of createInterface({ input: process.stdin, crlfDelay: Infinity })) {
    n++;
    if (raw.trim() === '') continue;
    const reason = checkExtractLine(raw);
    if (typeof reason === 'string') {
      bad++;
      process.stdout.write(JSON.stringify({ ...cliErrorJson(new McqFormatError(`Line ${n}: ${reason}.`, [{ line: n, reason }])), line: n }) + '\n');
      continue;
    }
    process.stdout.write(JSON.stringify({ letter: extractLetter(reason.output, reason.options) }) + '\n');
  }
  return bad > 0 ? 1 : 0;
}

function checkExtractLine(raw: string): { output: string; options: Record<string, string> } | string {
  let v: unknown;
  try {
    v = JSON.parse(raw);
  } catch (e) {
    return `not valid JSON (${(e as Error).message})`;
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return 'expected a JSON object {"output", "options"}';
  const { output, options } = v as { output?: unknown; options?: unknown };
  if (typeof output !== 'string') return 'field "output" must be a string';
  if (typeof options !== 'object' || options === null || Array.isArray(options)) return 'field "options" must be an object {"A": "...", ...}';
  const entries = Object.entries(options);
  if (entries.length === 0 || entries.some(([k, t]) => !/^[A-Z]$/.test(k) || typeof t !== 'string')) return 'field "options" must map capital letters to strings';
  return { output, options: options as Record<string, string> };
}

async function main(): Promise<number> {
  const args = parseCommandArgs(process.argv.slice(2), COMMANDS);
  if (args.positional.length > 0) throw new UsageError(`unexpected argument "${args.positional[0]}"`);
  if (args.command === 'extract') return await extractCommand();
  const out = await runCommand(args);
  if (args.flags.has('json')) process.stdout.write(JSON.stringify(out) + '\n');
  else process.stdout.write(evalMarkdown(out));
  return 0;
}

void runCli(main, () => ({ run: RUN_USAGE, extract: EXTRACT_USAGE })[process.argv[2] ?? ''] ?? USAGE);
