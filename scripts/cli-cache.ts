/**
 * The weight cache of the Node CLIs: `--cache-dir <dir>` (default `$XDG_CACHE_HOME/finemed-ttt`,
 * else `~/.cache/finemed-ttt`) and `--no-cache`. Entries live in `<dir>/weights/<key>/`
 * (models/cache/format.ts), so a second run of the same model reads no source at all.
 */
import { homedir } from 'node:os';
import { join } from 'node:path';
import { NodeCacheStore } from '../node/cache/node-store.ts';
import type { LoadCacheOptions } from '../models/cache/open-weights.ts';
import { stringFlag, type CommandSpec, type ParsedArgs } from './cli-args.ts';
import { UsageError } from './cli-errors.ts';

export const CACHE_USAGE = '[--cache-dir DIR (default $XDG_CACHE_HOME/finemed-ttt or ~/.cache/finemed-ttt) | --no-cache]';

/** The user's cache folder for this project. */
export function defaultCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  return join(env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'finemed-ttt');
}

/** A command's flags plus --cache-dir and --no-cache. */
export function withCacheFlags(spec: CommandSpec): CommandSpec {
  return { switches: [...spec.switches, 'no-cache'], valued: [...spec.valued, 'cache-dir'] };
}

/**
 * LoadOptions.cache from the flags: undefined with --no-cache.
 * @example LlamaModel.load(source, { backend: 'cpu', cache: cacheFromArgs(args) });
 */
export function cacheFromArgs(args: ParsedArgs): LoadCacheOptions | undefined {
  const dir = stringFlag(args, 'cache-dir');
  if (args.flags.has('no-cache')) {
    if (dir !== undefined) throw new UsageError('give --cache-dir or --no-cache, not both');
    return undefined;
  }
  return { store: new NodeCacheStore(join(dir ?? defaultCacheDir(), 'weights')) };
}
