/**
 * Browser half of `npm run bench:retrieval`, run in the retrieval harness page: embedding
 * throughput of an embedder in the real worker on one device ('wasm' or 'webgpu').
 */
import type { EmbedderSpec } from '../workers/retrieval-protocol.ts';

export interface EmbedThroughput {
  device: string;
  texts: number;
  /** First batch alone: model compile, WASM/shader warm-up. */
  warmupMs: number;
  ms: number;
  textsPerSecond: number;
}

/** Runs in the page (page.evaluate): loads the embedder on `spec.device`, warms up, times `texts`. */
export async function embedThroughput(spec: EmbedderSpec, texts: string[], batch: number): Promise<EmbedThroughput> {
  const client = window.retrieval.newClient();
  try {
    const status = await client.initEmbedder({ ...spec, batchSize: batch });
    let t0 = performance.now();
    await client.embed(texts.slice(0, batch));
    const warmupMs = performance.now() - t0;
    t0 = performance.now();
    await client.embed(texts);
    const ms = performance.now() - t0;
    return { device: status.device, texts: texts.length, warmupMs, ms, textsPerSecond: texts.length / (ms / 1000) };
  } finally {
    client.terminate();
  }
}
