/**
 * The one fake worker of the tests: just enough of `Worker` for the clients (LlmClient,
 * RetrievalClient), and just enough of a worker's global scope for the host (workers/worker-host.ts).
 * What the code under test posts is recorded (cloned with its transfer list, so buffers detach as
 * in a browser); what the test sends it arrives as a `message` event.
 */

export class FakeWorker<Sent = unknown, Received = unknown> extends EventTarget {
  /** Every message the code under test posted, structured-cloned. */
  readonly sent: Sent[] = [];
  /** The transfer list of each post, in the same order. */
  readonly transfers: Transferable[][] = [];
  terminated = false;

  postMessage(message: Sent, transfer: Transferable[] = []): void {
    this.transfers.push(transfer);
    this.sent.push(structuredClone(message, { transfer }));
  }

  terminate(): void {
    this.terminated = true;
  }

  /**
   * Delivers `data` as a message event. Without a transfer list the object itself arrives (a test
   * can check identity); with one it is cloned and the listed buffers are moved.
   */
  emit(data: Received, transfer?: Transferable[]): void {
    this.dispatchEvent(new MessageEvent('message', { data: transfer ? structuredClone(data, { transfer }) : data }));
  }

  /** A script error in the worker, as the browser reports it (an `error` event with a message). */
  crash(message: string): void {
    const ev = new Event('error') as Event & { message: string };
    ev.message = message;
    this.dispatchEvent(ev);
  }

  /** A message that could not be deserialized. */
  unreadable(): void {
    this.dispatchEvent(new Event('messageerror'));
  }
}

/**
 * A client over fake workers: `make` gets the factory to pass to the client's constructor;
 * `workers` lists every worker it created, in order.
 * @example
 *   const { client, workers } = withFakeWorkers<WorkerRequest, WorkerEvent, LlmClient>((create) => new LlmClient(create));
 *   void client.info();
 *   workers[0]!.emit({ type: 'result', id: workers[0]!.sent[0]!.id, result: null });
 */
export function withFakeWorkers<Sent, Received, C>(make: (create: () => Worker) => C): { client: C; workers: FakeWorker<Sent, Received>[] } {
  const workers: FakeWorker<Sent, Received>[] = [];
  const client = make(() => {
    const w = new FakeWorker<Sent, Received>();
    workers.push(w);
    return w as unknown as Worker;
  });
  return { client, workers };
}
