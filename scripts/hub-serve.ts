/**
 * Serves a hub folder standalone in the Hugging Face layout (machines without internet, the CLI).
 *
 *   npm run hub -- <dir> [--port N] [--quiet]
 *
 * Prints the hub base URL and the repos found, then one line per request until Ctrl-C.
 */
import { serializeError } from '../models/errors.ts';
import { numberFlag, parseArgs } from './cli-args.ts';
import { startHubServer } from './hub/hub-server.ts';
import { listRepos } from './hub/repo.ts';

const USAGE = 'usage: npm run hub -- <dir> [--port N (default 8765)] [--quiet]';

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2), ['quiet', 'help'], ['port']);
  if (args.flags.has('help')) return void console.log(USAGE);
  const dir = args.command;
  if (dir === undefined || args.positional.length) throw new Error(USAGE);
  const quiet = args.flags.has('quiet');
  const hub = await startHubServer(dir, {
    port: numberFlag(args, 'port', 8765),
    onRequest: quiet ? undefined : (e) => console.log(`${e.method} ${e.path}${e.range ? ` [${e.range}]` : ''} -> ${e.status}, ${e.bytes} B${e.complete ? '' : ' (cut)'}`),
  });
  const { models, datasets } = await listRepos(dir);
  console.log(`Local hub: ${dir}\nHub base: ${hub.url}`);
  for (const m of models) console.log(`  model    ${m}  ${hub.modelBase(m)}`);
  for (const d of datasets) console.log(`  dataset  ${d}  ${hub.url}/datasets/${d}/resolve/main/`);
  if (!models.length && !datasets.length) console.log('  (no repos: expected <dir>/<org>/<name>/ or <dir>/datasets/<org>/<name>/)');
  console.log('Ctrl-C to stop.');
  const stop = (): void => {
    void hub.close().then(() => {
      console.log(`Stopped after ${hub.requests.length} requests.`);
      process.exit(0);
    });
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

main().catch((e: unknown) => {
  const err = serializeError(e);
  console.error(`hub: ${err.message}`);
  process.exit(1);
});
