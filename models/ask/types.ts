/**
 * The two small interfaces the TTT pipeline (./pipeline.ts) talks to, its events and its record.
 * Implementations: in-process objects (./in-process.ts: Node CLI, evaluation, tests) and the
 * worker clients (workers/ask-clients.ts: the app). Everything here is plain data.
 */
import type { GenerateTimings, Sampling } from '../api.ts';
import type { PromptFormat } from '../prompt-format.ts';
import type { CorpusRecord } from '../retrieval/record.ts';
import type { TttConfig } from '../ttt/config.ts';
import type { TrainStepInfo } from '../ttt/adapter-trainer.ts';
import type { PreparedPrompt, PromptRequest } from './prompt-plan.ts';
import type { AskSettings } from './settings.ts';

export type RetrieverKind = 'embedding' | 'lexical';

export interface RetrievedTrace {
  record: CorpusRecord;
  /** Cosine similarity (embedding) or the normalised BM25 score (lexical); 1 = the same question. */
  score: number;
  /** 0-based. */
  rank: number;
}

export interface RetrievalOutcome {
  results: RetrievedTrace[];
  retriever: RetrieverKind;
  ms: number;
}

/** Finds the traces nearest to a question. */
export interface AskRetriever {
  retrieve(question: string, k: number, signal?: AbortSignal): Promise<RetrievalOutcome>;
}

export interface TrainOutcome {
  /** Loss before each step. */
  losses: number[];
  finalLoss: number;
  stepMs: number[];
  tokensTrained: number;
  /** Tokens of the training sequence (prompt + trace). */
  sequenceTokens: number;
  /** The trace was cut to fit maxTokens. */
  truncated: boolean;
}

export interface GenerateOutcome {
  ids: number[];
  text: string;
  stopReason: 'eos' | 'max-tokens' | 'aborted';
  timings: GenerateTimings;
}

export interface ModelDescription {
  /** Where the weights came from (hub repo, URL or folder). */
  source: string;
  backend: 'webgpu' | 'cpu';
  weights: 'q4' | 'f32';
  precision: 'f16' | 'f32';
}

/** A loaded language model that can be adapted and restored. */
export interface AskModel {
  readonly description: ModelDescription;
  preparePrompt(question: string, request: PromptRequest, signal?: AbortSignal): Promise<PreparedPrompt>;
  /** Attaches an adapter of this shape unless one is attached already; sets the optimizer defaults. */
  ensureAdapter(config: Partial<TttConfig>, signal?: AbortSignal): Promise<void>;
  /** Adam steps on the trace, rendered in `format`; `onStep` after each. */
  train(trace: CorpusRecord, format: PromptFormat, onStep: (s: TrainStepInfo) => void, signal?: AbortSignal): Promise<TrainOutcome>;
  /** `onToken` with each token's new text and the token count; the outcome's `text` is the whole. A stop returns the text so far (stopReason 'aborted'). */
  generate(ids: number[], options: { maxNewTokens: number; sampling: Sampling }, onToken: (text: string, tokens: number) => void, signal?: AbortSignal): Promise<GenerateOutcome>;
  /** B = 0 and the optimizer cleared: the base model again. */
  resetAdapter(): Promise<void>;
}

export type AskStage = 'preparing' | 'retrieving' | 'training' | 'answering' | 'restoring';

export interface RetrievalSummary {
  retriever: RetrieverKind;
  k: number;
  results: { id: string; score: number; rank: number; question: string; source: string; license: string }[];
  /** The trace TTT trained on (the top result), whole. */
  top: CorpusRecord | null;
  ms: number;
}

export type AskEvent =
  | { type: 'stage'; stage: AskStage }
  | { type: 'prompt'; prompt: AskRecord['prompt'] }
  | { type: 'retrieved'; retrieval: RetrievalSummary }
  | ({ type: 'ttt-step' } & TrainStepInfo)
  /** `text`: the new text of this token only (concatenate for the answer so far; 'done' has it whole). */
  | { type: 'token'; text: string; tokens: number }
  | { type: 'restored'; ms: number }
  | { type: 'done'; record: AskRecord };

export const ASK_RECORD_VERSION = 1;

/** Everything about one answer: what was asked, how, what was retrieved and trained, and timings. */
export interface AskRecord {
  version: typeof ASK_RECORD_VERSION;
  id: string;
  createdAt: string;
  question: string;
  /** 'ttt': trained on the retrieved trace first; 'base': the model as loaded. */
  mode: 'ttt' | 'base';
  /** 'stopped': the user stopped it while answering (the text so far is kept). */
  status: 'done' | 'stopped';
  settings: AskSettings;
  model: ModelDescription;
  prompt: { style: PromptFormat['style']; requested: PreparedPrompt['requested']; fallback: string | null; tokens: number; answerTokens: number };
  retrieval: RetrievalSummary | null;
  ttt: TrainOutcome | null;
  answer: {
    text: string;
    /** The Thought part ('' when the output has no FineMedLM-o1 markers). */
    reasoning: string;
    /** The part after Summarization, or the whole text without markers. */
    summary: string;
    structured: boolean;
    tokens: number;
    stopReason: GenerateOutcome['stopReason'];
  };
  /** Milliseconds per stage; ttftMs from the generate call to the first token. Answers that stop mid-thought have thoughtMs = generateMs. */
  timings: {
    retrieveMs: number | null;
    trainMs: number | null;
    ttftMs: number | null;
    /** From the generate call to the Summarization heading ("Thought for N s"); null without a Thought part. */
    thoughtMs: number | null;
    prefillMs: number;
    decodeTokensPerSecond: number;
    generateMs: number;
    restoreMs: number | null;
    totalMs: number;
  };
  /** The adapter was reset after this answer (always true for 'ttt' records that finished). */
  restored: boolean;
}
