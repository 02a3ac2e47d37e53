/**
 * What is on this device: each cached language model (ready, or partial x% to resume), each
 * stored corpus index, their sizes, the origin's usage and quota; delete frees the space.
 */
import { useEffect } from 'react';
import { deleteCachedModel, deleteEmbedderFiles, deleteIndex, refreshStorage, requestPersistence } from '../actions/storage.ts';
import { formatBytes } from '../format.ts';
import { useApp } from '../store.ts';
import { ErrorAlert } from './ErrorAlert.tsx';

export function StoragePanel() {
  const storage = useApp((s) => s.storage);
  const loadedKey = useApp((s) => s.llm.info?.cacheKey ?? null);
  const llmStatus = useApp((s) => s.llm.status);
  const corpusStatus = useApp((s) => s.corpus.status);
  // Re-read after every load or index build: they write to the cache.
  useEffect(() => void refreshStorage(), [llmStatus, corpusStatus]);
  const { usage, quota } = storage;
  return (
    <section className="panel storage" aria-labelledby="storage-heading">
      <h2 id="storage-heading">On this device</h2>
      <p className="note" aria-label="Storage use">
        {usage !== null && quota !== null
          ? `${formatBytes(usage)} used of ${formatBytes(quota)} available to this app`
          : storage.read ? 'Storage use is not reported by this browser.' : 'Reading what is stored…'}
        {storage.persisted === true && ' · kept under storage pressure'}
      </p>
      {storage.persisted === false && (
        <button type="button" className="small" onClick={() => void requestPersistence()}>Keep data on this device</button>
      )}
      {storage.models.length > 0 && (
        <>
          <h3>Language models</h3>
          <ul className="assets" aria-label="Cached models">
            {storage.models.map((m) => (
              <li key={m.key}>
                <span className="asset-name">{m.repo ?? m.source}</span>
                <span className="note">
                  {m.weights} · {formatBytes(m.bytes)} ·{' '}
                  {m.problem ? `unusable (${m.problem})` : m.key === loadedKey ? 'loaded' : m.complete ? 'ready' : `partial ${Math.floor((100 * m.tensorsDone) / Math.max(1, m.tensorsTotal))}% (resumes on the next load)`}
                </span>
                <button type="button" className="small danger" onClick={() => void deleteCachedModel(m.key)} aria-label={`Delete cached model ${m.repo ?? m.source}`}>Delete</button>
              </li>
            ))}
          </ul>
        </>
      )}
      {storage.embedder && storage.embedder.bytes > 0 && (
        <>
          <h3>Embedder</h3>
          <ul className="assets" aria-label="Cached embedders">
            <li>
              <span className="asset-name">{storage.embedder.model}</span>
              <span className="note">{storage.embedder.cached ? 'all files' : `${storage.embedder.files.filter((f) => f.cached).length} of ${storage.embedder.files.length} files`} · {formatBytes(storage.embedder.bytes)}</span>
              <button type="button" className="small danger" onClick={() => void deleteEmbedderFiles(storage.embedder!.model)} aria-label={`Delete cached embedder ${storage.embedder.model}`}>Delete</button>
            </li>
          </ul>
        </>
      )}
      {storage.indexes.length > 0 && (
        <>
          <h3>Corpus indexes</h3>
          <ul className="assets" aria-label="Stored indexes">
            {storage.indexes.map((i) => {
              const name = i.manifest?.corpus.name ?? i.corpus?.name ?? i.partial?.corpusName ?? i.key;
              const what = i.type === 'corpus'
                ? `${i.corpus?.count.toLocaleString() ?? '?'} traces (records, keyword search)`
                : i.manifest
                  ? `${i.manifest.corpus.count.toLocaleString()} embeddings · ${i.manifest.embedder.model}`
                  : i.partial
                    ? `embeddings partial ${Math.floor((100 * i.partial.done) / Math.max(1, i.partial.total))}% · ${i.partial.model} (resumes on the next open)`
                    : 'unreadable';
              return (
                <li key={i.key}>
                  <span className="asset-name">{name}</span>
                  <span className="note">{what} · {formatBytes(i.bytes)}</span>
                  <button type="button" className="small danger" onClick={() => void deleteIndex(i.key)} aria-label={`Delete ${i.type === 'corpus' ? 'corpus' : 'index'} ${name}`}>Delete</button>
                </li>
              );
            })}
          </ul>
        </>
      )}
      {storage.error && <ErrorAlert title="Storage" error={storage.error} />}
    </section>
  );
}
