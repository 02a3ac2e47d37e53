/**
 * The default LLM worker factory. Kept apart from client.ts so the client stays importable in Node
 * tests with a fake worker. Vite only bundles a worker when it sees this exact
 * `new Worker(new URL('...', import.meta.url), { type: 'module' })` shape, so do not refactor it.
 */
export function createLlmWorker(): Worker {
  return new Worker(new URL('./llm.worker.ts', import.meta.url), { type: 'module', name: 'llm' });
}
