import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    projects: [
      { test: { name: 'unit', include: ['test/unit/**/*.test.ts'] } },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          testTimeout: 180_000,
          hookTimeout: 300_000,
          // Each file starts its own PostgreSQL clusters; two cores, so one file at a time.
          fileParallelism: false,
        },
      },
    ],
  },
});
