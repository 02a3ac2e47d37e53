/**
 * voy-search in Node (CLI, tests, benchmark): reads the .wasm from node_modules. Node only: the
 * browser bundle never imports this file (the worker passes a URL the app serves instead).
 */
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { loadVoy, type VoyApi } from '../../models/retrieval/voy-wasm.ts';

/**
 * @example const voy = await loadVoyNode();
 */
export async function loadVoyNode(): Promise<VoyApi> {
  const path = createRequire(import.meta.url).resolve('voy-search/voy_search_bg.wasm');
  return loadVoy(await readFile(path));
}
