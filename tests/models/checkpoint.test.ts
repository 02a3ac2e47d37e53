import { mkdtemp, readFile, rm, truncate, writeFile, stat, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openCheckpoint, type Checkpoint } from '../../models/checkpoint.ts';
import {
  AbortError,
  ConfigError,
  EngineError,
  InvalidInputError,
  NotFoundError,
  UnsupportedDtypeError,
  WeightsFormatError,
  WeightsMismatchError,
} from '../../models/errors.ts';
import { NodeDirSource } from '../../node/io/node-source.ts';
import { bf16BitsToF32, f32ToBf16Bits } from '../../models/safetensors/dtype.ts';
import { HAS_SHARED, sharedPath, warnIfNoShared } from '../helpers/shared.ts';
import { writeRandomLlama, type RandomLlamaOptions } from '../helpers/random-model.ts';

const SMALL: RandomLlamaOptions = { seed: 1, hiddenSize: 32, intermediateSize: 48, numLayers: 2, numHeads: 4, numKvHeads: 2, vocabSize: 64 };
const FAST = 10_000; // bad input must fail fast, never hang

let root: string;
let n = 0;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'ckpt-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});
const freshDir = () => join(root, `m${n++}`);

async function expectEngineError(
  p: Promise<unknown>,
  cls: new (...args: never[]) => EngineError,
  code: string,
  fragment: string | RegExp,
): Promise<EngineError> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(cls);
  expect((err as EngineError).code).toBe(code);
  if (typeof fragment === 'string') expect((err as Error).message).toContain(fragment);
  else expect((err as Error).message).toMatch(fragment);
  return err as EngineError;
}

/** Byte surgery: rewrites the JSON header of a safetensors file, keeping the data bytes. */
async function rewriteHeader(path: string, mutate: (h: Record<string, Record<string, unknown>>) => void): Promise<void> {
  const bytes = new Uint8Array(await readFile(path));
  const len = new DataView(bytes.buffer, bytes.byteOffset).getUint32(0, true);
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + len)));
  mutate(header);
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (json.length % 8)) % 8);
  const enc = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + enc.byteLength + bytes.byteLength - 8 - len);
  new DataView(out.buffer).setUint32(0, enc.byteLength, true);
  out.set(enc, 8);
  out.set(bytes.subarray(8 + len), 8 + enc.byteLength);
  await writeFile(path, out);
}

async function rewriteConfig(dir: string, mutate: (c: Record<string, unknown>) => void): Promise<void> {
  const c = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8'));
  mutate(c);
  await writeFile(join(dir, 'config.json'), JSON.stringify(c));
}

async function allTensors(ckpt: Checkpoint): Promise<Map<string, Float32Array>> {
  const out = new Map<string, Float32Array>();
  for (const name of ckpt.tensors.keys()) out.set(name, await ckpt.readTensor(name));
  return out;
}

describe('openCheckpoint on generated models', () => {
  for (const variant of [
    { label: 'single F32', opts: {} },
    { label: 'sharded F32', opts: { sharded: true } },
    { label: 'single BF16, tied', opts: { dtype: 'BF16' as const, tie: true } },
    { label: 'sharded BF16, llama3 rope', opts: { dtype: 'BF16' as const, sharded: true, ropeScaling: true } },
  ]) {
    it(`opens ${variant.label} and reads every tensor exactly`, async () => {
      const dir = freshDir();
      const written = await writeRandomLlama(dir, { ...SMALL, ...variant.opts });
      const ckpt = await openCheckpoint(new NodeDirSource(dir));
      expect(ckpt.config.hiddenSize).toBe(32);
      expect(ckpt.config.tieWordEmbeddings).toBe(variant.opts.tie ?? false);
      expect(ckpt.config.ropeScaling?.type ?? null).toBe(variant.opts.ropeScaling ? 'llama3' : null);
      expect((ckpt.rawConfig as { hidden_size: number }).hidden_size).toBe(32);
      expect([...ckpt.tensors.keys()]).toEqual([...written.tensors.keys()]);
      let bytes = 0;
      for (const [name, t] of written.tensors) {
        const ref = ckpt.tensors.get(name)!;
        expect(ref.shape).toEqual(t.shape);
        expect(await ckpt.readTensor(name)).toEqual(t.data);
        bytes += t.data.length * (variant.opts.dtype === 'BF16' ? 2 : 4);
      }
      expect(ckpt.totalBytes).toBe(bytes);
    });
  }

  it('readRows reads row blocks of 2-D tensors and whole 1-D tensors', async () => {
    const dir = freshDir();
    const written = await writeRandomLlama(dir, { ...SMALL, dtype: 'BF16' });
    const ckpt = await openCheckpoint(new NodeDirSource(dir));
    const emb = written.tensors.get('model.embed_tokens.weight')!.data;
    expect(await ckpt.readRows('model.embed_tokens.weight', 5, 3)).toEqual(emb.slice(5 * 32, 8 * 32));
    expect(await ckpt.readRows('model.embed_tokens.weight', 63, 1)).toEqual(emb.slice(63 * 32));
    expect((await ckpt.readRows('model.embed_tokens.weight', 2, 0)).length).toBe(0);
    const norm = written.tensors.get('model.norm.weight')!.data;
    expect(await ckpt.readRows('model.norm.weight', 0, 1)).toEqual(norm);
    await expectEngineError(ckpt.readRows('model.embed_tokens.weight', 60, 5), InvalidInputError, 'invalid-input', 'out of range');
    await expectEngineError(ckpt.readRows('model.norm.weight', 1, 1), InvalidInputError, 'invalid-input', 'out of range');
    await expectEngineError(ckpt.readTensor('nope'), InvalidInputError, 'invalid-input', '"nope"');
  });

  it('ignores extra tensors (rotary inv_freq) and keeps them out of `tensors`', async () => {
    const dir = freshDir();
    await writeRandomLlama(dir, SMALL);
    // Extra tensor in an unsupported dtype: must not matter since no one needs it.
    await rewriteHeader(join(dir, 'model.safetensors'), (h) => {
      h['model.layers.0.self_attn.rotary_emb.inv_freq'] = { dtype: 'I64', shape: [0], data_offsets: [0, 0] };
    });
    const ckpt = await openCheckpoint(new NodeDirSource(dir));
    expect(ckpt.tensors.has('model.layers.0.self_attn.rotary_emb.inv_freq')).toBe(false);
    expect(ckpt.tensors.size).toBe(1 + 2 * 9 + 1 + 1);
  });

  it('honours an aborted signal', async () => {
    const dir = freshDir();
    await writeRandomLlama(dir, SMALL);
    const ac = new AbortController();
    ac.abort();
    await expectEngineError(openCheckpoint(new NodeDirSource(dir), ac.signal), AbortError, 'aborted', 'cancelled');
  });
});

describe('openCheckpoint on bad input', () => {
  it('truncated safetensors (cut in the middle of the data)', { timeout: FAST }, async () => {
    const dir = freshDir();
    await writeRandomLlama(dir, SMALL);
    const path = join(dir, 'model.safetensors');
    await truncate(path, Math.floor((await stat(path)).size * 0.6));
    await expectEngineError(openCheckpoint(new NodeDirSource(dir)), WeightsFormatError, 'weights-format', /model\.safetensors: .*truncated/);
  });

  it('truncated shard of a sharded model', { timeout: FAST }, async () => {
    const dir = freshDir();
    await writeRandomLlama(dir, { ...SMALL, sharded: true });
    const path = join(dir, 'model-00002-of-00002.safetensors');
    await truncate(path, (await stat(path)).size - 1);
    await expectEngineError(openCheckpoint(new NodeDirSource(dir)), WeightsFormatError, 'weights-format', 'model-00002-of-00002.safetensors');
  });

  it('header length larger than the file', { timeout: FAST }, async () => {
    const dir = freshDir();
    await writeRandomLlama(dir, SMALL);
    const path = join(dir, 'model.safetensors');
    const bytes = new Uint8Array(await readFile(path));
    new DataView(bytes.buffer, bytes.byteOffset).setUint32(0, bytes.byteLength, true);
    await writeFile(path, bytes);
    await expectEngineError(openCheckpoint(new NodeDirSource(dir)), WeightsFormatError, 'weights-format', 'is larger than the file');
  });

  it('corrupt (non-JSON) header', { timeout: FAST }, async () => {
    const dir = freshDir();
    await writeRandomLlama(dir, SMALL);
    const path = join(dir, 'model.safetensors');
    const bytes = new Uint8Array(await readFile(path));
    bytes.fill(0x7b, 8, 40); // '{{{{...'
    await writeFile(path, bytes);
    await expectEngineError(openCheckpoint(new NodeDirSource(dir)), WeightsFormatError, 'weights-format', 'model.safetensors: the header is not valid JSON');
  });

  it('a tensor missing', { timeout: FAST }, async () => {
    const dir = freshDir();
    await writeRandomLlama(dir, SMALL);
    await rewriteHeader(join(dir, 'model.safetensors'), (h) => {
      delete h['model.layers.1.mlp.up_proj.weight'];
    });
    const e = await expectEngineError(openCheckpoint(new NodeDirSource(dir)), WeightsMismatchError, 'weights-mismatch', '"model.layers.1.mlp.up_proj.weight"');
    expect(e.message).toContain('searched model.safetensors');
  });

  it('untied config but no lm_head.weight', { timeout: FAST }, async () => {
    const dir = freshDir();
    await writeRandomLlama(dir, { ...SMALL, tie: true });
    await rewriteConfig(dir, (c) => {
      c.tie_word_embeddings = false;
    });
    await expectEngineError(openCheckpoint(new NodeDirSource(dir)), WeightsMismatchError, 'weights-mismatch', '"lm_head.weight"');
  });

  it('a tensor missing from the index of a sharded model', { timeout: FAST }, async () => {
    const dir = freshDir();
    await writeRandomLlama(dir, { ...SMALL, sharded: true });
    const indexPath = join(dir, 'model.safetensors.index.json');
    const index = JSON.parse(await readFile(indexPath, 'utf8'));
    delete index.weight_map['model.norm.weight'];
    await writeFile(indexPath, JSON.stringify(index));
    const e = await expectEngineError(openCheckpoint(new NodeDirSource(dir)), WeightsMismatchError, 'weights-mismatch', '"model.norm.weight"');
    expect(e.message).toContain('model.safetensors.index.json');
  });

  it('a tensor the index maps to a shard that lacks it', { timeout: FAST }, async () => {
    const dir = freshDir();
    await writeRandomLlama(dir, { ...SMALL, sharded: true });
    await rewriteHeader(join(dir, 'model-00001-of-00002.safetensors'), (h) => {
      delete h['model.embed_tokens.weight'];
    });
    const e = await expectEngineError(openCheckpoint(new NodeDirSource(dir)), WeightsMismatchError, 'weights-mismatch', '"model.embed_tokens.weight"');
    expect(e.message).toContain('model-00001-of-00002.safetensors');
  });

  it('a shard file missing', { timeout: FAST }, async () => {
    const dir = freshDir();
    await writeRandomLlama(dir, { ...SMALL, sharded: true });
    await unlink(join(dir, 'model-00002-of-00002.safetensors'));
    await expectEngineError(openCheckpoint(new NodeDirSource(dir)), NotFoundError, 'not-found', 'model-00002-of-00002.safetensors');
  });

  it('a tensor with the wrong shape', { timeout: FAST }, async () => {
    const dir = freshDir();
    await writeRandomLlama(dir, SMALL);
    await rewriteConfig(dir, (c) => {
      c.intermediate_size = 40;
    });
    await expectEngineError(
      openCheckpoint(new NodeDirSource(dir)),
      WeightsMismatchError,
      'weights-mismatch',
      'tensor "model.layers.0.mlp.gate_proj.weight" has shape [48, 32], expected [40, 32]',
    );
  });

  it('a needed tensor stored as I32', { timeout: FAST }, async () => {
    const dir = freshDir();
    await writeRandomLlama(dir, SMALL);
    await rewriteHeader(join(dir, 'model.safetensors'), (h) => {
      h['model.layers.0.self_attn.k_proj.weight'].dtype = 'I32'; // same element size: header stays consistent
    });
    const e = await expectEngineError(openCheckpoint(new NodeDirSource(dir)), UnsupportedDtypeError, 'unsupported-dtype', 'model.layers.0.self_attn.k_proj.weight');
    expect(e.message).toContain('I32');
  });

  it('a needed tensor stored as F64', { timeout: FAST }, async () => {
    const dir = freshDir();
    await writeRandomLlama(dir, { ...SMALL, tie: true }); // tied: model.norm.weight is the last tensor
    const path = join(dir, 'model.safetensors');
    await rewriteHeader(path, (h) => {
      const t = h['model.norm.weight'];
      const [b, e] = t.data_offsets as number[];
      t.dtype = 'F64';
      t.data_offsets = [b, e + (e - b)]; // twice the bytes for the same shape
    });
    const bytes = await readFile(path);
    await writeFile(path, Buffer.concat([bytes, Buffer.alloc(32 * 4)]));
    const e = await expectEngineError(openCheckpoint(new NodeDirSource(dir)), UnsupportedDtypeError, 'unsupported-dtype', '"model.norm.weight" is stored as F64');
    expect(e.message).toContain('F32, F16, BF16');
  });

  it('an unknown architecture in config.json', { timeout: FAST }, async () => {
    const dir = freshDir();
    await writeRandomLlama(dir, SMALL);
    await rewriteConfig(dir, (c) => {
      c.architectures = ['GPT2LMHeadModel'];
      c.model_type = 'gpt2';
    });
    await expectEngineError(openCheckpoint(new NodeDirSource(dir)), ConfigError, 'config', 'GPT2LMHeadModel');
  });

  it('a config without hidden_size', { timeout: FAST }, async () => {
    const dir = freshDir();
    await writeRandomLlama(dir, SMALL);
    await rewriteConfig(dir, (c) => {
      delete c.hidden_size;
    });
    await expectEngineError(openCheckpoint(new NodeDirSource(dir)), ConfigError, 'config', '"hidden_size" is missing');
  });

  it('config.json that is not JSON', { timeout: FAST }, async () => {
    const dir = freshDir();
    await writeRandomLlama(dir, SMALL);
    await writeFile(join(dir, 'config.json'), '{"hidden_size": 32,');
    await expectEngineError(openCheckpoint(new NodeDirSource(dir)), ConfigError, 'config', 'config.json is not valid JSON');
  });

  it('no config.json', { timeout: FAST }, async () => {
    const dir = freshDir();
    await writeRandomLlama(dir, SMALL);
    await unlink(join(dir, 'config.json'));
    await expectEngineError(openCheckpoint(new NodeDirSource(dir)), NotFoundError, 'not-found', 'no config.json');
  });

  it('neither index nor single file', { timeout: FAST }, async () => {
    const dir = freshDir();
    await writeRandomLlama(dir, SMALL);
    await unlink(join(dir, 'model.safetensors'));
    await expectEngineError(openCheckpoint(new NodeDirSource(dir)), NotFoundError, 'not-found', 'neither model.safetensors nor model.safetensors.index.json');
  });

  it('only PyTorch .bin weights', { timeout: FAST }, async () => {
    const dir = freshDir();
    await writeRandomLlama(dir, SMALL);
    await unlink(join(dir, 'model.safetensors'));
    await writeFile(join(dir, 'pytorch_model.bin'), 'x');
    await expectEngineError(openCheckpoint(new NodeDirSource(dir)), NotFoundError, 'not-found', 'only PyTorch .bin weights');
  });

  it('an index without weight_map', { timeout: FAST }, async () => {
    const dir = freshDir();
    await writeRandomLlama(dir, { ...SMALL, sharded: true });
    await writeFile(join(dir, 'model.safetensors.index.json'), '{"metadata": {}}');
    await expectEngineError(openCheckpoint(new NodeDirSource(dir)), WeightsFormatError, 'weights-format', 'weight_map');
  });
});

describe.skipIf(!HAS_SHARED)('openCheckpoint on ../shared golden models', () => {
  warnIfNoShared('golden checkpoint tests');
  const golden = (...p: string[]) => new NodeDirSource(sharedPath('golden', ...p));

  it('opens stories260K f32, bf16 and sharded', async () => {
    for (const v of ['f32', 'bf16', 'sharded']) {
      const ckpt = await openCheckpoint(golden('stories260K-hf', v));
      expect(ckpt.config.numLayers).toBe(5);
      expect(ckpt.config.tieWordEmbeddings).toBe(true);
      expect(ckpt.tensors.has('lm_head.weight')).toBe(false);
      expect(ckpt.tensors.size).toBe(1 + 5 * 9 + 1);
      expect(ckpt.tensors.get('model.embed_tokens.weight')?.dtype).toBe(v === 'bf16' ? 'BF16' : 'F32');
    }
  });

  it('sharded gives bit-identical tensors to the single f32 file', async () => {
    const single = await allTensors(await openCheckpoint(golden('stories260K-hf', 'f32')));
    const sharded = await allTensors(await openCheckpoint(golden('stories260K-hf', 'sharded')));
    expect([...sharded.keys()]).toEqual([...single.keys()]);
    for (const [name, a] of single) {
      const b = sharded.get(name)!;
      expect(Buffer.from(b.buffer, b.byteOffset, b.byteLength).equals(Buffer.from(a.buffer, a.byteOffset, a.byteLength)), name).toBe(true);
    }
  });

  it('bf16 tensors equal the f32 tensors rounded to bf16 (nearest even)', async () => {
    const f32 = await openCheckpoint(golden('stories260K-hf', 'f32'));
    const bf16 = await openCheckpoint(golden('stories260K-hf', 'bf16'));
    for (const name of ['model.embed_tokens.weight', 'model.layers.2.mlp.down_proj.weight', 'model.norm.weight']) {
      const a = await f32.readTensor(name);
      const b = await bf16.readTensor(name);
      expect(b).toEqual(a.map((x) => bf16BitsToF32(f32ToBf16Bits(x))));
    }
    const rowsA = await f32.readRows('model.embed_tokens.weight', 100, 4);
    const rowsB = await bf16.readRows('model.embed_tokens.weight', 100, 4);
    expect(rowsB).toEqual(rowsA.map((x) => bf16BitsToF32(f32ToBf16Bits(x))));
  });

  it('tiny-llama31-random opens with an untied lm_head and llama3 rope scaling', async () => {
    const ckpt = await openCheckpoint(golden('tiny-llama31-random'));
    expect(ckpt.config.tieWordEmbeddings).toBe(false);
    expect(ckpt.config.ropeScaling?.type).toBe('llama3');
    expect(ckpt.tensors.get('lm_head.weight')?.shape).toEqual([384, 64]);
    const lm = await ckpt.readTensor('lm_head.weight');
    const emb = await ckpt.readTensor('model.embed_tokens.weight');
    expect(lm).not.toEqual(emb);
  });
});
