/**
 * The history in IndexedDB (through idb): every question with its answers survives a reload.
 * Entries are stored whole, as exported.
 */
import { openDB, type DBSchema, type IDBPDatabase } from 'idb';
import type { EvalLogLine } from '../../workers/eval-session.ts';
import type { HistoryEntry } from './entry.ts';

/** One evaluation answer, under the run it belongs to. */
export interface StoredEvalLine {
  run: string;
  /** "itemId|mode" */
  key: string;
  /** Append order within the run. */
  seq: number;
  line: EvalLogLine;
}

interface HistoryDb extends DBSchema {
  entries: { key: string; value: HistoryEntry; indexes: { byCreatedAt: string } };
  /** The Evaluate view's logs, so a reloaded or stopped run resumes. */
  evalLines: { key: [string, string]; value: StoredEvalLine; indexes: { byRun: [string, number] } };
}

const DB_NAME = 'finemed-ttt';
const DB_VERSION = 2;

let db: Promise<IDBPDatabase<HistoryDb>> | null = null;

function open(): Promise<IDBPDatabase<HistoryDb>> {
  db ??= openDB<HistoryDb>(DB_NAME, DB_VERSION, {
    upgrade(d, oldVersion) {
      if (oldVersion < 1) d.createObjectStore('entries', { keyPath: 'id' }).createIndex('byCreatedAt', 'createdAt');
      if (oldVersion < 2) d.createObjectStore('evalLines', { keyPath: ['run', 'key'] }).createIndex('byRun', ['run', 'seq']);
    },
  });
  return db;
}

/** @example await saveEntry(newEntry([record], 'single', null)); */
export async function saveEntry(entry: HistoryEntry): Promise<void> {
  await (await open()).put('entries', entry);
}

/** Newest first. */
export async function listEntries(): Promise<HistoryEntry[]> {
  const all = await (await open()).getAllFromIndex('entries', 'byCreatedAt');
  return all.reverse();
}

export async function deleteEntry(id: string): Promise<void> {
  await (await open()).delete('entries', id);
}

/** Every line of an evaluation run, in the order they were appended. */
export async function evalRunLines(run: string): Promise<EvalLogLine[]> {
  const rows = await (await open()).getAllFromIndex('evalLines', 'byRun', IDBKeyRange.bound([run, 0], [run, Infinity]));
  return rows.map((r) => r.line);
}

export async function appendEvalLine(run: string, key: string, seq: number, line: EvalLogLine): Promise<void> {
  await (await open()).put('evalLines', { run, key, seq, line });
}

export async function deleteEvalRun(run: string): Promise<void> {
  const db = await open();
  const tx = db.transaction('evalLines', 'readwrite');
  for (const key of await tx.store.index('byRun').getAllKeys(IDBKeyRange.bound([run, 0], [run, Infinity]))) await tx.store.delete(key);
  await tx.done;
}
