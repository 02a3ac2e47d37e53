/**
 * The worker host both workers run on (workers/worker-host.ts), in Node with a fake scope: arrival
 * order, immediate requests, cancel of a running and of a queued request, events tagged with their
 * request's id, transferred results, typed errors, and the request-less errors (malformed message,
 * messageerror, an escaped rejection). The real workers are covered by e2e/worker.test.ts and
 * e2e/retrieval*.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { AbortError, DeviceLimitsError } from '../../models/errors.ts';
import { NO_REQUEST } from '../../workers/wire.ts';
import { serveRequests, type HostScope } from '../../workers/worker-host.ts';
import { FakeWorker } from '../helpers/fake-worker.ts';

type Req =
  | { type: 'slow'; id: number; name: string }
  | { type: 'peek'; id: number }
  | { type: 'bytes'; id: number }
  | { type: 'cancel'; id: number; targetId: number };
type Ev =
  | { type: 'progress'; id: number; step: number }
  | { type: 'result'; id: number; result: unknown }
  | { type: 'error'; id: number; error: { name: string; code: string; message: string; details?: Record<string, unknown> } }
  | { type: 'status'; id: number; note: string };

const tick = () => new Promise((r) => setTimeout(r, 0));

/** A host whose `slow` requests wait until the test releases them by name. */
function setup() {
  const scope = new FakeWorker<Ev, Req>();
  const started: string[] = [];
  const release = new Map<string, (fail?: Error) => void>();
  const signals = new Map<string, AbortSignal>();
  const host = serveRequests<Req, Ev>({
    label: 'test worker',
    scope: scope as unknown as HostScope,
    immediate: (req) => req.type === 'peek',
    transfer: (result) => (result instanceof ArrayBuffer ? [result] : []),
    handle: async (req, signal, emit) => {
      if (req.type === 'peek') return { started: [...started] };
      if (req.type === 'bytes') return new Uint8Array([1, 2, 3]).buffer;
      started.push(req.name);
      signals.set(req.name, signal);
      emit({ type: 'progress', step: 1 });
      await new Promise<void>((resolve, reject) => release.set(req.name, (fail) => (fail ? reject(fail) : resolve())));
      if (signal.aborted) throw new AbortError();
      return `done ${req.name}`;
    },
  });
  const outcome = (id: number) => scope.sent.find((e) => e.id === id && (e.type === 'result' || e.type === 'error'));
  return { scope, host, started, release, signals, outcome };
}

describe('serveRequests', () => {
  it('runs long requests one at a time in arrival order; immediate ones at once', async () => {
    const { scope, started, release, outcome } = setup();
    scope.emit({ type: 'slow', id: 1, name: 'a' });
    scope.emit({ type: 'slow', id: 2, name: 'b' });
    await tick();
    expect(started).toEqual(['a']);
    // 'a' runs and 'b' waits: the immediate request does not wait behind either.
    scope.emit({ type: 'peek', id: 3 });
    await tick();
    expect(outcome(3)).toEqual({ type: 'result', id: 3, result: { started: ['a'] } });
    expect(scope.sent.filter((e) => e.type === 'progress')).toEqual([{ type: 'progress', id: 1, step: 1 }]);
    release.get('a')!();
    await tick();
    expect(outcome(1)).toEqual({ type: 'result', id: 1, result: 'done a' });
    expect(started).toEqual(['a', 'b']);
    release.get('b')!();
    await tick();
    expect(outcome(2)).toEqual({ type: 'result', id: 2, result: 'done b' });
  });

  it('cancel aborts the running request and a queued one (which never starts); unknown targets say so', async () => {
    const { scope, started, release, signals, outcome } = setup();
    scope.emit({ type: 'slow', id: 1, name: 'a' });
    scope.emit({ type: 'slow', id: 2, name: 'b' });
    await tick();
    scope.emit({ type: 'cancel', id: 3, targetId: 2 });
    scope.emit({ type: 'cancel', id: 4, targetId: 1 });
    scope.emit({ type: 'cancel', id: 5, targetId: 99 });
    expect(outcome(3)).toEqual({ type: 'result', id: 3, result: { cancelled: true } });
    expect(outcome(4)).toEqual({ type: 'result', id: 4, result: { cancelled: true } });
    expect(outcome(5)).toEqual({ type: 'result', id: 5, result: { cancelled: false } });
    expect(signals.get('a')!.aborted).toBe(true);
    release.get('a')!();
    await tick();
    expect(outcome(1)).toMatchObject({ type: 'error', error: { name: 'AbortError', code: 'aborted' } });
    expect(outcome(2)).toMatchObject({ type: 'error', error: { name: 'AbortError', code: 'aborted' } });
    expect(started).toEqual(['a']);
    // A finished request is no longer cancellable.
    scope.emit({ type: 'cancel', id: 6, targetId: 1 });
    expect(outcome(6)).toEqual({ type: 'result', id: 6, result: { cancelled: false } });
  });

  it('a failure is a typed error event with the class name and its fields; the queue goes on', async () => {
    const { scope, release, outcome } = setup();
    scope.emit({ type: 'slow', id: 1, name: 'a' });
    scope.emit({ type: 'slow', id: 2, name: 'b' });
    await tick();
    const problems = [{ buffer: 'kv', bytes: 10, limit: 'maxBufferSize', limitBytes: 5 }];
    release.get('a')!(new DeviceLimitsError('too big', problems));
    await tick();
    expect(outcome(1)).toEqual({ type: 'error', id: 1, error: { name: 'DeviceLimitsError', code: 'device-limits', message: 'too big', details: { problems } } });
    release.get('b')!();
    await tick();
    expect(outcome(2)).toMatchObject({ type: 'result', result: 'done b' });
  });

  it('transfers the buffers the transfer option names', async () => {
    const { scope, outcome } = setup();
    scope.emit({ type: 'bytes', id: 1 });
    await tick();
    expect(scope.transfers.at(-1)).toHaveLength(1);
    expect((scope.transfers.at(-1)![0] as ArrayBuffer).byteLength).toBe(0); // detached on the worker side
    const r = outcome(1) as { result: ArrayBuffer };
    expect(Array.from(new Uint8Array(r.result))).toEqual([1, 2, 3]);
  });

  it('malformed messages, unreadable messages and escaped rejections are errors of no request', async () => {
    const { scope, host } = setup();
    scope.emit({ id: 'x' } as unknown as Req);
    scope.unreadable();
    const rejection = Object.assign(new Event('unhandledrejection', { cancelable: true }), { reason: new Error('escaped') });
    scope.dispatchEvent(rejection);
    host.post({ type: 'status', id: NO_REQUEST, note: 'ready' });
    expect(scope.sent).toHaveLength(4);
    expect(scope.sent[0]).toMatchObject({ type: 'error', id: NO_REQUEST, error: { code: 'invalid-input', message: expect.stringContaining('Malformed request to the test worker: {"id":"x"}') } });
    expect(scope.sent[1]).toMatchObject({ type: 'error', id: NO_REQUEST, error: { code: 'internal', message: 'The test worker received a message it could not read.' } });
    expect(scope.sent[2]).toMatchObject({ type: 'error', id: NO_REQUEST, error: { code: 'internal', message: 'escaped' } });
    expect(rejection.defaultPrevented).toBe(true);
    expect(scope.sent[3]).toEqual({ type: 'status', id: NO_REQUEST, note: 'ready' });
  });
});
