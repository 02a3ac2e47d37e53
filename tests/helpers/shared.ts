import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Project root (this file is tests/helpers/shared.ts). */
export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
/** `../shared` beside the checkout: golden files and real tokenizers; absent on a fresh clone. */
export const SHARED = resolve(ROOT, '..', 'shared');
export const HAS_SHARED = existsSync(join(SHARED, 'golden'));

export function sharedPath(...parts: string[]): string {
  return join(SHARED, ...parts);
}

/**
 * Use as `describe.skipIf(!HAS_SHARED)(...)`; call once per file so the skip is loud.
 */
export function warnIfNoShared(what: string): void {
  if (!HAS_SHARED) {
    console.warn(`\n[SKIPPED] ${what}: ../shared is absent (fresh clone); these tests need ${SHARED}.\n`);
  }
}
