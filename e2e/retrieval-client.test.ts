/**
 * RetrievalClient against a scripted fake worker (Node, no browser): ids route events to the
 * right call, progress reaches the caller, cancel names its target, errors arrive typed, and a
 * broken worker rejects everything instead of hanging. (Beside e2e/client.test.ts, its LLM twin.)
 */
import { describe, expect, it } from 'vitest';
import { EngineError, serializeError } from '../models/errors.ts';
import { CorpusFormatError, StaleIndexError } from '../models/retrieval/errors.ts';
import { RetrievalClient } from '../workers/retrieval-client.ts';
import { NO_REQUEST, type RetrievalEvent, type RetrievalRequest } from '../workers/retrieval-protocol.ts';
import { withFakeWorkers } from '../tests/helpers/fake-worker.ts';

function setup() {
  return withFakeWorkers<RetrievalRequest, RetrievalEvent, RetrievalClient>((create) => new RetrievalClient(create));
}

describe('RetrievalClient', () => {
  it('settles each call by its id and forwards progress', async () => {
    const { client, workers } = setup();
    const phases: string[] = [];
    const open = client.openIndex({ corpus: { kind: 'stored', name: 'demo' } }, (p) => phases.push(p.phase));
    const ret = client.retrieve('Q?', 3);
    const w = workers[0]!;
    expect(w.sent.map((m) => [m.type, m.id])).toEqual([['open-index', 1], ['retrieve', 2]]);
    expect(w.sent[1]).toEqual({ type: 'retrieve', id: 2, question: 'Q?', k: 3 });
    w.emit({ type: 'progress', id: 1, progress: { phase: 'index', done: 1, total: 2 } });
    const result = { results: [], timings: { embedMs: 1, searchMs: 1, totalMs: 2 }, retriever: 'embedding' as const };
    w.emit({ type: 'result', id: 2, result });
    expect(await ret).toEqual(result);
    w.emit({ type: 'error', id: 1, error: { name: 'StaleIndexError', code: 'not-found', message: 'stale' } });
    const err = await open.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EngineError);
    expect(err).toMatchObject({ name: 'StaleIndexError', code: 'not-found' });
    expect(phases).toEqual(['index']);
  });

  it('retrieval errors keep their class and their fields (bad lines, stale reasons)', async () => {
    const { client, workers } = setup();
    const open = client.openIndex({ corpus: { kind: 'stored', name: 'demo' } });
    const other = client.openIndex({ corpus: { kind: 'stored', name: 'old' } });
    const w = workers[0]!;
    const badLines = [{ line: 3, reason: 'not valid JSON' }];
    w.emit({ type: 'error', id: 1, error: serializeError(new CorpusFormatError('Line 3: not valid JSON', badLines)) }, []);
    w.emit({ type: 'error', id: 2, error: serializeError(new StaleIndexError(['dtype changed (fp32 -> q8)'])) }, []);
    const e1 = await open.catch((e: unknown) => e);
    const e2 = await other.catch((e: unknown) => e);
    expect(e1).toBeInstanceOf(CorpusFormatError);
    expect((e1 as CorpusFormatError).badLines).toEqual(badLines);
    expect(e2).toBeInstanceOf(StaleIndexError);
    expect(e2).toMatchObject({ reasons: ['dtype changed (fp32 -> q8)'], message: expect.stringMatching(/stale: dtype changed/) });
  });

  it('cancel() sends a cancel naming the call, and nothing once it has settled', async () => {
    const { client, workers } = setup();
    const call = client.embed(['a']);
    call.cancel();
    const w = workers[0]!;
    expect(w.sent.at(-1)).toEqual({ type: 'cancel', id: 2, targetId: 1 });
    w.emit({ type: 'result', id: 2, result: { cancelled: true } });
    w.emit({ type: 'error', id: 1, error: { name: 'AbortError', code: 'aborted', message: 'cancelled' } });
    await expect(call).rejects.toMatchObject({ code: 'aborted' });
    call.cancel();
    expect(w.sent).toHaveLength(2);
  });

  it('rejects everything pending when the worker dies, then starts a fresh worker', async () => {
    const { client, workers } = setup();
    const a = client.retrieve('x');
    const b = client.listIndexes();
    workers[0]!.crash('boom');
    await expect(a).rejects.toMatchObject({ code: 'internal', message: expect.stringContaining('boom') });
    await expect(b).rejects.toMatchObject({ code: 'internal' });
    expect(workers[0]!.terminated).toBe(true);
    const c = client.listIndexes();
    expect(workers).toHaveLength(2);
    // An error tied to no request leaves the worker's state unknown: nobody keeps waiting.
    workers[1]!.emit({ type: 'error', id: NO_REQUEST, error: { name: 'EngineError', code: 'internal', message: 'lost' } });
    await expect(c).rejects.toMatchObject({ message: 'lost' });
  });

  it('sends relative URLs unchanged where there is no page (Node)', () => {
    const { client, workers } = setup();
    void client.initEmbedder({ allowRemoteModels: false, localModelPath: 'models/' });
    void client.openIndex({ corpus: { kind: 'url', url: 'demo/demo-corpus.jsonl' } });
    expect(workers[0]!.sent[0]).toMatchObject({ embedder: { localModelPath: 'models/' } });
    expect(workers[0]!.sent[1]).toMatchObject({ corpus: { kind: 'url', url: 'demo/demo-corpus.jsonl' } });
  });

  it('routes status events to onStatus listeners without failing pending calls; retrieve names its retriever', async () => {
    const { client, workers } = setup();
    const seen: string[] = [];
    const off = client.onStatus((st) => seen.push(`${st.retrievers.lexical}/${st.retrievers.embedding}`));
    const call = client.retrieve('Q?', 2, { retriever: 'lexical' });
    const w = workers[0]!;
    expect(w.sent[0]).toEqual({ type: 'retrieve', id: 1, question: 'Q?', k: 2, retriever: 'lexical' });
    const status = { embedder: null, corpus: { name: 'c', count: 1, key: 'corpus~c' }, retrievers: { lexical: 'ready', embedding: 'building' }, auto: 'lexical' } as const;
    w.emit({ type: 'status', id: NO_REQUEST, status });
    off();
    w.emit({ type: 'status', id: NO_REQUEST, status: { ...status, retrievers: { lexical: 'ready', embedding: 'ready' }, auto: 'embedding' } });
    const result = { results: [], timings: { embedMs: 0, searchMs: 1, totalMs: 1 }, retriever: 'lexical' as const };
    w.emit({ type: 'result', id: 1, result });
    expect(await call).toEqual(result);
    expect(seen).toEqual(['ready/building']);
    void client.status();
    expect(w.sent.at(-1)).toEqual({ type: 'status', id: 2 });
  });
});
