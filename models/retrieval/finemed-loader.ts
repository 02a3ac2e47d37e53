/**
 * Downloads FineMed-DPO from the hub as the hub serves it (parquet under data/, listed by the tree
 * API; the hub's parquet export otherwise) and parses rows into records, with progress. Only the
 * `prompt` and `chosen` columns are fetched, by HTTP range.
 */
import { parquetMetadataAsync, parquetReadObjects, type FileMetaData } from 'hyparquet';
import { NotFoundError, throwIfAborted } from '../errors.ts';
import { CorpusFormatError, type BadLine } from './errors.ts';
import { FINEMED_DPO_REPO, parseFineMedRow } from './finemed-row.ts';
import { openParquetUrl } from './parquet-url.ts';
import { datasetLicense, listDatasetFiles, parquetExportUrls, type HubDataset, type HubFile } from './hub.ts';
import type { CorpusRecord } from './record.ts';

const COLUMNS = ['prompt', 'chosen'];

export interface FineMedProgress {
  phase: 'list' | 'download' | 'done';
  /** Bytes received so far / bytes of the needed column chunks of all files (known per file as its footer arrives). */
  loadedBytes: number;
  totalBytes: number;
  rows: number;
  file?: string;
}

export interface FineMedOptions extends Partial<HubDataset> {
  /** Stop after this many rows (previews, tests). */
  limit?: number;
  onProgress?: (p: FineMedProgress) => void;
}

export interface FineMedResult {
  records: CorpusRecord[];
  /** Rows that could not be parsed (row = 0-based dataset row). */
  skipped: number;
  badRows: BadLine[];
  /** Rows whose answer had no Summarization heading (kept; answer = ''). */
  withoutSummary: number;
  files: string[];
  license: string;
}

/** Bytes of the needed columns' chunks in a parquet file, from its footer. */
function columnBytes(meta: FileMetaData): number {
  let n = 0;
  for (const rg of meta.row_groups) {
    for (const c of rg.columns) {
      if (c.meta_data && COLUMNS.includes(c.meta_data.path_in_schema[0])) n += Number(c.meta_data.total_compressed_size);
    }
  }
  return n;
}

async function parquetFiles(d: HubDataset): Promise<HubFile[]> {
  let listed: HubFile[] = [];
  try {
    listed = (await listDatasetFiles(d, 'data')).filter((f) => f.path.endsWith('.parquet'));
  } catch (e) {
    if (!(e instanceof NotFoundError)) throw e;
  }
  if (listed.length) return listed;
  const urls = await parquetExportUrls(d);
  if (!urls.length) throw new NotFoundError(`${d.repo} has no parquet files under data/ and no parquet export.`);
  return urls.map((url) => ({ path: decodeURIComponent(new URL(url).pathname), url }));
}

/**
 * @example
 *   const { records, skipped } = await loadFineMedDpo({ onProgress: (p) => console.log(p.loadedBytes, p.totalBytes) });
 */
export async function loadFineMedDpo(options: FineMedOptions = {}): Promise<FineMedResult> {
  const d: HubDataset = { hub: options.hub, repo: options.repo ?? FINEMED_DPO_REPO, revision: options.revision, fetch: options.fetch, signal: options.signal };
  const limit = options.limit ?? Infinity;
  const progress: FineMedProgress = { phase: 'list', loadedBytes: 0, totalBytes: 0, rows: 0 };
  const report = (): void => options.onProgress?.({ ...progress });
  report();
  const [files, license] = await Promise.all([parquetFiles(d), datasetLicense(d).catch(() => null)]);
  const records: CorpusRecord[] = [];
  const badRows: BadLine[] = [];
  let skipped = 0;
  let withoutSummary = 0;
  let row = 0;
  progress.phase = 'download';
  for (const f of files) {
    if (row >= limit) break;
    throwIfAborted(options.signal);
    progress.file = f.path;
    const file = await openParquetUrl(f.url, { fetch: d.fetch, signal: d.signal, onBytes: (n) => { progress.loadedBytes += n; report(); } });
    // The footer is a few KB; the default first read of 512 KB would fetch all of a small file.
    const metadata = await parquetMetadataAsync(file, { initialFetchSize: 64 * 1024 });
    const names = metadata.schema.map((s) => s.name);
    const missing = COLUMNS.filter((c) => !names.includes(c));
    if (missing.length) throw new CorpusFormatError(`${f.path} has no column ${missing.join(', ')}; this is not FineMed-DPO's layout.`);
    progress.totalBytes += columnBytes(metadata);
    report();
    const rowEnd = Math.min(Number(metadata.num_rows), limit - row);
    const rows = await parquetReadObjects({ file, metadata, columns: COLUMNS, rowEnd });
    for (const r of rows) {
      const parsed = parseFineMedRow(r, row, license ?? 'see the dataset card');
      if (parsed.ok) {
        records.push(parsed.record);
        if (!parsed.hasSummary) withoutSummary++;
      } else {
        skipped++;
        if (badRows.length < 1000) badRows.push({ line: row, reason: parsed.reason });
      }
      row++;
    }
    progress.rows = row;
    report();
  }
  progress.phase = 'done';
  report();
  if (!records.length) throw new CorpusFormatError(`No usable row in ${d.repo}.`, badRows);
  return { records, skipped, badRows, withoutSummary, files: files.map((f) => f.path), license: license ?? 'see the dataset card' };
}
