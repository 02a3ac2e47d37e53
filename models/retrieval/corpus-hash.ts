/**
 * A content hash of a corpus, stored in each index manifest so that a changed corpus marks the
 * index stale. SHA-256 (WebCrypto, in browsers and Node) over chunks of records, then over the
 * chunk digests: memory stays bounded for a 300 MB corpus, and any edit of any field changes it.
 */
import type { CorpusRecord } from './record.ts';

const CHUNK = 1024;

/** Every field, in a fixed order, so key order in the source file does not matter. */
function canonical(r: CorpusRecord): string {
  return JSON.stringify([r.id, r.question, r.reasoning, r.answer, r.source, r.license, r.department]);
}

async function sha256(bytes: Uint8Array): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>));
}

function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

/**
 * Hex SHA-256 identifying the records and their order.
 * @example
 *   const hash = await hashCorpus(records); // '3f1c...' (64 hex digits)
 */
export async function hashCorpus(records: readonly CorpusRecord[]): Promise<string> {
  const enc = new TextEncoder();
  const digests = new Uint8Array(Math.ceil(records.length / CHUNK) * 32);
  for (let c = 0; c * CHUNK < records.length; c++) {
    const text = records.slice(c * CHUNK, (c + 1) * CHUNK).map(canonical).join('\n');
    digests.set(await sha256(enc.encode(text)), c * 32);
  }
  const head = enc.encode(`corpus-v1:${records.length}:`);
  const all = new Uint8Array(head.length + digests.length);
  all.set(head);
  all.set(digests, head.length);
  return hex(await sha256(all));
}
