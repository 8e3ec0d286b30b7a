/** A test cluster with the example spec applied and rows in `metrics`, for the rewriter's surfaces. */
import { join } from 'node:path';
import pg from 'pg';
import { generateMigrations } from '../../src/migrations/files.js';
import { apply } from '../../src/nodes/apply.js';
import { clientConfig } from '../../src/nodes/connect.js';
import { planLayout, type ClusterLayout } from '../../src/plan/layout.js';
import { loadSpec } from '../../src/spec/load.js';
import type { ClusterSpec } from '../../src/spec/schema.js';
import type { TestCluster } from './clusters.js';
import { withDatabase } from './db.js';
import { writeExampleSpec, writeSecrets } from './spec.js';

export interface AppliedCluster {
  readonly spec: ClusterSpec;
  readonly specFile: string;
  readonly layout: ClusterLayout;
  /** The access node, as the spec's (superuser) user. */
  readonly access: pg.ClientConfig;
  /** The access node as the example's `metrics_reader`: SELECT on metrics (and so on its shards). */
  readonly reader: pg.ClientConfig;
}

/** Devices 1–20, one reading every 37 s over the last ~20 hours, some NULLs. */
export const METRICS_ROWS = 2000;

export async function appliedExampleCluster(cluster: TestCluster, folder: string): Promise<AppliedCluster> {
  const dir = join(cluster.workDir, folder);
  const specFile = await writeExampleSpec(cluster, dir);
  const secrets = await writeSecrets(dir);
  const { spec, file } = await loadSpec(specFile);
  await generateMigrations(spec, file);
  const result = await apply(spec, file);
  if (!result.ok) throw new Error(`apply failed: ${JSON.stringify(result.nodes)}`);
  const access = clientConfig(cluster.accessNode.url, process.env.HYPERSHARD_TEST_CONTAINER_PASSWORD);
  const client = new pg.Client(access);
  await client.connect();
  try {
    await client.query(
      `INSERT INTO metrics (time, device_id, cpu, memory, temperature)
       SELECT now() - i * interval '37 seconds', i % 20 + 1, (i * 7 % 100) + 0.5,
              CASE WHEN i % 11 = 0 THEN NULL ELSE i % 13 END, 20 + i % 17
       FROM generate_series(1, $1::int) AS i`,
      [METRICS_ROWS],
    );
    await client.query('ANALYZE metrics');
    const { rows } = await client.query<{ db: string }>('SELECT current_database() AS db');
    const readerUrl = withDatabase(cluster.accessNode.url, rows[0]!.db, 'metrics_reader');
    return { spec, specFile: file, layout: planLayout(spec), access, reader: clientConfig(readerUrl, secrets.reader) };
  } finally {
    await client.end();
  }
}
