/**
 * What the model manager offers, for the UI (which imports nothing from models/ directly): the
 * embedders and corpora of the retrieval worker's catalogue.
 */
export { CORPORA, DEFAULT_EMBEDDER, EMBEDDERS, embedderEntry, type CorpusEntry, type EmbedderEntry } from '../models/retrieval/catalog.ts';
