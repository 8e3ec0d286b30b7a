/**
 * Writes through the access node (clients that use neither the gateway nor hypershard/pg): what
 * postgres_fdw's `batch_size` does to INSERT and COPY into a distributed hypertable, beside the same
 * rows written into a plain table on one node, on a throwaway dev cluster (loopback).
 *
 *   INSERT    one `INSERT … SELECT` of R rows (postgres_fdw sends each shard batch_size rows per
 *             round trip)
 *   VALUES    R rows as multi-row `INSERT … VALUES` statements of 1,000 rows (what an application's
 *             batched insert sends), one transaction
 *   COPY      `COPY … FROM STDIN` of R rows as CSV (batched into foreign partitions from
 *             PostgreSQL 16 on; one row per round trip before)
 *
 * Every batch_size is set on every data node's FDW server (ALTER SERVER), each step runs `--runs`
 * times (median reported), and after each the rows are counted through the access node, so a
 * number never comes from a load that did not happen.
 *
 * Run: npx jiti bench/accessWrites.ts [--system] [--rows N] [--runs N] [--batch-sizes 1,100,1000]
 * Writes bench/results/access-writes-pg<major>.json and .md.
 */
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import type pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { generateMigrations } from '../src/migrations/files.js';
import { apply } from '../src/nodes/apply.js';
import { writeDevSpec } from '../src/dev/devSpec.js';
import { loadSpec } from '../src/spec/load.js';
import { quoteIdent, quoteLiteral } from '../src/sql/quote.js';
import { SYSTEM_BIN_DIR, withBenchCluster } from './lib/cluster.js';
import { describeMachine, machineInfo, type MachineInfo } from './lib/machine.js';
import { closeQuietly, connect } from './lib/pg.js';
import { writeResults } from './lib/results.js';
import { median } from './lib/stats.js';

interface Options {
  readonly system: boolean;
  readonly rows: number;
  readonly runs: number;
  readonly batchSizes: readonly number[];
}

const METHODS = ['INSERT', 'VALUES', 'COPY'] as const;
type Method = (typeof METHODS)[number];

interface Measurement {
  readonly method: Method;
  /** undefined: the plain one-node table. */
  readonly batchSize: number | undefined;
  readonly ms: number;
  readonly rowsPerSecond: number;
  /** Rows per second over the one-node table's, same method. */
  readonly ratio: number;
  readonly samples: readonly number[];
}

interface Report {
  readonly postgres: string;
  readonly machine: MachineInfo;
  readonly rows: number;
  readonly runs: number;
  readonly dataNodes: number;
  readonly measurements: readonly Measurement[];
}

const VALUES_ROWS = 1000;
const START = Date.parse('2026-11-01T00:00:00Z');

function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      system: { type: 'boolean', default: false },
      rows: { type: 'string', default: '100000' },
      runs: { type: 'string', default: '3' },
      'batch-sizes': { type: 'string', default: '1,100,1000,5000,10000' },
    },
  });
  const batchSizes = values['batch-sizes'].split(',').map(Number);
  if (batchSizes.some((b) => !Number.isInteger(b) || b < 1)) throw new RangeError('--batch-sizes: positive integers, comma-separated');
  return { system: values.system, rows: Number(values.rows), runs: Number(values.runs), batchSizes };
}

/** Row i: 100 devices, one reading each 10 s per device. */
const row = (i: number): [string, number, number, number, number] => [new Date(START + Math.floor(i / 100) * 10_000).toISOString(), (i % 100) + 1, (i * 7) % 100, (i * 13) % 97, 20 + (i % 17)];

function* csv(rows: number): Generator<Buffer> {
  const lines: string[] = [];
  for (let i = 0; i < rows; i += 1) {
    lines.push(row(i).join(','));
    if (lines.length === 5000) {
      yield Buffer.from(`${lines.join('\n')}\n`);
      lines.length = 0;
    }
  }
  if (lines.length > 0) yield Buffer.from(`${lines.join('\n')}\n`);
}

function valuesStatements(table: string, rows: number): string[] {
  const out: string[] = [];
  for (let from = 0; from < rows; from += VALUES_ROWS) {
    const values: string[] = [];
    for (let i = from; i < Math.min(rows, from + VALUES_ROWS); i += 1) {
      const [t, d, c, m, tp] = row(i);
      values.push(`('${t}', ${d}, ${c}, ${m}, ${tp})`);
    }
    out.push(`INSERT INTO ${table} (time, device_id, cpu, memory, temperature) VALUES ${values.join(', ')}`);
  }
  return out;
}

async function load(access: pg.Client, method: Method, table: string, rows: number, statements: readonly string[]): Promise<number> {
  const started = performance.now();
  switch (method) {
    case 'INSERT':
      await access.query(
        `INSERT INTO ${table} (time, device_id, cpu, memory, temperature)
         SELECT ${quoteLiteral(new Date(START).toISOString())}::timestamptz + (i / 100) * interval '10 seconds', i % 100 + 1, i * 7 % 100, i * 13 % 97, 20 + i % 17
         FROM generate_series(0, ${rows - 1}) i`,
      );
      break;
    case 'VALUES':
      await access.query('BEGIN');
      for (const s of statements) await access.query(s);
      await access.query('COMMIT');
      break;
    case 'COPY':
      await pipeline(Readable.from(csv(rows)), access.query(copyFrom(`COPY ${table} (time, device_id, cpu, memory, temperature) FROM STDIN WITH (FORMAT csv)`)));
      break;
  }
  return performance.now() - started;
}

async function setBatchSize(access: pg.Client, batchSize: number): Promise<void> {
  const { rows } = await access.query<{ name: string; has: boolean }>(
    `SELECT srvname AS name, EXISTS (SELECT FROM unnest(srvoptions) o WHERE o LIKE 'batch_size=%') AS has
     FROM pg_foreign_server s JOIN pg_foreign_data_wrapper w ON w.oid = s.srvfdw WHERE w.fdwname = 'postgres_fdw'`,
  );
  for (const s of rows) await access.query(`ALTER SERVER ${quoteIdent(s.name)} OPTIONS (${s.has ? 'SET' : 'ADD'} batch_size ${quoteLiteral(String(batchSize))})`);
}

async function main(): Promise<void> {
  const opts = parseOptions(process.argv.slice(2));
  const postgres = opts.system ? { kind: 'system' as const, binDir: SYSTEM_BIN_DIR } : { kind: 'embedded' as const };
  const dataNodes = 2;
  await withBenchCluster({ dataNodes, postgres, handleSignals: true, onStep: (m) => process.stderr.write(`${m}\n`) }, async (cluster) => {
    const { spec, file } = await loadSpec(await writeDevSpec(cluster));
    await generateMigrations(spec, file);
    const applied = await apply(spec, file);
    if (!applied.ok) throw new Error(`apply failed: ${JSON.stringify(applied.nodes)}`);
    const access = await connect(cluster.accessNode.url);
    try {
      await access.query('CREATE TABLE metrics_plain (LIKE metrics INCLUDING ALL)');
      const plainStatements = valuesStatements('metrics_plain', opts.rows);
      const statements = valuesStatements('metrics', opts.rows);
      const measure = async (method: Method, table: string, batchSize: number | undefined): Promise<number[]> => {
        const samples: number[] = [];
        for (let run = 0; run < opts.runs; run += 1) {
          await access.query(`TRUNCATE ${table}`);
          samples.push(await load(access, method, table, opts.rows, table === 'metrics' ? statements : plainStatements));
          const n = Number((await access.query<{ n: string }>(`SELECT count(*) AS n FROM ${table}`)).rows[0]?.n);
          if (n !== opts.rows) throw new Error(`${method} into ${table} (batch_size ${batchSize ?? '-'}) left ${n} rows, expected ${opts.rows}`);
        }
        process.stderr.write(`${method} ${table}${batchSize === undefined ? '' : ` batch_size ${batchSize}`}: ${Math.round(median(samples))} ms\n`);
        return samples;
      };
      const measurements: Measurement[] = [];
      const summary = (method: Method, batchSize: number | undefined, samples: number[], baselineMs: number): Measurement => {
        const ms = median(samples);
        return { method, batchSize, ms: Math.round(ms), rowsPerSecond: Math.round((opts.rows / ms) * 1000), ratio: Math.round((baselineMs / ms) * 100) / 100, samples: samples.map(Math.round) };
      };
      for (const method of METHODS) {
        const baseline = await measure(method, 'metrics_plain', undefined);
        measurements.push(summary(method, undefined, baseline, median(baseline)));
        for (const batchSize of opts.batchSizes) {
          await setBatchSize(access, batchSize);
          measurements.push(summary(method, batchSize, await measure(method, 'metrics', batchSize), median(baseline)));
        }
      }
      await setBatchSize(access, spec.fdw.batchSize);
      const report: Report = { postgres: `${cluster.postgres.version} (${cluster.postgres.source})`, machine: machineInfo(), rows: opts.rows, runs: opts.runs, dataNodes, measurements };
      const markdown = toMarkdown(report);
      const out = await writeResults(`access-writes-pg${cluster.postgres.version}`, report, markdown);
      process.stdout.write(`${markdown}\nwrote ${out}.json and .md\n`);
    } finally {
      await closeQuietly([access]);
    }
  });
}

function toMarkdown(r: Report): string {
  const label: Record<Method, string> = { INSERT: 'INSERT … SELECT (one statement)', VALUES: `INSERT … VALUES, ${VALUES_ROWS} rows a statement`, COPY: 'COPY FROM STDIN (CSV)' };
  return [
    `# Writes through the access node, PostgreSQL ${r.postgres}`,
    '',
    `${r.rows.toLocaleString('en-US')} rows into a hypertable of 1 access node + ${r.dataNodes} data nodes on loopback, and into a plain table on one node; median of ${r.runs} runs; ${describeMachine(r.machine)}.`,
    '',
    '| method | target | batch_size | ms | rows/s | vs one node |',
    '|---|---|---:|---:|---:|---:|',
    ...r.measurements.map((m) => `| ${label[m.method]} | ${m.batchSize === undefined ? 'one node' : 'access node'} | ${m.batchSize ?? '-'} | ${m.ms} | ${m.rowsPerSecond.toLocaleString('en-US')} | ${m.ratio.toFixed(2)}x |`),
    '',
  ].join('\n');
}

await main();
