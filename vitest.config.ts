import { defineConfig } from 'vitest/config';

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
          testTimeout: 120_000,
          hookTimeout: 120_000,
          // Dawn devices are process-wide and heavy: one fork at a time keeps memory flat.
          pool: 'forks',
          fileParallelism: true,
          maxWorkers: 2,
        },
      },
      {
        test: {
          name: 'e2e',
          include: ['e2e/**/*.test.ts'],
          environment: 'node',
          testTimeout: 300_000,
          hookTimeout: 300_000,
          fileParallelism: false,
        },
      },
    ],
  },
});
