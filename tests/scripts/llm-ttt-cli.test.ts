/**
 * `npm run llm -- ttt` end to end (spawned like a user would), against the golden LoRA files:
 * loss and gradients at the golden point, the 5-step Adam trajectory and its final adapter, on
 * WebGPU (stories260K) and on the CPU reference (tiny-llama31-random); typed errors for bad input.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { toFloat32 } from '../../models/safetensors/dtype.ts';
import { parseSafetensorsHeader } from '../../models/safetensors/header.ts';
import { HAS_SHARED, ROOT, sharedPath, warnIfNoShared } from '../helpers/shared.ts';

const run = promisify(execFile);
warnIfNoShared('llm ttt CLI golden runs');

const TMP = mkdtempSync(join(tmpdir(), 'llm-ttt-cli-'));
afterAll(() => rmSync(TMP, { recursive: true, force: true }));

async function cli(args: string[]): Promise<{ json: Record<string, unknown>; code: number; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, ['--import', 'tsx', 'scripts/llm.ts', 'ttt', ...args], { cwd: ROOT, maxBuffer: 64 * 2 ** 20 });
    return { json: JSON.parse(stdout.trim().split('\n').at(-1)!), code: 0, stderr };
  } catch (e) {
    const err = e as { stdout: string; stderr: string; code: number };
    const last = err.stdout.trim().split('\n').at(-1);
    return { json: last ? JSON.parse(last) : {}, code: err.code, stderr: err.stderr };
  }
}

/** Every tensor of a safetensors file as f32. */
function readTensors(path: string): Map<string, Float32Array> {
  const bytes = new Uint8Array(readFileSync(path));
  const len = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  const header = parseSafetensorsHeader(path, bytes.subarray(8, 8 + len), bytes.byteLength);
  const out = new Map<string, Float32Array>();
  for (const [name, info] of header.tensors) out.set(name, toFloat32(bytes.subarray(info.begin, info.end), info.dtype, name));
  return out;
}

/** Largest per-tensor relative error |a - b| / |b| (L2 norms) over the same set of tensor names. */
function maxRelError(got: Map<string, Float32Array>, want: Map<string, Float32Array>): { worst: number; name: string } {
  expect([...got.keys()].sort()).toEqual([...want.keys()].sort());
  let worst = 0, worstName = '';
  for (const [name, w] of want) {
    const g = got.get(name)!;
    expect(g.length, name).toBe(w.length);
    let dd = 0, ww = 0;
    for (let i = 0; i < w.length; i++) { dd += (g[i] - w[i]) ** 2; ww += w[i] ** 2; }
    const rel = ww > 0 ? Math.sqrt(dd / ww) : Math.sqrt(dd);
    if (rel > worst) { worst = rel; worstName = name; }
  }
  return { worst, name: worstName };
}

const rel = (a: number, b: number) => Math.abs(a - b) / Math.abs(b);

interface Golden {
  ids: number[]; loss_mask: number[]; rank: number; alpha: number; loss_at_point: number;
  adam: { lr: number; beta1: number; beta2: number; eps: number; weight_decay: number };
  ttt_losses_before_each_step: number[]; ttt_loss_after_last_step: number;
}

function golden(model: 'stories260K' | 'tiny-llama31-random') {
  const g = JSON.parse(readFileSync(sharedPath(`golden/lora-${model}.json`), 'utf8')) as Golden;
  const file = (kind: string) => sharedPath(`golden/lora-${model}-${kind}.safetensors`);
  const dir = sharedPath(model === 'stories260K' ? 'golden/stories260K-hf/f32' : 'golden/tiny-llama31-random');
  const seq = ['--model', dir, '--ids', g.ids.join(','), '--mask', g.loss_mask.join(',')];
  const adam = ['--lr', String(g.adam.lr), '--beta1', String(g.adam.beta1), '--beta2', String(g.adam.beta2), '--eps', String(g.adam.eps), '--weight-decay', String(g.adam.weight_decay)];
  return { g, file, dir, seq, adam };
}

/** Loss and every gradient at the golden point (steps 0): 1e-4 and 1e-3 relative. */
async function checkPoint(model: 'stories260K' | 'tiny-llama31-random', backend: string[]): Promise<void> {
  const { g, file, seq } = golden(model);
  const grads = join(TMP, `${model}-${backend[1]}-grads.safetensors`);
  const { json, code, stderr } = await cli([...seq, '--lora-init', file('point'), '--rank', String(g.rank), '--alpha', String(g.alpha), ...backend, '--steps', '0', '--grads', grads, '--json']);
  expect(code, stderr).toBe(0);
  expect(json.losses).toEqual([]);
  expect(rel(json.loss_at_start as number, g.loss_at_point)).toBeLessThan(1e-4);
  expect(json.final_loss).toBe(json.loss_at_start);
  expect(json.tokens_trained).toBe(g.loss_mask.slice(1).filter((m) => m === 1).length);
  const err = maxRelError(readTensors(grads), readTensors(file('grads')));
  expect(err.worst, err.name).toBeLessThan(1e-3);
}

/** The 5-step Adam trajectory from (point's A, B = 0) and the final adapter, 1e-3 relative. */
async function checkTrajectory(model: 'stories260K' | 'tiny-llama31-random', backend: string[]): Promise<string> {
  const { g, file, seq, adam } = golden(model);
  const out = join(TMP, `${model}-${backend[1]}-final.safetensors`);
  const steps = g.ttt_losses_before_each_step.length;
  // rank/alpha/targets come from the file (rank 4, alpha = 2 * rank) here, as without the flags.
  const { json, code, stderr } = await cli([...seq, '--lora-init', file('point'), '--zero-b', ...backend, '--steps', String(steps), ...adam, '--out', out, '--json']);
  expect(code, stderr).toBe(0);
  expect(json.config).toMatchObject({ rank: g.rank, alpha: g.alpha, max_grad_norm: null });
  const losses = json.losses as number[];
  expect(losses).toHaveLength(steps);
  losses.forEach((l, i) => expect(rel(l, g.ttt_losses_before_each_step[i]), `loss before step ${i + 1}`).toBeLessThan(1e-3));
  expect(json.loss_at_start).toBe(losses[0]);
  expect(rel(json.final_loss as number, g.ttt_loss_after_last_step)).toBeLessThan(1e-3);
  expect((json.timings as { step_ms: number[] }).step_ms).toHaveLength(steps);
  const err = maxRelError(readTensors(out), readTensors(file('ttt-final')));
  expect(err.worst, err.name).toBeLessThan(1e-3);
  return out;
}

// Concurrent: each test is its own process (mostly tsx start-up), so the file stays well under a minute.
describe.skipIf(!HAS_SHARED)('npm run llm -- ttt against the golden LoRA files', { concurrent: true }, () => {
  const GPU = ['--backend', 'webgpu', '--f32', '--precision', 'f32'];
  const CPU = ['--backend', 'cpu', '--f32'];

  it('webgpu, stories260K: loss and gradients at the golden point (--steps 0 --grads)', () => checkPoint('stories260K', GPU));

  it('webgpu, stories260K: the 5-step Adam trajectory and the saved adapter (--zero-b --out)', () => checkTrajectory('stories260K', GPU));

  it('cpu, tiny-llama31-random: loss and gradients at the golden point', () => checkPoint('tiny-llama31-random', CPU));

  it('cpu, tiny-llama31-random: the trajectory; the saved adapter loads back at the final loss', async () => {
    const out = await checkTrajectory('tiny-llama31-random', CPU);
    const { g, seq } = golden('tiny-llama31-random');
    const { json, code } = await cli([...seq, '--lora-init', out, ...CPU, '--steps', '0', '--json']);
    expect(code).toBe(0);
    // saveLora writes alpha into the metadata, so the file alone restores the same adapter.
    expect(json.config).toMatchObject({ rank: g.rank, alpha: g.alpha });
    expect(rel(json.loss_at_start as number, g.ttt_loss_after_last_step)).toBeLessThan(1e-3);
  });

  it('typed errors: ids outside the vocabulary, an adapter file for another model', async () => {
    const { g, dir } = golden('tiny-llama31-random');
    const badIds = await cli(['--model', dir, '--ids', '1,5,99999', '--mask', '0,1,1', ...CPU, '--steps', '1', '--json']);
    expect(badIds.code).toBe(1);
    expect(badIds.json).toMatchObject({ error: { name: 'InvalidInputError', code: 'invalid-input', message: expect.stringMatching(/99999.*outside the vocabulary/) } });
    // stories260K's point (5 layers, 4 KV heads, FFN 172) on tiny-llama31 (3 layers, 2 KV heads, FFN 160).
    const other = await cli(['--model', dir, '--ids', g.ids.join(','), '--mask', g.loss_mask.join(','), '--lora-init', golden('stories260K').file('point'), ...CPU, '--json']);
    expect(other.code).toBe(1);
    expect(other.json).toMatchObject({ error: { code: 'weights-mismatch', message: expect.stringMatching(/lora-stories260K-point\.safetensors: tensor "model\.layers\.\d+\..*lora_[AB]"/) } });
  });
});

describe('npm run llm -- ttt: input errors (no model needed)', { concurrent: true }, () => {
  it('a mask with no active token: invalid-input, exit 1, before the model is loaded', async () => {
    const { json, code } = await cli(['--model', '/nonexistent/model', '--ids', '1,2,3', '--mask', '1,0,0', '--backend', 'cpu', '--json']);
    expect(code).toBe(1);
    expect(json).toMatchObject({ error: { name: 'InvalidInputError', code: 'invalid-input', message: expect.stringMatching(/selects no token to predict/) } });
  });

  it('a missing --lora-init file: not-found naming the flag and the path', async () => {
    const { json, code } = await cli(['--model', '/nonexistent/model', '--ids', '1,2,3', '--mask', '0,1,1', '--lora-init', '/nonexistent/point.safetensors', '--backend', 'cpu', '--json']);
    expect(code).toBe(1);
    expect(json).toEqual({ error: { name: 'NotFoundError', code: 'not-found', message: '--lora-init: no adapter file at /nonexistent/point.safetensors.' } });
  });

  it('an unknown target or a flag of another command: usage errors, exit 2, the same JSON shape', async () => {
    const target = await cli(['--model', '/nonexistent/model', '--ids', '1,2', '--mask', '0,1', '--targets', 'q,foo', '--json']);
    expect(target.code).toBe(2);
    expect(target.json).toMatchObject({ error: { name: 'UsageError', code: 'usage', message: expect.stringMatching(/unknown projection "foo"/) } });
    expect(target.stderr).toMatch(/unknown projection "foo"[\s\S]*llm -- ttt/);
    const flag = await cli(['--model', '/nonexistent/model', '--max-new', '3']);
    expect(flag.code).toBe(2);
    expect(flag.json).toEqual({ error: { name: 'UsageError', code: 'usage', message: 'unknown option --max-new' } });
    expect(flag.stderr).toMatch(/unknown option --max-new[\s\S]*llm -- ttt/);
  });
});
