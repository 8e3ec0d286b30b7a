import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // `npm test -- --coverage` (CI does): v8 coverage of src/ over every project, failing below
    // these floors. They are what the suite reaches, rounded down: raise them as it grows.
    coverage: {
      provider: 'v8',
      include: ['src/**/*.ts'],
      reporter: ['text-summary', 'json-summary'],
      reportOnFailure: true,
      thresholds: { lines: 84, statements: 80, functions: 82, branches: 70 }, // measured 87.2, 83.8, 85.2, 73.1 (2026-12-04)
    },
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
      {
        // Faults injected into real clusters (see test/support/faults.ts). `npm test` runs the
        // acknowledged-rows cases small (failover, ingest, writes through the access node);
        // `npm run test:faults` (HYPERSHARD_FAULTS=full) runs every case, more rounds, on PostgreSQL
        // 18 and 15: the frozen-node, partition and killed-CLI cases wait out their bounds (~3 min).
        test: {
          name: 'faults',
          include: process.env.HYPERSHARD_FAULTS === 'full' ? ['test/faults/**/*.test.ts'] : ['test/faults/{failover,ingest,accessWrites}.test.ts'],
          globalSetup: ['test/faults/globalSetup.ts'],
          testTimeout: 600_000,
          hookTimeout: 300_000,
          fileParallelism: false,
        },
      },
    ],
  },
});
