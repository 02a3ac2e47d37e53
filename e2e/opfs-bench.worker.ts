/**
 * Module worker for the weight-cache browser test: OPFS write and read throughput through the
 * cache's own store (scripts/bench/opfs-throughput.ts, shared with `npm run bench:cache`).
 * Posts { writeMBps, readMBps, bytes, sliceBytes } or { error }.
 */
import { opfsThroughput } from '../scripts/bench/opfs-throughput.ts';

const scope = self as unknown as DedicatedWorkerGlobalScope;

scope.onmessage = (ev: MessageEvent<{ bytes: number }>) => {
  opfsThroughput(ev.data.bytes).then((r) => scope.postMessage(r), (e: Error) => scope.postMessage({ error: `${e.name}: ${e.message}` }));
};
