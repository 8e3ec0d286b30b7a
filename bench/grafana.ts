/**
 * `npm run bench:grafana`: Grafana panels' SQL as the PostgreSQL data source sends it (its macros
 * expanded: `$__timeGroupAlias(time, 5m)` is `floor(extract(epoch from time)/300)*300 AS "time"`,
 * `$__timeFilter(time)` a BETWEEN of two literal instants, series named by `tags_id::text AS
 * metric`), timed with pgbench side by side in one run on one cluster:
 *
 *   single    the same text on a plain single-node table (same indexes)
 *   gateway   the text through the gateway (the rewriter, router reads)
 *   as-is     the text straight to the access node: what postgres_fdw does without hypershard
 *
 * Every answer through the gateway is compared with the single node's first.
 *
 *   npm run bench:grafana -- [--hosts 100] [--hours 24] [--rounds 3] [--system]
 *
 * Writes bench/results/grafana[-pg15].json and .md.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { startGateway } from '../src/gateway/gateway.js';
import { SYSTEM_BIN_DIR, withBenchCluster } from './lib/cluster.js';
import { describeMachine, machineInfo } from './lib/machine.js';
import { closeQuietly, connect } from './lib/pg.js';
import { latencyMs, pgbench } from './lib/pgbench.js';
import { writeResults } from './lib/results.js';
import { geometricMean, median } from './lib/stats.js';
import { cpuRows, totalRows, type DataShape } from './tsbs/generate.js';
import { loadBoth } from './tsbs/load.js';
import { createDistributedHypertable, createSingleNodeTable, createTags, DISTRIBUTED, SINGLE, type Tables } from './tsbs/setup.js';

const { values } = parseArgs({
  options: { hosts: { type: 'string', default: '100' }, hours: { type: 'string', default: '24' }, rounds: { type: 'string', default: '3' }, seconds: { type: 'string', default: '3' }, system: { type: 'boolean', default: false } },
});
const hosts = Number(values.hosts);
const hours = Number(values.hours);
const rounds = Number(values.rounds);
const seconds = Number(values.seconds);
const step = (m: string): void => void process.stderr.write(`[${new Date().toISOString().slice(11, 19)}] ${m}\n`);

type Target = 'single' | 'gateway' | 'as-is';
interface Panel {
  readonly name: string;
  readonly sql: (t: Tables) => string;
}

/** The panels, over the last `windowHours` of the data (a dashboard's time range, as literal instants). */
function panels(from: string, to: string): Panel[] {
  const filter = `time BETWEEN '${from}' AND '${to}'`;
  return [
    { name: 'time series, 1m buckets', sql: (t) => `SELECT floor(extract(epoch from time)/60)*60 AS "time", avg(usage_user) AS usage_user FROM ${t.cpu} WHERE ${filter} GROUP BY 1 ORDER BY 1` },
    { name: 'a series per host, 5m buckets', sql: (t) => `SELECT floor(extract(epoch from time)/300)*300 AS "time", tags_id::text AS metric, max(usage_user) AS value FROM ${t.cpu} WHERE ${filter} GROUP BY 1, 2 ORDER BY 1, 2` },
    { name: 'weighted mean, 10m buckets', sql: (t) => `SELECT floor(extract(epoch from time)/600)*600 AS "time", sum(usage_user * usage_system) / sum(usage_system) AS weighted FROM ${t.cpu} WHERE ${filter} GROUP BY 1 ORDER BY 1` },
    { name: 'table: top hosts', sql: (t) => `SELECT tags_id::text AS host, max(usage_user) AS peak, avg(usage_idle) AS idle FROM ${t.cpu} WHERE ${filter} GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 10` },
    { name: 'stat: mean', sql: (t) => `SELECT avg(usage_user) AS mean FROM ${t.cpu} WHERE ${filter}` },
    { name: 'one host, 1m buckets', sql: (t) => `SELECT floor(extract(epoch from time)/60)*60 AS "time", max(usage_user) AS value FROM ${t.cpu} WHERE ${filter} AND tags_id = 7 GROUP BY 1 ORDER BY 1` },
  ];
}

/** Rows as text, sorted: floats printed by PostgreSQL to 12 significant digits (sums in another order differ past that). */
async function answer(url: string, sql: string): Promise<string> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query<Record<string, unknown>>(sql);
    return rows
      .map((r) => Object.values(r).map((v) => (typeof v === 'number' && !Number.isInteger(v) ? v.toPrecision(12) : String(v))).join('|'))
      .sort()
      .join('\n');
  } finally {
    await client.end();
  }
}

const report = await withBenchCluster(
  { dataNodes: 2, handleSignals: true, onStep: step, ...(values.system ? { postgres: { kind: 'system' as const, binDir: SYSTEM_BIN_DIR } } : {}) },
  async (cluster, workDir) => {
    const topology = await createDistributedHypertable(cluster, workDir, { hours });
    const access = await connect(cluster.accessNode.url);
    const scratch = await mkdtemp(join(tmpdir(), 'hs-bench-grafana-'));
    try {
      await createSingleNodeTable(access);
      await createTags(access, hosts, 1);
      const endMs = Math.floor(Date.now() / 10_000) * 10_000;
      const shape: DataShape = { hosts, startMs: endMs - hours * 3_600_000, endMs, intervalSeconds: 10, seed: 1 };
      step(`loading ${totalRows(shape).toLocaleString('en-US')} rows into both tables`);
      await loadBoth(access, cluster.dataNodes.map((n) => n.url), () => cpuRows(shape), { single: SINGLE.cpu, distributed: DISTRIBUTED.cpu });
      const version = (await access.query<{ v: string }>(`SELECT current_setting('server_version') AS v`)).rows[0]?.v ?? '';

      const gateway = await startGateway(topology.spec, topology.specFile, { port: 0 });
      try {
        const gw = gateway.address;
        const a = new URL(cluster.accessNode.url);
        const user = decodeURIComponent(a.username);
        const db = a.pathname.slice(1);
        const gatewayUrl = `postgres://${encodeURIComponent(user)}@${gw}/${db}`;
        const args: Record<Target, string[]> = {
          single: ['-h', a.hostname, '-p', a.port, '-U', user, db],
          'as-is': ['-h', a.hostname, '-p', a.port, '-U', user, db],
          gateway: ['-h', gw.slice(0, gw.lastIndexOf(':')), '-p', gw.slice(gw.lastIndexOf(':') + 1), '-U', user, db],
        };
        const window = Math.min(6, hours);
        const list = panels(new Date(endMs - window * 3_600_000).toISOString(), new Date(endMs).toISOString());
        const equal = new Map<string, boolean>();
        for (const p of list) equal.set(p.name, (await answer(gatewayUrl, p.sql(DISTRIBUTED))) === (await answer(cluster.accessNode.url, p.sql(SINGLE))));
        const samples = new Map<string, Record<Target, number[]>>();
        for (let round = 1; round <= rounds; round += 1) {
          for (const [i, p] of list.entries()) {
            step(`round ${round}/${rounds}: ${p.name}`);
            const s = samples.get(p.name) ?? { single: [], gateway: [], 'as-is': [] };
            samples.set(p.name, s);
            const order = (['single', 'gateway', 'as-is'] as const).map((_, k, all) => all[(k + round + i) % 3]!);
            for (const which of order) {
              const file = join(scratch, `${i}-${which}.sql`);
              await writeFile(file, `${p.sql(which === 'single' ? SINGLE : DISTRIBUTED)};\n`);
              s[which].push(latencyMs(await pgbench(['-M', 'extended', '-c', '1', '-T', String(seconds), '-f', file, ...args[which]])));
            }
          }
        }
        const rows = list.map((p) => {
          const s = samples.get(p.name)!;
          const [single, gatewayMs, asIs] = [median(s.single), median(s.gateway), median(s['as-is'])];
          return { panel: p.name, sql: p.sql(DISTRIBUTED), singleMs: single, gatewayMs, asIsMs: asIs, gatewayRatio: gatewayMs / single, asIsRatio: asIs / single, equal: equal.get(p.name) === true };
        });
        return {
          name: `grafana${values.system ? '-pg15' : ''}`,
          generatedAt: new Date().toISOString(),
          machine: machineInfo(),
          postgres: version,
          data: { hosts, hours, rows: totalRows(shape), windowHours: window },
          panels: rows,
          geomean: { gateway: geometricMean(rows.map((r) => r.gatewayRatio)), asIs: geometricMean(rows.map((r) => r.asIsRatio)) },
        };
      } finally {
        await gateway.close();
      }
    } finally {
      await rm(scratch, { recursive: true, force: true });
      await closeQuietly([access]);
    }
  },
);

const fmt = (n: number): string => (n >= 100 ? n.toFixed(0) : n >= 10 ? n.toFixed(1) : n.toFixed(2));
const md = [
  `# Grafana panels: single node vs distributed (PostgreSQL ${report.postgres})`,
  '',
  `${report.data.hosts} hosts × ${report.data.hours} h (${report.data.rows.toLocaleString('en-US')} rows), panels over the last ${report.data.windowHours} h; 4 shards on 2 data nodes, loopback; pgbench (extended protocol, 1 client, ${seconds} s) per panel and target, median of ${rounds} rounds, targets alternating; ${describeMachine(report.machine)}; written by bench/grafana.ts at ${report.generatedAt}.`,
  '',
  'single: the text on a plain single-node table; gateway: the text through `hypershard gateway`; as-is: the text straight to the access node (postgres_fdw alone). Ratio: × single.',
  '',
  '| panel | single ms | gateway ms | as-is ms | gateway × | as-is × | answer = single |',
  '|---|---:|---:|---:|---:|---:|---|',
  ...report.panels.map((r) => `| ${r.panel} | ${fmt(r.singleMs)} | ${fmt(r.gatewayMs)} | ${fmt(r.asIsMs)} | ${fmt(r.gatewayRatio)} | ${fmt(r.asIsRatio)} | ${r.equal ? 'yes' : 'NO'} |`),
  `| **geomean** | | | | **${fmt(report.geomean.gateway)}** | **${fmt(report.geomean.asIs)}** | |`,
  '',
  '## SQL',
  '',
  ...report.panels.map((r) => `- ${r.panel}: \`${r.sql}\``),
  '',
].join('\n');
const base = await writeResults(report.name, report, md);
process.stdout.write(`${md}\nwritten to ${base}.md\n`);
if (report.panels.some((r) => !r.equal)) process.exitCode = 1;
