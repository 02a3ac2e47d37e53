/**
 * onnxruntime-web's WASM runtime, served by the app itself (never a CDN): Vite copies these files
 * into the build and serves them in dev; transformers.js is pointed at them through `wasmPaths`.
 * transformers.js 4.3.1 runs its own nested onnxruntime-web (1.31-dev), not the top-level 1.30,
 * and the runtime must match its JS exactly, so the files come from its copy; the asyncify build
 * is the one transformers.js picks for the WebGPU-capable bundle it imports. A build fails loudly
 * here if npm ever hoists or renames them.
 */
import mjs from '../node_modules/@huggingface/transformers/node_modules/onnxruntime-web/dist/ort-wasm-simd-threaded.asyncify.mjs?url';
import wasm from '../node_modules/@huggingface/transformers/node_modules/onnxruntime-web/dist/ort-wasm-simd-threaded.asyncify.wasm?url';

export const ORT_WASM_PATHS = { mjs, wasm };
