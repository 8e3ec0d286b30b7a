/**
 * Reference-table sync speed on a throwaway dev cluster (1 access node, N data nodes, loopback):
 *
 *   insert    one INSERT of R rows into the reference table on the access node; the statement
 *             trigger writes them to every data node's copy (batched by the servers' batch_size)
 *   update    one UPDATE of every row (old keys deleted with one `= ANY` per node, rows inserted)
 *   delete    one DELETE of every row
 *   resync    `syncReferenceTables`: every data node's copy emptied and filled again (per node one
 *             transaction, nodes in parallel)
 *   one row   a one-row INSERT committed on its own (the per-change latency: a round trip and a
 *             commit on every data node), median of 200 in one session
 *   baseline  the same INSERT into a table of the same shape without triggers, for the overhead
 *
 * Each step runs `--runs` times (median reported); after each, every copy is checked equal to the
 * access node's table, so a number never comes from a sync that did not happen.
 *
 * Run: npx jiti bench/reference.ts [--system] [--rows N] [--data-nodes N] [--runs N]
 * Writes bench/results/reference-pg<major>.json and .md.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import type pg from 'pg';
import { generateMigrations } from '../src/migrations/files.js';
import { apply } from '../src/nodes/apply.js';
import { syncReferenceTables } from '../src/reference/sync.js';
import { writeDevSpec } from '../src/dev/devSpec.js';
import { loadSpec } from '../src/spec/load.js';
import { SYSTEM_BIN_DIR, withBenchCluster } from './lib/cluster.js';
import { describeMachine, machineInfo, type MachineInfo } from './lib/machine.js';
import { closeQuietly, connect } from './lib/pg.js';
import { writeResults } from './lib/results.js';
import { median } from './lib/stats.js';

interface Options {
  readonly system: boolean;
  readonly rows: number;
  readonly dataNodes: number;
  readonly runs: number;
}

const STEPS = ['baseline', 'insert', 'update', 'delete', 'resync'] as const;
type Step = (typeof STEPS)[number];

interface Report {
  readonly postgres: string;
  readonly machine: MachineInfo;
  readonly rows: number;
  readonly dataNodes: number;
  readonly runs: number;
  /** Median milliseconds and rows per second (rows of the statement, not rows × nodes). */
  readonly steps: Record<Step, { readonly ms: number; readonly rowsPerSecond: number; readonly samples: readonly number[] }>;
  /** Median milliseconds of a one-row INSERT in autocommit, without and with sync. */
  readonly oneRow: { readonly baselineMs: number; readonly syncedMs: number };
}

const REFERENCE_TABLE = `
referenceTables:
  - name: devices
    columns:
      - { name: device_id, type: integer, notNull: true }
      - { name: name, type: text }
      - { name: region, type: text }
      - { name: model, type: varchar(64) }
      - { name: attrs, type: jsonb }
    primaryKey: [device_id]
`;

const ROWS = (rows: number, table: string): string =>
  `INSERT INTO ${table} SELECT i, 'device ' || i, (ARRAY['eu', 'us', 'ap'])[1 + i % 3], 'model-' || (i % 17), jsonb_build_object('rack', i % 40) FROM generate_series(1, ${rows}) i`;

function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: { system: { type: 'boolean', default: false }, rows: { type: 'string', default: '10000' }, 'data-nodes': { type: 'string', default: '2' }, runs: { type: 'string', default: '5' } },
  });
  return { system: values.system, rows: Number(values.rows), dataNodes: Number(values['data-nodes']), runs: Number(values.runs) };
}

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const started = performance.now();
  await fn();
  return performance.now() - started;
}

async function main(): Promise<void> {
  const opts = parseOptions(process.argv.slice(2));
  const postgres = opts.system ? { kind: 'system' as const, binDir: SYSTEM_BIN_DIR } : { kind: 'embedded' as const };
  await withBenchCluster({ dataNodes: opts.dataNodes, postgres, handleSignals: true, onStep: (m) => process.stderr.write(`${m}\n`) }, async (cluster) => {
    const specFile = await writeDevSpec(cluster);
    await writeFile(specFile, (await readFile(specFile, 'utf8')) + REFERENCE_TABLE);
    const { spec, file } = await loadSpec(specFile);
    await generateMigrations(spec, file);
    const applied = await apply(spec, file);
    if (!applied.ok) throw new Error(`apply failed: ${JSON.stringify(applied.nodes)}`);

    const access = await connect(cluster.accessNode.url);
    const dataNodes = await Promise.all(cluster.dataNodes.map((n) => connect(n.url)));
    try {
      await access.query('CREATE TABLE devices_plain (LIKE devices INCLUDING ALL)');
      const samples: Record<Step, number[]> = { baseline: [], insert: [], update: [], delete: [], resync: [] };
      for (let run = 0; run < opts.runs; run += 1) {
        process.stderr.write(`run ${run + 1} of ${opts.runs}\n`);
        await access.query('TRUNCATE devices_plain');
        samples.baseline.push(await timed(() => access.query(ROWS(opts.rows, 'devices_plain'))));
        samples.insert.push(await timed(() => access.query(ROWS(opts.rows, 'devices'))));
        await expectCopiesEqual(access, dataNodes, opts.rows);
        samples.update.push(await timed(() => access.query(`UPDATE devices SET region = region || '-' || ${run}, attrs = attrs || '{"moved": true}'`)));
        await expectCopiesEqual(access, dataNodes, opts.rows);
        // What resync repairs: every copy changed behind the access node's back.
        for (const node of dataNodes) await node.query(`UPDATE devices SET name = 'tampered' WHERE device_id % 7 = 0`);
        const synced = await syncReferenceTables(spec, file);
        if (!synced.ok) throw new Error(`resync failed: ${JSON.stringify(synced.nodes)}`);
        samples.resync.push(synced.durationMs);
        await expectCopiesEqual(access, dataNodes, opts.rows);
        samples.delete.push(await timed(() => access.query('DELETE FROM devices')));
        await expectCopiesEqual(access, dataNodes, 0);
      }
      const oneRow = async (table: string): Promise<number> => {
        const times: number[] = [];
        for (let i = 0; i < 200; i += 1) times.push(await timed(() => access.query(`INSERT INTO ${table} (device_id, name) VALUES ($1, 'one')`, [1_000_000 + i])));
        await access.query(`DELETE FROM ${table} WHERE device_id >= 1000000`);
        return Math.round(median(times) * 100) / 100;
      };
      const oneRowMs = { baselineMs: await oneRow('devices_plain'), syncedMs: await oneRow('devices') };
      await expectCopiesEqual(access, dataNodes, 0);
      const summary = (step: Step): Report['steps'][Step] => {
        const ms = median(samples[step]);
        return { ms: Math.round(ms * 10) / 10, rowsPerSecond: Math.round((opts.rows / ms) * 1000), samples: samples[step].map((x) => Math.round(x * 10) / 10) };
      };
      const report: Report = {
        postgres: `${cluster.postgres.version} (${cluster.postgres.source})`,
        machine: machineInfo(),
        rows: opts.rows,
        dataNodes: opts.dataNodes,
        runs: opts.runs,
        oneRow: oneRowMs,
        steps: { baseline: summary('baseline'), insert: summary('insert'), update: summary('update'), delete: summary('delete'), resync: summary('resync') },
      };
      const markdown = toMarkdown(report);
      const out = await writeResults(`reference-pg${cluster.postgres.version}`, report, markdown);
      process.stdout.write(`${markdown}\nwrote ${out}.json and .md\n`);
    } finally {
      await closeQuietly([access, ...dataNodes]);
    }
  });
}

/** Every data node's copy holds exactly the access node's rows (count and content hash). */
async function expectCopiesEqual(access: pg.Client, dataNodes: readonly pg.Client[], rows: number): Promise<void> {
  const fingerprint = async (client: pg.Client): Promise<string> =>
    (await client.query<{ f: string }>(`SELECT count(*) || ':' || coalesce(sum(hashtextextended(d::text, 0)::numeric), 0) AS f FROM devices d`)).rows[0]!.f;
  const expected = await fingerprint(access);
  if (!expected.startsWith(`${rows}:`)) throw new Error(`the access node holds ${expected.split(':')[0]} rows, expected ${rows}`);
  for (const [i, node] of dataNodes.entries()) {
    const actual = await fingerprint(node);
    if (actual !== expected) throw new Error(`data node ${i + 1}'s copy differs from the access node's table (${actual} vs ${expected})`);
  }
}

function toMarkdown(r: Report): string {
  const label: Record<Step, string> = {
    baseline: 'INSERT into a table without sync (baseline)',
    insert: 'INSERT, synced to every data node by the trigger',
    update: 'UPDATE of every row, synced',
    delete: 'DELETE of every row, synced',
    resync: 'resync: every copy emptied and filled again',
  };
  return [
    `# Reference-table sync, PostgreSQL ${r.postgres}`,
    '',
    `${r.rows.toLocaleString('en-US')} rows, 1 access node + ${r.dataNodes} data nodes on loopback, median of ${r.runs} runs; ${describeMachine(r.machine)}.`,
    '',
    '| step | ms | rows/s |',
    '|---|---:|---:|',
    ...STEPS.map((s) => `| ${label[s]} | ${r.steps[s].ms.toFixed(1)} | ${r.steps[s].rowsPerSecond.toLocaleString('en-US')} |`),
    '',
    `One-row INSERT, committed on its own (median of 200): ${r.oneRow.baselineMs} ms without sync, ${r.oneRow.syncedMs} ms synced to ${r.dataNodes} data nodes.`,
    '',
  ].join('\n');
}

await main();
