/**
 * The conventions both worker protocols share (./protocol.ts, ./retrieval-protocol.ts): numeric
 * request ids, events that carry the id of their request, and one `result` or `error` per request.
 * The host (./worker-host.ts) and the client base (./worker-client.ts) are written against these.
 */
import type { SerializedError } from '../models/errors.ts';

/** The `id` of an event that belongs to no request (an unreadable message, an unasked status). */
export const NO_REQUEST = -1;

/** Every request: its kind and a fresh id from the client. */
export interface WireRequest {
  type: string;
  id: number;
}

/** Every event: its kind and the id of the request it answers (or NO_REQUEST). */
export interface WireEvent {
  type: string;
  id: number;
}

/** Aborts the request `targetId` (running or queued); answered at once with `{ cancelled }`. */
export type WireCancel = { type: 'cancel'; id: number; targetId: number };
export type WireResult = { type: 'result'; id: number; result: unknown };
export type WireError = { type: 'error'; id: number; error: SerializedError };
