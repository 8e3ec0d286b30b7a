/**
 * Replication overhead on ingest, side by side in one run: rows/s written through the access node
 * into 2 data nodes, each with one streaming standby, with synchronous replication (every commit
 * waits until the standby has flushed it: `synchronous_standby_names = 'ANY 1 (…)'`, what
 * `replication: { synchronous: true }` sets) and without (`''`: the standby streams asynchronously).
 * Two workloads: 1,000-row INSERT … SELECT statements (few commits), and single-row INSERTs from
 * 4 clients (a commit per row, where waiting for the standby shows most). Modes alternate within
 * each round; the median of the rounds is reported.
 *
 *   npx jiti bench/replication.ts [--system] [--rows N] [--single N] [--rounds N]
 *
 * Writes bench/results/replication-pg<major>.json and .md. Run it on a quiet machine
 * (`flock -x /tmp/hs-bench.lock npm run bench:replication`).
 */
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import type pg from 'pg';
import type { DevCluster } from '../src/dev/cluster.js';
import { writeDevSpec } from '../src/dev/devSpec.js';
import { generateMigrations } from '../src/migrations/files.js';
import { apply } from '../src/nodes/apply.js';
import { loadSpec } from '../src/spec/load.js';
import { SYSTEM_BIN_DIR, withBenchCluster } from './lib/cluster.js';
import { describeMachine, machineInfo } from './lib/machine.js';
import { closeQuietly, connect } from './lib/pg.js';
import { writeResults } from './lib/results.js';
import { median } from './lib/stats.js';

const { values } = parseArgs({
  options: {
    system: { type: 'boolean', default: false },
    rows: { type: 'string', default: '100000' },
    single: { type: 'string', default: '4000' },
    rounds: { type: 'string', default: '5' },
  },
});
const ROWS = Number(values.rows);
const SINGLE = Number(values.single);
const ROUNDS = Number(values.rounds);
const BATCH = 1_000;
const CLIENTS = 4;

type Mode = 'synchronous' | 'asynchronous';
const MODES: readonly Mode[] = ['synchronous', 'asynchronous'];

/** Sets each primary's synchronous_standby_names and waits until its walsender reports the new sync_state. */
async function setMode(cluster: DevCluster, mode: Mode): Promise<void> {
  for (const node of cluster.dataNodes) {
    const client = await connect(node.url);
    try {
      const names = mode === 'synchronous' ? `ANY 1 (${node.standbys.map((s) => `"${s.name}"`).join(', ')})` : '';
      await client.query(`ALTER SYSTEM SET synchronous_standby_names = '${names}'`);
      await client.query('SELECT pg_catalog.pg_reload_conf()');
      const wanted = mode === 'synchronous' ? 'quorum' : 'async';
      for (let i = 0; ; i++) {
        const { rows } = await client.query<{ s: string }>('SELECT sync_state AS s FROM pg_catalog.pg_stat_replication');
        if (rows.length > 0 && rows.every((r) => r.s === wanted)) break;
        if (i > 100) throw new Error(`${node.name}: sync_state did not become ${wanted}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    } finally {
      await client.end();
    }
  }
}

async function batched(access: pg.Client): Promise<number> {
  await access.query('TRUNCATE metrics');
  const started = performance.now();
  for (let i = 0; i < ROWS; i += BATCH) {
    await access.query(
      `INSERT INTO metrics (time, device_id, cpu) SELECT now() - g * interval '1 s', g % 100, g FROM generate_series($1::int, $2::int) g`,
      [i, i + BATCH - 1],
    );
  }
  return ROWS / ((performance.now() - started) / 1000);
}

async function singleRows(access: pg.Client, clients: readonly pg.Client[]): Promise<number> {
  await access.query('TRUNCATE metrics');
  let next = 0;
  const started = performance.now();
  await Promise.all(
    clients.map(async (c) => {
      for (let id = next++; id < SINGLE; id = next++) {
        await c.query('INSERT INTO metrics (time, device_id, cpu) VALUES (now(), $1, $2)', [id % 100, id]);
      }
    }),
  );
  return SINGLE / ((performance.now() - started) / 1000);
}

const machine = machineInfo();
const report = await withBenchCluster(
  {
    dataNodes: 2,
    standbys: 1,
    // Acknowledged means flushed on the primary (the dev cluster's default is off).
    settings: { synchronous_commit: 'on' },
    postgres: values.system ? { kind: 'system', binDir: SYSTEM_BIN_DIR } : { kind: 'embedded' },
    handleSignals: true,
    onStep: (m) => process.stderr.write(`${m}\n`),
  },
  async (cluster) => {
    const specFile = await writeDevSpec(cluster);
    const { spec, file } = await loadSpec(specFile);
    await generateMigrations(spec, file);
    if (!(await apply(spec, file)).ok) throw new Error('apply failed');
    const access = await connect(cluster.accessNode.url);
    const clients = await Promise.all(Array.from({ length: CLIENTS }, () => connect(cluster.accessNode.url)));
    const samples: Record<Mode, { batched: number[]; single: number[] }> = { synchronous: { batched: [], single: [] }, asynchronous: { batched: [], single: [] } };
    try {
      for (let round = 0; round < ROUNDS; round++) {
        // Alternate which mode goes first, so neither always runs on a warmer cache.
        for (const mode of round % 2 === 0 ? MODES : [...MODES].reverse()) {
          await setMode(cluster, mode);
          samples[mode].batched.push(await batched(access));
          samples[mode].single.push(await singleRows(access, clients));
          process.stderr.write(`round ${round + 1} ${mode}: ${Math.round(samples[mode].batched.at(-1)!)} rows/s batched, ${Math.round(samples[mode].single.at(-1)!)} rows/s single-row\n`);
        }
      }
    } finally {
      await closeQuietly([access, ...clients]);
    }
    const m = (mode: Mode, w: 'batched' | 'single'): number => Math.round(median(samples[mode][w]));
    return {
      generatedAt: new Date().toISOString(),
      postgres: `${cluster.postgres.version} (${cluster.postgres.source})`,
      major: cluster.postgres.version,
      machine,
      rows: ROWS,
      batch: BATCH,
      singleRows: SINGLE,
      clients: CLIENTS,
      rounds: ROUNDS,
      samples,
      batched: { synchronous: m('synchronous', 'batched'), asynchronous: m('asynchronous', 'batched') },
      single: { synchronous: m('synchronous', 'single'), asynchronous: m('asynchronous', 'single') },
    };
  },
);

const ratio = (w: { synchronous: number; asynchronous: number }): string => (w.synchronous / w.asynchronous).toFixed(2);
const markdown = [
  '# Replication overhead on ingest',
  '',
  `PostgreSQL ${report.postgres}; 1 access node + 2 data nodes on loopback, each data node with 1 streaming standby; writes through the access node; \`synchronous_commit = on\`.`,
  `Machine: ${describeMachine(report.machine)}. Median of ${report.rounds} rounds, modes alternating. Generated ${report.generatedAt}.`,
  '',
  '| workload | synchronous standby rows/s | asynchronous standby rows/s | sync / async |',
  '|---|---:|---:|---:|',
  `| ${report.rows.toLocaleString('en')} rows in ${report.batch.toLocaleString('en')}-row INSERT … SELECT | ${report.batched.synchronous.toLocaleString('en')} | ${report.batched.asynchronous.toLocaleString('en')} | ${ratio(report.batched)} |`,
  `| ${report.singleRows.toLocaleString('en')} single-row INSERTs, ${report.clients} clients | ${report.single.synchronous.toLocaleString('en')} | ${report.single.asynchronous.toLocaleString('en')} | ${ratio(report.single)} |`,
  '',
].join('\n');
const base = await writeResults(`replication-pg${report.major}`, report, markdown);
process.stdout.write(`${markdown}\nWrote ${base}.json and .md\n`);
