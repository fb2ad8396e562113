import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // The machine has 2 cores; CLI tests spawn processes of their own.
    maxWorkers: 2,
    reporters: ['default'],
  },
});
