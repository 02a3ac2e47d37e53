/**
 * npm run bench:cache [-- --runs N | --quick] [--no-node] [--no-browser]
 *
 * Weight cache: first load (source read + quantize + write-through into a new entry) vs cached
 * load (entry read + checksum, no source, no quantize), in Node (Dawn and the CPU backend, a
 * NodeCacheStore folder) and in headless Chromium (a module worker, OpfsCacheStore, WebGPU with
 * f32 activations), for stories260K (../shared) and a one-layer FineMedLM-o1-shaped model with
 * the real vocabulary (random bf16 safetensors written to a temp folder; the browser fetches it
 * from the local hub); raw OPFS write and read(+checksum) MB/s; and the cached-load time
 * projected to the 8B model's 4.5 GB of 4-bit weights.
 *   --runs N      repetitions, medians with min-max (default 3)
 *   --quick       1 run, OPFS probes of 32 and 128 MiB instead of 128 and 512 MiB
 * Writes bench-results/<date>-cache-<adapters>.json, prints a Markdown table on stdout (progress
 * on stderr).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import type { Backend, WeightFormat } from '../models/api.ts';
import { finemedLayerConfig } from './bench/synthetic-checkpoint.ts';
import { FINEMED_VOCAB } from './bench/ttt-memory.ts';
import { NodeCacheStore } from '../node/cache/node-store.ts';
import { acquireGpu } from '../models/gpu/device.ts';
import { nodeGpu } from '../node/gpu/node-gpu.ts';
import { NodeDirSource } from '../node/io/node-source.ts';
import { assertPlanFits, planMemory } from '../models/memory-plan.ts';
import { CHROMIUM_ARGS, CHROMIUM_PATH, ROOT } from '../e2e/support/index.ts';
import { SHARED } from '../tests/helpers/shared.ts';
import { firstVsCached, type LoadPair } from './bench/cache-load.ts';
import type { CacheWorkerRequest, CacheWorkerResult } from './bench/cache.worker.ts';
import type { OpfsThroughput } from './bench/opfs-throughput.ts';
import { serveBuiltPage } from './bench/serve-built.ts';
import { writeSyntheticModel } from './bench/synthetic-model.ts';
import { numberFlag, parseArgs } from './cli-args.ts';
import { cell, stats, type Stats } from './bench/stats.ts';

const args = parseArgs(process.argv.slice(2), ['quick', 'no-node', 'no-browser'], ['runs']);
const QUICK = args.flags.has('quick');
const RUNS = QUICK ? 1 : numberFlag(args, 'runs', 3);
if (!Number.isInteger(RUNS) || RUNS < 1) throw new Error(`--runs must be a positive integer, got ${RUNS}`);
const OPFS_MIB = QUICK ? [32, 128] : [128, 512];
/** FineMedLM-o1's 4-bit weights (DESIGN.md: "about 4.5 GB"). */
const TARGET_BYTES = 4.5e9;
const STORIES_DIR = join(SHARED, 'golden/stories260K-hf/f32');
const HUB_REPO = 'bench/finemed-o1-1layer';
const MB = 1e6;
const log = (line: string) => process.stderr.write(line + '\n');


/** One row of the load table: a model, weight format and place, with its pairs over the runs. */
interface LoadRow { model: string; weights: WeightFormat; where: string; pairs: LoadPair[] }

function summarise(r: LoadRow) {
  const mbps = (p: LoadPair, ms: number) => p.entryBytes / MB / (ms / 1000);
  return {
    model: r.model, weights: r.weights, where: r.where, adapter: r.pairs[0]?.adapter ?? null,
    entryMB: r.pairs[0].entryBytes / MB, sourceMB: r.pairs[0].sourceBytes / MB,
    firstMs: stats(r.pairs.map((p) => p.firstMs)), cachedMs: stats(r.pairs.map((p) => p.cachedMs)),
    /** Cached load minus its weights phase: tokenizer, device, pipelines, activations. */
    setupMs: stats(r.pairs.map((p) => p.cachedMs - p.cachedWeightsMs)),
    cachedMBps: stats(r.pairs.map((p) => mbps(p, p.cachedMs))),
    weightsMBps: stats(r.pairs.map((p) => mbps(p, p.cachedWeightsMs))),
    pairs: r.pairs,
  };
}
/** MB/s with two significant digits below 10 (the tiny model's entries are a fraction of a MB). */
const rate = (s: Stats) => cell(s, s.median < 1 ? 2 : s.median < 10 ? 1 : 0);

/** The largest of these vocabularies whose one-layer q4 model fits the device's limits (lavapipe binds 128 MiB). */
function fittingVocab(limits: GPUSupportedLimits, precision: 'f16' | 'f32'): number | null {
  for (const v of [FINEMED_VOCAB, 65536, 32768]) {
    try {
      assertPlanFits(planMemory(finemedLayerConfig(1, v), { weights: 'q4', precision, maxContext: 16 }), limits);
      return v;
    } catch {
      // too large for this device: try the next
    }
  }
  return null;
}

async function nodeBench(work: string, realModelDir: () => Promise<string>, notes: string[]): Promise<LoadRow[]> {
  const ctx = await acquireGpu(nodeGpu(), { f16: true });
  const vocab = fittingVocab(ctx.device.limits, ctx.f16 ? 'f16' : 'f32');
  const bindMiB = ctx.device.limits.maxStorageBufferBindingSize / 2 ** 20;
  ctx.device.destroy();
  const cases: { model: string; dir: string; backend: Backend; weights: WeightFormat }[] = [];
  if (existsSync(STORIES_DIR)) {
    for (const backend of ['webgpu', 'cpu'] as const) for (const weights of ['q4', 'f32'] as const) cases.push({ model: 'stories260K', dir: STORIES_DIR, backend, weights });
  }
  if (vocab !== null) {
    let dir: string;
    if (vocab === FINEMED_VOCAB) dir = await realModelDir();
    else {
      dir = join(work, `finemed-o1-1layer-v${vocab}`);
      await writeSyntheticModel(dir, finemedLayerConfig(1, vocab));
      notes.push(`Node/Dawn: the adapter binds at most ${bindMiB} MiB per storage buffer, so the real vocabulary's 262.7 MB q4 embedding is refused; the synthetic layer uses vocab ${vocab} there.`);
    }
    cases.push({ model: `FineMedLM-o1 1 layer, vocab ${vocab}`, dir, backend: 'webgpu', weights: 'q4' });
  } else notes.push('Node/Dawn: even vocab 32768 does not fit this adapter; no synthetic figure.');

  const rows: LoadRow[] = cases.map((c) => ({ model: c.model, weights: c.weights, where: c.backend === 'cpu' ? 'Node CPU' : 'Node Dawn', pairs: [] }));
  for (let r = 0; r < RUNS; r++) {
    for (const [i, c] of cases.entries()) {
      const dir = await mkdtemp(join(work, 'node-cache-'));
      try {
        // Default precision: f16 activations where the adapter has shader-f16 (lavapipe does); weights are the same bytes.
        const p = await firstVsCached(new NodeDirSource(c.dir), new NodeCacheStore(dir), { backend: c.backend, weights: c.weights, gpu: nodeGpu(), maxContext: 16 });
        rows[i].pairs.push(p);
        log(`  run ${r + 1}: ${c.model} ${c.weights} ${c.backend}: first ${p.firstMs.toFixed(0)} ms, cached ${p.cachedMs.toFixed(0)} ms (${(p.entryBytes / MB).toFixed(1)} MB entry)`);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    }
  }
  return rows;
}

async function browserBench(work: string, hubDir: string, realModelDir: () => Promise<string>): Promise<{ rows: LoadRow[]; opfs: OpfsThroughput[][] }> {
  await realModelDir();
  process.env.FINEMED_HUB_DIR = hubDir; // read by vite.config.ts when serveBuiltPage loads it
  const server = await serveBuiltPage('scripts/bench/cache.html');
  // A persistent profile: Playwright's newContext() is off the record, and its OPFS lives in memory.
  const context = await chromium.launchPersistentContext(await mkdtemp(join(work, 'profile-')), { executablePath: CHROMIUM_PATH, headless: true, args: CHROMIUM_ARGS });
  try {
    const page = await context.newPage();
    page.on('console', (m) => { if (m.type() === 'log') log(`  ${m.text()}`); }); // not the 404s of optional-file probes
    page.on('pageerror', (e) => log(`  [page error] ${e.message}`));
    page.setDefaultTimeout(0);
    await page.goto(server.url + 'scripts/bench/cache.html');
    await page.waitForFunction(() => typeof window.runCacheBench === 'function');
    const req: CacheWorkerRequest = {
      cases: [
        ...(existsSync(STORIES_DIR) ? (['q4', 'f32'] as const).map((weights) => ({ name: 'stories260K', url: '/shared/golden/stories260K-hf/f32/', weights })) : []),
        { name: `FineMedLM-o1 1 layer, vocab ${FINEMED_VOCAB}`, url: `/hub/${HUB_REPO}/resolve/main/`, weights: 'q4' },
      ],
      runs: RUNS,
      opfsBytes: OPFS_MIB.map((m) => m * 2 ** 20),
    };
    const res: CacheWorkerResult = await page.evaluate((r) => window.runCacheBench(r), req);
    return { rows: res.loads.map((l) => ({ model: l.name, weights: l.weights, where: 'Chromium WebGPU, OPFS', pairs: l.pairs })), opfs: res.opfs };
  } finally {
    await context.close();
    await server.close();
  }
}

const slug = (adapter: string) => (adapter.split(' / ').at(-1)?.split(/[\s:(]/)[0] ?? 'gpu').toLowerCase().replace(/[^a-z0-9]+/g, '');

/** Everything the run measured, as written to the JSON file. */
function report(rows: LoadRow[], opfs: OpfsThroughput[][], browser: string | null, notes: string[]) {
  const loads = rows.map(summarise);
  const opfsStats = opfs.map((runs) => ({
    mib: runs[0].bytes / 2 ** 20, sliceMiB: runs[0].sliceBytes / 2 ** 20,
    writeMBps: stats(runs.map((t) => t.writeMBps)), readMBps: stats(runs.map((t) => t.readMBps)), runs,
  }));
  const projection = loads.filter((l) => l.model.startsWith('FineMedLM')).map((l) => ({
    where: l.where, model: l.model, cachedMBps: l.cachedMBps.median, weightsMBps: l.weightsMBps.median, setupS: l.setupMs.median / 1000,
    simpleS: TARGET_BYTES / MB / l.cachedMBps.median,
    splitS: l.setupMs.median / 1000 + TARGET_BYTES / MB / l.weightsMBps.median,
  }));
  const adapters = [...new Set(loads.map((l) => l.adapter).filter((a): a is string => a !== null))];
  return { date: new Date().toISOString(), runs: RUNS, quick: QUICK, browser, adapters, loads, opfs: opfsStats, projection, targetBytes: TARGET_BYTES, notes };
}

function markdown(r: ReturnType<typeof report>): string {
  const floor = r.opfs.at(-1);
  return [
    `## bench:cache — ${r.date.slice(0, 16)}Z, ${r.runs} run(s)${r.quick ? ' (--quick)' : ''}, medians (min–max)`,
    '',
    `Adapters: ${r.adapters.join('; ') || 'none'}. Browser: ${r.browser ?? 'not run'}. Load average at the end ${loadavg()[0].toFixed(1)} on ${availableParallelism()} cores shared with other processes: figures are noisy.`,
    'MB = 10^6 bytes. First load = source read + quantize + write-through into a new entry; cached = entry read + checksum into the engine, 0 source calls. Node: NodeCacheStore in a temp folder (the OS page cache is warm: the entry was just written); Chromium: OpfsCacheStore in a module worker, persistent profile.',
    '',
    '| model | weights | where | first load ms | cached load ms | first / cached | entry MB | source MB | cached MB/s (whole load) | cached weights phase MB/s |',
    '|---|---|---|---|---|---|---|---|---|---|',
    ...r.loads.map((l) => `| ${l.model} | ${l.weights} | ${l.where} | ${cell(l.firstMs)} | ${cell(l.cachedMs)} | ${(l.firstMs.median / l.cachedMs.median).toFixed(1)}x | ${l.entryMB.toFixed(1)} | ${l.sourceMB.toFixed(1)} | ${rate(l.cachedMBps)} | ${rate(l.weightsMBps)} |`),
    '',
    ...(r.opfs.length ? [
      `| OPFS file (${r.opfs[0].sliceMiB} MiB slices, OpfsCacheStore sync handles) | write + flush MB/s | read + checksum MB/s |`,
      '|---|---|---|',
      ...r.opfs.map((o) => `| ${o.mib} MiB | ${cell(o.writeMBps)} | ${cell(o.readMBps)} |`),
      '',
    ] : []),
    ...(r.projection.length ? [
      'Projection to the 8B model (4.5 GB of 4-bit weights, 32 layers), from the one-layer model (the largest entry):',
      '- simple: t = 4.5e9 B / (R × 10^6 B/s), R = cached MB/s of the whole load (its fixed setup is then scaled too, so this overstates);',
      '- split: t = setup + 4.5e9 B / (Rw × 10^6 B/s), setup = cached load minus its weights phase (tokenizer, device, pipelines: the same for 32 layers), Rw = MB/s of the weights phase.',
      'Measured on software adapters (the GPU emulated on the CPU); on a real GPU and SSD both rates differ (disk, checksum and upload speed).',
      '',
      '| where | R MB/s | Rw MB/s | setup s | 4.5 GB simple | 4.5 GB split |',
      '|---|---|---|---|---|---|',
      ...r.projection.map((p) => `| ${p.where} (${p.model}) | ${p.cachedMBps.toFixed(0)} | ${p.weightsMBps.toFixed(0)} | ${p.setupS.toFixed(1)} | ${p.simpleS.toFixed(1)} s | ${p.splitS.toFixed(1)} s |`),
      ...(floor ? [`| OPFS read + checksum alone (${floor.mib} MiB probe; the floor in Chromium) | - | ${floor.readMBps.median.toFixed(0)} | - | - | ${(TARGET_BYTES / MB / floor.readMBps.median).toFixed(1)} s |`] : []),
      '',
    ] : []),
    ...r.notes.map((n) => `- ${n}`),
  ].join('\n');
}

async function main(): Promise<void> {
  const t0 = performance.now();
  const work = await mkdtemp(join(tmpdir(), 'bench-cache-'));
  const hubDir = join(work, 'hub');
  let written: Promise<string> | null = null;
  // The 2.5 GB real-vocabulary model is written once, when a part needs it.
  const realModelDir = () => (written ??= (async () => {
    const dir = join(hubDir, HUB_REPO);
    log(`writing the one-layer FineMedLM-o1-shaped model (vocab ${FINEMED_VOCAB}, bf16) to ${dir}`);
    await writeSyntheticModel(dir, finemedLayerConfig(1, FINEMED_VOCAB));
    return dir;
  })());
  const notes: string[] = [];
  if (!existsSync(STORIES_DIR)) notes.push(`[SKIPPED] stories260K: ${STORIES_DIR} is absent (../shared not beside the checkout).`);
  try {
    const rows: LoadRow[] = [];
    let opfs: OpfsThroughput[][] = [];
    if (!args.flags.has('no-node')) {
      log(`== Node (load average ${loadavg()[0].toFixed(1)})`);
      rows.push(...await nodeBench(work, realModelDir, notes));
    }
    let browser: string | null = null;
    if (!args.flags.has('no-browser')) {
      browser = execFileSync(CHROMIUM_PATH, ['--version']).toString().trim();
      log(`== ${browser}, headless (load average ${loadavg()[0].toFixed(1)})`);
      const b = await browserBench(work, hubDir, realModelDir);
      rows.push(...b.rows);
      opfs = b.opfs;
    }
    notes.push(`total ${((performance.now() - t0) / 1000).toFixed(0)} s`);
    const r = report(rows, opfs, browser, notes);
    const dir = join(ROOT, 'bench-results');
    mkdirSync(dir, { recursive: true });
    const file = join(dir, `${r.date.slice(0, 10)}-cache-${r.adapters.map(slug).join('-') || 'cpu'}.json`);
    writeFileSync(file, JSON.stringify(r, null, 2));
    // No process.exit: the process ends once stdout has drained, so a piped table is never cut short.
    process.stdout.write(`${markdown(r)}\n\nwrote ${file}\n`);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`bench:cache failed: ${e instanceof Error ? e.stack ?? e.message : String(e)}\n`);
  process.exitCode = 1;
});
