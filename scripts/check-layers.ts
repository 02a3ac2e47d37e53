/**
 * The import guard: which folder may import which. The compiler already keeps DOM out of models/
 * and workers/ and Node out of all three browser layers (each has its own tsconfig and lib); this
 * check catches what types cannot: a relative import that crosses a layer the wrong way, and a
 * Node-only package (`node:*` builtins, Dawn's `webgpu`) reached from browser code.
 *
 *   app -> workers -> models      (the browser, one way)
 *   node -> models                (Node-only engine pieces: files, Dawn, onnxruntime-node)
 *   scripts, tests, e2e -> any    (CLI, benchmarks, tests)
 *
 * Usage: `tsx scripts/check-layers.ts` (part of `npm run typecheck`); exits 1 listing violations.
 */
import { readdir, readFile } from 'node:fs/promises';
import { builtinModules } from 'node:module';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Each guarded layer and the layers its relative imports may reach (itself included). */
export const LAYER_RULES: Readonly<Record<string, readonly string[]>> = {
  models: ['models'],
  workers: ['workers', 'models'],
  app: ['app', 'workers'],
  node: ['node', 'models'],
};

/** Layers that run in a browser: no Node builtins, no native addons. */
const BROWSER_LAYERS = new Set(['models', 'workers', 'app']);
const NODE_ONLY_PACKAGES = new Set(['webgpu', 'onnxruntime-node', 'tsx', 'vitest', 'playwright-core']);

export interface LayerViolation {
  file: string; // relative to the root, '/'-separated
  line: number;
  specifier: string;
  reason: string;
}

const SOURCE = /\.(ts|tsx|mts)$/;
// Static imports/exports, dynamic import(), and `new URL('…', import.meta.url)` (worker and wasm URLs).
const IMPORT_PATTERNS = [
  /\b(?:import|export)\b[^'"`;]*?\bfrom\s*['"]([^'"]+)['"]/g,
  /\bimport\s*['"]([^'"]+)['"]/g,
  /\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)/g,
  /\bnew\s+URL\s*\(\s*['"]([^'"]+)['"]\s*,\s*import\.meta\.url/g,
];

function isNodeOnly(specifier: string): boolean {
  if (specifier.startsWith('node:')) return true;
  const name = specifier.startsWith('@') ? specifier.split('/').slice(0, 2).join('/') : specifier.split('/')[0]!;
  return builtinModules.includes(name) || NODE_ONLY_PACKAGES.has(name);
}

async function sourceFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  const out: string[] = [];
  for (const entry of entries) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await sourceFiles(path)));
    else if (SOURCE.test(entry.name) && !entry.name.endsWith('.d.ts')) out.push(path);
  }
  return out;
}

/** Every import in one file's text, with its 1-based line. */
export function importsOf(text: string): { specifier: string; line: number }[] {
  const found: { specifier: string; line: number; at: number }[] = [];
  for (const pattern of IMPORT_PATTERNS) {
    for (const match of text.matchAll(pattern)) {
      const at = match.index + match[0].length - 1;
      found.push({ specifier: match[1]!, at, line: text.slice(0, at).split('\n').length });
    }
  }
  const seen = new Set<number>();
  return found
    .filter((f) => (seen.has(f.at) ? false : (seen.add(f.at), true)))
    .sort((a, b) => a.at - b.at)
    .map(({ specifier, line }) => ({ specifier, line }));
}

/** Checks every guarded layer under `root`; returns the violations (empty: the layering holds). */
export async function checkLayers(root: string): Promise<LayerViolation[]> {
  const violations: LayerViolation[] = [];
  for (const [layer, allowed] of Object.entries(LAYER_RULES)) {
    for (const file of await sourceFiles(join(root, layer))) {
      const rel = relative(root, file).split(sep).join('/');
      const text = await readFile(file, 'utf8');
      for (const { specifier, line } of importsOf(text)) {
        const bare = specifier.replace(/\?.*$/, '');
        if (bare.startsWith('.')) {
          const target = relative(root, resolve(dirname(file), bare)).split(sep)[0]!;
          // A path into node_modules is a package reached by its file (vite `?url` assets): allowed.
          if (target !== 'node_modules' && !allowed.includes(target)) {
            violations.push({ file: rel, line, specifier, reason: `${layer}/ may import only ${allowed.join(', ')}/; this reaches ${target}/` });
          }
        } else if (BROWSER_LAYERS.has(layer) && isNodeOnly(bare)) {
          violations.push({ file: rel, line, specifier, reason: `${layer}/ runs in the browser; '${bare}' is Node-only (put this code in node/)` });
        }
      }
    }
  }
  return violations;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
  const violations = await checkLayers(root);
  for (const v of violations) process.stderr.write(`${v.file}:${v.line}: import '${v.specifier}': ${v.reason}\n`);
  if (violations.length > 0) process.exitCode = 1;
  else process.stdout.write(`layers ok: ${Object.keys(LAYER_RULES).join(', ')}\n`);
}
