/**
 * npm run bench:retrieval [-- --counts 1000,10000,30000 --dims 384,768 --queries 100 --texts 256 --gpu-texts 48
 *                            --lexical-counts 1747,32919 --lexical-queries 100 --no-browser --no-vectors]
 * Index build time and query latency (median, p95) of voy and of the exact scan at each size, in
 * one Node run; bytes of the persisted vectors; BM25 (lexical) build time, query latency and top-1
 * hits over traces.jsonl questions, repeated to the larger sizes; embedding throughput of the tiny
 * embedder in Node (CPU) and in headless Chromium's worker on WASM and on WebGPU. Prints tables,
 * then one JSON line.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { cpus } from 'node:os';
import { launchChromium, newPage, startServer } from '../e2e/support/index.ts';
import type { EmbedThroughput } from '../e2e/retrieval-bench.ts';
import { runIndexBench, type IndexBenchRow } from './bench/index-bench.ts';
import { readJsonlCorpus } from '../models/retrieval/jsonl.ts';
import { runLexicalBench, type LexicalBenchRow } from './bench/lexical-bench.ts';
import { loadNodeEmbedder } from '../node/retrieval/node-embedder.ts';
import { loadVoyNode } from '../node/retrieval/voy-node.ts';
import { HAS_SHARED, SHARED } from '../tests/helpers/shared.ts';
import { idList, numberFlag, parseArgs } from './cli-args.ts';

const args = parseArgs(process.argv.slice(2), ['no-browser', 'no-vectors'], ['counts', 'dims', 'queries', 'texts', 'gpu-texts', 'lexical-counts', 'lexical-queries']);
const counts = idList(String(args.flags.get('counts') ?? '1000,10000,30000'), 'counts');
const dims = idList(String(args.flags.get('dims') ?? '384,768'), 'dims');
const queries = numberFlag(args, 'queries', 100);
const K = 5;
const BATCH = 16;
const mb = (b: number): string => (b / 2 ** 20).toFixed(1);
const f = (x: number, d = 2): string => x.toFixed(d);

console.log(`== Index: voy vs exact, ${queries} queries, top-${K} (Node ${process.version}, ${cpus().length} x ${cpus()[0]?.model ?? 'CPU'})`);
const rows: IndexBenchRow[] = args.flags.has('no-vectors') ? [] : await runIndexBench({ counts, dims, queries, k: K, voy: await loadVoyNode(), log: (l) => console.log('  ' + l) });

let lexical: LexicalBenchRow[] = [];
if (HAS_SHARED) {
  const lexicalCounts = idList(String(args.flags.get('lexical-counts') ?? '1747,32919'), 'lexical-counts');
  const lexicalQueries = numberFlag(args, 'lexical-queries', 100);
  console.log(`== Lexical: BM25 (MiniSearch) over traces.jsonl questions, ${lexicalQueries} x 3 queries (whole, first half, misspelt), top-5`);
  const base = (await readJsonlCorpus(readFileSync(join(SHARED, 'data', 'traces.jsonl'), 'utf8'))).records;
  lexical = await runLexicalBench(base, { counts: lexicalCounts, queries: lexicalQueries, log: (l) => console.log('  ' + l) });
}

const embedding: Record<string, EmbedThroughput | { error: string }> = {};
if (!HAS_SHARED) {
  console.warn(`../shared is absent (${SHARED}): the embedding throughput of tiny-random-bert is skipped.`);
} else {
  const questions = readFileSync(join(SHARED, 'data', 'traces.jsonl'), 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as { question: string }).question);
  const texts = questions.slice(0, numberFlag(args, 'texts', 256));
  const gpuTexts = questions.slice(0, numberFlag(args, 'gpu-texts', 48));
  console.log(`== Embedding: tiny-random-bert (random weights, bge tokenizer), ${texts.length} traces questions, batch ${BATCH}`);
  const node = await loadNodeEmbedder(join(SHARED, 'models', 'tiny-random-bert'), { batchSize: BATCH });
  await node.embed(texts.slice(0, BATCH));
  const t0 = performance.now();
  await node.embed(texts);
  const ms = performance.now() - t0;
  embedding['node-cpu'] = { device: 'cpu (onnxruntime-node)', texts: texts.length, warmupMs: 0, ms, textsPerSecond: texts.length / (ms / 1000) };
  await node.dispose();

  if (!args.flags.has('no-browser')) {
    const server = await startServer();
    const browser = await launchChromium();
    try {
      const page = await newPage(browser, server.url + 'e2e/retrieval-harness.html');
      await page.waitForFunction(() => window.retrieval?.ready === true);
      page.setDefaultTimeout(0);
      for (const [device, set] of [['wasm', texts], ['webgpu', gpuTexts]] as const) {
        const spec = { model: 'tiny-random-bert', allowRemoteModels: false, localModelPath: '/shared/models/', device };
        try {
          embedding[`chromium-${device}`] = await page.evaluate(({ spec, set, batch }) => window.retrieval.embedThroughput(spec, set, batch), { spec, set: [...set], batch: BATCH });
        } catch (e) {
          embedding[`chromium-${device}`] = { error: (e as Error).message.split('\n')[0] };
        }
        console.log(`  chromium ${device}: ${JSON.stringify(embedding[`chromium-${device}`])}`);
      }
    } finally {
      await browser.close();
      await server.close();
    }
  }
}

if (rows.length) {
  console.log('\n| vectors | dims | index | build ms | query median ms | query p95 ms | recall@5 | shards | persisted F32 / F16 MiB |');
  console.log('|---:|---:|---|---:|---:|---:|---:|---:|---:|');
}
for (const r of rows) {
  console.log(`| ${r.count} | ${r.dims} | ${r.kind} | ${f(r.buildMs, 1)} | ${f(r.queryMedianMs, 3)} | ${f(r.queryP95Ms, 3)} | ${f(r.recall, 3)} | ${r.shards} | ${mb(r.persistedF32Bytes)} / ${mb(r.persistedF16Bytes)} |`);
}
console.log('');
for (let i = 0; i + 1 < rows.length; i += 2) {
  const [exact, voy] = [rows[i], rows[i + 1]];
  const ratio = voy.queryMedianMs / exact.queryMedianMs;
  console.log(`${exact.count} x ${exact.dims}: exact is ${ratio >= 1 ? `${f(ratio, 1)}x faster` : `${f(1 / ratio, 1)}x slower`} per query than voy (median ${f(exact.queryMedianMs, 3)} vs ${f(voy.queryMedianMs, 3)} ms), and needs no build (voy: ${f(voy.buildMs, 0)} ms; WASM memory ${mb(voy.wasmBytes)} MiB).`);
}
if (lexical.length) {
  console.log('\n| records | BM25 build ms | query median ms | query p95 ms | top-1 whole / half / misspelt | JSON MB | toJSON ms | loadJSON ms |');
  console.log('|---:|---:|---:|---:|---|---:|---:|---:|');
  for (const r of lexical) {
    console.log(`| ${r.records} | ${f(r.buildMs, 0)} | ${f(r.queryMedianMs, 2)} | ${f(r.queryP95Ms, 2)} | ${f(r.top1.exact)} / ${f(r.top1.half)} / ${f(r.top1.typo)} | ${f(r.jsonBytes / 1e6, 1)} | ${f(r.serializeMs, 0)} | ${f(r.loadJsonMs, 0)} |`);
  }
}
if (Object.keys(embedding).length) {
  console.log('\n| embedder run | device | texts | warm-up ms | texts/s |');
  console.log('|---|---|---:|---:|---:|');
  for (const [name, e] of Object.entries(embedding)) {
    console.log('error' in e ? `| ${name} | failed: ${e.error} | | | |` : `| ${name} | ${e.device} | ${e.texts} | ${f(e.warmupMs, 0)} | ${f(e.textsPerSecond, 1)} |`);
  }
}
console.log(JSON.stringify({ bench: 'retrieval', k: K, queries, index: rows, lexical, embedding }));
