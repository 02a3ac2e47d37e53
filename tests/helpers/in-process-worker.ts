/**
 * A real worker script run in this Node process: the test's `Worker` and the script's global
 * scope are two ends of one channel, and every message crosses it structured-cloned (with its
 * transfer list) on a later task, as postMessage does. The script is imported once per test file
 * (module state such as the loaded model is per file), with `self` set to its end.
 */

class End extends EventTarget {
  other!: End;
  postMessage(message: unknown, transfer: Transferable[] = []): void {
    const data = structuredClone(message, { transfer });
    setTimeout(() => this.other.dispatchEvent(new MessageEvent('message', { data })), 0);
  }
  terminate(): void {}
}

/**
 * Runs the worker script `load` imports with `self` = its end of a channel (plus `globals`, e.g.
 * a `navigator` with Dawn's GPU); returns the main thread's end as a `Worker` for a client.
 * @example
 *   const worker = await inProcessWorker(() => import('../../workers/llm.worker.ts'), { navigator: { gpu } });
 *   const client = new LlmClient(() => worker);
 */
export async function inProcessWorker(load: () => Promise<unknown>, globals: Record<string, unknown> = {}): Promise<Worker> {
  const main = new End(), scope = new End();
  main.other = scope;
  scope.other = main;
  Object.assign(scope, { location: { href: 'http://localhost/' }, ...globals });
  Object.defineProperty(globalThis, 'self', { value: scope, configurable: true, writable: true });
  await load();
  return main as unknown as Worker;
}
