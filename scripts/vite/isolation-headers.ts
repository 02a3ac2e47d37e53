/**
 * Cross-origin isolation (crossOriginIsolated === true), needed for SharedArrayBuffer and thus
 * onnxruntime-web's wasm threads. Sent by the dev and preview servers on every response.
 */
export const ISOLATION_HEADERS = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
} as const;
