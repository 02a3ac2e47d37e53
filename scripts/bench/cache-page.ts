// Browser side of `npm run bench:cache`: starts the module worker and relays its log and result.
import type { CacheWorkerRequest, CacheWorkerResult } from './cache.worker.ts';

declare global {
  interface Window {
    runCacheBench: (req: CacheWorkerRequest) => Promise<CacheWorkerResult>;
  }
}

const logEl = document.getElementById('log')!;
window.runCacheBench = (req) => new Promise((resolve, reject) => {
  const worker = new Worker(new URL('./cache.worker.ts', import.meta.url), { type: 'module' });
  worker.onmessage = (ev: MessageEvent<{ log?: string; result?: CacheWorkerResult; error?: string }>) => {
    const d = ev.data;
    if (d.log !== undefined) {
      logEl.textContent += '\n' + d.log;
      console.log(d.log);
      return;
    }
    worker.terminate();
    if (d.result) resolve(d.result);
    else reject(new Error(d.error ?? 'cache benchmark worker: empty message'));
  };
  worker.onerror = (ev) => { worker.terminate(); reject(new Error(ev.message || 'cache benchmark worker failed to start')); };
  worker.postMessage(req);
});
