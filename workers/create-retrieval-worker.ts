/**
 * The default retrieval worker factory, apart from the client so the client stays importable in
 * Node tests. Vite only bundles a worker written in exactly this `new Worker(new URL(...))` shape.
 */
export function createRetrievalWorker(): Worker {
  return new Worker(new URL('./retrieval.worker.ts', import.meta.url), { type: 'module', name: 'retrieval' });
}
