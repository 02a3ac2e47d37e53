/**
 * transformers.js keeps its settings in one global `env`. This is the one place that sets them,
 * so the worker, the CLI and the tests agree on where models and onnxruntime-web's WASM come from.
 */
import { env, LogLevel } from '@huggingface/transformers';
import { DEFAULT_HUB } from './hub.ts';

/** transformers.js' own default, set explicitly so that the hub layout never depends on a global left by others. */
const PATH_TEMPLATE = '{model}/resolve/{revision}/';

export interface TransformersSettings {
  /** Allow downloads from `remoteHost` (the user's choice); false = local files and cache only. */
  allowRemoteModels: boolean;
  /** Folder (Node) or URL path (browser) holding model folders; a model id is a folder under it. */
  localModelPath?: string;
  /**
   * Hub base URL (absolute, see hub.ts hubBase): files are fetched from
   * `<remoteHost><org>/<name>/resolve/<revision>/<file>`. Default https://huggingface.co/.
   */
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
  // With downloads off, local files stay on even without a folder: transformers.js refuses to load
  // with both off, although it reads its cache first (a cache-only load needs this).
  env.allowLocalModels = s.localModelPath !== undefined || !s.allowRemoteModels;
  if (s.localModelPath !== undefined) env.localModelPath = s.localModelPath.endsWith('/') ? s.localModelPath : `${s.localModelPath}/`;
  env.remoteHost = s.remoteHost ?? DEFAULT_HUB;
  env.remotePathTemplate = PATH_TEMPLATE;
  if (s.cacheDir !== undefined) env.cacheDir = s.cacheDir;
  const wasm = env.backends.onnx?.wasm;
  if (s.wasmPaths && wasm) wasm.wasmPaths = { ...s.wasmPaths };
  env.logLevel = LogLevel.ERROR;
}
