/**
 * How long embedding a corpus will take: texts x texts/s, from a measurement on this device
 * (a build in progress, or a short sample) when there is one, else the catalogue's assumed rate.
 */
import { embedderEntry } from './catalog.ts';
import type { BuildEstimate } from './session-types.ts';

/** Rates for an embedder outside the catalogue: bge-base's. */
const FALLBACK = { webgpu: 150, wasm: 6, cpu: 10 };

/**
 * @example
 *   estimateBuild({ model: 'Xenova/bge-base-en-v1.5', device: 'wasm', texts: 32919 });
 *   // { textsPerSecond: 6, basis: 'assumed', seconds: 5486.5, ... }: about 1.5 hours
 */
export function estimateBuild(o: { model: string; device: string; texts: number; measuredTextsPerSecond?: number }): BuildEstimate {
  const measured = o.measuredTextsPerSecond !== undefined && o.measuredTextsPerSecond > 0 ? o.measuredTextsPerSecond : undefined;
  const assumed = embedderEntry(o.model)?.assumedTextsPerSecond ?? FALLBACK;
  const device = o.device === 'webgpu' || o.device === 'wasm' || o.device === 'cpu' ? o.device : 'wasm';
  const textsPerSecond = measured ?? assumed[device];
  return {
    model: o.model,
    device: o.device,
    texts: o.texts,
    textsPerSecond,
    basis: measured ? 'measured' : 'assumed',
    seconds: o.texts / textsPerSecond,
  };
}
