import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // Tests spawn the command line and run real optimisations: generous limits for a busy 2-core CI.
    testTimeout: 60_000,
    hookTimeout: 60_000,
    setupFiles: ['test/setup.ts'],
  },
});
