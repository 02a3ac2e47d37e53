/**
 * OPFS write and read throughput through the weight cache's own store (OpfsCacheStore: sync
 * access handles in a dedicated worker), in slices as a cached load reads (16 MiB), with the
 * read side checksummed as a cached load does. Browser worker only. Used by `npm run bench:cache`
 * (scripts/bench/cache.worker.ts).
 */
import { Checksum64 } from '../../models/cache/checksum.ts';
import { READ_SLICE_BYTES } from '../../models/cache/entry-reader.ts';
import { OpfsCacheStore } from '../../models/cache/opfs-store.ts';

/** MB = 10^6 bytes. Write includes the flush (close) that makes the file durable. */
export interface OpfsThroughput {
  bytes: number;
  sliceBytes: number;
  writeMBps: number;
  readMBps: number;
}

const KEY = 'opfs-throughput-probe';

/**
 * Writes a `totalBytes` file in `sliceBytes` slices, flushes it, reads it back with a checksum,
 * deletes it.
 * @example const r = await opfsThroughput(128 * 2 ** 20); // { writeMBps: 420, readMBps: 950, ... }
 */
export async function opfsThroughput(totalBytes: number, sliceBytes = READ_SLICE_BYTES): Promise<OpfsThroughput> {
  const store = await OpfsCacheStore.open();
  const slice = new Uint8Array(sliceBytes).map((_, i) => (i * 7) & 255);
  try {
    const t0 = performance.now();
    const w = await store.openWrite(KEY, 'tensors/probe.bin');
    for (let n = 0; n < totalBytes; n += sliceBytes) await w.write(slice.subarray(0, Math.min(sliceBytes, totalBytes - n)));
    await w.close();
    const t1 = performance.now();
    const r = (await store.openRead(KEY, 'tensors/probe.bin'))!;
    const h = new Checksum64();
    let read = 0;
    for (let off = 0; off < r.size; off += sliceBytes) {
      const b = await r.read(off, sliceBytes);
      h.update(b);
      read += b.byteLength;
    }
    await r.close();
    h.digest();
    const t2 = performance.now();
    if (read !== totalBytes) throw new Error(`OPFS probe: read back ${read} of ${totalBytes} bytes`);
    const mbps = (ms: number) => totalBytes / 1e6 / (ms / 1000);
    return { bytes: totalBytes, sliceBytes, writeMBps: mbps(t1 - t0), readMBps: mbps(t2 - t1) };
  } finally {
    await store.deleteEntry(KEY);
  }
}
