/**
 * The app's one LLM worker client and one retrieval worker client. Workers start on first use,
 * not on page open, so an idle page costs nothing.
 */
import { LlmClient } from '../../workers/client.ts';
import { RetrievalClient } from '../../workers/retrieval-client.ts';

let llm: LlmClient | null = null;
let retrieval: RetrievalClient | null = null;

export function llmClient(): LlmClient {
  llm ??= new LlmClient();
  return llm;
}

export function retrievalClient(): RetrievalClient {
  retrieval ??= new RetrievalClient();
  return retrieval;
}
