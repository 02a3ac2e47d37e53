/**
 * The page of `npm run bench` (e2e/bench-harness.html): runs the decode bench (e2e/decode-bench.ts)
 * on this page's WebGPU, ours from a model folder URL, theirs from transformers.js' local models.
 */
import { configureTransformers } from '../models/retrieval/transformers-env.ts';
import { UrlModelSource } from '../models/io/url-source.ts';
import { ORT_WASM_PATHS } from '../workers/ort-wasm-paths.ts';
import { runOurs, runTheirs, type DecodeRun, type DecodeSpec } from './decode-bench.ts';

export interface DecodeBenchPage {
  ready: true;
  ours(modelUrl: string, spec: DecodeSpec): Promise<DecodeRun>;
  theirs(localModelPath: string, model: string, device: string, spec: DecodeSpec): Promise<DecodeRun>;
  adapter(): Promise<string>;
}

declare global {
  interface Window {
    decodeBench: DecodeBenchPage;
  }
}

window.decodeBench = {
  ready: true,
  ours: (modelUrl, spec) => runOurs(new UrlModelSource(new URL(modelUrl, location.href).href), navigator.gpu, spec),
  theirs: (localModelPath, model, device, spec) => {
    configureTransformers({ allowRemoteModels: false, localModelPath, wasmPaths: ORT_WASM_PATHS });
    return runTheirs(model, device, spec);
  },
  adapter: async () => {
    const a = await navigator.gpu?.requestAdapter();
    const i = a?.info;
    return i ? [i.vendor, i.architecture, i.description].filter(Boolean).join(' ') || 'unknown adapter' : 'no WebGPU';
  },
};
