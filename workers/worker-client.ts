/**
 * The main-thread side of both protocols (./wire.ts), written once for LlmClient and
 * RetrievalClient: each call posts one request with a fresh id and settles when the worker answers
 * that id; events before the answer go to the call's own handler; rejections are typed
 * EngineErrors of their own class (deserializeError). The worker starts on the first call. If it
 * fails (script error, unreadable message) every pending call is rejected and the next call starts
 * a fresh one, so nothing ever waits forever on a dead worker. An error event of no request
 * rejects everything pending too (the worker's state is unknown) but keeps the worker, and with it
 * a loaded model or index.
 */
// Registers the error classes defined outside models/errors.ts, so errors from a worker come back as them.
import '../models/retrieval/errors.ts';
import '../models/eval/errors.ts';
import { AbortError, EngineError, InvalidInputError, deserializeError } from '../models/errors.ts';
import { NO_REQUEST, type WireError, type WireEvent, type WireRequest, type WireResult } from './wire.ts';

/** A request as the caller writes it: the client picks the id. */
export type RequestBody<Req> = Req extends unknown ? Omit<Req, 'id'> : never;

interface PendingCall<Ev> {
  type: string;
  resolve: (result: unknown) => void;
  reject: (error: EngineError) => void;
  /** Events of this call before its result (progress, tokens, steps). */
  onEvent?: (event: Ev) => void;
}

/** A sent request: its id (to cancel it by) and its outcome. */
export interface SentRequest<R> {
  id: number;
  promise: Promise<R>;
}

/**
 * @example
 *   class EchoClient extends WorkerClient<EchoRequest, EchoEvent> {
 *     constructor() { super(() => new Worker(new URL('./echo.worker.ts', import.meta.url), { type: 'module' }), 'echo worker'); }
 *     echo(text: string): Promise<string> { return this.send<string>({ type: 'echo', text }).promise; }
 *   }
 */
export abstract class WorkerClient<Req extends WireRequest, Ev extends WireEvent> {
  private worker: Worker | null = null;
  private nextId = 1;
  private readonly pending = new Map<number, PendingCall<Ev>>();

  /**
   * @param createWorker makes the worker; tests inject their own (a fake, or a counting wrapper).
   * @param label how messages name the worker, e.g. 'model worker'.
   */
  protected constructor(
    private readonly createWorker: () => Worker,
    private readonly label: string,
  ) {}

  /** Kills the worker (and what it holds); pending calls reject with an `aborted` error. */
  terminate(): void {
    this.fail(new AbortError(`The ${this.label} was stopped.`));
  }

  /** Posts `body` with a fresh id; `transfer`: ArrayBuffers handed to the worker (detached here). */
  protected send<R>(body: RequestBody<Req>, onEvent?: (event: Ev) => void, transfer: Transferable[] = []): SentRequest<R> {
    const worker = this.ensureWorker();
    const id = this.nextId++;
    const promise = new Promise<R>((resolve, reject) => {
      this.pending.set(id, { type: body.type, resolve: resolve as (r: unknown) => void, reject, onEvent });
      try {
        worker.postMessage({ ...body, id }, transfer);
      } catch (e) {
        // DataCloneError and the like: the request never left this thread.
        this.pending.delete(id);
        reject(new InvalidInputError(`Could not send the ${body.type} request to the ${this.label}: ${e instanceof Error ? e.message : String(e)}`));
      }
    });
    return { id, promise };
  }

  /** Asks the worker to abort request `targetId`, if it is still pending; it then settles as the worker reports. */
  protected cancelRequest(targetId: number): void {
    if (!this.worker || !this.pending.has(targetId)) return;
    // The acknowledgement carries nothing the caller needs; it arrives for an id nobody waits on.
    this.worker.postMessage({ type: 'cancel', id: this.nextId++, targetId });
  }

  /** [id, type] of every call still waiting for its answer. */
  protected *pendingRequests(): IterableIterator<[number, string]> {
    for (const [id, p] of this.pending) yield [id, p.type];
  }

  /** An event of no request other than an error (e.g. an unasked status); ignored unless overridden. */
  protected onUnrequested(_event: Ev): void {}

  private ensureWorker(): Worker {
    if (this.worker) return this.worker;
    const worker = this.createWorker();
    worker.addEventListener('message', (ev: MessageEvent<Ev>) => this.onMessage(ev.data));
    worker.addEventListener('error', (ev: Event) => {
      // Duck-typed: ErrorEvent is not a global in Node, where tests run this with fake workers.
      const message = (ev as { message?: unknown }).message;
      const detail = typeof message === 'string' && message ? message : 'it failed to start or crashed (see the browser console)';
      this.fail(new EngineError('internal', `The ${this.label} stopped working: ${detail}.`));
    });
    worker.addEventListener('messageerror', () => this.fail(new EngineError('internal', `A message from the ${this.label} could not be read.`)));
    this.worker = worker;
    return worker;
  }

  private onMessage(event: Ev): void {
    if (event.id === NO_REQUEST) {
      // Not tied to a request: the worker's state is unknown, so nobody should keep waiting.
      if (event.type === 'error') this.rejectAll(deserializeError((event as unknown as WireError).error));
      else this.onUnrequested(event);
      return;
    }
    const p = this.pending.get(event.id);
    if (!p) return; // a late event for a call that already settled, or a cancel's acknowledgement
    if (event.type === 'result') {
      this.pending.delete(event.id);
      p.resolve((event as unknown as WireResult).result);
    } else if (event.type === 'error') {
      this.pending.delete(event.id);
      p.reject(deserializeError((event as unknown as WireError).error));
    } else {
      p.onEvent?.(event);
    }
  }

  /** Terminates the worker and rejects everything pending; the next call starts a new worker. */
  private fail(error: EngineError): void {
    this.worker?.terminate();
    this.worker = null;
    this.rejectAll(error);
  }

  private rejectAll(error: EngineError): void {
    const all = [...this.pending.values()];
    this.pending.clear();
    for (const p of all) p.reject(error);
  }
}
