/**
 * Replication overhead on ingest, side by side in one run: rows/s of batched INSERTs through the
 * access node into 2 data nodes, each with one streaming standby, with synchronous replication
 * (every commit waits for the standby's flush) and without (synchronous_standby_names = ''),
 * alternating, median of the rounds. `npx jiti bench/replication.ts [--postgres system] [--rows N]`.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { startDevCluster, stopDevCluster } from '../src/dev/cluster.js';
import { writeDevSpec } from '../src/dev/devSpec.js';
import { generateMigrations } from '../src/migrations/files.js';
import { apply } from '../src/nodes/apply.js';
import { loadSpec } from '../src/spec/load.js';

const system = process.argv.includes('--postgres') && process.argv[process.argv.indexOf('--postgres') + 1] === 'system';
const rowsArg = process.argv.indexOf('--rows');
const ROWS = rowsArg > 0 ? Number(process.argv[rowsArg + 1]) : 100_000;
const BATCH = 1_000;
const ROUNDS = 5;

const dir = await mkdtemp(join(tmpdir(), 'hs-bench-repl-'));
const dev = await startDevCluster({
  dir,
  dataNodes: 2,
  standbys: 1,
  postgres: system ? { kind: 'system', binDir: '/usr/lib/postgresql/15/bin' } : { kind: 'embedded' },
  settings: { synchronous_commit: 'on' },
});
try {
  const specFile = await writeDevSpec(dev);
  const { spec, file } = await loadSpec(specFile);
  await generateMigrations(spec, file);
  if (!(await apply(spec, file)).ok) throw new Error('apply failed');
  const access = new pg.Client(dev.accessNode.url);
  await access.connect();
  const setSync = async (names: (node: string) => string): Promise<void> => {
    for (const n of dev.dataNodes) {
      const c = new pg.Client(n.url);
      await c.connect();
      await c.query(`ALTER SYSTEM SET synchronous_standby_names = '${names(n.name)}'`);
      await c.query('SELECT pg_reload_conf()');
      await c.end();
    }
    await new Promise((r) => setTimeout(r, 300));
  };
  const load = async (): Promise<number> => {
    await access.query('TRUNCATE metrics');
    const started = performance.now();
    for (let i = 0; i < ROWS; i += BATCH) {
      await access.query(
        `INSERT INTO metrics (time, device_id, cpu) SELECT now() - (g || ' s')::interval, g % 100, g FROM generate_series($1::int, $2::int) g`,
        [i, i + BATCH - 1],
      );
    }
    return ROWS / ((performance.now() - started) / 1000);
  };
  const sync: number[] = [];
  const async_: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    await setSync((n) => `ANY 1 ("${n}_s1")`);
    sync.push(await load());
    await setSync(() => '');
    async_.push(await load());
  }
  const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
  const s = median(sync);
  const a = median(async_);
  process.stdout.write(
    `PostgreSQL ${dev.postgres.version}: ${ROWS} rows in ${BATCH}-row INSERTs through the access node, 2 data nodes with 1 standby each, median of ${ROUNDS}\n` +
      `  synchronous standby:  ${Math.round(s)} rows/s\n  asynchronous:         ${Math.round(a)} rows/s\n  ratio sync/async:     ${(s / a).toFixed(2)}\n`,
  );
  await access.end();
} finally {
  await stopDevCluster(dir);
  await rm(dir, { recursive: true, force: true });
}
