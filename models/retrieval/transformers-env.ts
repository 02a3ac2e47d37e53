/**
 * transformers.js keeps its settings in one global `env`. This is the one place that sets them,
 * so the worker, the CLI and the tests agree on where models and onnxruntime-web's WASM come from.
 */
import { env, LogLevel } from '@huggingface/transformers';

export interface TransformersSettings {
  /** Allow downloads from `remoteHost` (the user's choice); false = local files and cache only. */
  allowRemoteModels: boolean;
  /** Folder (Node) or URL path (browser) holding model folders; a model id is a folder under it. */
  localModelPath?: string;
  /** Hub mirror; default https://huggingface.co/. */
  remoteHost?: string;
  /**
   * Browser: URLs of onnxruntime-web's `.mjs` and `.wasm` that the app serves itself. Without this,
   * transformers.js would load them from a CDN, which an offline app must never do.
   */
  wasmPaths?: { mjs: string; wasm: string };
  /** Node: where downloaded models are cached. */
  cacheDir?: string;
}

/**
 * Applies the settings to transformers.js' global env.
 * @example
 *   configureTransformers({ allowRemoteModels: false, localModelPath: '../shared/models/' });
 */
export function configureTransformers(s: TransformersSettings): void {
  env.allowRemoteModels = s.allowRemoteModels;
  env.allowLocalModels = s.localModelPath !== undefined;
  if (s.localModelPath !== undefined) env.localModelPath = s.localModelPath.endsWith('/') ? s.localModelPath : `${s.localModelPath}/`;
  if (s.remoteHost !== undefined) env.remoteHost = s.remoteHost;
  if (s.cacheDir !== undefined) env.cacheDir = s.cacheDir;
  const wasm = env.backends.onnx?.wasm;
  if (s.wasmPaths && wasm) wasm.wasmPaths = { ...s.wasmPaths };
  env.logLevel = LogLevel.ERROR;
}
