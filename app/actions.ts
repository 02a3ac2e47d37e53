/**
 * The app's side effects: the one LlmClient (and thus the one worker), the picked files, and the
 * load / generate / stop flows that write their progress into the store.
 */
import { LlmClient } from '../workers/client.ts';
import type { Sampling } from '../workers/protocol.ts';
import { useApp, type FolderSummary, type UiError } from './store.ts';

let client: LlmClient | null = null;
/** Files from the folder input: not serialisable, so kept here and summarised in the store. */
let pickedFiles: File[] = [];

/** The worker starts on the first load, not on page open. */
function getClient(): LlmClient {
  client ??= new LlmClient();
  return client;
}

function toUiError(e: unknown): UiError {
  const code = typeof (e as { code?: unknown })?.code === 'string' ? (e as { code: string }).code : 'internal';
  const message = e instanceof Error ? e.message : String(e);
  return { code, message };
}

export function pickFolder(files: File[]): void {
  pickedFiles = files;
  const first = files[0]?.webkitRelativePath ?? '';
  const summary: FolderSummary | null = files.length
    ? { name: first.includes('/') ? first.slice(0, first.indexOf('/')) : 'selected files', files: files.length, bytes: files.reduce((n, f) => n + f.size, 0) }
    : null;
  useApp.setState({ folder: summary });
}

export async function loadModel(): Promise<void> {
  const s = useApp.getState();
  if (s.loadStatus === 'loading') return;
  if (s.sourceKind === 'url' && !s.url.trim()) {
    useApp.setState({ loadStatus: 'error', loadError: { code: 'invalid-input', message: 'Enter the URL of a model folder.' } });
    return;
  }
  if (s.sourceKind === 'folder' && pickedFiles.length === 0) {
    useApp.setState({ loadStatus: 'error', loadError: { code: 'invalid-input', message: 'Choose a model folder first.' } });
    return;
  }
  const source = s.sourceKind === 'url' ? { kind: 'url' as const, url: s.url.trim() } : { kind: 'files' as const, files: pickedFiles };
  useApp.setState({ loadStatus: 'loading', progress: null, model: null, loadError: null });
  try {
    const info = await getClient().load(source, { backend: s.backend, weights: s.weights }, (progress) => useApp.setState({ progress }));
    // The chat checkbox follows the model: on when its tokenizer ships a chat template.
    useApp.setState({ loadStatus: 'ready', model: info, chat: info.hasChatTemplate });
  } catch (e) {
    const error = toUiError(e);
    if (error.code === 'aborted') useApp.setState({ loadStatus: 'idle', progress: null });
    else useApp.setState({ loadStatus: 'error', loadError: error });
  }
}

export async function generate(): Promise<void> {
  const s = useApp.getState();
  if (s.loadStatus !== 'ready' || s.genStatus === 'running') return;
  const sampling: Sampling = s.samplingMode === 'greedy' ? { kind: 'greedy' } : { kind: 'sample', temperature: s.temperature, topP: s.topP, seed: s.seed };
  useApp.setState({ genStatus: 'running', output: '', tokensGenerated: 0, timings: null, stopReason: null, genError: null });
  let tokens = 0;
  try {
    const result = await getClient().generate(
      { prompt: s.prompt, chat: s.chat, system: s.chat && s.system.trim() ? s.system : undefined, options: { maxNewTokens: s.maxNewTokens, sampling } },
      ({ textSoFar }) => useApp.setState({ output: textSoFar, tokensGenerated: ++tokens }),
    );
    useApp.setState({
      genStatus: result.stopReason === 'aborted' ? 'stopped' : 'done',
      output: result.text,
      tokensGenerated: result.ids.length,
      timings: result.timings,
      stopReason: result.stopReason,
    });
  } catch (e) {
    const error = toUiError(e);
    // A stop keeps the text streamed so far.
    if (error.code === 'aborted') useApp.setState({ genStatus: 'stopped', stopReason: 'aborted' });
    else useApp.setState({ genStatus: 'error', genError: error });
  }
}

/** Stops whatever is in flight: a load or a generation. */
export function stop(): void {
  client?.cancel();
}
