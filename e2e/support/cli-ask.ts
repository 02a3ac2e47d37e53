/**
 * `npm run llm -- ask` on the same inputs as the app in the browser tests: an index built by the
 * index CLI from the same JSONL with the same embedder, the same model and settings. Its record
 * is the reference the app's losses are compared with.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { AskRecord } from '../../workers/ask-session.ts';
import { sharedPath } from '../../tests/helpers/shared.ts';
import { ROOT } from './server.ts';

const run = promisify(execFile);

/** Short questions (they fit stories260K's 512-token context with a prompt), one bad line (line 7). */
export const SHORT_TRACES = join(ROOT, 'tests', 'fixtures', 'short-traces.jsonl');
export const SHORT_TRACES_NAME = 'short-traces.jsonl';

export function shortQuestion(i: number): string {
  return (JSON.parse(readFileSync(SHORT_TRACES, 'utf8').split('\n')[i]!) as { question: string }).question;
}

let indexDir: Promise<string> | null = null;

/** The fixture's index, built once per test file. */
function index(): Promise<string> {
  indexDir ??= (async () => {
    const out = mkdtempSync(join(tmpdir(), 'finemed-index-'));
    await run('npx', ['tsx', 'scripts/index.ts', 'build', SHORT_TRACES, '--embedder', sharedPath('models', 'tiny-random-bert'), '--out', out], { cwd: ROOT });
    return out;
  })();
  return indexDir;
}

export interface CliAskInput {
  question: string;
  settings: { steps: number; lr: number; maxTrainTokens: number; maxNewTokens: number; temperature: number; k: number };
  backend: 'cpu' | 'webgpu';
  ttt?: 'on' | 'off';
}

export async function cliAsk(input: CliAskInput): Promise<AskRecord> {
  const s = input.settings;
  const args = [
    'tsx', 'scripts/llm.ts', 'ask', '--model', sharedPath('golden', 'stories260K-hf', 'f32'), '--index', await index(),
    '--embedder', sharedPath('models', 'tiny-random-bert'), '--question', input.question, '--ttt', input.ttt ?? 'on',
    '--steps', String(s.steps), '--lr', String(s.lr), '--max-train-tokens', String(s.maxTrainTokens), '--max-new', String(s.maxNewTokens),
    '--temperature', String(s.temperature), '--k', String(s.k), '--backend', input.backend, '--f32', '--no-cache', '--json',
  ];
  const { stdout } = await run('npx', args, { cwd: ROOT, maxBuffer: 64 * 2 ** 20 });
  const last = stdout.trim().split('\n').at(-1)!;
  // A failure is {"error": {"name", "code", "message"}} (scripts/cli-errors.ts); the exit code already threw above.
  const out = JSON.parse(last) as AskRecord | { error: { name: string; code: string; message: string } };
  if ('error' in out) throw new Error(`llm ask failed (${out.error.code}): ${out.error.message}`);
  return out;
}
