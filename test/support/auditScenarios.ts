/**
 * For every audit finding code: a query that triggers it on a real cluster and a rewritten query
 * that clears it. Used live by the integration suite and by scripts/capture-audit-fixtures.ts,
 * which stores the plans as fixtures for the unit tests (never hand-written).
 */
import { join } from 'node:path';
import pg from 'pg';
import { planFunctionNames } from '../../src/audit/analyze.js';
import { auditQuery, type AuditedQuery } from '../../src/audit/audit.js';
import { readCatalog, type AuditCatalog } from '../../src/audit/catalog.js';
import { WINDOW_FIX, type FindingCode } from '../../src/audit/findings.js';
import type { ExplainResult } from '../../src/audit/plan.js';
import { generateMigrations } from '../../src/migrations/files.js';
import { apply } from '../../src/nodes/apply.js';
import { clientConfig } from '../../src/nodes/connect.js';
import { planLayout, type ClusterLayout } from '../../src/plan/layout.js';
import { loadSpec } from '../../src/spec/load.js';
import type { TestCluster } from './clusters.js';
import { writeExampleSpec, writeSecrets } from './spec.js';

export interface QueryCase {
  /** Session statements run first (and undone by `DISCARD ALL` afterwards). */
  readonly setup?: readonly string[];
  readonly sql: string;
  readonly analyze?: boolean;
}

export interface AuditScenario {
  readonly name: string;
  readonly code: FindingCode;
  readonly trigger: QueryCase;
  readonly cleared: QueryCase;
  /** The finding's fix, when not its code's own. */
  readonly fix?: string;
}

/** Facts about the loaded data the scenarios need (a bound, the shard of a device). */
export interface ScenarioFacts {
  readonly recent: string;
  readonly shardOf42: string;
}

export function auditScenarios(facts: ScenarioFacts): AuditScenario[] {
  return [
    {
      name: 'now-window',
      code: 'STABLE_EXPRESSION_LOCAL',
      trigger: { sql: `SELECT device_id, count(*) FROM metrics WHERE time > now() - interval '1 hour' GROUP BY device_id` },
      cleared: { sql: `SELECT device_id, count(*) FROM metrics WHERE time > '${facts.recent}' GROUP BY device_id` },
    },
    {
      name: 'date-trunc-bucket',
      code: 'NON_SHIPPABLE_FUNCTION',
      trigger: { sql: `SELECT device_id, date_trunc('hour', time) AS h, max(cpu) FROM metrics GROUP BY 1, 2` },
      cleared: { sql: `SELECT device_id, date_bin('1 hour', time, '2000-01-01') AS h, max(cpu) FROM metrics GROUP BY 1, 2` },
    },
    {
      // The field notes' bind-parameter case: the bound is shipped, `- interval` is not.
      name: 'bound-minus-interval',
      code: 'NON_SHIPPABLE_FUNCTION',
      trigger: { sql: `SELECT device_id, count(*) FROM metrics WHERE time > '${facts.recent}'::timestamptz - interval '1 hour' GROUP BY device_id` },
      cleared: { sql: `SELECT device_id, count(*) FROM metrics WHERE time > '${facts.recent}'::timestamptz GROUP BY device_id` },
    },
    {
      name: 'text-constant-bucket',
      code: 'COLLATION_NOT_SHIPPABLE',
      trigger: { sql: `SELECT device_id, date_trunc('hour', time AT TIME ZONE 'UTC') AS h, max(cpu) FROM metrics GROUP BY 1, 2` },
      cleared: { sql: `SELECT device_id, date_bin('1 hour', time, '2000-01-01') AS h, max(cpu) FROM metrics GROUP BY 1, 2` },
    },
    {
      name: 'group-by-time-only',
      code: 'PARTIAL_AGGREGATE',
      trigger: { sql: `SELECT date_bin('1 hour', time, '2000-01-01') AS h, max(cpu) FROM metrics GROUP BY 1` },
      cleared: {
        sql: `SELECT h, max(m) FROM (${[0, 1, 2, 3]
          .map((s) => `SELECT date_bin('1 hour', time, '2000-01-01') AS h, max(cpu) AS m FROM _hypershard.metrics_s${s} GROUP BY 1`)
          .join(' UNION ALL ')}) per_shard GROUP BY h`,
      },
    },
    {
      name: 'volatile-aggregate-argument',
      code: 'AGGREGATE_NOT_PUSHED',
      trigger: { sql: `SELECT device_id, max(cpu * (random() <= 1)::int) FROM metrics GROUP BY device_id` },
      cleared: { sql: `SELECT device_id, max(cpu) FROM metrics GROUP BY device_id` },
    },
    {
      name: 'pruned-to-one-shard',
      code: 'SINGLE_SHARD_AGGREGATE_NOT_PUSHED',
      trigger: { sql: `SELECT date_bin('1 hour', time, '2000-01-01') AS h, max(cpu) FROM metrics WHERE device_id = 42 GROUP BY 1` },
      cleared: { sql: `SELECT date_bin('1 hour', time, '2000-01-01') AS h, max(cpu) FROM ${facts.shardOf42} WHERE device_id = 42 GROUP BY 1` },
    },
    {
      name: 'latest-rows',
      code: 'LIMIT_NOT_PUSHED',
      trigger: { sql: `SELECT time, device_id, cpu FROM metrics ORDER BY time DESC LIMIT 5` },
      cleared: {
        sql: `SELECT * FROM (${[0, 1, 2, 3]
          .map((s) => `(SELECT time, device_id, cpu FROM _hypershard.metrics_s${s} ORDER BY time DESC LIMIT 5)`)
          .join(' UNION ALL ')}) per_shard ORDER BY time DESC LIMIT 5`,
      },
    },
    {
      name: 'lastpoint-distinct-on',
      code: 'DISTINCT_NOT_PUSHED',
      trigger: { sql: `SELECT DISTINCT ON (device_id) device_id, time FROM metrics ORDER BY device_id, time DESC` },
      cleared: { sql: `SELECT device_id, max(time) AS time FROM metrics GROUP BY device_id` },
    },
    {
      name: 'join-with-local-table',
      code: 'LOCAL_JOIN',
      trigger: { sql: `SELECT m.device_id, count(*) FROM metrics m JOIN audit_devices d ON d.id = m.device_id GROUP BY 1` },
      cleared: { sql: `SELECT device_id, count(*) FROM metrics WHERE device_id IN (1, 2, 3) GROUP BY 1` },
    },
    {
      name: 'window-over-rows',
      code: 'LOCAL_ROW_WORK',
      trigger: { sql: `SELECT device_id, time, cpu - lag(cpu) OVER (PARTITION BY device_id ORDER BY time) FROM metrics` },
      cleared: { sql: `SELECT device_id, max(cpu) - min(cpu) FROM metrics GROUP BY device_id` },
      fix: WINDOW_FIX,
    },
    {
      name: 'shards-on-one-server',
      code: 'SHARED_CONNECTION',
      trigger: { sql: `SELECT device_id, count(*) FROM audit_shared GROUP BY device_id` },
      cleared: { sql: `SELECT device_id, count(*) FROM metrics GROUP BY device_id` },
    },
    {
      name: 'async-off',
      code: 'NOT_ASYNC',
      trigger: { setup: ['SET enable_async_append = off'], sql: `SELECT device_id, count(*) FROM metrics GROUP BY device_id` },
      cleared: { sql: `SELECT device_id, count(*) FROM metrics GROUP BY device_id` },
    },
    {
      name: 'never-analyzed',
      code: 'NO_STATISTICS',
      trigger: { sql: `SELECT device_id, count(*) FROM audit_unanalyzed GROUP BY device_id` },
      cleared: { setup: ['ANALYZE audit_unanalyzed'], sql: `SELECT device_id, count(*) FROM audit_unanalyzed GROUP BY device_id` },
    },
    {
      name: 'estimate-only',
      code: 'ESTIMATED_ROWS',
      trigger: { sql: `SELECT device_id, count(*) FROM metrics GROUP BY device_id` },
      cleared: { sql: `SELECT device_id, count(*) FROM metrics GROUP BY device_id`, analyze: true },
    },
  ];
}

/**
 * Loads the example hypertable (after `apply`) and the extra objects the scenarios need:
 * a local table to join, two foreign partitions on one server, and a never-analyzed one.
 */
export async function prepareAuditData(client: pg.Client): Promise<ScenarioFacts> {
  await client.query(`INSERT INTO metrics
    SELECT t, d, (d * 7 + extract(epoch FROM t)::bigint / 300) % 100, 50, 40 + d % 10
    FROM generate_series(date_trunc('hour', now()) - interval '1 day', date_trunc('hour', now()) - interval '5 minutes', interval '5 minutes') t,
         generate_series(1, 60) d`);
  await client.query('ANALYZE metrics');
  await client.query('CREATE TABLE audit_devices (id int PRIMARY KEY, name text); INSERT INTO audit_devices SELECT d, $$device $$ || d FROM generate_series(1, 5) d; ANALYZE audit_devices');
  // Partitions as [server, shard table on that server's data node].
  for (const [table, partitions] of [
    ['audit_shared', [['hypershard_dn1_0', 'metrics_s0'], ['hypershard_dn1_0', 'metrics_s2']]],
    ['audit_unanalyzed', [['hypershard_dn1_0', 'metrics_s0'], ['hypershard_dn2_1', 'metrics_s1']]],
  ] as const) {
    await client.query(`CREATE TABLE ${table} (LIKE metrics) PARTITION BY HASH (device_id)`);
    for (const [i, [server, remote]] of partitions.entries()) {
      await client.query(
        `CREATE FOREIGN TABLE ${table}_${i} PARTITION OF ${table} FOR VALUES WITH (MODULUS 2, REMAINDER ${i}) SERVER ${server} OPTIONS (schema_name '_hypershard', table_name '${remote}')`,
      );
    }
  }
  await client.query('ANALYZE audit_shared');
  const recent = (await client.query<{ t: string }>(`SELECT (date_trunc('hour', now()) - interval '1 hour')::text AS t`)).rows[0]!.t;
  const shard = (await client.query<{ t: string }>(`SELECT tableoid::regclass::text AS t FROM metrics WHERE device_id = 42 LIMIT 1`)).rows[0]!.t;
  return { recent, shardOf42: shard };
}

export interface CapturedPlan {
  readonly sql: string;
  readonly plan: ExplainResult;
  readonly catalog: SerializedCatalog;
}

export interface SerializedCatalog {
  readonly serverVersionNum: number;
  readonly asyncAppend: boolean;
  readonly foreignTables: [string, AuditCatalog['foreignTables'] extends ReadonlyMap<string, infer V> ? V : never][];
  readonly asyncServers: [string, boolean][];
  readonly volatility: [string, 'i' | 's' | 'v'][];
}

export function serializeCatalog(catalog: AuditCatalog): SerializedCatalog {
  return {
    serverVersionNum: catalog.serverVersionNum,
    asyncAppend: catalog.asyncAppend,
    foreignTables: [...catalog.foreignTables].sort(([a], [b]) => (a < b ? -1 : 1)),
    asyncServers: [...catalog.asyncServers].sort(([a], [b]) => (a < b ? -1 : 1)),
    volatility: [...catalog.volatility].sort(([a], [b]) => (a < b ? -1 : 1)),
  };
}

export function deserializeCatalog(catalog: SerializedCatalog): AuditCatalog {
  return {
    serverVersionNum: catalog.serverVersionNum,
    asyncAppend: catalog.asyncAppend,
    foreignTables: new Map(catalog.foreignTables),
    asyncServers: new Map(catalog.asyncServers),
    volatility: new Map(catalog.volatility),
  };
}

/** Runs one case the way `hypershard audit` does and keeps what the analyzer read. */
export async function captureCase(client: pg.Client, c: QueryCase, layout: ClusterLayout): Promise<{ audited: AuditedQuery; captured: CapturedPlan }> {
  for (const statement of c.setup ?? []) await client.query(statement);
  try {
    const audited = await auditQuery(client, c.sql, { analyze: c.analyze === true, layout });
    const catalog = await readCatalog(client, layout, planFunctionNames(audited.plan));
    return { audited, captured: { sql: c.sql, plan: audited.plan, catalog: serializeCatalog(catalog) } };
  } finally {
    await client.query('RESET ALL');
  }
}

/** Applies the example spec to a test cluster and loads the scenario data. */
export async function auditCluster(cluster: TestCluster): Promise<{ client: pg.Client; layout: ClusterLayout; facts: ScenarioFacts }> {
  const dir = join(cluster.workDir, 'audit');
  const specFile = await writeExampleSpec(cluster, dir);
  await writeSecrets(dir);
  const { spec, file } = await loadSpec(specFile);
  await generateMigrations(spec, file);
  const result = await apply(spec, file);
  if (!result.ok) throw new Error(`apply failed: ${JSON.stringify(result.nodes)}`);
  const client = new pg.Client(clientConfig(cluster.accessNode.url, process.env.HYPERSHARD_TEST_CONTAINER_PASSWORD));
  await client.connect();
  return { client, layout: planLayout(spec), facts: await prepareAuditData(client) };
}
