/**
 * The retrieval test page's script (e2e/retrieval-harness.html): puts RetrievalClient (and its
 * real worker) on `window.retrieval`; `window.harness.settle` (from the shared harness) turns
 * rejections into plain data for page.evaluate.
 */
import './harness.ts';
import { RetrievalClient } from '../workers/retrieval-client.ts';
import { embedThroughput } from './retrieval-bench.ts';

export interface RetrievalHarness {
  ready: true;
  /** A client with its own worker, created on first use. */
  client: RetrievalClient;
  /** Another client with a fresh worker (e.g. to reload a persisted index). */
  newClient(): RetrievalClient;
  /** Embedding throughput in a fresh worker (npm run bench:retrieval). */
  embedThroughput: typeof embedThroughput;
}

declare global {
  interface Window {
    retrieval: RetrievalHarness;
  }
}

window.retrieval = { ready: true, client: new RetrievalClient(), newClient: () => new RetrievalClient(), embedThroughput };
