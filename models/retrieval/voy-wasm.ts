/**
 * Loads voy-search's WebAssembly once per thread. The package's own entry imports the .wasm as an
 * ES module, which neither Node nor a plain Vite build does; so we instantiate the binary with the
 * package's JS glue as its import object. The caller says where the binary is (a URL the app
 * serves, or bytes read from node_modules in Node): nothing is fetched from elsewhere.
 */
import * as glue from 'voy-search/voy_search_bg.js';
import { EngineError, NetworkError } from '../errors.ts';

export type VoyApi = typeof glue;

/** Bytes, a compiled module, or a URL of voy_search_bg.wasm. */
export type VoyWasmSource = BufferSource | WebAssembly.Module | URL | string;

let loading: Promise<VoyApi> | null = null;
let wasmMemory: WebAssembly.Memory | null = null;

/**
 * Instantiates voy once; later calls return the same API whatever source they pass.
 * @example
 *   import voyWasmUrl from 'voy-search/voy_search_bg.wasm?url';
 *   const voy = await loadVoy(voyWasmUrl);
 *   const index = new voy.Voy({ embeddings: [...] });
 */
export function loadVoy(source: VoyWasmSource): Promise<VoyApi> {
  loading ??= instantiate(source).catch((e) => {
    loading = null; // let a later call retry (e.g. after the network is back)
    throw e;
  });
  return loading;
}

async function instantiate(source: VoyWasmSource): Promise<VoyApi> {
  const imports = { './voy_search_bg.js': glue as unknown as WebAssembly.ModuleImports };
  let instance: WebAssembly.Instance;
  if (source instanceof WebAssembly.Module) {
    instance = await WebAssembly.instantiate(source, imports);
  } else if (typeof source === 'string' || source instanceof URL) {
    let res: Response;
    try {
      res = await fetch(source);
    } catch (e) {
      throw new NetworkError(`Could not fetch voy-search's WebAssembly from ${String(source)}: ${(e as Error).message}`, { cause: e });
    }
    if (!res.ok) throw new NetworkError(`Could not fetch voy-search's WebAssembly from ${String(source)}: HTTP ${res.status}.`);
    instance = (await WebAssembly.instantiate(await res.arrayBuffer(), imports)).instance;
  } else {
    instance = (await WebAssembly.instantiate(source, imports)).instance;
  }
  if (!(instance.exports.memory instanceof WebAssembly.Memory)) {
    throw new EngineError('internal', 'voy-search WebAssembly has no memory export; the package version is not the one this code was written for.');
  }
  glue.__wbg_set_wasm(instance.exports);
  wasmMemory = instance.exports.memory;
  return glue;
}

/** Bytes of voy's WebAssembly memory (it grows and never shrinks), for benchmarks; 0 before loading. */
export function voyMemoryBytes(): number {
  return wasmMemory?.buffer.byteLength ?? 0;
}
