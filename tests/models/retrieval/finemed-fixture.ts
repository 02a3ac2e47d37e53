/**
 * FineMed-DPO-shaped rows written for the tests (the real data is on the hub, unreachable here),
 * a parquet encoder with the hub's nested layout (list<struct<content, role>>), and a local
 * server that answers like the hub: tree API with Link pagination, 302 from /resolve/ to a CDN
 * path, HTTP Range on the CDN path.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parquetWriteBuffer } from 'hyparquet-writer';

export type Row = {
  prompt: { content: string; role: string }[];
  chosen: { content: string; role: string }[];
  rejected: { content: string; role: string }[];
  text: string;
  complexity: number;
  quality: number;
  language: string;
};

const CASES: [string, string, string][] = [
  ['A 24-year-old has fever, neck stiffness and a petechial rash. What is the most likely diagnosis?',
    'Fever with meningism suggests meningitis. A petechial rash points to Neisseria meningitidis.',
    'Meningococcal meningitis; give ceftriaxone without delay.'],
  ['A 60-year-old smoker has painless jaundice and a palpable gallbladder. What should be suspected?',
    'Courvoisier sign: painless jaundice with a palpable gallbladder is unlikely to be stones.',
    'Carcinoma of the head of the pancreas.'],
  ['Why does hypokalaemia occur with vomiting?',
    'Loss of gastric acid causes metabolic alkalosis; the kidney wastes potassium.',
    'Renal potassium loss driven by alkalosis and secondary hyperaldosteronism.'],
];

/** Hard-to-compress filler, so `rejected` and `text` weigh in the file as they do in the real one. */
function noise(seed: number, chars: number): string {
  let x = (seed * 2654435761) >>> 0;
  let s = '';
  while (s.length < chars) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    s += (x >>> 8).toString(36) + ' ';
  }
  return s;
}

/**
 * `n` rows; row i uses case i % 3 and gets a distinct question. Summary headings vary like the
 * dataset's: "**Summarization**", "## Summarization", "Summarization:". Every 7th row has none.
 */
export function fineMedRows(n: number): Row[] {
  const headings = ['**Summarization**\n', '## Summarization\n', 'Summarization: '];
  return Array.from({ length: n }, (_, i) => {
    const [q, r, a] = CASES[i % CASES.length];
    const question = `${q} (case ${i})`;
    const answer = i % 7 === 6 ? `**Thought**\n${r}` : `**Thought**\n${r}\n\n${headings[i % 3]}${a}`;
    return {
      prompt: [{ content: `${question} Please think step by step.`, role: 'user' }],
      chosen: [{ content: answer, role: 'assistant' }],
      rejected: [{ content: noise(i, 3000), role: 'assistant' }],
      text: noise(i + 1e6, 6000),
      complexity: 5 + (i % 4),
      quality: 8,
      language: 'en',
    };
  });
}

const MESSAGES = (name: string): object[] => [
  { name, repetition_type: 'OPTIONAL', num_children: 1, converted_type: 'LIST', logical_type: { type: 'LIST' } },
  { name: 'list', repetition_type: 'REPEATED', num_children: 1 },
  { name: 'element', repetition_type: 'OPTIONAL', num_children: 2 },
  { name: 'content', type: 'BYTE_ARRAY', repetition_type: 'OPTIONAL', converted_type: 'UTF8', logical_type: { type: 'STRING' } },
  { name: 'role', type: 'BYTE_ARRAY', repetition_type: 'OPTIONAL', converted_type: 'UTF8', logical_type: { type: 'STRING' } },
];

/** Rows as a parquet file with the columns and nesting the hub's datasets library writes. */
export function fineMedParquet(rows: Row[], rowGroupSize = 8): Uint8Array {
  const schema = [
    { name: 'root', num_children: 7 },
    ...MESSAGES('prompt'), ...MESSAGES('chosen'), ...MESSAGES('rejected'),
    { name: 'text', type: 'BYTE_ARRAY', repetition_type: 'OPTIONAL', converted_type: 'UTF8' },
    { name: 'complexity', type: 'DOUBLE', repetition_type: 'OPTIONAL' },
    { name: 'quality', type: 'DOUBLE', repetition_type: 'OPTIONAL' },
    { name: 'language', type: 'BYTE_ARRAY', repetition_type: 'OPTIONAL', converted_type: 'UTF8' },
  ];
  const col = <K extends keyof Row>(name: K): { name: K; data: Row[K][] } => ({ name, data: rows.map((r) => r[name]) });
  const buf = parquetWriteBuffer({
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    schema: schema as any,
    rowGroupSize,
    columnData: [col('prompt'), col('chosen'), col('rejected'), col('text'), col('complexity'), col('quality'), col('language')],
  });
  return new Uint8Array(buf);
}

export interface FakeHub {
  url: string;
  /** Bytes of file data served from the CDN path. */
  servedBytes: number;
  requests: string[];
  close(): Promise<void>;
}

export interface FakeHubOptions {
  repo: string;
  /** path in repo -> bytes */
  files: Map<string, Uint8Array>;
  /** Entries per tree page (forces Link pagination). */
  pageSize?: number;
  /** Serve whole files on Range requests, as a plain static server would. */
  ignoreRange?: boolean;
  /** Answer the tree API with 404 (a dataset without data/), exposing files via the parquet export API. */
  noTree?: boolean;
  license?: string;
  /** Answer cross-origin requests as the hub does (browser tests). */
  cors?: boolean;
}

/** Starts the fake hub on 127.0.0.1 and a free port. */
export async function startFakeHub(o: FakeHubOptions): Promise<FakeHub> {
  const hub: FakeHub = { url: '', servedBytes: 0, requests: [], close: async () => {} };
  const paths = [...o.files.keys()].sort();
  const server: Server = createServer((req, res) => {
    const u = new URL(req.url ?? '/', 'http://x');
    hub.requests.push(`${req.method} ${u.pathname}${u.search}`);
    if (o.cors) {
      res.setHeader('Access-Control-Allow-Origin', '*');
      res.setHeader('Access-Control-Expose-Headers', 'Link, Content-Range, Content-Length');
      if (req.method === 'OPTIONS') {
        res.setHeader('Access-Control-Allow-Headers', 'Range');
        res.statusCode = 204;
        return res.end();
      }
    }
    const treePrefix = `/api/datasets/${o.repo}/tree/main/data`;
    if (u.pathname === treePrefix && !o.noTree) {
      const size = o.pageSize ?? paths.length;
      const cursor = Number(u.searchParams.get('cursor') ?? 0);
      const page = paths.slice(cursor, cursor + size).map((p) => ({
        type: 'file', oid: 'x', size: 135, path: p, lfs: { oid: 'y', size: o.files.get(p)!.byteLength, pointerSize: 135 },
      }));
      if (cursor + size < paths.length) res.setHeader('Link', `<${hub.url}${treePrefix}?recursive=true&cursor=${cursor + size}>; rel="next"`);
      res.setHeader('Content-Type', 'application/json');
      return res.end(JSON.stringify(cursor === 0 ? [{ type: 'directory', oid: 'z', size: 0, path: 'data/extra' }, ...page] : page));
    }
    if (u.pathname === `/api/datasets/${o.repo}/parquet/default/train`) {
      res.setHeader('Content-Type', 'application/json');
      return res.end(JSON.stringify(paths.filter((p) => p.endsWith('.parquet')).map((p) => `${hub.url}/datasets/${o.repo}/resolve/refs%2Fconvert%2Fparquet/${p}`)));
    }
    if (u.pathname === `/api/datasets/${o.repo}`) {
      res.setHeader('Content-Type', 'application/json');
      return res.end(JSON.stringify({ id: o.repo, cardData: o.license ? { license: o.license } : {} }));
    }
    const resolve = u.pathname.match(new RegExp(`^/datasets/${o.repo}/resolve/([^/]+)/(.+)$`));
    if (resolve) {
      res.statusCode = 302;
      res.setHeader('Location', `/cdn/${resolve[2]}`);
      return res.end();
    }
    const cdn = u.pathname.match(/^\/cdn\/(.+)$/);
    const body = cdn ? o.files.get(decodeURIComponent(cdn[1])) : undefined;
    if (!body) {
      res.statusCode = 404;
      return res.end('not found');
    }
    const range = req.headers.range?.match(/^bytes=(\d+)-(\d+)$/);
    let part = body;
    if (range && !o.ignoreRange) {
      const [s, e] = [Number(range[1]), Math.min(Number(range[2]), body.byteLength - 1)];
      part = body.subarray(s, e + 1);
      res.statusCode = 206;
      res.setHeader('Content-Range', `bytes ${s}-${e}/${body.byteLength}`);
    }
    res.setHeader('Content-Length', part.byteLength);
    if (req.method === 'HEAD') return res.end();
    hub.servedBytes += part.byteLength;
    res.end(part);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  hub.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  hub.close = () => new Promise((r) => server.close(() => r()));
  return hub;
}
