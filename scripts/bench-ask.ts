/**
 * npm run bench:ask [-- --runs N --steps N --max-new N --max-train-tokens N]
 *
 * End-to-end time of one TTT question per stage (retrieve, each training step, time to first
 * token, decode tokens/s, restore) in headless Chromium, in the built app driven through its UI,
 * with the stand-ins from a local hub (stories260K f32 + tiny-random-bert, the short-traces
 * fixture as the corpus), on the WebGPU and the CPU backend side by side. Medians over the runs
 * (min-max in brackets); the record of every run comes from the app's own JSON export.
 * Writes bench-results/<date>-ask-<adapter>.json and prints a Markdown table.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { answerOf, appUrl, exportJson, importTraces, loadModels, openApp, setSettings, startAsk } from '../e2e/support/app-driver.ts';
import { SHORT_TRACES, SHORT_TRACES_NAME, shortQuestion } from '../e2e/support/cli-ask.ts';
import { buildApp, CHROMIUM_PATH, launchChromium, ROOT, startBuiltApp } from '../e2e/support/index.ts';
import { makeTestHub } from './hub/make-test-hub.ts';
import { numberFlag, parseArgs } from './cli-args.ts';
import type { AskRecord } from '../workers/ask-session.ts';
import { cell, stats } from './bench/stats.ts';

const args = parseArgs(process.argv.slice(2), [], ['runs', 'steps', 'max-new', 'max-train-tokens']);
const RUNS = numberFlag(args, 'runs', 3);
const SETTINGS = {
  steps: numberFlag(args, 'steps', 3), lr: 1e-3, maxTrainTokens: numberFlag(args, 'max-train-tokens', 128),
  maxNewTokens: numberFlag(args, 'max-new', 32), temperature: 0, k: 3,
};


async function benchBackend(url: string, backend: 'webgpu' | 'cpu'): Promise<{ loadMs: number; records: AskRecord[]; adapter: string }> {
  const browser = await launchChromium();
  try {
    const page = await openApp(browser, appUrl(url, { backend }));
    const t0 = performance.now();
    await loadModels(page);
    const loadMs = performance.now() - t0;
    await importTraces(page, SHORT_TRACES, SHORT_TRACES_NAME);
    await setSettings(page, SETTINGS);
    const adapter = backend === 'webgpu'
      ? await page.evaluate(async () => {
        const a = await navigator.gpu?.requestAdapter();
        return a ? `${a.info.vendor || 'unknown'} ${a.info.architecture || ''} ${a.info.description || ''}`.trim() : 'none';
      })
      : 'CPU (engine reference path in the worker)';
    const records: AskRecord[] = [];
    for (let i = 0; i < RUNS; i++) {
      await startAsk(page, shortQuestion(i % 6), { ttt: true });
      await answerOf(page, 'Answer', 600_000);
      records.push((await exportJson(page)).records[0]!);
      console.error(`[bench:ask] ${backend} run ${i + 1}/${RUNS}: ${records.at(-1)!.timings.totalMs.toFixed(0)} ms`);
    }
    return { loadMs, records, adapter };
  } finally {
    await browser.close();
  }
}

function summarise(records: AskRecord[]) {
  const steps = Array.from({ length: SETTINGS.steps }, (_, i) => stats(records.map((r) => r.ttt!.stepMs[i]!)));
  return {
    retrieveMs: stats(records.map((r) => r.timings.retrieveMs!)),
    steps,
    trainMs: stats(records.map((r) => r.timings.trainMs!)),
    ttftMs: stats(records.map((r) => r.timings.ttftMs ?? NaN)),
    decodeTokensPerSecond: stats(records.map((r) => r.timings.decodeTokensPerSecond)),
    restoreMs: stats(records.map((r) => r.timings.restoreMs!)),
    totalMs: stats(records.map((r) => r.timings.totalMs)),
    tokensTrained: records[0]!.ttt!.tokensTrained,
    sequenceTokens: records[0]!.ttt!.sequenceTokens,
    answerTokens: stats(records.map((r) => r.answer.tokens)),
  };
}

async function main(): Promise<void> {
  const work = mkdtempSync(join(tmpdir(), 'bench-ask-'));
  const hubDir = join(work, 'hub');
  if (!(await makeTestHub(hubDir))) throw new Error('../shared is absent: the stand-in models come from it.');
  const buildDir = join(work, 'dist');
  await buildApp(buildDir);
  const app = await startBuiltApp({ hubDir, buildDir });
  try {
    const out: Record<string, ReturnType<typeof summarise> & { loadMs: number; adapter: string }> = {};
    for (const backend of ['webgpu', 'cpu'] as const) {
      const r = await benchBackend(app.url, backend);
      out[backend] = { ...summarise(r.records), loadMs: r.loadMs, adapter: r.adapter };
    }
    const chromium = execFileSync(CHROMIUM_PATH, ['--version']).toString().trim();
    const rows: [string, (s: (typeof out)['cpu']) => string][] = [
      ['models load (stories260K + tiny-random-bert + demo corpus)', (s) => `${s.loadMs.toFixed(0)} ms`],
      ['retrieve (embed question + search)', (s) => `${cell(s.retrieveMs, 1)} ms`],
      ...SETTINGS.steps > 0 ? Array.from({ length: SETTINGS.steps }, (_, i) => [`TTT step ${i + 1}`, (s: (typeof out)['cpu']) => `${cell(s.steps[i]!)} ms`] as [string, (s: (typeof out)['cpu']) => string]) : [],
      ['train total (adapter + steps)', (s) => `${cell(s.trainMs)} ms`],
      ['time to first token', (s) => `${cell(s.ttftMs)} ms`],
      ['decode', (s) => `${cell(s.decodeTokensPerSecond, 1)} tok/s`],
      ['restore (adapter reset)', (s) => `${cell(s.restoreMs, 1)} ms`],
      ['whole question', (s) => `${cell(s.totalMs)} ms`],
    ];
    const table = [
      `bench:ask — ${chromium}, ${RUNS} runs, medians (min–max); load average ${loadavg()[0]!.toFixed(1)}`,
      `training sequence ${out.cpu!.sequenceTokens} tokens (${out.cpu!.tokensTrained} trained), ${SETTINGS.steps} steps, answer ${out.cpu!.answerTokens.median} tokens`,
      '',
      `| stage | WebGPU (${out.webgpu!.adapter}) | CPU |`,
      '|---|---|---|',
      ...rows.map(([name, f]) => `| ${name} | ${f(out.webgpu!)} | ${f(out.cpu!)} |`),
    ].join('\n');
    const dir = join(ROOT, 'bench-results');
    mkdirSync(dir, { recursive: true });
    const file = join(dir, `${new Date().toISOString().slice(0, 10)}-ask-${out.webgpu!.adapter.split(' ')[0]!.toLowerCase()}.json`);
    writeFileSync(file, JSON.stringify({ chromium, runs: RUNS, settings: SETTINGS, results: out }, null, 2));
    process.stdout.write(`${table}\n\nwrote ${file}\n`);
  } finally {
    await app.close();
    rmSync(work, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`bench:ask failed: ${e instanceof Error ? e.stack ?? e.message : String(e)}\n`);
  process.exitCode = 1;
});
