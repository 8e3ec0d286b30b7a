/**
 * `npm run bench:shard-cost`: what one shard asked costs a query, and where that time goes.
 *
 * A dev cluster (1 access + 2 data nodes) with TSBS's `cpu` hypertable at quick scale, and the
 * data nodes' pg_stat_statements (track = all, track_planning) counting what postgres_fdw sends.
 * Measured, on the access node:
 *
 *   k shards      `max(usage_user)` over a UNION ALL of k shards' foreign tables (what the
 *                 rewriter's per-shard aggregates are): client time for k = 1 … all; the slope is
 *                 the cost of one more shard asked
 *   statements    per query, each remote statement postgres_fdw sent (START TRANSACTION, DECLARE,
 *                 FETCH, CLOSE, COMMIT, …): calls, data-node planning and execution time
 *   access node   EXPLAIN ANALYZE's planning and execution time, against the client's
 *   round trip    a bare `SELECT 1` from this process to a data node (loopback, node-pg)
 *   new session   the first query of a new access-node session (postgres_fdw connects to every
 *                 shard's server) against the second
 *
 * Options: --shards N (default 4), --runs N (default 200), --data-setting name=value (the FDW
 * service role's setting on the data nodes, as `npm run bench` takes it), --system.
 * Writes bench/results/shard-cost[-<label>].{json,md}.
 */
import { parseArgs } from 'node:util';
import type pg from 'pg';
import { metadataFromLayout } from '../src/rewrite/metadata.js';
import { rewriteSql } from '../src/rewrite/rewrite.js';
import { quoteIdent, quoteLiteral, quoteQualified } from '../src/sql/quote.js';
import { SYSTEM_BIN_DIR, withBenchCluster } from './lib/cluster.js';
import { machineInfo } from './lib/machine.js';
import { closeQuietly, connect } from './lib/pg.js';
import { writeResults } from './lib/results.js';
import { median } from './lib/stats.js';
import { cpuRows, type DataShape } from './tsbs/generate.js';
import { copyRows } from './tsbs/load.js';
import { createDistributedHypertable, DISTRIBUTED } from './tsbs/setup.js';

interface StatementCost {
  readonly kind: string;
  /** Calls per query run. */
  readonly callsPerQuery: number;
  /** Data-node time per call, ms. */
  readonly planMs: number;
  readonly execMs: number;
}

interface QueryCost {
  readonly name: string;
  readonly shardsAsked: number;
  readonly clientMs: number;
  readonly accessPlanningMs: number;
  readonly accessExecutionMs: number;
  readonly statements: readonly StatementCost[];
  /** Sum over statements of (plan + exec) × calls, per query run, ms, all data nodes. */
  readonly dataNodeMs: number;
}

const { values } = parseArgs({
  options: {
    shards: { type: 'string', default: '4' },
    runs: { type: 'string', default: '200' },
    hosts: { type: 'string', default: '10' },
    hours: { type: 'string', default: '6' },
    'data-setting': { type: 'string', multiple: true },
    label: { type: 'string' },
    system: { type: 'boolean', default: false },
  },
});
const SHARDS = Number(values.shards);
const RUNS = Number(values.runs);
const HOSTS = Number(values.hosts);
const HOURS = Number(values.hours);
const settings = (values['data-setting'] ?? []).map((s) => [s.slice(0, s.indexOf('=')), s.slice(s.indexOf('=') + 1)] as const);
const step = (m: string): void => void process.stderr.write(`[${new Date().toISOString().slice(11, 19)}] ${m}\n`);

function kindOf(query: string): string {
  const q = query.trim().replace(/\s+/g, ' ');
  const m = /^(START TRANSACTION|COMMIT TRANSACTION|ABORT TRANSACTION|COMMIT|DECLARE|FETCH|CLOSE|SET|SELECT|ANALYZE|EXPLAIN)\b/i.exec(q);
  if (m === null) return q.slice(0, 40);
  const k = m[1]!.toUpperCase();
  return k;
}

let serviceRole = '';

async function statementsOn(clients: readonly pg.Client[]): Promise<Map<string, { calls: number; plan: number; exec: number }>> {
  const byKind = new Map<string, { calls: number; plan: number; exec: number }>();
  for (const c of clients) {
    const { rows } = await c.query<{ query: string; calls: string; plan: number; exec: number; toplevel: boolean }>(
      `SELECT s.query, s.calls, s.total_plan_time AS plan, s.total_exec_time AS exec, s.toplevel FROM pg_stat_statements s
       JOIN pg_roles r ON r.oid = s.userid WHERE r.rolname = $1`,
      [serviceRole],
    );
    for (const r of rows) {
      // A cursor's query is counted again as a nested statement (its planning, then its run in FETCH).
      const k = r.toplevel ? kindOf(r.query) : `${kindOf(r.query)}: the cursor's query (nested; inside the statements above)`;
      const e = byKind.get(k) ?? { calls: 0, plan: 0, exec: 0 };
      byKind.set(k, { calls: e.calls + Number(r.calls), plan: e.plan + r.plan, exec: e.exec + r.exec });
    }
  }
  return byKind;
}

async function measure(access: pg.Client, dataClients: readonly pg.Client[], name: string, sql: string, shardsAsked: number): Promise<QueryCost> {
  for (let i = 0; i < 20; i += 1) await access.query(sql);
  await Promise.all(dataClients.map((c) => c.query('SELECT pg_stat_statements_reset()')));
  const times: number[] = [];
  for (let i = 0; i < RUNS; i += 1) {
    const t0 = performance.now();
    await access.query(sql);
    times.push(performance.now() - t0);
  }
  const stats = await statementsOn(dataClients);
  const planning: number[] = [];
  const execution: number[] = [];
  for (let i = 0; i < Math.min(RUNS, 50); i += 1) {
    const { rows } = await access.query<{ 'QUERY PLAN': { 'Planning Time': number; 'Execution Time': number }[] }>(`EXPLAIN (ANALYZE, SUMMARY, FORMAT JSON) ${sql}`);
    const plan = rows[0]?.['QUERY PLAN'][0];
    planning.push(plan?.['Planning Time'] ?? Number.NaN);
    execution.push(plan?.['Execution Time'] ?? Number.NaN);
  }
  const statements = [...stats.entries()]
    .filter(([k]) => k !== 'SELECT pg_stat_statements_reset')
    .map(([kind, s]) => ({ kind, callsPerQuery: s.calls / RUNS, planMs: s.plan / s.calls, execMs: s.exec / s.calls }))
    .sort((a, b) => b.callsPerQuery * (b.planMs + b.execMs) - a.callsPerQuery * (a.planMs + a.execMs));
  // The nested cursor query's time is inside DECLARE's and FETCH's: not added twice.
  const dataNodeMs = statements.filter((s) => !s.kind.includes('(nested')).reduce((sum, s) => sum + s.callsPerQuery * (s.planMs + s.execMs), 0);
  return { name, shardsAsked, clientMs: median(times), accessPlanningMs: median(planning), accessExecutionMs: median(execution), statements, dataNodeMs };
}

async function main(): Promise<void> {
  const report = await withBenchCluster(
    {
      dataNodes: 2,
      ...(values.system ? { postgres: { kind: 'system' as const, binDir: SYSTEM_BIN_DIR } } : {}),
      settings: { shared_preload_libraries: 'pg_stat_statements', 'pg_stat_statements.track': 'all', 'pg_stat_statements.track_planning': 'on', 'pg_stat_statements.track_utility': 'on' },
      handleSignals: true,
      onStep: step,
    },
    async (cluster, workDir) => {
      const topology = await createDistributedHypertable(cluster, workDir, { hours: HOURS, shards: SHARDS });
      serviceRole = topology.layout.serviceRole;
      const access = await connect(cluster.accessNode.url);
      const dataClients = await Promise.all(cluster.dataNodes.map((n) => connect(n.url)));
      try {
        await access.query(`SET TimeZone = 'UTC'`);
        for (const c of dataClients) {
          await c.query('CREATE EXTENSION IF NOT EXISTS pg_stat_statements');
          const database = (await c.query<{ db: string }>('SELECT current_database() AS db')).rows[0]?.db ?? '';
          for (const [k, v] of settings) {
            await c.query(`ALTER ROLE ${quoteIdent(topology.layout.serviceRole)} IN DATABASE ${quoteIdent(database)} ${v === 'default' ? `RESET ${quoteIdent(k)}` : `SET ${quoteIdent(k)} = ${quoteLiteral(v)}`}`);
          }
        }
        const stepMs = 10_000;
        const endMs = Math.floor(Date.now() / stepMs) * stepMs;
        const shape: DataShape = { hosts: HOSTS, startMs: endMs - HOURS * 3_600_000, endMs, intervalSeconds: 10, seed: 1 };
        step('loading');
        await copyRows(access, DISTRIBUTED.cpu, cpuRows(shape));
        await Promise.all(dataClients.map((c) => c.query('VACUUM ANALYZE')));
        await access.query(`ANALYZE ${DISTRIBUTED.cpu}`);

        // A bare round trip from here to a data node.
        const rtt: number[] = [];
        for (let i = 0; i < RUNS; i += 1) {
          const t0 = performance.now();
          await dataClients[0]!.query('SELECT 1');
          rtt.push(performance.now() - t0);
        }

        const shards = topology.layout.hypertables[0]!.shards;
        const union = (k: number, inner: (table: string) => string): string =>
          shards
            .slice(0, k)
            .map((s) => inner(quoteQualified(s.table.schema, s.table.name)))
            .join(' UNION ALL ');
        // The rewriter's per-shard arm: the empty CTE keeps the access node's min/max optimization
        // (an ORDER BY … LIMIT 1 whose LIMIT postgres_fdw does not send) from replacing the pushed aggregate.
        const maxOver = (k: number): string => `SELECT max(m) FROM (${union(k, (t) => `(WITH _hs_whole AS (SELECT) SELECT max(usage_user) AS m FROM ${t})`)}) s`;
        const queries: QueryCost[] = [];
        const ks = [...new Set([1, 2, 3, 4, 8, 16, 32, 64].filter((k) => k <= shards.length).concat(shards.length))].sort((a, b) => a - b);
        for (const k of ks) {
          step(`max over ${k} shard${k === 1 ? '' : 's'}`);
          queries.push(await measure(access, dataClients, `max(usage_user), ${k} shard${k === 1 ? '' : 's'}`, maxOver(k), k));
        }
        step('the rewriter\'s whole-table max (with its guard arm)');
        const rewritten = rewriteSql(`SELECT max(usage_user) FROM ${DISTRIBUTED.cpu}`, metadataFromLayout(topology.layout), { timeZone: 'UTC' }).sql;
        queries.push(await measure(access, dataClients, 'max(usage_user) as rewritten, all shards', rewritten, shards.length));
        step('whole-shard GROUP BY tags_id (double-groupby shape)');
        queries.push(
          await measure(
            access,
            dataClients,
            `GROUP BY tags_id, hour, all shards`,
            `SELECT * FROM (${union(shards.length, (t) => `SELECT tags_id, date_bin('1 hour', time, TIMESTAMPTZ '2000-01-01 00:00:00+00') AS hour, avg(usage_user) AS a FROM ${t} GROUP BY 1, 2`)}) s`,
            shards.length,
          ),
        );

        // A new access-node session: postgres_fdw opens a connection to each shard's server on first use.
        step('new sessions');
        const first: number[] = [];
        const second: number[] = [];
        const sql = maxOver(shards.length);
        for (let i = 0; i < 20; i += 1) {
          const session = await connect(cluster.accessNode.url);
          try {
            let t0 = performance.now();
            await session.query(sql);
            first.push(performance.now() - t0);
            t0 = performance.now();
            await session.query(sql);
            second.push(performance.now() - t0);
          } finally {
            await closeQuietly([session]);
          }
        }
        const version = (await access.query<{ v: string }>(`SELECT current_setting('server_version') AS v`)).rows[0]?.v ?? '?';
        return {
          generatedAt: new Date().toISOString(),
          machine: machineInfo(),
          postgres: version,
          shards: shards.length,
          dataNodes: cluster.dataNodes.length,
          rows: HOSTS * HOURS * 360,
          runs: RUNS,
          dataRoleSettings: Object.fromEntries(settings),
          roundTripMs: median(rtt),
          newSession: { firstMs: median(first), secondMs: median(second) },
          queries,
        };
      } finally {
        await closeQuietly([access, ...dataClients]);
      }
    },
  );
  const f = (n: number): string => (n < 0.1 ? n.toFixed(3) : n.toFixed(2));
  const md = [
    `# What a shard asked costs (PostgreSQL ${report.postgres}, ${report.dataNodes} data nodes, ${report.shards} shards, ${report.rows.toLocaleString('en-US')} rows)`,
    '',
    `Generated ${report.generatedAt} by bench/shardCost.ts; ${report.runs} runs per query (medians); load average ${report.machine.loadAverage1m}. Data-node service role settings: ${JSON.stringify(report.dataRoleSettings)}.`,
    `Round trip to a data node (\`SELECT 1\` from node-pg): ${f(report.roundTripMs)} ms. A new access-node session's first query: ${f(report.newSession.firstMs)} ms, its second: ${f(report.newSession.secondMs)} ms.`,
    '',
    '| query | shards asked | client ms | access planning ms | access execution ms | data-node ms (all statements) |',
    '|---|---:|---:|---:|---:|---:|',
    ...report.queries.map((q) => `| ${q.name} | ${q.shardsAsked} | ${f(q.clientMs)} | ${f(q.accessPlanningMs)} | ${f(q.accessExecutionMs)} | ${f(q.dataNodeMs)} |`),
    '',
    'Remote statements per query (all data nodes; time per call on the data node):',
    '',
    ...report.queries.flatMap((q) => [
      `**${q.name}**`,
      '',
      '| statement | calls per query | plan ms per call | exec ms per call |',
      '|---|---:|---:|---:|',
      ...q.statements.map((s) => `| ${s.kind} | ${s.callsPerQuery.toFixed(2)} | ${f(s.planMs)} | ${f(s.execMs)} |`),
      '',
    ]),
  ].join('\n');
  const base = await writeResults(`shard-cost${values.label === undefined ? '' : `-${values.label}`}`, report, md);
  process.stdout.write(`${md}\nwrote ${base}.json and .md\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exitCode = 1;
});
