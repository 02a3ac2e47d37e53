/**
 * The license of a repo card (README.md YAML front matter), the one card field the app reads.
 * A tiny reader for the `license:` key only (scalar, `[a, b]` or a `- a` list), not a YAML parser.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

const unquote = (s: string): string => s.trim().replace(/^(['"])(.*)\1$/, '$2').trim();

/**
 * @example frontMatterLicense('---\nlicense: mit\n---\n# Card'); // 'mit'
 */
export function frontMatterLicense(text: string): string | string[] | undefined {
  const m = /^\uFEFF?---[ \t]*\r?\n([\s\S]*?)\r?\n---[ \t]*(?:\r?\n|$)/.exec(text);
  if (!m) return undefined;
  const lines = m[1]!.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const kv = /^license[ \t]*:(.*)$/.exec(lines[i]!);
    if (!kv) continue;
    const value = kv[1]!.replace(/\s+#.*$/, '').trim();
    if (value.startsWith('[')) {
      const items = value.replace(/^\[|\]$/g, '').split(',').map(unquote).filter((s) => s !== '');
      return items.length ? items : undefined;
    }
    if (value !== '') return unquote(value) || undefined;
    const items: string[] = [];
    for (let j = i + 1; j < lines.length; j++) {
      const item = /^[ \t]*-[ \t]+(.+)$/.exec(lines[j]!);
      if (!item) break;
      items.push(unquote(item[1]!));
    }
    return items.length ? items : undefined;
  }
  return undefined;
}

/** The license in `<dir>/README.md`, if the card has one. */
export async function cardLicense(dir: string): Promise<string | string[] | undefined> {
  const text = await readFile(join(dir, 'README.md'), 'utf8').catch(() => null);
  return text === null ? undefined : frontMatterLicense(text);
}
