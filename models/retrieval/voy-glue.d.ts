/**
 * voy-search's wasm-bindgen glue without its `import * as wasm from './voy_search_bg.wasm'` entry
 * (which needs bundler WASM-ESM support); voy-wasm.ts instantiates the .wasm itself.
 */
declare module 'voy-search/voy_search_bg.js' {
  export * from 'voy-search';
  export function __wbg_set_wasm(exports: WebAssembly.Exports): void;
}
