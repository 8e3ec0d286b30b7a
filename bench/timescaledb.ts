/**
 * What TimescaleDB's functions on the access node cost, side by side in one run on a throwaway
 * dev cluster (1 access node, 2 data nodes, loopback), median of `--runs` interleaved runs:
 *
 *   one node      the same rows in a plain table on the access node: time_bucket against the
 *                 date_bin it inlines to, first/last against min/max (the same scan and grouping,
 *                 built-in aggregates), per row
 *   distributed   psql's SQL on the hypertable, no rewriter: time_bucket grouped with the space
 *                 column (shipped to every shard as date_bin) and first/last (not built in, so
 *                 the shards send their rows), each against the same query on the plain table
 *
 * Every pair is checked to give the same answer before it is timed.
 *
 * Run: npx jiti bench/timescaledb.ts [--system] [--rows N] [--runs N]
 * Writes bench/results/timescaledb-pg<major>.json and .md.
 */
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import type pg from 'pg';
import { writeDevSpec } from '../src/dev/devSpec.js';
import { generateMigrations } from '../src/migrations/files.js';
import { apply } from '../src/nodes/apply.js';
import { loadSpec } from '../src/spec/load.js';
import { SYSTEM_BIN_DIR, withBenchCluster } from './lib/cluster.js';
import { describeMachine, machineInfo, type MachineInfo } from './lib/machine.js';
import { closeQuietly, connect } from './lib/pg.js';
import { writeResults } from './lib/results.js';
import { median } from './lib/stats.js';

interface Pair {
  readonly name: string;
  readonly subject: string;
  readonly baseline: string;
  readonly subjectLabel: string;
  readonly baselineLabel: string;
  /** The two answer the same (checked before timing); false for a cost comparison only. */
  readonly sameAnswer: boolean;
}

interface Measured extends Pair {
  readonly subjectMs: number;
  readonly baselineMs: number;
  readonly ratio: number;
  /** Extra microseconds per input row, subject over baseline. */
  readonly extraUsPerRow: number;
}

interface Report {
  readonly postgres: string;
  readonly machine: MachineInfo;
  readonly rows: number;
  readonly runs: number;
  readonly pairs: readonly Measured[];
}

const PAIRS: readonly Pair[] = [
  {
    name: 'time_bucket, one node',
    subject: `SELECT time_bucket('5 minutes', time) AS b, max(cpu) FROM metrics_local GROUP BY 1`,
    baseline: `SELECT date_bin('5 minutes', time, timestamptz '2000-01-03 00:00:00+00') AS b, max(cpu) FROM metrics_local GROUP BY 1`,
    subjectLabel: 'time_bucket',
    baselineLabel: 'date_bin',
    sameAnswer: true,
  },
  {
    name: 'first/last, one node',
    subject: `SELECT device_id, first(cpu, time), last(cpu, time) FROM metrics_local GROUP BY 1`,
    baseline: `SELECT device_id, min(time), max(time) FROM metrics_local GROUP BY 1`,
    subjectLabel: 'first + last',
    baselineLabel: 'min + max',
    sameAnswer: false,
  },
  {
    name: 'time_bucket by device, distributed (psql, no rewriter)',
    subject: `SELECT device_id, time_bucket('5 minutes', time) AS b, max(cpu) FROM metrics GROUP BY 1, 2`,
    baseline: `SELECT device_id, time_bucket('5 minutes', time) AS b, max(cpu) FROM metrics_local GROUP BY 1, 2`,
    subjectLabel: 'hypertable',
    baselineLabel: 'one node',
    sameAnswer: true,
  },
  {
    name: 'first/last by device, distributed (psql, no rewriter)',
    subject: `SELECT device_id, first(cpu, time), last(cpu, time) FROM metrics GROUP BY 1`,
    baseline: `SELECT device_id, first(cpu, time), last(cpu, time) FROM metrics_local GROUP BY 1`,
    subjectLabel: 'hypertable',
    baselineLabel: 'one node',
    sameAnswer: true,
  },
];

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { system: { type: 'boolean', default: false }, rows: { type: 'string', default: '400000' }, runs: { type: 'string', default: '5' } } });
  const rows = Number(values.rows);
  const runs = Number(values.runs);
  const postgres = values.system ? { kind: 'system' as const, binDir: SYSTEM_BIN_DIR } : { kind: 'embedded' as const };
  await withBenchCluster({ dataNodes: 2, postgres, handleSignals: true, onStep: (m) => process.stderr.write(`${m}\n`) }, async (cluster) => {
    const specFile = await writeDevSpec(cluster);
    const { spec, file } = await loadSpec(specFile);
    await generateMigrations(spec, file);
    const applied = await apply(spec, file);
    if (!applied.ok) throw new Error(`apply failed: ${JSON.stringify(applied.nodes)}`);
    const access = await connect(cluster.accessNode.url);
    try {
      process.stderr.write(`loading ${rows.toLocaleString('en-US')} rows into the hypertable and a plain table\n`);
      await access.query(
        `CREATE TABLE metrics_local AS
         SELECT timestamptz '2024-01-01 00:00:00+00' + i * interval '1 second' AS time, i % 100 + 1 AS device_id,
                (i * 7 % 1000) / 10.0::float8 AS cpu, (i % 17)::float8 AS memory, (20 + i % 13)::float8 AS temperature
           FROM generate_series(1, $1::int) AS i`,
        [rows],
      );
      await access.query('INSERT INTO metrics (time, device_id, cpu, memory, temperature) SELECT * FROM metrics_local');
      await access.query('ANALYZE metrics_local; ANALYZE metrics');
      const pairs: Measured[] = [];
      for (const pair of PAIRS) {
        await sameAnswer(access, pair);
        const subject: number[] = [];
        const baseline: number[] = [];
        for (let i = 0; i < runs; i++) {
          baseline.push(await time(access, pair.baseline));
          subject.push(await time(access, pair.subject));
        }
        const subjectMs = median(subject);
        const baselineMs = median(baseline);
        pairs.push({ ...pair, subjectMs, baselineMs, ratio: subjectMs / baselineMs, extraUsPerRow: ((subjectMs - baselineMs) * 1000) / rows });
        process.stderr.write(`${pair.name}: ${subjectMs.toFixed(1)} / ${baselineMs.toFixed(1)} ms\n`);
      }
      const report: Report = { postgres: String(cluster.postgres.version), machine: machineInfo(), rows, runs, pairs };
      const markdown = toMarkdown(report);
      const out = await writeResults(`timescaledb-pg${cluster.postgres.version}`, report, markdown);
      process.stdout.write(`${markdown}\nwrote ${out}.json and .md\n`);
    } finally {
      await closeQuietly([access]);
    }
  });
}

async function time(client: pg.Client, sql: string): Promise<number> {
  const start = performance.now();
  await client.query(sql);
  return performance.now() - start;
}

async function sameAnswer(client: pg.Client, pair: Pair): Promise<void> {
  const digest = async (sql: string): Promise<string> =>
    (await client.query<{ d: string }>(`SELECT md5(string_agg(r::text, ',' ORDER BY r::text)) AS d FROM (${sql}) r`)).rows[0]!.d;
  if (pair.sameAnswer && (await digest(pair.subject)) !== (await digest(pair.baseline))) {
    throw new Error(`${pair.name}: the two queries answer differently`);
  }
}

function toMarkdown(r: Report): string {
  return [
    `# TimescaleDB's functions on the access node, PostgreSQL ${r.postgres}`,
    '',
    `${r.rows.toLocaleString('en-US')} rows (100 devices, one row a second), 1 access node + 2 data nodes on loopback, 4 shards, median of ${r.runs} interleaved runs; ${describeMachine(r.machine)}.`,
    '',
    '| what | subject | ms | baseline | ms | ratio | extra µs per row |',
    '|---|---|---:|---|---:|---:|---:|',
    ...r.pairs.map((p) => `| ${p.name} | ${p.subjectLabel} | ${p.subjectMs.toFixed(1)} | ${p.baselineLabel} | ${p.baselineMs.toFixed(1)} | ${p.ratio.toFixed(2)} | ${p.extraUsPerRow.toFixed(2)} |`),
    '',
  ].join('\n');
}

await main();
