import { mkdtempSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { defineConfig } from 'vitest/config';

// The CLIs cache weights under $XDG_CACHE_HOME by default: tests get a fresh one per run, so they
// never read (or fill) the user's cache and never see a previous run's entries.
const testCacheHome = mkdtempSync(join(tmpdir(), 'finemed-test-cache-'));
// Mesa (lavapipe) keeps compiled shaders under $XDG_CACHE_HOME too: point it at the folder it would
// use without our override, so a fresh XDG_CACHE_HOME does not make every test file recompile the
// trainer's shaders (minutes on 2 cores).
const mesaShaderCache = process.env.MESA_SHADER_CACHE_DIR ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'mesa_shader_cache');
const testEnv = { XDG_CACHE_HOME: testCacheHome, MESA_SHADER_CACHE_DIR: mesaShaderCache };

// Two projects: fast Node unit tests (CPU reference + Dawn/lavapipe kernels), and browser tests
// that drive headless Chromium with playwright-core against the Vite-served app.
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['tests/**/*.test.ts'],
          environment: 'node',
          env: testEnv,
          testTimeout: 120_000,
          hookTimeout: 120_000,
          // Dawn devices are process-wide and heavy: each file runs in a fork of its own (one device
          // per process), and at most two forks at a time bound the memory they hold together.
          pool: 'forks',
          fileParallelism: true,
          maxWorkers: 2,
        },
      },
      {
        test: {
          name: 'e2e',
          include: ['e2e/**/*.test.ts'],
          // One production build per run for the built-app tests (e2e/support/built-app.ts).
          globalSetup: ['e2e/support/global-build.ts'],
          environment: 'node',
          env: testEnv,
          testTimeout: 300_000,
          hookTimeout: 300_000,
          fileParallelism: false,
        },
      },
    ],
  },
});
