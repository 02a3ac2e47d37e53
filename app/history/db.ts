/**
 * The history in IndexedDB (through idb): every question with its answers survives a reload.
 * Entries are stored whole, as exported.
 */
import { openDB, type DBSchema, type IDBPDatabase } from 'idb';
import type { HistoryEntry } from './entry.ts';

interface HistoryDb extends DBSchema {
  entries: { key: string; value: HistoryEntry; indexes: { byCreatedAt: string } };
}

const DB_NAME = 'finemed-ttt';
const DB_VERSION = 1;

let db: Promise<IDBPDatabase<HistoryDb>> | null = null;

function open(): Promise<IDBPDatabase<HistoryDb>> {
  db ??= openDB<HistoryDb>(DB_NAME, DB_VERSION, {
    upgrade(d) {
      const store = d.createObjectStore('entries', { keyPath: 'id' });
      store.createIndex('byCreatedAt', 'createdAt');
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
