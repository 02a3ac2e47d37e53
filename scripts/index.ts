/**
 * Retrieval index CLI. Same code and artifact format as the browser worker.
 *
 *   npm run --silent index -- build <corpus.jsonl | finemed-dpo> --embedder <dir|repo> --out <dir>
 *        [--dtype fp32|q8|fp16] [--vectors f32|f16] [--on-bad-line skip|stop] [--batch 16] [--limit N] [--no-remote] [--hub URL]
 *   npm run --silent index -- query <dir> "question" [-k 5] [--embedder <dir|repo>] [--index voy|exact] [--corpus <jsonl>]
 *   npm run --silent index -- info <dir> [--corpus <jsonl>] [--embedder <dir|repo>]
 *
 * Progress goes to stderr; the last stdout line is one JSON object (for `query`:
 * {"results": [{"id", "score", "question", ...}], "timings": {...}}).
 */
import { createReadStream } from 'node:fs';
import { basename } from 'node:path';
import { parseArgs } from 'node:util';
import { serializeError } from '../models/errors.ts';
import { buildIndex } from '../models/retrieval/build.ts';
import { hashCorpus } from '../models/retrieval/corpus-hash.ts';
import type { Embedder } from '../models/retrieval/embedder-types.ts';
import { CorpusFormatError } from '../models/retrieval/errors.ts';
import { loadFineMedDpo } from '../models/retrieval/finemed-loader.ts';
import { readJsonlCorpus, type BadLinePolicy } from '../models/retrieval/jsonl.ts';
import { loadNodeEmbedder } from '../models/retrieval/node-embedder.ts';
import { NodeDirStore } from '../models/retrieval/node-store.ts';
import { indexStatus, loadIndex, readManifest } from '../models/retrieval/persist.ts';
import type { CorpusRecord } from '../models/retrieval/record.ts';
import { Retriever } from '../models/retrieval/retriever.ts';
import type { IndexKind } from '../models/retrieval/search-types.ts';
import { loadVoyNode } from '../models/retrieval/voy-node.ts';

const USAGE = `usage:
  index build <corpus.jsonl | finemed-dpo> --embedder <dir|repo> --out <dir> [--dtype fp32|q8|fp16] [--vectors f32|f16]
              [--on-bad-line skip|stop] [--batch 16] [--limit N] [--no-remote] [--hub URL (FineMed-DPO mirror)]
  index query <dir> "question" [-k 5] [--embedder <dir|repo>] [--index voy|exact] [--corpus <jsonl>]
  index info <dir> [--corpus <jsonl>] [--embedder <dir|repo>]`;

const { values: opt, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    embedder: { type: 'string' },
    out: { type: 'string' },
    dtype: { type: 'string', default: 'fp32' },
    vectors: { type: 'string', default: 'f32' },
    'on-bad-line': { type: 'string', default: 'skip' },
    batch: { type: 'string', default: '16' },
    limit: { type: 'string' },
    'no-remote': { type: 'boolean', default: false },
    k: { type: 'string', short: 'k', default: '5' },
    index: { type: 'string', default: 'voy' },
    corpus: { type: 'string' },
    hub: { type: 'string' },
    help: { type: 'boolean', short: 'h', default: false },
  },
});

const log = (msg: string): void => void process.stderr.write(msg + '\n');
const now = (): number => performance.now();
const ms = (t: number): number => Math.round(t * 10) / 10;

function fail(message: string): never {
  throw new CorpusFormatError(`${message}\n${USAGE}`);
}

function oneOf<T extends string>(name: string, value: string, allowed: readonly T[]): T {
  if (!(allowed as readonly string[]).includes(value)) fail(`--${name} must be one of ${allowed.join(', ')}, got "${value}".`);
  return value as T;
}

function positiveInt(name: string, value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) fail(`--${name} must be a positive integer, got "${value}".`);
  return n;
}

async function embedderFor(spec: string): Promise<Embedder> {
  const t0 = now();
  const embedder = await loadNodeEmbedder(spec, {
    dtype: oneOf('dtype', opt.dtype!, ['fp32', 'q8', 'fp16'] as const),
    batchSize: positiveInt('batch', opt.batch!),
    allowRemote: !opt['no-remote'],
    onDownload: (p) => {
      if (p.loaded === p.total && p.total > 1e6) log(`loaded ${p.file} (${(p.total / 1e6).toFixed(1)} MB)`);
    },
  });
  log(`embedder ${embedder.info.model} (${embedder.info.dims} dims, ${embedder.info.dtype}) on ${embedder.device} in ${ms(now() - t0)} ms`);
  return embedder;
}

async function readCorpus(spec: string): Promise<{ records: CorpusRecord[]; name: string; skipped: number; badLines: unknown[] }> {
  if (spec === 'finemed-dpo') {
    const r = await loadFineMedDpo({
      hub: opt.hub,
      limit: opt.limit ? positiveInt('limit', opt.limit) : undefined,
      onProgress: (p) => process.stderr.write(`\rFineMed-DPO ${p.phase} ${(p.loadedBytes / 1e6).toFixed(1)}/${(p.totalBytes / 1e6).toFixed(1)} MB, ${p.rows} rows`),
    });
    log(`\nFineMed-DPO: ${r.records.length} records, ${r.skipped} rows skipped, ${r.withoutSummary} without a Summarization heading`);
    return { records: r.records, name: 'FineMed-DPO', skipped: r.skipped, badLines: r.badRows };
  }
  const r = await readJsonlCorpus(createReadStream(spec), {
    onBadLine: oneOf('on-bad-line', opt['on-bad-line']!, ['skip', 'stop'] as const satisfies readonly BadLinePolicy[]),
    defaults: { source: basename(spec) },
  });
  const records = opt.limit ? r.records.slice(0, positiveInt('limit', opt.limit)) : r.records;
  log(`${spec}: ${records.length} records${r.skipped ? `, ${r.skipped} bad lines SKIPPED:` : ''}`);
  for (const b of r.badLines.slice(0, 20)) log(`  line ${b.line}: ${b.reason}`);
  if (r.badLines.length > 20) log(`  ... and ${r.skipped - 20} more`);
  return { records, name: basename(spec), skipped: r.skipped, badLines: r.badLines };
}

async function build(): Promise<object> {
  const [corpusSpec] = positionals.slice(1);
  if (!corpusSpec || !opt.embedder || !opt.out) fail('build needs a corpus, --embedder and --out.');
  const t0 = now();
  const corpus = await readCorpus(corpusSpec);
  const t1 = now();
  const embedder = await embedderFor(opt.embedder);
  const t2 = now();
  let lastPct = -1;
  const data = await buildIndex(new NodeDirStore(opt.out), corpus.records, embedder, {
    corpusName: corpus.name,
    dtype: oneOf('vectors', opt.vectors!, ['f32', 'f16'] as const) === 'f16' ? 'F16' : 'F32',
    onProgress: (p) => {
      const pct = Math.floor((10 * p.done) / Math.max(1, p.total)) * 10;
      if (p.phase === 'embed' && pct !== lastPct) log(`embedding ${p.done}/${p.total} (${pct}%)`);
      lastPct = pct;
    },
  });
  const t3 = now();
  log(`wrote ${opt.out}: ${data.records.length} x ${data.manifest.vectors.dims} ${data.manifest.vectors.dtype}`);
  await embedder.dispose();
  return {
    out: opt.out,
    manifest: data.manifest,
    skipped: corpus.skipped,
    badLines: corpus.badLines,
    timings: { readMs: ms(t1 - t0), embedderLoadMs: ms(t2 - t1), buildMs: ms(t3 - t2), textsPerSecond: ms(data.records.length / ((t3 - t2) / 1000)) },
  };
}

async function query(): Promise<object> {
  const [dir, question] = positionals.slice(1);
  if (!dir || !question) fail('query needs an index folder and a question.');
  const k = positiveInt('k', opt.k!);
  const kind = oneOf('index', opt.index!, ['voy', 'exact'] as const satisfies readonly IndexKind[]);
  const store = new NodeDirStore(dir);
  const t0 = now();
  const manifest = await readManifest(store);
  if (!manifest) fail(`${dir} holds no index (no manifest.json).`);
  const embedder = await embedderFor(opt.embedder ?? manifest.embedder.model);
  const t1 = now();
  const corpusHash = opt.corpus ? await hashCorpus((await readCorpus(opt.corpus)).records) : undefined;
  const data = await loadIndex(store, { corpusHash, embedder: embedder.info });
  const t2 = now();
  const retriever = await Retriever.create(data, embedder, { index: kind, voy: kind === 'voy' ? await loadVoyNode() : undefined });
  const { results, timings } = await retriever.retrieve(question, k);
  retriever.dispose();
  await embedder.dispose();
  return {
    results: results.map(({ record: r, score, rank }) => ({
      id: r.id, score, rank, question: r.question, answer: r.answer, reasoning: r.reasoning,
      source: r.source, license: r.license, department: r.department,
    })),
    timings: {
      embedderLoadMs: ms(t1 - t0), indexLoadMs: ms(t2 - t1), indexBuildMs: ms(retriever.indexBuildMs),
      embedMs: ms(timings.embedMs), searchMs: ms(timings.searchMs), retrieveMs: ms(timings.totalMs),
    },
    index: { kind, count: data.records.length, dims: manifest.vectors.dims, embedder: manifest.embedder.model, corpus: manifest.corpus.name },
  };
}

async function info(): Promise<object> {
  const [dir] = positionals.slice(1);
  if (!dir) fail('info needs an index folder.');
  const store = new NodeDirStore(dir);
  const manifest = await readManifest(store);
  if (!manifest) return { state: 'missing', dir };
  const corpusHash = opt.corpus ? await hashCorpus((await readCorpus(opt.corpus)).records) : undefined;
  const embedder = opt.embedder ? await embedderFor(opt.embedder) : undefined;
  const status = await indexStatus(store, { corpusHash, embedder: embedder?.info });
  await embedder?.dispose();
  return status.state === 'stale' ? { state: 'stale', reasons: status.reasons, manifest } : { state: status.state, manifest };
}

async function main(): Promise<void> {
  const cmd = positionals[0];
  if (opt.help || !cmd) {
    log(USAGE);
    process.exitCode = opt.help ? 0 : 2;
    return;
  }
  const run = { build, query, info }[cmd];
  if (!run) fail(`unknown command "${cmd}".`);
  process.stdout.write(JSON.stringify(await run()) + '\n');
}

main().catch((e: unknown) => {
  const err = serializeError(e);
  log(`error (${err.code}): ${err.message}`);
  process.stdout.write(JSON.stringify({ error: err }) + '\n');
  process.exitCode = 1;
});
