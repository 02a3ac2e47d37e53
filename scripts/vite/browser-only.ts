/**
 * Vite plugin: fails the build (and the dev transform) when project code reachable from the page
 * or a worker imports Node-only modules: `node:*` builtins or the `webgpu` npm package (Dawn, a
 * native .node addon for Node tests). Engine files that need them must stay out of the browser
 * import graph (they live in node/, for the CLI and tests only).
 * Dependencies in node_modules are exempt: some guard their Node paths behind runtime checks.
 */
import { builtinModules } from 'node:module';
import type { Plugin } from 'vite';

const BUILTINS = new Set(builtinModules);

function isNodeOnly(source: string): boolean {
  return source.startsWith('node:') || BUILTINS.has(source) || BUILTINS.has(source.split('/')[0]!) || source === 'webgpu' || source.startsWith('webgpu/');
}

export function browserOnly(): Plugin {
  return {
    name: 'finemed:browser-only',
    enforce: 'pre',
    resolveId(source, importer) {
      if (!importer || importer.includes('/node_modules/') || !isNodeOnly(source)) return null;
      // The config and Vite plugins themselves run in Node and are never resolved through here.
      this.error(`"${source}" is Node-only and must not reach the browser bundle (imported by ${importer}).`);
    },
  };
}
