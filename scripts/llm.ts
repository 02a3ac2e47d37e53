/**
 * Node CLI of the engine (same code as the browser; WebGPU through Dawn).
 *
 *   npm run --silent llm -- generate --model <dir|url> (--ids 1,403,407 | --prompt "...") [--chat]
 *     --max-new 32 [--greedy | --temperature T --top-p P --seed S] --backend cpu|webgpu [--f32] [--lm-head q4|q8|f32]
 *     [--precision auto|f16|f32] [--max-context N] --json
 *
 *   npm run --silent llm -- ttt --model <dir|url> --ids 1,2,3 --mask 0,0,1 [--lora-init point.safetensors]
 *     [--zero-b] --rank R --alpha A [--targets q,k,v,...] --steps N --lr X --backend cpu|webgpu [--f32]
 *     [--grads grads.safetensors] [--out adapter.safetensors] --json      (see scripts/llm-ttt.ts)
 *
 * The last stdout line is one JSON object: generate prints {"ids", "text", "last_logits", "timings"},
 * ttt prints {"loss_at_start", "losses", "final_loss", "tokens_trained", "timings"}, ask prints the TTT
 * pipeline's record (scripts/llm-ask.ts). A failure prints {"error": {"name", "code", "message"}}
 * and exits 1 for an engine or input error, 2 for a malformed command line (code "usage");
 * the convention of every CLI, in scripts/cli-errors.ts.
 */
import type { Sampling } from '../models/api.ts';
import type { LlamaModel } from '../models/llama-model.ts';
import { idList, numberFlag, parseCommandArgs, stringFlag, type CommandSpec, type ParsedArgs } from './cli-args.ts';
import { tttCommand, TTT_SPEC, TTT_USAGE } from './llm-ttt.ts';
import { CACHE_USAGE, withCacheFlags } from './cli-cache.ts';
import { printResult, runCli, UsageError } from './cli-errors.ts';
import { loadModelFromArgs } from './cli-model.ts';
import { askCommand, ASK_SPEC, ASK_USAGE } from './llm-ask.ts';

const GENERATE_USAGE = `usage: npm run --silent llm -- generate --model <dir|url> (--ids 1,2,3 | --prompt "text" [--chat] [--system "..."])
  --max-new N [--greedy | --temperature T --top-p P --seed S] --backend cpu|webgpu [--f32] [--lm-head q4|q8|f32] [--precision auto|f16|f32] [--max-context N] [--json]
  ${CACHE_USAGE}`;
const USAGE = `${GENERATE_USAGE}\n${TTT_USAGE.replace(/^usage: /, '   or: ')}\n${ASK_USAGE.replace(/^usage: /, '   or: ')}`;

const COMMANDS: Record<string, CommandSpec> = {
  generate: withCacheFlags({
    switches: ['json', 'greedy', 'f32', 'chat'],
    valued: ['model', 'ids', 'prompt', 'system', 'max-new', 'temperature', 'top-p', 'seed', 'backend', 'precision', 'max-context', 'lm-head'],
  }),
  ttt: withCacheFlags(TTT_SPEC),
  ask: withCacheFlags(ASK_SPEC),
};

/** Loads the model and notes where its weights came from (every command's JSON reports it). */
async function loadModel(args: ParsedArgs): Promise<LlamaModel> {
  const m = await loadModelFromArgs(args);
  loadedFrom = m.loadedFrom;
  return m;
}

/** Where the last loaded model's weights came from (every command's JSON reports it). */
let loadedFrom: 'cache' | 'source' | undefined;

async function generateCommand(args: ParsedArgs): Promise<unknown> {
  const tLoad = performance.now();
  const model = await loadModel(args);
  const loadMs = performance.now() - tLoad;
  try {
    const idsFlag = stringFlag(args, 'ids');
    const prompt = stringFlag(args, 'prompt');
    if ((idsFlag === undefined) === (prompt === undefined)) throw new UsageError('give exactly one of --ids or --prompt');
    const ids = idsFlag !== undefined ? idList(idsFlag, 'ids') : model.encodePrompt(prompt!, { chat: args.flags.has('chat'), system: stringFlag(args, 'system') });
    const sampling: Sampling = args.flags.has('temperature') && !args.flags.has('greedy')
      ? { kind: 'sample', temperature: numberFlag(args, 'temperature'), topP: numberFlag(args, 'top-p', 1), seed: numberFlag(args, 'seed', 0) }
      : { kind: 'greedy' };
    let shown = ''; // token events carry the new text only
    const r = await model.generate(ids, {
      maxNewTokens: numberFlag(args, 'max-new', 32),
      sampling,
      onToken: args.flags.has('json') ? undefined : (_id, text) => { shown += text; process.stderr.write(`\r${shown.slice(-120)}`); },
    });
    return {
      prompt_ids: ids,
      ids: r.ids,
      text: r.text,
      stop_reason: r.stopReason,
      last_logits: Array.from(r.lastLogits),
      backend: model.backend,
      weights: model.weights,
      lm_head: model.lmHead,
      precision: model.precision,
      memory: model.memory(),
      timings: { load_ms: loadMs, ...r.timings },
    };
  } finally {
    model.dispose();
  }
}

/** The usage of the command named on the command line, else of all of them. */
function usageOfCommand(): string {
  const command = process.argv[2];
  return { ttt: `${TTT_USAGE}\n  ${CACHE_USAGE}`, generate: GENERATE_USAGE, ask: ASK_USAGE }[command ?? ''] ?? USAGE;
}

async function main(): Promise<number> {
  const args = parseCommandArgs(process.argv.slice(2), COMMANDS);
  let out: unknown;
  if (args.command === 'generate') out = await generateCommand(args);
  else if (args.command === 'ttt') out = await tttCommand(args, loadModel);
  else if (args.command === 'ask') out = await askCommand(args, loadModel);
  else throw new UsageError(`unknown command "${args.command}"`);
  if (loadedFrom && typeof out === 'object' && out !== null) out = { ...out, loaded_from: loadedFrom };
  await printResult(out); // after the write's callback: a piped 2.5 MB result arrives whole
  return 0;
}

void runCli(main, usageOfCommand);
