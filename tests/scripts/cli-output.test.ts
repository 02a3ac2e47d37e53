import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeRandomLlama } from '../helpers/random-model.ts';
import { ROOT } from '../helpers/shared.ts';

const V = 128256; // the real vocabulary: --json prints ~2.5 MB of logits

interface Ran { stdout: string; stderr: string; code: number | null }

/** Runs `node --import tsx <args>` with a reader that leaves stdout unread for `stallMs` first. */
function runSlowReader(args: string[], stallMs: number): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [], err: Buffer[] = [];
    child.stdout.pause(); // the 64 KiB pipe fills; the CLI must wait for it to drain
    setTimeout(() => { child.stdout.on('data', (b: Buffer) => out.push(b)); child.stdout.resume(); }, stallMs);
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', reject);
    child.on('close', (code) => resolve({ stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8'), code }));
  });
}

/** Runs a shell pipeline; resolves with the first command's exit status (PIPESTATUS) and stderr. */
function runPipeline(script: string): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', ['-c', script], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [], err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', reject);
    child.on('close', (code) => resolve({ stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8'), code }));
  });
}

describe('CLI output at the real vocabulary', () => {
  let dir = '';
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cli-output-'));
    await writeRandomLlama(dir, { seed: 3, hiddenSize: 16, intermediateSize: 32, numLayers: 1, numHeads: 2, numKvHeads: 1, vocabSize: V, tie: true });
  }, 60_000);
  afterAll(async () => { await rm(dir, { recursive: true, force: true }); });

  const generate = (backend: string) => ['scripts/llm.ts', 'generate', '--model', dir, '--ids', '1,2,3', '--max-new', '2', '--greedy', '--backend', backend, '--f32', '--no-cache', '--json'];

  for (const backend of ['cpu', 'webgpu']) {
    it(`generate --json (${backend}) arrives whole through a slow reader: one line of JSON, ~2.5 MB, ${V} logits`, async () => {
      const r = await runSlowReader(generate(backend), 1500);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout.length).toBeGreaterThan(2_000_000);
      expect(r.stdout.endsWith('}\n')).toBe(true);
      // Nothing else on stdout: Dawn's warnings and any diagnostics go to stderr.
      const lines = r.stdout.trimEnd().split('\n');
      expect(lines.length).toBe(1);
      const json = JSON.parse(lines[0]!) as { last_logits: number[]; ids: number[]; backend: string };
      expect(json.backend).toBe(backend);
      expect(json.last_logits.length).toBe(V);
      expect(json.ids.length).toBe(2);
    }, 120_000);
  }

  it('a reader that closes early (| head -c 100) ends the CLI quietly with status 141, no stack trace', async () => {
    const cmd = [process.execPath, '--import', 'tsx', ...generate('cpu')].map((a) => `'${a}'`).join(' ');
    const r = await runPipeline(`${cmd} 2>/tmp/cli-output-head.$$ | head -c 100; s=\${PIPESTATUS[0]}; cat /tmp/cli-output-head.$$ >&2; rm -f /tmp/cli-output-head.$$; exit $s`);
    expect(r.stdout.length).toBe(100);
    expect(r.stdout.startsWith('{"prompt_ids":[1,2,3]')).toBe(true);
    expect(r.code).toBe(141);
    expect(r.stderr).not.toMatch(/EPIPE|Unhandled/);
  }, 120_000);
});

describe('GPU errors in a CLI: diagnostics on stderr, JSON error last on stdout, exit 1', () => {
  for (const when of ['before', 'after'] as const) {
    it(`an uncaptured validation error ${when} the result is printed`, async () => {
      const r = await runSlowReader(['tests/scripts/fixtures/gpu-error-cli.ts', when], 0);
      expect(r.code, r.stderr).toBe(1);
      const lines = r.stdout.trimEnd().split('\n');
      // Dawn's own text never reaches stdout: only JSON lines (the result, when printed before the error).
      expect(lines.length).toBe(when === 'after' ? 2 : 1);
      for (const line of lines) expect(() => JSON.parse(line)).not.toThrow();
      expect(JSON.parse(lines.at(-1)!)).toMatchObject({ error: { name: 'GpuValidationError', code: 'gpu-validation', message: expect.stringContaining('MapRead') } });
      expect(r.stderr).toMatch(/GPU error \(gpu-validation, uncaptured\): .*MapRead/);
    }, 60_000);
  }
});
