/**
 * Browser side of `npm run bench:cache`, in a module worker as the LLM worker runs: first vs
 * cached loads through the real OPFS store (OpfsCacheStore, sync access handles) on WebGPU with
 * f32 activations, and raw OPFS throughput. Messages out: { log }, then { result } or { error }.
 */
import { OpfsCacheStore } from '../../models/cache/opfs-store.ts';
import { UrlModelSource } from '../../models/io/url-source.ts';
import { firstVsCached, type LoadPair } from './cache-load.ts';
import { opfsThroughput, type OpfsThroughput } from './opfs-throughput.ts';

export interface CacheWorkerRequest {
  cases: { name: string; url: string; weights: 'q4' | 'f32' }[];
  runs: number;
  /** OPFS probe file sizes in bytes. */
  opfsBytes: number[];
}

export interface CacheWorkerResult {
  /** Per case, one pair per run. */
  loads: { name: string; weights: 'q4' | 'f32'; pairs: LoadPair[] }[];
  /** Per probe size, one measurement per run. */
  opfs: OpfsThroughput[][];
}

const scope = self as unknown as DedicatedWorkerGlobalScope;
const log = (line: string) => scope.postMessage({ log: line });

async function run(req: CacheWorkerRequest): Promise<CacheWorkerResult> {
  const gpu = (scope.navigator as WorkerNavigator & { gpu?: GPU }).gpu;
  const store = await OpfsCacheStore.open();
  const out: CacheWorkerResult = { loads: req.cases.map((c) => ({ name: c.name, weights: c.weights, pairs: [] })), opfs: req.opfsBytes.map(() => []) };
  // Runs interleave the cases, so a burst of load from other processes hits all of them alike.
  for (let r = 0; r < req.runs; r++) {
    for (const [i, c] of req.cases.entries()) {
      const p = await firstVsCached(new UrlModelSource(c.url), store, { backend: 'webgpu', gpu, weights: c.weights, precision: 'f32', maxContext: 16 });
      out.loads[i].pairs.push(p);
      log(`run ${r + 1}: ${c.name} ${c.weights}: first ${p.firstMs.toFixed(0)} ms, cached ${p.cachedMs.toFixed(0)} ms (${(p.entryBytes / 1e6).toFixed(1)} MB entry)`);
    }
    for (const [i, bytes] of req.opfsBytes.entries()) {
      const t = await opfsThroughput(bytes);
      out.opfs[i].push(t);
      log(`run ${r + 1}: OPFS ${bytes / 2 ** 20} MiB: write ${t.writeMBps.toFixed(0)} MB/s, read + checksum ${t.readMBps.toFixed(0)} MB/s`);
    }
  }
  return out;
}

scope.onmessage = (ev: MessageEvent<CacheWorkerRequest>) => {
  run(ev.data).then((result) => scope.postMessage({ result }), (e: Error) => scope.postMessage({ error: `${e.name}: ${e.message}` }));
};
