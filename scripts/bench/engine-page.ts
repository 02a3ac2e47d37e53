// Browser side of `npm run bench:engine`: the same runEngineBench as Node, on navigator.gpu.
import { runEngineBench, type EngineBenchOptions, type EngineBenchResult } from './engine-bench.ts';
import { UrlModelSource } from '../../models/io/url-source.ts';

declare global {
  interface Window {
    runEngineBench: (o: { storiesUrl?: string; layerPrefillTokens: number; decodeSteps: number }) => Promise<EngineBenchResult>;
  }
}

const logEl = document.getElementById('log')!;
window.runEngineBench = (o) => {
  const opts: EngineBenchOptions = {
    stories: o.storiesUrl ? new UrlModelSource(o.storiesUrl) : undefined,
    layerPrefillTokens: o.layerPrefillTokens,
    decodeSteps: o.decodeSteps,
    log: (line) => { logEl.textContent += '\n' + line; console.log(line); },
  };
  return runEngineBench(navigator.gpu, opts);
};
