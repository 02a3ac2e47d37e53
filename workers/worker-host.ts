/**
 * The worker side of both protocols (./wire.ts), written once: requests run one at a time in
 * arrival order, except the ones `immediate` picks, which run at once (reads of current state that
 * must not wait behind a long build); `cancel` is answered at once and aborts its target through
 * an AbortController, whether the target is running or still queued; every request ends with one
 * `result` or one typed `error` event. A malformed or unreadable message, and any rejection that
 * escapes, is reported as an error with id NO_REQUEST: nothing is left to hang or lost silently.
 */
import { InvalidInputError, EngineError, serializeError, throwIfAborted } from '../models/errors.ts';
import { NO_REQUEST, type WireCancel, type WireEvent, type WireRequest } from './wire.ts';

/** What the host needs of a worker's global scope (a fake one in Node tests). */
export interface HostScope {
  postMessage(message: unknown, transfer: Transferable[]): void;
  addEventListener(type: 'message' | 'messageerror' | 'unhandledrejection', listener: (ev: Event) => void): void;
}

/** Distributes Omit over a union, so each event kind keeps its own fields. */
type WithoutId<E> = E extends unknown ? Omit<E, 'id'> : never;

/** Posts an event of the request being served; the host fills in its id. */
export type Emit<E extends WireEvent> = (event: WithoutId<Exclude<E, { type: 'result' | 'error' }>>, transfer?: Transferable[]) => void;

export interface ServeOptions<Req extends WireRequest, Ev extends WireEvent> {
  /** How messages name this worker, e.g. 'model worker'. */
  label: string;
  /** Serves one request (never a cancel); resolves with the `result` payload. Aborted when its signal is. */
  handle(req: Exclude<Req, WireCancel>, signal: AbortSignal, emit: Emit<Ev>): Promise<unknown>;
  /** Requests answered at once instead of queued (default: none). */
  immediate?(req: Exclude<Req, WireCancel>): boolean;
  /** ArrayBuffers of a result to transfer rather than copy (default: none). */
  transfer?(result: unknown, req: Exclude<Req, WireCancel>): Transferable[];
  /** Default: the worker's own global scope. */
  scope?: HostScope;
}

export interface Host<Ev extends WireEvent> {
  /** Posts an event of no request (e.g. an unasked status). */
  post(event: Ev, transfer?: Transferable[]): void;
}

/**
 * Starts serving requests on the worker's scope.
 * @example
 *   const host = serveRequests<RetrievalRequest, RetrievalEvent>({
 *     label: 'retrieval worker',
 *     handle: (req, signal, emit) => serve(req, signal, emit),
 *     immediate: (req) => req.type === 'status',
 *   });
 *   host.post({ type: 'status', id: NO_REQUEST, status });
 */
export function serveRequests<Req extends WireRequest, Ev extends WireEvent>(options: ServeOptions<Req, Ev>): Host<Ev> {
  const scope = options.scope ?? (self as unknown as HostScope);
  const controllers = new Map<number, AbortController>();
  let queue: Promise<void> = Promise.resolve();
  const post = (event: WireEvent, transfer: Transferable[] = []): void => scope.postMessage(event, transfer);
  const postError = (id: number, e: unknown): void => post({ type: 'error', id, error: serializeError(e) } as WireEvent);

  scope.addEventListener('message', (ev: Event) => {
    const data = (ev as MessageEvent<unknown>).data;
    const req = data as Req;
    if (typeof req !== 'object' || req === null || typeof req.id !== 'number' || typeof req.type !== 'string') {
      postError(NO_REQUEST, new InvalidInputError(`Malformed request to the ${options.label}: ${safeJson(data)}`));
      return;
    }
    if (req.type === 'cancel') {
      const target = controllers.get((req as unknown as WireCancel).targetId);
      target?.abort();
      post({ type: 'result', id: req.id, result: { cancelled: target !== undefined } } as WireEvent);
      return;
    }
    const served = req as Exclude<Req, WireCancel>;
    const controller = new AbortController();
    controllers.set(req.id, controller);
    const emit = ((event: object, transfer?: Transferable[]) => post({ ...event, id: req.id } as WireEvent, transfer)) as Emit<Ev>;
    // Each run reports its own outcome, so the queue's chain never rejects.
    const run = async (): Promise<void> => {
      try {
        throwIfAborted(controller.signal); // cancelled while queued
        const result = await options.handle(served, controller.signal, emit);
        post({ type: 'result', id: req.id, result } as WireEvent, options.transfer?.(result, served) ?? []);
      } catch (e) {
        postError(req.id, e);
      } finally {
        controllers.delete(req.id);
      }
    };
    if (options.immediate?.(served)) void run();
    else queue = queue.then(run);
  });

  scope.addEventListener('messageerror', () => {
    postError(NO_REQUEST, new EngineError('internal', `The ${options.label} received a message it could not read.`));
  });

  // Last line of defence: anything that escapes is still reported, never silently lost.
  scope.addEventListener('unhandledrejection', (ev: Event) => {
    ev.preventDefault();
    postError(NO_REQUEST, (ev as PromiseRejectionEvent).reason);
  });

  return { post };
}

/**
 * A received value, short, for an error message.
 * @example safeJson({ type: 42 }); // '{"type":42}'
 */
export function safeJson(v: unknown): string {
  try {
    return JSON.stringify(v)?.slice(0, 200) ?? String(v);
  } catch {
    return String(v);
  }
}
