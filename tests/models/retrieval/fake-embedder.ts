/**
 * A deterministic stand-in embedder for session and build tests: hashed bag of words, L2
 * normalised, so a text's vector never depends on its batch and equal texts give equal vectors.
 * Counts the texts it embeds and can sleep per batch (to let a test act mid-build).
 */
import { throwIfAborted } from '../../../models/errors.ts';
import type { EmbedderSource } from '../../../models/retrieval/embedder-source.ts';
import type { EmbedOptions, Embedder, EmbedderInfo } from '../../../models/retrieval/embedder-types.ts';

export interface FakeEmbedderOptions {
  model?: string;
  dims?: number;
  batchSize?: number;
  /** Milliseconds per batch (a macrotask wait either way, like the real embedder). */
  delayMs?: number;
  source?: EmbedderSource;
}

function hash(word: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < word.length; i++) h = Math.imul(h ^ word.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

export class FakeEmbedder implements Embedder {
  readonly info: EmbedderInfo;
  readonly device = 'cpu';
  readonly source?: EmbedderSource;
  /** Every text embedded, in call order. */
  readonly embedded: string[] = [];
  disposed = false;
  private readonly batchSize: number;
  private readonly delayMs: number;

  constructor(o: FakeEmbedderOptions = {}) {
    this.info = { model: o.model ?? 'test/fake-embedder', dims: o.dims ?? 16, dtype: 'fp32', pooling: 'cls', normalize: true };
    this.batchSize = o.batchSize ?? 4;
    this.delayMs = o.delayMs ?? 0;
    this.source = o.source;
  }

  vector(text: string): Float32Array {
    const v = new Float32Array(this.info.dims);
    for (const w of text.toLowerCase().split(/\W+/).filter(Boolean)) v[hash(w) % this.info.dims] += 1;
    const n = Math.hypot(...v) || 1;
    return v.map((x) => x / n);
  }

  async embed(texts: readonly string[], options: EmbedOptions = {}): Promise<Float32Array> {
    const out = new Float32Array(texts.length * this.info.dims);
    for (let start = 0; start < texts.length; start += this.batchSize) {
      await new Promise((r) => setTimeout(r, this.delayMs));
      throwIfAborted(options.signal);
      const end = Math.min(texts.length, start + this.batchSize);
      for (let i = start; i < end; i++) {
        out.set(this.vector(texts[i]), i * this.info.dims);
        this.embedded.push(texts[i]);
      }
      options.onProgress?.({ done: end, total: texts.length });
    }
    return out;
  }

  async dispose(): Promise<void> {
    this.disposed = true;
  }
}
