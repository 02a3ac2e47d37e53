/**
 * LlmClient against a scripted fake worker (Node, no browser): ids route events to the right
 * call, errors arrive typed, and a broken worker rejects everything instead of hanging.
 * (Lives here, not in tests/, because it belongs to the worker layer's own suite.)
 */
import { describe, expect, it } from 'vitest';
import { DeviceLimitsError, DeviceLostError, EngineError, NotFoundError, serializeError } from '../models/errors.ts';
import { LlmClient } from '../workers/client.ts';
import { NO_REQUEST, type WorkerEvent, type WorkerRequest } from '../workers/protocol.ts';
import { withFakeWorkers } from '../tests/helpers/fake-worker.ts';

function setup() {
  return withFakeWorkers<WorkerRequest, WorkerEvent, LlmClient>((create) => new LlmClient(create));
}

const info = { source: 's', hasTokenizer: true, hasChatTemplate: false } as never;

describe('LlmClient', () => {
  it('starts the worker lazily and settles each call by its id', async () => {
    const { client, workers } = setup();
    expect(workers).toHaveLength(0);
    const progress: number[] = [];
    const load = client.load({ kind: 'url', url: 'http://x/m/' }, { backend: 'cpu' }, (p) => progress.push(p.loadedBytes));
    const inf = client.info();
    const w = workers[0]!;
    const [loadReq, infoReq] = w.sent;
    expect(loadReq).toMatchObject({ type: 'load', source: { kind: 'url', url: 'http://x/m/' }, options: { backend: 'cpu' } });
    expect(loadReq!.id).not.toBe(infoReq!.id);
    w.emit({ type: 'progress', id: loadReq!.id, progress: { phase: 'weights', loadedBytes: 5, totalBytes: 10 } });
    w.emit({ type: 'result', id: infoReq!.id, result: null });
    w.emit({ type: 'result', id: loadReq!.id, result: info });
    await expect(inf).resolves.toBeNull();
    await expect(load).resolves.toBe(info);
    expect(progress).toEqual([5]);
  });

  it('streams tokens to the generate call and resolves with its result', async () => {
    const { client, workers } = setup();
    const seen: string[] = [];
    const gen = client.generate({ prompt: 'hi', chat: true, options: { maxNewTokens: 2 } }, (t) => seen.push(t.text));
    const w = workers[0]!;
    const id = w.sent[0]!.id;
    expect(w.sent[0]).toMatchObject({ type: 'generate', prompt: 'hi', chat: true, options: { maxNewTokens: 2 } });
    w.emit({ type: 'token', id, tokenId: 1, text: 'a' });
    w.emit({ type: 'token', id: id + 100, tokenId: 9, text: 'zz' }); // someone else's
    w.emit({ type: 'token', id, tokenId: 2, text: 'b' });
    const result = { ids: [1, 2], text: 'ab', stopReason: 'max-tokens', promptTokens: 1, timings: {} } as never;
    w.emit({ type: 'result', id, result });
    await expect(gen).resolves.toBe(result);
    expect(seen).toEqual(['a', 'b']); // the new text only; the result carries the whole
  });

  it('rejects with a typed EngineError carrying the code', async () => {
    const { client, workers } = setup();
    const load = client.load({ kind: 'url', url: 'http://x/none/' }, { backend: 'cpu' });
    const w = workers[0]!;
    w.emit({ type: 'error', id: w.sent[0]!.id, error: { name: 'NotFoundError', code: 'not-found', message: 'config.json: 404' } });
    const err = await load.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EngineError);
    expect(err).toMatchObject({ code: 'not-found', name: 'NotFoundError', message: 'config.json: 404' });
  });

  it('errors keep their class across the boundary, with their extra fields', async () => {
    const { client, workers } = setup();
    const a = client.generate({ ids: [1], options: { maxNewTokens: 1 } });
    const b = client.load({ kind: 'url', url: 'http://x/big/' }, { backend: 'webgpu' });
    const c = client.info();
    const w = workers[0]!;
    const problems = [{ buffer: 'kv cache', bytes: 3e9, limit: 'maxBufferSize', limitBytes: 2 ** 31 }];
    // As the worker sends them: serialized, then structured-cloned by postMessage.
    w.emit({ type: 'error', id: w.sent[0]!.id, error: serializeError(new DeviceLostError('The GPU device was lost.')) }, []);
    w.emit({ type: 'error', id: w.sent[1]!.id, error: serializeError(new DeviceLimitsError('kv cache too big', problems)) }, []);
    w.emit({ type: 'error', id: w.sent[2]!.id, error: { name: 'NotFoundError', code: 'not-found', message: 'gone' } });
    const [ea, eb, ec] = await Promise.all([a, b, c].map((p) => (p as Promise<unknown>).catch((e: unknown) => e)));
    expect(ea).toBeInstanceOf(DeviceLostError);
    expect(ea).toMatchObject({ name: 'DeviceLostError', code: 'device-lost', message: 'The GPU device was lost.' });
    expect(eb).toBeInstanceOf(DeviceLimitsError);
    expect((eb as DeviceLimitsError).problems).toEqual(problems);
    expect(ec).toBeInstanceOf(NotFoundError);
  });

  it('cancel() sends a cancel for each load/generate in flight', async () => {
    const { client, workers } = setup();
    const gen = client.generate({ ids: [1, 2], options: { maxNewTokens: 4 } });
    const w = workers[0]!;
    client.cancel();
    const cancel = w.sent[1]!;
    expect(cancel).toMatchObject({ type: 'cancel', targetId: w.sent[0]!.id });
    w.emit({ type: 'result', id: cancel.id, result: { cancelled: true } });
    w.emit({ type: 'error', id: w.sent[0]!.id, error: { name: 'AbortError', code: 'aborted', message: 'cancelled' } });
    await expect(gen).rejects.toMatchObject({ code: 'aborted' });
    expect(client.busy).toBe(false);
  });

  it('a crashed worker rejects every pending call, and the next call starts a new worker', async () => {
    const { client, workers } = setup();
    const a = client.load({ kind: 'url', url: 'http://x/m/' }, { backend: 'cpu' });
    const b = client.info();
    workers[0]!.crash('SyntaxError: boom');
    await expect(a).rejects.toMatchObject({ code: 'internal', message: expect.stringContaining('boom') });
    await expect(b).rejects.toMatchObject({ code: 'internal' });
    expect(workers[0]!.terminated).toBe(true);
    const c = client.info();
    expect(workers).toHaveLength(2);
    workers[1]!.emit({ type: 'result', id: workers[1]!.sent[0]!.id, result: null });
    await expect(c).resolves.toBeNull();
  });

  it('messageerror and request-less errors reject everything pending', async () => {
    const { client, workers } = setup();
    const a = client.info();
    workers[0]!.dispatchEvent(new Event('messageerror'));
    await expect(a).rejects.toMatchObject({ code: 'internal', message: expect.stringContaining('could not be read') });
    const b = client.info();
    workers[1]!.emit({ type: 'error', id: NO_REQUEST, error: { name: 'EngineError', code: 'internal', message: 'stray' } });
    await expect(b).rejects.toMatchObject({ message: 'stray' });
  });

  it('sends folder paths with picked files, since webkitRelativePath may not survive cloning', async () => {
    const { client, workers } = setup();
    const files = ['model/config.json', 'model/original/params.json'].map((p) => {
      const f = new File(['x'], p.split('/').pop()!);
      Object.defineProperty(f, 'webkitRelativePath', { value: p });
      return f;
    });
    void client.load({ kind: 'files', files }, { backend: 'cpu' }).catch(() => undefined);
    expect(workers[0]!.sent[0]).toMatchObject({ source: { kind: 'files', paths: ['config.json', 'original/params.json'], description: 'model' } });
    client.terminate();
  });
});
