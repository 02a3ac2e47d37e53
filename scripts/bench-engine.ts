/**
 * npm run bench:engine [-- --layer-prefill 512 --browser-layer-prefill 64 --decode 16 --no-browser]
 * Runs the engine benchmark in Node (Dawn) and in headless Chromium (its WebGPU adapter) in one
 * run, then prints a side-by-side table and one JSON line.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { runEngineBench, type EngineBenchResult } from './bench/engine-bench.ts';
import { nodeGpu } from '../node/gpu/node-gpu.ts';
import { NodeDirSource } from '../node/io/node-source.ts';
import { launchChromium, newPage } from '../e2e/support/index.ts';
import { serveBuiltPage } from './bench/serve-built.ts';
import { numberFlag, parseArgs } from './cli-args.ts';
import { SHARED } from '../tests/helpers/shared.ts';

const args = parseArgs(process.argv.slice(2), ['no-browser', 'no-node'], ['layer-prefill', 'browser-layer-prefill', 'decode']);
const decodeSteps = numberFlag(args, 'decode', 16);
const storiesDir = join(SHARED, 'golden/stories260K-hf/f32');
const hasStories = existsSync(storiesDir);
if (!hasStories) console.warn(`stories260K not found at ${storiesDir}: its figures are skipped.`);

const results: Record<string, EngineBenchResult> = {};
if (!args.flags.has('no-node')) {
  console.log('== Node / Dawn');
  results.node = await runEngineBench(nodeGpu(), {
    stories: hasStories ? new NodeDirSource(storiesDir) : undefined,
    layerPrefillTokens: numberFlag(args, 'layer-prefill', 512),
    decodeSteps,
    log: (l) => console.log('  ' + l),
  });
}

if (!args.flags.has('no-browser')) {
  console.log('== Chromium (headless, WebGPU)');
  const server = await serveBuiltPage('scripts/bench/engine.html');
  const browser = await launchChromium();
  try {
    const page = await newPage(browser, server.url + 'scripts/bench/engine.html');
    page.on('console', (m) => console.log('  ' + m.text()));
    const o = { storiesUrl: hasStories ? '/shared/golden/stories260K-hf/f32/' : undefined, layerPrefillTokens: numberFlag(args, 'browser-layer-prefill', 64), decodeSteps };
    page.setDefaultTimeout(0);
    await page.waitForFunction(() => typeof window.runEngineBench === 'function');
    results.chromium = await page.evaluate((opts) => window.runEngineBench(opts), o);
  } finally {
    await browser.close();
    await server.close();
  }
}

const rows: string[][] = [['metric', ...Object.keys(results)]];
const col = (f: (r: EngineBenchResult) => string) => Object.values(results).map(f);
rows.push(['adapter', ...col((r) => r.adapter + (r.f16 ? ' [f16]' : ' [f32]'))]);
for (const w of ['q4', 'f32']) {
  rows.push([`stories260K ${w} prefill tok/s`, ...col((r) => r.stories?.find((s) => s.weights === w)?.prefillTokPerS.toFixed(0) ?? '-')]);
  rows.push([`stories260K ${w} decode tok/s`, ...col((r) => r.stories?.find((s) => s.weights === w)?.decodeTokPerS.toFixed(1) ?? '-')]);
}
rows.push(['8B layer decode ms/token', ...col((r) => r.layer.decodeMsPerToken.toFixed(1))]);
rows.push(['8B layer prefill ms (tokens)', ...col((r) => `${r.layer.prefillMs.toFixed(0)} (${r.layer.prefillTokens})`)]);
rows.push(['8B layer prefill ms/512 tok (scaled)', ...col((r) => (r.layer.prefillMs * 512 / r.layer.prefillTokens).toFixed(0))]);
for (let i = 0; i < (Object.values(results)[0]?.bandwidth.length ?? 0); i++) {
  rows.push([`q4 matvec ${Object.values(results)[0].bandwidth[i].matrix} GB/s / copy GB/s`, ...col((r) => `${r.bandwidth[i].matvecGBps.toFixed(2)} / ${r.bandwidth[i].copyGBps.toFixed(2)} = ${(100 * r.bandwidth[i].ratio).toFixed(0)}%`)]);
}
const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
console.log('\n' + rows.map((r) => r.map((v, c) => v.padEnd(widths[c])).join(' | ')).join('\n'));
console.log(JSON.stringify(results));
process.exit(0);
