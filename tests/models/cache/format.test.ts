import { describe, expect, it } from 'vitest';
import { CACHE_FORMAT, CACHE_FORMAT_VERSION, encodeManifest, parseManifest, QUANT_FORMAT_VERSION, type Manifest } from '../../../models/cache/format.ts';
import { cacheKey, cacheKeyFor, identifySource } from '../../../models/cache/key.ts';
import { engineTensorPlan } from '../../../models/cache/plan.ts';
import { parseLlamaConfig } from '../../../models/config.ts';
import { CacheCorruptError } from '../../../models/errors.ts';
import { BlobModelSource } from '../../../models/io/blob-source.ts';
import { NodeDirSource } from '../../../node/io/node-source.ts';
import { UrlModelSource } from '../../../models/io/url-source.ts';
import { q4Bytes } from '../../../models/quant/q4.ts';
import { q8Bytes } from '../../../models/quant/q8.ts';

const rawConfig = {
  architectures: ['LlamaForCausalLM'], model_type: 'llama', vocab_size: 100, hidden_size: 64, intermediate_size: 96, num_hidden_layers: 2,
  num_attention_heads: 4, num_key_value_heads: 2, max_position_embeddings: 256, rms_norm_eps: 1e-5, rope_theta: 10000,
  tie_word_embeddings: false, bos_token_id: 1, eos_token_id: 2,
};

function manifest(over: Partial<Manifest> = {}): Manifest {
  return {
    format: CACHE_FORMAT, version: CACHE_FORMAT_VERSION, quantVersion: QUANT_FORMAT_VERSION, key: 'k', weights: 'q4', lmHead: 'q8', producer: 'cpu',
    source: { kind: 'url', location: 'http://x/', etags: {}, files: { 'model.safetensors': 10 } }, config: rawConfig,
    files: [{ name: 'config.json', bytes: 5, checksum: '0123456789abcdef' }],
    tensors: [{ name: 'model.norm.weight', shape: [64], kind: 'f32', bytes: 256, checksum: 'fedcba9876543210' }],
    tensorsTotal: 21, complete: false, totalBytes: 1000, createdAt: '2025-01-01T00:00:00.000Z', ...over,
  };
}
const bytes = (v: unknown) => new TextEncoder().encode(typeof v === 'string' ? v : JSON.stringify(v));

function parseError(b: Uint8Array, key = 'k'): CacheCorruptError {
  try {
    parseManifest(b, key);
  } catch (e) {
    expect(e).toBeInstanceOf(CacheCorruptError);
    expect((e as CacheCorruptError).code).toBe('cache-corrupt');
    expect((e as Error).message).toContain('will be downloaded again');
    return e as CacheCorruptError;
  }
  throw new Error('expected CacheCorruptError');
}

describe('manifest', () => {
  it('round-trips', () => {
    const m = manifest();
    expect(parseManifest(encodeManifest(m), 'k')).toEqual(m);
  });

  it('refuses unreadable, foreign, other-version and malformed manifests, saying what is wrong', () => {
    expect(parseError(bytes('{"format": "finemed-weight-ca')).message).toMatch(/unreadable/);
    expect(parseError(new Uint8Array([0xff, 0xfe, 0x00])).message).toMatch(/unreadable/);
    expect(parseError(bytes({ ...manifest(), format: 'other' })).message).toMatch(/not a finemed-weight-cache manifest/);
    expect(parseError(bytes({ ...manifest(), version: CACHE_FORMAT_VERSION + 1 })).message).toMatch(/cache format version 2/);
    expect(parseError(bytes({ ...manifest(), quantVersion: 0 })).message).toMatch(/quant format version 0/);
    expect(parseError(bytes(manifest()), 'other-key').message).toMatch(/another entry/);
    expect(parseError(bytes({ ...manifest(), weights: 'q8' })).message).toMatch(/weight format/);
    expect(parseError(bytes({ ...manifest(), tensors: [{ name: 'x', shape: [1], kind: 'f32', bytes: 4, checksum: 'nothex' }] })).message).toMatch(/tensors\[0\] is malformed/);
    expect(parseError(bytes({ ...manifest(), tensors: [{ name: 'x', shape: [1, 2, 3], kind: 'q4', bytes: 4, checksum: '0123456789abcdef' }] })).message).toMatch(/tensors\[0\]/);
    expect(parseError(bytes({ ...manifest(), files: 'nope' })).message).toMatch(/no files list/);
    expect(parseError(bytes({ ...manifest(), complete: true })).message).toMatch(/complete but lists 1 of 21/);
    const { createdAt: _, ...noDate } = manifest();
    expect(parseError(bytes(noDate)).message).toMatch(/createdAt/);
  });
});

describe('engine tensor plan', () => {
  it('lists every tensor in engine layout with exact bytes', () => {
    const config = parseLlamaConfig(rawConfig);
    const q4 = engineTensorPlan(config, 'q4');
    expect(q4).toHaveLength(2 * 9 + 3);
    expect(q4.find((t) => t.name === 'model.layers.0.self_attn.q_proj.weight')).toEqual({ name: 'model.layers.0.self_attn.q_proj.weight', shape: [64, 64], kind: 'q4', bytes: q4Bytes(64, 64) });
    expect(q4.find((t) => t.name === 'model.layers.1.mlp.down_proj.weight')!.bytes).toBe(64 * 3 * 16 + Math.ceil((64 * 3) / 2) * 4);
    expect(q4.find((t) => t.name === 'model.norm.weight')).toMatchObject({ kind: 'f32', bytes: 256 });
    expect(q4.find((t) => t.name === 'lm_head.weight')).toEqual({ name: 'lm_head.weight', shape: [100, 64], kind: 'q8', bytes: q8Bytes(100, 64) }); // the default head
    expect(engineTensorPlan(config, 'q4', 'q4').find((t) => t.name === 'lm_head.weight')).toMatchObject({ kind: 'q4', shape: [100, 64], bytes: q4Bytes(100, 64) });
    expect(q4.find((t) => t.name === 'model.embed_tokens.weight')!.kind).toBe('q4'); // untied: a body weight
    const f32 = engineTensorPlan(config, 'f32');
    expect(f32.find((t) => t.name === 'model.embed_tokens.weight')).toMatchObject({ kind: 'f32', bytes: 100 * 64 * 4 });
    const tied = engineTensorPlan(parseLlamaConfig({ ...rawConfig, tie_word_embeddings: true }), 'q4');
    expect(tied).toHaveLength(20);
    expect(tied.find((t) => t.name === 'model.embed_tokens.weight')!.kind).toBe('q8'); // tied: the head's format
  });
});

describe('cache key', () => {
  it('recognises Hugging Face resolve URLs on any host, and keys them by repo and revision', () => {
    const hf = new UrlModelSource('https://huggingface.co/hongzhouyu/FineMedLM-o1/resolve/main/');
    expect(identifySource(hf)).toEqual({ kind: 'hub', location: 'https://huggingface.co/hongzhouyu/FineMedLM-o1/resolve/main/', repo: 'hongzhouyu/FineMedLM-o1', revision: 'main' });
    const local = new UrlModelSource('http://127.0.0.1:5173/hub/hongzhouyu/FineMedLM-o1/resolve/main');
    expect(identifySource(local)).toMatchObject({ kind: 'hub', repo: 'hongzhouyu/FineMedLM-o1', revision: 'main' });
    expect(cacheKeyFor(local, 'q4')).toBe(cacheKeyFor(hf, 'q4'));
    expect(cacheKeyFor(hf, 'q4')).toMatch(/^hongzhouyu--FineMedLM-o1@main--q4-q8head-v2-[0-9a-f]{8}$/);
    expect(cacheKeyFor(hf, 'q4', 'q4')).toMatch(/^hongzhouyu--FineMedLM-o1@main--q4-v2-[0-9a-f]{8}$/);
    expect(cacheKeyFor(hf, 'q4', 'q8')).toBe(cacheKeyFor(hf, 'q4')); // q8 is the default head with 4-bit weights
    expect(cacheKeyFor(hf, 'f32')).not.toBe(cacheKeyFor(hf, 'q4'));
    expect(cacheKeyFor(new UrlModelSource('https://huggingface.co/hongzhouyu/FineMedLM-o1/resolve/v2/'), 'q4')).not.toBe(cacheKeyFor(hf, 'q4'));
    expect(identifySource(new UrlModelSource('https://huggingface.co/datasets/org/d/resolve/main/')).kind).toBe('url');
  });

  it('keys plain URLs, folders and picked files by location; keys are safe folder names', () => {
    const url = new UrlModelSource('http://127.0.0.1:4000/shared/golden/stories260K-hf/f32/');
    expect(identifySource(url)).toEqual({ kind: 'url', location: 'http://127.0.0.1:4000/shared/golden/stories260K-hf/f32/' });
    expect(cacheKeyFor(url, 'f32')).toMatch(/^stories260K-hf--f32--f32-v2-[0-9a-f]{8}$/);
    expect(cacheKeyFor(new UrlModelSource('http://127.0.0.1:4001/shared/golden/stories260K-hf/f32/'), 'f32')).not.toBe(cacheKeyFor(url, 'f32'));
    const dir = new NodeDirSource('/tmp/some model/x');
    expect(identifySource(dir)).toEqual({ kind: 'node-dir', location: '/tmp/some model/x' });
    expect(cacheKeyFor(dir, 'q4')).toMatch(/^some-model--x--q4-q8head-v2-[0-9a-f]{8}$/);
    const picked = new BlobModelSource(new Map([['config.json', new Blob(['{}'])], ['model.safetensors', new Blob([new Uint8Array(10)])]]), 'my-model');
    expect(identifySource(picked)).toEqual({ kind: 'folder', location: 'my-model (2 files, 12 bytes)' });
    for (const k of [cacheKeyFor(url, 'q4'), cacheKeyFor(dir, 'q4'), cacheKeyFor(picked, 'q4'), cacheKey({ kind: 'url', location: '../../etc/passwd' }, 'q4')]) {
      expect(k).toMatch(/^[A-Za-z0-9._@-]+$/);
      expect(k).not.toMatch(/^\.+$/);
    }
  });
});
