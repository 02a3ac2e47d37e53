/**
 * LlmClient's test-time-training calls against a scripted fake worker (Node, no browser): request
 * shapes, ArrayBuffers transferred (not copied) both ways, ttt-step events routed to the right
 * call, cancel() reaching a TTT run, typed errors. The real worker is covered by e2e/ttt.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { EngineError } from '../../models/errors.ts';
import { LlmClient } from '../../workers/client.ts';
import type { TttResult, WorkerEvent, WorkerRequest } from '../../workers/protocol.ts';
import { withFakeWorkers } from '../helpers/fake-worker.ts';

function setup() {
  const { client, workers } = withFakeWorkers<WorkerRequest, WorkerEvent, LlmClient>((create) => new LlmClient(create));
  return { client, worker: () => workers[0]! };
}

const tttResult: TttResult = {
  lossAtStart: 2, losses: [2, 1.5], finalLoss: 1.2, tokensTrained: 3,
  timings: { totalMs: 10, stepMs: [4, 4] }, sequence: { tokens: 4, promptTokens: 1, truncated: false },
};

describe('LlmClient TTT calls', () => {
  it('attachAdapter transfers loraInit to the worker (the sender buffer is detached)', async () => {
    const { client, worker } = setup();
    const bytes = new Uint8Array([1, 2, 3, 4]).buffer;
    const p = client.attachAdapter({ config: { rank: 4, alpha: 8, preset: 'paper' }, loraInit: bytes, zeroB: true });
    const w = worker();
    expect(bytes.byteLength).toBe(0);
    expect(w.transfers[0]).toHaveLength(1);
    const req = w.sent[0]!;
    expect(req).toMatchObject({ type: 'attach-adapter', config: { rank: 4, alpha: 8, preset: 'paper' }, zeroB: true });
    expect(new Uint8Array((req as { loraInit: ArrayBuffer }).loraInit)).toEqual(new Uint8Array([1, 2, 3, 4]));
    const info = { config: { rank: 4 }, parameters: 10, fromFile: true, bZero: true } as never;
    w.emit({ type: 'result', id: req.id, result: info });
    await expect(p).resolves.toEqual(info);
  });

  it('attachAdapter without a file sends no transfer list entries', async () => {
    const { client, worker } = setup();
    void client.attachAdapter().catch(() => undefined);
    expect(worker().sent[0]).toEqual({ type: 'attach-adapter', id: worker().sent[0]!.id });
    expect(worker().transfers[0]).toEqual([]);
    client.terminate();
  });

  it('ttt routes its ttt-step events to its own callback and resolves with the result', async () => {
    const { client, worker } = setup();
    const steps: number[][] = [];
    const p = client.ttt({ ids: [1, 2, 3, 4], mask: [0, 1, 1, 1], options: { steps: 2, lr: 1e-2, maxGradNorm: null } }, (s) => steps.push([s.step, s.steps, s.loss]));
    const other = client.ttt({ trace: { question: 'q', reasoning: 'r', answer: 'a' } });
    const w = worker();
    const [a, b] = w.sent;
    expect(a).toMatchObject({ type: 'ttt', ids: [1, 2, 3, 4], mask: [0, 1, 1, 1], options: { steps: 2, lr: 1e-2, maxGradNorm: null } });
    expect(b).toMatchObject({ type: 'ttt', trace: { question: 'q', reasoning: 'r', answer: 'a' } });
    expect(client.busy).toBe(true);
    w.emit({ type: 'ttt-step', id: a!.id, step: 1, steps: 2, loss: 2, ms: 4 });
    w.emit({ type: 'ttt-step', id: b!.id, step: 1, steps: 3, loss: 9, ms: 4 }); // the other call's
    w.emit({ type: 'ttt-step', id: a!.id, step: 2, steps: 2, loss: 1.5, ms: 4 });
    w.emit({ type: 'result', id: a!.id, result: tttResult });
    await expect(p).resolves.toEqual(tttResult);
    expect(steps).toEqual([[1, 2, 2], [2, 2, 1.5]]);
    w.emit({ type: 'error', id: b!.id, error: { name: 'InvalidInputError', code: 'invalid-input', message: 'No adapter is attached' } });
    const err = await other.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EngineError);
    expect(err).toMatchObject({ code: 'invalid-input' });
    expect(client.busy).toBe(false);
  });

  it('cancel() reaches a TTT run in flight, which then rejects as aborted', async () => {
    const { client, worker } = setup();
    const p = client.ttt({ ids: [1, 2], mask: [0, 1], options: { steps: 50 } });
    const w = worker();
    client.cancel();
    const cancel = w.sent[1]!;
    expect(cancel).toMatchObject({ type: 'cancel', targetId: w.sent[0]!.id });
    w.emit({ type: 'result', id: cancel.id, result: { cancelled: true } });
    w.emit({ type: 'error', id: w.sent[0]!.id, error: { name: 'AbortError', code: 'aborted', message: 'The operation was cancelled.' } });
    await expect(p).rejects.toMatchObject({ code: 'aborted' });
    expect(client.busy).toBe(false);
  });

  it('lossAndGrads, getAdapter and resetAdapter: request shapes and transferred result bytes', async () => {
    const { client, worker } = setup();
    const lg = client.lossAndGrads({ ids: [1, 2], mask: [0, 1], returnGrads: true });
    const get = client.getAdapter();
    const reset = client.resetAdapter();
    const w = worker();
    const [lgReq, getReq, resetReq] = w.sent;
    expect(lgReq).toMatchObject({ type: 'loss-and-grads', ids: [1, 2], mask: [0, 1], returnGrads: true });
    expect(getReq).toEqual({ type: 'get-adapter', id: getReq!.id });
    expect(resetReq).toEqual({ type: 'reset-adapter', id: resetReq!.id });
    const grads = new Float32Array([0.5, -1]).buffer;
    w.emit({ type: 'result', id: lgReq!.id, result: { loss: 0.25, tokensTrained: 1, grads } }, [grads]);
    const adapter = new Uint8Array([9, 8, 7]).buffer;
    w.emit({ type: 'result', id: getReq!.id, result: adapter }, [adapter]);
    w.emit({ type: 'result', id: resetReq!.id, result: null });
    const r = await lg;
    expect(r.loss).toBe(0.25);
    expect(Array.from(new Float32Array(r.grads!))).toEqual([0.5, -1]);
    expect(new Uint8Array(await get)).toEqual(new Uint8Array([9, 8, 7]));
    await expect(reset).resolves.toBeUndefined();
  });
});
