/**
 * Retrieval index CLI. Same code and artifact format as the browser worker.
 *
 *   npm run --silent index -- build <corpus.jsonl | finemed-dpo> --out <dir> [--embedder <dir|repo>]
 *        [--dtype fp32|q8|fp16] [--vectors f32|f16] [--on-bad-line skip|stop] [--batch 16] [--limit N]
 *        [--checkpoint N] [--no-resume] [--no-remote] [--hub URL] [--revision main] [--cache-dir DIR]
 *   npm run --silent index -- query <dir> "question" [-k 5] [--retriever embedding|lexical] [--embedder <dir|repo>]
 *        [--index auto|voy|exact] [--corpus <jsonl>] [--no-remote] [--hub URL] [--cache-dir DIR]
 *   npm run --silent index -- info <dir> [--corpus <jsonl>] [--embedder <dir|repo>]
 *   npm run --silent index -- estimate <corpus.jsonl | finemed-dpo | N> [--embedder <dir|repo>] [--measure]
 *
 * The embedder defaults to bge-base-en-v1.5; an index remembers where its embedder came from, so
 * `query` needs no --embedder and reads a hub embedder from the cache folder with no request.
 * An interrupted build resumes from its last checkpoint. One hub base (--hub, else FINEMED_HUB,
 * else huggingface.co) serves the embedder and FineMed-DPO. Progress goes to stderr; the last
 * stdout line is one JSON object. A failure prints {"error": {"name", "code", "message"}} and exits
 * 1 for an engine or input error, 2 for a malformed command line (code "usage"); the convention
 * of every CLI, in scripts/cli-errors.ts.
 */
import { createReadStream } from 'node:fs';
import { basename, join } from 'node:path';
import { parseArgs } from 'node:util';
import { NotFoundError } from '../models/errors.ts';
import { buildIndex } from '../models/retrieval/build.ts';
import { DEFAULT_EMBEDDER } from '../models/retrieval/catalog.ts';
import { hashCorpus } from '../models/retrieval/corpus-hash.ts';
import { describeSource } from '../models/retrieval/embedder-source.ts';
import type { Embedder } from '../models/retrieval/embedder-types.ts';
import { estimateBuild } from '../models/retrieval/estimate.ts';
import { loadFineMedDpo } from '../models/retrieval/finemed-loader.ts';
import { chooseIndexKind, type IndexChoice } from '../models/retrieval/index-kind.ts';
import { readJsonlCorpus, type BadLinePolicy } from '../models/retrieval/jsonl.ts';
import { LexicalRetriever } from '../models/retrieval/lexical-retriever.ts';
import type { IndexManifest } from '../models/retrieval/manifest.ts';
import { loadNodeEmbedder, loadIndexEmbedder, type NodeEmbedderOptions } from '../node/retrieval/node-embedder.ts';
import { NodeDirStore } from '../node/retrieval/node-store.ts';
import { indexStatus, loadIndex, readManifest } from '../models/retrieval/persist.ts';
import type { CorpusRecord } from '../models/retrieval/record.ts';
import { Retriever, type RetrieveResult } from '../models/retrieval/retriever.ts';
import { loadVoyNode } from '../node/retrieval/voy-node.ts';
import { runCli, UsageError } from './cli-errors.ts';

const USAGE = `usage:
  index build <corpus.jsonl | finemed-dpo> --out <dir> [--embedder <dir|repo> (default ${DEFAULT_EMBEDDER})]
              [--dtype fp32|q8|fp16] [--vectors f32|f16] [--on-bad-line skip|stop] [--batch 16] [--limit N]
              [--checkpoint N (rows per resumable checkpoint)] [--no-resume] [--no-remote] [--hub URL] [--revision REV]
              [--cache-dir DIR (hub embedders in DIR/models; default $XDG_CACHE_HOME/finemed-ttt or ~/.cache/finemed-ttt)]
  index query <dir> "question" [-k 5] [--retriever embedding|lexical] [--embedder <dir|repo> (default: the one the index names)]
              [--index auto|voy|exact] [--corpus <jsonl>] [--no-remote] [--hub URL] [--cache-dir DIR]
  index info <dir> [--corpus <jsonl>] [--embedder <dir|repo>]
  index estimate <corpus.jsonl | finemed-dpo | N> [--embedder <dir|repo>] [--measure] [--hub URL] [--cache-dir DIR]`;

const OPTIONS = {
  embedder: { type: 'string' },
  out: { type: 'string' },
  dtype: { type: 'string', default: 'fp32' },
  vectors: { type: 'string', default: 'f32' },
  'on-bad-line': { type: 'string', default: 'skip' },
  batch: { type: 'string', default: '16' },
  limit: { type: 'string' },
  checkpoint: { type: 'string' },
  'no-resume': { type: 'boolean', default: false },
  'no-remote': { type: 'boolean', default: false },
  k: { type: 'string', short: 'k', default: '5' },
  index: { type: 'string', default: 'auto' },
  retriever: { type: 'string', default: 'embedding' },
  corpus: { type: 'string' },
  hub: { type: 'string' },
  revision: { type: 'string' },
  'cache-dir': { type: 'string' },
  measure: { type: 'boolean', default: false },
  help: { type: 'boolean', short: 'h', default: false },
} as const;

/** The command line; node:util's complaints (an unknown option, a missing value) are usage errors. */
function parseCommandLine() {
  try {
    return parseArgs({ allowPositionals: true, options: OPTIONS });
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

let opt: ReturnType<typeof parseCommandLine>['values'];
let positionals: string[] = [];

const log = (msg: string): void => void process.stderr.write(msg + '\n');
const now = (): number => performance.now();
const ms = (t: number): number => Math.round(t * 10) / 10;
const hub = (): string | undefined => opt.hub ?? process.env.FINEMED_HUB;

function fail(message: string): never {
  throw new UsageError(message);
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

function embedderOptions(): NodeEmbedderOptions {
  return {
    dtype: oneOf('dtype', opt.dtype!, ['fp32', 'q8', 'fp16'] as const),
    batchSize: positiveInt('batch', opt.batch!),
    allowRemote: !opt['no-remote'],
    remoteHost: hub(),
    revision: opt.revision,
    // The project's cache folder, as for the LLM CLI (its weights live in <dir>/weights).
    cacheDir: opt['cache-dir'] ? join(opt['cache-dir'], 'models') : undefined,
    onDownload: (p) => {
      if (p.loaded === p.total && p.total > 1e6) log(`loaded ${p.file} (${(p.total / 1e6).toFixed(1)} MB)`);
    },
  };
}

function logEmbedder(embedder: Embedder, t0: number): void {
  const from = embedder.source ? `, ${embedder.fromCache ? 'from the cache: ' : ''}${describeSource(embedder.source)}` : '';
  log(`embedder ${embedder.info.model} (${embedder.info.dims} dims, ${embedder.info.dtype}) on ${embedder.device} in ${ms(now() - t0)} ms${from}`);
}

async function embedderFor(spec: string): Promise<Embedder> {
  const t0 = now();
  const embedder = await loadNodeEmbedder(spec, embedderOptions());
  logEmbedder(embedder, t0);
  return embedder;
}

/** --embedder when given; else where the index says its embedder came from (cache first); else its model id on the hub. */
async function indexEmbedder(manifest: IndexManifest): Promise<Embedder> {
  if (opt.embedder) return embedderFor(opt.embedder);
  const t0 = now();
  // The index's own dtype and hub, unless --hub overrides the hub.
  const { dtype: _dtype, remoteHost: _hub, ...o } = embedderOptions();
  const embedder = await loadIndexEmbedder(manifest, { ...o, ...(opt.hub ? { remoteHost: opt.hub } : {}) });
  logEmbedder(embedder, t0);
  return embedder;
}

async function readCorpus(spec: string): Promise<{ records: CorpusRecord[]; name: string; skipped: number; badLines: unknown[] }> {
  if (spec === 'finemed-dpo') {
    const r = await loadFineMedDpo({
      hub: hub(),
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
  if (!corpusSpec || !opt.out) fail('build needs a corpus and --out.');
  const t0 = now();
  const corpus = await readCorpus(corpusSpec);
  const t1 = now();
  const embedder = await embedderFor(opt.embedder ?? DEFAULT_EMBEDDER);
  const t2 = now();
  let lastPct = -1;
  let resumedFrom = 0;
  const data = await buildIndex(new NodeDirStore(opt.out), corpus.records, embedder, {
    corpusName: corpus.name,
    dtype: oneOf('vectors', opt.vectors!, ['f32', 'f16'] as const) === 'f16' ? 'F16' : 'F32',
    resume: !opt['no-resume'],
    checkpointRows: opt.checkpoint ? positiveInt('checkpoint', opt.checkpoint) : 'auto',
    onProgress: (p) => {
      if (p.phase !== 'embed') return;
      if (p.resumedFrom && p.resumedFrom !== resumedFrom) log(`resuming a partial build: ${p.resumedFrom} of ${p.total} rows are embedded already`);
      resumedFrom = p.resumedFrom ?? 0;
      const pct = Math.floor((10 * p.done) / Math.max(1, p.total)) * 10;
      const rate = p.textsPerSecond ? `, ${p.textsPerSecond.toFixed(1)} texts/s, ${((p.etaMs ?? 0) / 1000).toFixed(0)} s left` : '';
      if (pct !== lastPct) log(`embedding ${p.done}/${p.total} (${pct}%)${rate}`);
      lastPct = pct;
    },
  });
  const t3 = now();
  log(`wrote ${opt.out}: ${data.records.length} x ${data.manifest.vectors.dims} ${data.manifest.vectors.dtype}`);
  await embedder.dispose();
  const embedded = data.records.length - resumedFrom;
  return {
    out: opt.out,
    manifest: data.manifest,
    skipped: corpus.skipped,
    badLines: corpus.badLines,
    resumedFrom,
    timings: { readMs: ms(t1 - t0), embedderLoadMs: ms(t2 - t1), buildMs: ms(t3 - t2), textsPerSecond: ms(embedded / ((t3 - t2) / 1000)) },
  };
}

async function query(): Promise<object> {
  const [dir, question] = positionals.slice(1);
  if (!dir || !question) fail('query needs an index folder and a question.');
  const k = positiveInt('k', opt.k!);
  const choice = oneOf('index', opt.index!, ['auto', 'voy', 'exact'] as const satisfies readonly IndexChoice[]);
  const which = oneOf('retriever', opt.retriever!, ['embedding', 'lexical'] as const);
  const store = new NodeDirStore(dir);
  const t0 = now();
  const manifest = await readManifest(store);
  if (!manifest) throw new NotFoundError(`${dir} holds no index (no manifest.json).`);
  const corpusHash = opt.corpus ? await hashCorpus((await readCorpus(opt.corpus)).records) : undefined;
  let result: RetrieveResult;
  let timings: Record<string, number>;
  let kind: string;
  let note: string | undefined;
  if (which === 'lexical') {
    // BM25 over the index's records: no embedder at all.
    const data = await loadIndex(store, { corpusHash });
    const t1 = now();
    const lexical = await LexicalRetriever.create(data.records);
    result = await lexical.retrieve(question, k);
    kind = 'bm25';
    timings = { indexLoadMs: ms(t1 - t0), indexBuildMs: ms(lexical.indexBuildMs), searchMs: ms(result.timings.searchMs), retrieveMs: ms(result.timings.totalMs) };
  } else {
    const embedder = await indexEmbedder(manifest);
    const t1 = now();
    const data = await loadIndex(store, { corpusHash, embedder: embedder.info });
    const t2 = now();
    const chosen = chooseIndexKind(choice, manifest.vectors.dims);
    if (chosen.note) log(chosen.note);
    kind = chosen.kind;
    note = chosen.note;
    const retriever = await Retriever.create(data, embedder, { index: chosen.kind, voy: chosen.kind === 'voy' ? await loadVoyNode() : undefined });
    result = await retriever.retrieve(question, k);
    retriever.dispose();
    await embedder.dispose();
    timings = {
      embedderLoadMs: ms(t1 - t0), indexLoadMs: ms(t2 - t1), indexBuildMs: ms(retriever.indexBuildMs),
      embedMs: ms(result.timings.embedMs), searchMs: ms(result.timings.searchMs), retrieveMs: ms(result.timings.totalMs),
    };
  }
  return {
    retriever: result.retriever,
    results: result.results.map(({ record: r, score, rank, bm25 }) => ({
      id: r.id, score, ...(bm25 !== undefined ? { bm25 } : {}), rank, question: r.question, answer: r.answer, reasoning: r.reasoning,
      source: r.source, license: r.license, department: r.department,
    })),
    timings,
    index: {
      kind, ...(note ? { note } : {}), count: manifest.corpus.count, dims: manifest.vectors.dims, embedder: manifest.embedder.model,
      corpus: manifest.corpus.name, ...(manifest.embedderSource ? { embedderSource: manifest.embedderSource } : {}),
    },
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

/** Time to embed a corpus: measured on a sample with the embedder (--measure), else assumed from the catalogue. */
async function estimate(): Promise<object> {
  const [spec] = positionals.slice(1);
  if (!spec) fail('estimate needs a corpus or a number of texts.');
  const count = /^\d+$/.test(spec) ? Number(spec) : null;
  const records = count === null ? (await readCorpus(spec)).records : [];
  const texts = count ?? records.length;
  const model = opt.embedder ?? DEFAULT_EMBEDDER;
  if (!opt.measure) return estimateBuild({ model, device: 'cpu', texts });
  const embedder = await embedderFor(model);
  const sample = (records.length ? records.slice(0, 64).map((r) => r.question) : Array.from({ length: 64 }, (_, i) => `A patient presents with symptom number ${i}; what is the most likely diagnosis and next step?`));
  await embedder.embed(sample.slice(0, 4));
  const t0 = now();
  await embedder.embed(sample);
  const rate = sample.length / ((now() - t0) / 1000);
  await embedder.dispose();
  return estimateBuild({ model: embedder.info.model, device: embedder.device, texts, measuredTextsPerSecond: rate });
}

async function main(): Promise<number> {
  ({ values: opt, positionals } = parseCommandLine());
  const cmd = positionals[0];
  if (opt.help) {
    log(USAGE);
    return 0;
  }
  if (!cmd) fail('a command is needed: build, query, info or estimate.');
  const run = { build, query, info, estimate }[cmd];
  if (!run) fail(`unknown command "${cmd}"; expected build, query, info or estimate.`);
  process.stdout.write(JSON.stringify(await run()) + '\n');
  return 0;
}

void runCli(main, () => USAGE);
