/**
 * Layout benchmark: why hypershard shards space-first.
 *
 * Loads the same TSBS-like `cpu` rows three times on a throwaway dev cluster (1 access node,
 * 2 data nodes) and times the same queries against each copy, interleaved, in one run:
 *
 *   single       plain table on the access node                         single.cpu
 *   time-first   RANGE(time) -> HASH(tags_id) -> foreign tables         tf.cpu   (TimescaleDB's shape)
 *   space-first  HASH(tags_id) -> one foreign table per shard,          sf.cpu   (hypershard's shape)
 *                which on its data node is RANGE(time) with daily chunks
 *
 * Besides wall time it records, from the plans, whether postgres_fdw pushed the aggregate to the
 * data nodes and how many rows the foreign scans shipped to the access node. See
 * /work/shared/notes/field-notes.md §1 and §3 for the claims this re-measures.
 *
 * Run (no TypeScript runner is a direct dependency; jiti comes with vitest/node-pg-migrate):
 *   npx jiti bench/layout.ts [--system] [--full] [--hosts N] [--hours N] [--runs N]
 * Writes bench/results/layout-pg<major>.json and .md.
 */
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import type pg from 'pg';
import type { DevCluster, DevNode } from '../src/dev/cluster.js';
import { SYSTEM_BIN_DIR, withBenchCluster } from './lib/cluster.js';
import { machineInfo, type MachineInfo } from './lib/machine.js';
import { connect as connectUrl } from './lib/pg.js';
import { writeResults } from './lib/results.js';
import { median } from './lib/stats.js';

// ---------------------------------------------------------------------------------------------
// configuration

interface Options {
  system: boolean;
  hosts: number;
  hours: number;
  runs: number;
}

const SHARDS = 4;
const INTERVAL_SECONDS = 10;
const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;
/**
 * The data ends at 06:00 UTC so that the "last 12 h" window (18:00 -> 06:00) straddles midnight:
 * time-first then has to touch two time slices and space-first two local daily chunks, as a
 * real dashboard query over a recent window would.
 */
const DATA_END = new Date('2024-01-08T06:00:00Z');

/** TSBS `cpu` measurement columns. */
const METRICS = [
  'usage_user', 'usage_system', 'usage_idle', 'usage_nice', 'usage_iowait',
  'usage_irq', 'usage_softirq', 'usage_steal', 'usage_guest', 'usage_guest_nice',
] as const;

const TARGETS = ['single', 'timeFirst', 'spaceFirst'] as const;
type Target = (typeof TARGETS)[number];
const DISTRIBUTED = ['timeFirst', 'spaceFirst'] as const;
type Distributed = (typeof DISTRIBUTED)[number];
const TABLE: Record<Target, string> = { single: 'single.cpu', timeFirst: 'tf.cpu', spaceFirst: 'sf.cpu' };
const LABEL: Record<Target, string> = { single: 'single', timeFirst: 'time-first', spaceFirst: 'space-first' };

function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      system: { type: 'boolean', default: false },
      full: { type: 'boolean', default: false },
      hosts: { type: 'string' },
      hours: { type: 'string' },
      runs: { type: 'string' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(
      'usage: npx jiti bench/layout.ts [--system] [--full] [--hosts N] [--hours N] [--runs N]\n' +
        `  --system   Debian's PostgreSQL in ${SYSTEM_BIN_DIR} instead of the embedded one\n` +
        '  --full     72 h of data instead of 24 h (ignored when --hours is given)\n' +
        '  --hosts    number of hosts (default 100)\n' +
        '  --hours    hours of data, at least 12 (default 24)\n' +
        '  --runs     timed runs per query and layout, at least 5 (default 5)\n',
    );
    process.exit(0);
  }
  return {
    system: values.system,
    hosts: positiveInt('hosts', values.hosts, 100, 1),
    hours: positiveInt('hours', values.hours, values.full ? 72 : 24, 12),
    runs: positiveInt('runs', values.runs, 5, 5),
  };
}

function positiveInt(name: string, raw: string | undefined, fallback: number, min: number): number {
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min) throw new Error(`--${name} must be an integer >= ${min}, got '${raw}'`);
  return n;
}

// ---------------------------------------------------------------------------------------------
// data layout

interface Slice {
  readonly index: number;
  readonly from: Date;
  readonly to: Date;
}

interface Layout {
  readonly start: Date;
  readonly end: Date;
  /** Midnight-aligned days: time-first's time slices and space-first's local chunks. */
  readonly days: readonly Slice[];
  /** Hosts per shard, as the access node's HASH(tags_id) partitioning assigns them. */
  readonly shardHosts: readonly (readonly number[])[];
  /** Shard i lives on data node i % 2, so each data node holds two shards. */
  readonly shardNode: (shard: number) => number;
}

function dailySlices(start: Date, end: Date): Slice[] {
  const days: Slice[] = [];
  for (let t = Math.floor(start.getTime() / DAY_MS) * DAY_MS, i = 0; t < end.getTime(); t += DAY_MS, i++) {
    days.push({ index: i, from: new Date(t), to: new Date(t + DAY_MS) });
  }
  return days;
}

function ts(d: Date): string {
  return `'${d.toISOString()}'`;
}

const COLUMNS_DDL = ['time timestamptz NOT NULL', 'tags_id integer NOT NULL', ...METRICS.map((m) => `${m} double precision`)].join(', ');

/**
 * Deterministic metric values in [0, 100): hashint8extended is what hash partitioning is built on,
 * so it is identical on every PostgreSQL version and node. The seed mixes host and column.
 */
const METRIC_EXPRS = METRICS.map(
  (m, i) => `abs(hashint8extended(extract(epoch FROM t)::bigint, h * 16 + ${i}) % 10000) / 100.0 AS ${m}`,
).join(', ');

/** Rows for `hosts` in [from, to), every 10 s, inserted in time order as an ingest would. */
async function insertRows(client: pg.Client, table: string, hosts: readonly number[], from: Date, to: Date): Promise<void> {
  if (hosts.length === 0 || from >= to) return;
  await client.query(
    `INSERT INTO ${table} (time, tags_id, ${METRICS.join(', ')})
     SELECT t, h, ${METRIC_EXPRS}
     FROM generate_series($1::timestamptz, $2::timestamptz - interval '${INTERVAL_SECONDS} seconds', interval '${INTERVAL_SECONDS} seconds') AS t
     CROSS JOIN unnest($3::int[]) AS h`,
    [from.toISOString(), to.toISOString(), hosts],
  );
}

function clip(slice: Slice, layout: Layout): { from: Date; to: Date } {
  return {
    from: new Date(Math.max(slice.from.getTime(), layout.start.getTime())),
    to: new Date(Math.min(slice.to.getTime(), layout.end.getTime())),
  };
}

/** Plain table on the access node, the baseline every ratio is taken against. */
async function setupSingle(access: pg.Client, opts: Options, layout: Layout): Promise<void> {
  await access.query(`CREATE SCHEMA single; CREATE TABLE single.cpu (${COLUMNS_DDL})`);
  const allHosts = Array.from({ length: opts.hosts }, (_, i) => i + 1);
  await insertRows(access, 'single.cpu', allHosts, layout.start, layout.end);
  await access.query('CREATE INDEX ON single.cpu (tags_id, time DESC)');
  // VACUUM as well: sets hint bits and the visibility map now, so autovacuum does not wake up
  // mid-measurement and every copy gets the same index-only-scan chances.
  await access.query('VACUUM ANALYZE single.cpu');
}

/**
 * The access node's partitioned parents. The hash partitioning is created first because the
 * shard -> hosts assignment is read back from it (satisfies_hash_partition) before loading.
 */
async function setupAccessParents(access: pg.Client, layout: Pick<Layout, 'days'>): Promise<void> {
  const sql = [
    'CREATE SCHEMA tf',
    'CREATE SCHEMA sf',
    `CREATE TABLE sf.cpu (${COLUMNS_DDL}) PARTITION BY HASH (tags_id)`,
    `CREATE TABLE tf.cpu (${COLUMNS_DDL}) PARTITION BY RANGE (time)`,
    ...layout.days.map(
      (d) => `CREATE TABLE tf.cpu_d${d.index} PARTITION OF tf.cpu FOR VALUES FROM (${ts(d.from)}) TO (${ts(d.to)}) PARTITION BY HASH (tags_id)`,
    ),
  ];
  await access.query(sql.join(';\n'));
}

async function readShardHosts(access: pg.Client, hosts: number): Promise<number[][]> {
  const { rows } = await access.query<{ shard: number; hosts: number[] }>(
    `SELECT s AS shard, array_agg(h ORDER BY h) AS hosts
     FROM generate_series(0, $1::int - 1) AS s, generate_series(1, $2::int) AS h
     WHERE satisfies_hash_partition('sf.cpu'::regclass, $1::int, s, h)
     GROUP BY s`,
    [SHARDS, hosts],
  );
  const out: number[][] = Array.from({ length: SHARDS }, () => []);
  for (const r of rows) out[r.shard] = r.hosts;
  return out;
}

/**
 * Both layouts' remote tables for the shards on one data node, loaded directly (not through the
 * access node) so that ingest speed does not enter this benchmark.
 */
async function setupDataNode(client: pg.Client, shards: readonly number[], layout: Layout): Promise<void> {
  await client.query('CREATE SCHEMA tf; CREATE SCHEMA sf');
  for (const s of shards) {
    const hosts = layout.shardHosts[s] ?? [];
    // space-first: the shard is a local RANGE(time) table, so the data node prunes chunks itself.
    await client.query(
      [
        `CREATE TABLE sf.cpu_s${s} (${COLUMNS_DDL}) PARTITION BY RANGE (time)`,
        ...layout.days.map((d) => `CREATE TABLE sf.cpu_s${s}_d${d.index} PARTITION OF sf.cpu_s${s} FOR VALUES FROM (${ts(d.from)}) TO (${ts(d.to)})`),
      ].join(';\n'),
    );
    await insertRows(client, `sf.cpu_s${s}`, hosts, layout.start, layout.end);
    await client.query(`CREATE INDEX ON sf.cpu_s${s} (tags_id, time DESC)`);
    // time-first: one plain table per (day, shard), each a foreign table on the access node.
    for (const d of layout.days) {
      const table = `tf.cpu_d${d.index}_s${s}`;
      const { from, to } = clip(d, layout);
      await client.query(`CREATE TABLE ${table} (${COLUMNS_DDL})`);
      await insertRows(client, table, hosts, from, to);
      await client.query(`CREATE INDEX ON ${table} (tags_id, time DESC)`);
    }
  }
  await client.query('VACUUM ANALYZE');
}

/**
 * One SERVER per shard (two per data node): postgres_fdw opens one connection per user mapping,
 * and foreign scans sharing a connection run one after another even under an async Append.
 * The mapping is for the superuser, which postgres_fdw lets connect without a password (the
 * data nodes trust `postgres` on loopback).
 */
async function setupForeignTables(access: pg.Client, dataNodes: readonly DevNode[], layout: Layout): Promise<void> {
  const sql = ['CREATE EXTENSION postgres_fdw'];
  for (let s = 0; s < SHARDS; s++) {
    const node = dataNodes[layout.shardNode(s)]!;
    sql.push(
      `CREATE SERVER shard_${s} FOREIGN DATA WRAPPER postgres_fdw OPTIONS (` +
        `host '${node.host}', port '${node.port}', dbname '${node.database}', ` +
        `async_capable 'true', fdw_tuple_cost '0.2', fetch_size '10000', batch_size '1000')`,
      `CREATE USER MAPPING FOR postgres SERVER shard_${s} OPTIONS (user 'postgres')`,
      `CREATE FOREIGN TABLE sf.cpu_s${s} PARTITION OF sf.cpu FOR VALUES WITH (MODULUS ${SHARDS}, REMAINDER ${s}) ` +
        `SERVER shard_${s} OPTIONS (schema_name 'sf', table_name 'cpu_s${s}')`,
      ...layout.days.map(
        (d) =>
          `CREATE FOREIGN TABLE tf.cpu_d${d.index}_s${s} PARTITION OF tf.cpu_d${d.index} FOR VALUES WITH (MODULUS ${SHARDS}, REMAINDER ${s}) ` +
          `SERVER shard_${s} OPTIONS (schema_name 'tf', table_name 'cpu_d${d.index}_s${s}')`,
      ),
    );
  }
  await access.query(sql.join(';\n'));
  // Autovacuum never analyzes foreign tables, and pushdown choices depend on their statistics.
  // ANALYZE on a partitioned parent recurses into its (foreign) partitions.
  await access.query('ANALYZE tf.cpu; ANALYZE sf.cpu');
  const { rows } = await access.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.relkind = 'f' AND n.nspname IN ('tf', 'sf') AND c.reltuples < 0`,
  );
  if ((rows[0]?.n ?? 0) > 0) throw new Error(`${rows[0]?.n} foreign tables were not analyzed by ANALYZE on their parents`);
}

/** Same rows everywhere: compares count and sum per copy, read on the nodes that hold them. */
async function verifyCopies(access: pg.Client, dataClients: readonly pg.Client[], rowsExpected: number): Promise<void> {
  const sums = async (client: pg.Client, schema: string): Promise<{ n: number; sum: number }> => {
    const { rows: tables } = await client.query<{ t: string }>(
      `SELECT format('%I.%I', n.nspname, c.relname) AS t FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
       WHERE n.nspname = $1 AND c.relkind = 'r'`,
      [schema],
    );
    if (tables.length === 0) return { n: 0, sum: 0 };
    const union = tables.map((r) => `SELECT count(*) AS n, sum(usage_user) AS s FROM ${r.t}`).join(' UNION ALL ');
    const { rows } = await client.query<{ n: string; s: number | null }>(`SELECT sum(n)::text AS n, sum(s) AS s FROM (${union}) x`);
    return { n: Number(rows[0]?.n ?? 0), sum: rows[0]?.s ?? 0 };
  };
  const add = (a: { n: number; sum: number }, b: { n: number; sum: number }) => ({ n: a.n + b.n, sum: a.sum + b.sum });
  const single = await sums(access, 'single');
  let tf = { n: 0, sum: 0 };
  let sf = { n: 0, sum: 0 };
  for (const c of dataClients) {
    tf = add(tf, await sums(c, 'tf'));
    sf = add(sf, await sums(c, 'sf'));
  }
  for (const [name, copy] of [['single', single], ['time-first', tf], ['space-first', sf]] as const) {
    if (copy.n !== rowsExpected || Math.abs(copy.sum - single.sum) > 1e-6 * Math.abs(single.sum)) {
      throw new Error(`${name} copy differs: ${copy.n} rows, sum ${copy.sum}; expected ${rowsExpected} rows, sum ${single.sum}`);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// queries

interface QueryDef {
  readonly id: string;
  readonly title: string;
  /** What the notes predict for space-first; time-first is expected never to push. */
  readonly expectSpaceFirstPushed: boolean;
  readonly sql: (table: string) => string;
}

/**
 * Bounds are literals on purpose: `now() - interval` is STABLE and would not be shipped at all
 * (field notes §2), which measures a different problem. date_bin with a timestamptz origin is
 * immutable and ships; the origin is spelled in UTC so the session time zone does not matter.
 */
function queries(layout: Layout): QueryDef[] {
  const w12 = `time >= ${ts(new Date(layout.end.getTime() - 12 * HOUR_MS))} AND time < ${ts(layout.end)}`;
  const w1 = `time >= ${ts(new Date(layout.end.getTime() - HOUR_MS))} AND time < ${ts(layout.end)}`;
  const hour = `date_bin('1 hour', time, TIMESTAMPTZ '2000-01-01 00:00:00+00')`;
  return [
    {
      id: 'double-groupby-all',
      title: 'GROUP BY tags_id, hour (12 h, avg)',
      expectSpaceFirstPushed: true,
      sql: (t) => `SELECT tags_id, ${hour} AS hour, avg(usage_user) FROM ${t} WHERE ${w12} GROUP BY 1, 2`,
    },
    {
      id: 'groupby-space',
      title: 'GROUP BY tags_id (12 h, max)',
      expectSpaceFirstPushed: true,
      sql: (t) => `SELECT tags_id, max(usage_user) FROM ${t} WHERE ${w12} GROUP BY 1`,
    },
    {
      id: 'groupby-time',
      title: 'GROUP BY hour, no space (12 h, max)',
      expectSpaceFirstPushed: false,
      sql: (t) => `SELECT ${hour} AS hour, max(usage_user) FROM ${t} WHERE ${w12} GROUP BY 1`,
    },
    {
      id: 'count-1h',
      title: 'count(*) over 1 h',
      expectSpaceFirstPushed: false,
      sql: (t) => `SELECT count(*) FROM ${t} WHERE ${w1}`,
    },
  ];
}

// ---------------------------------------------------------------------------------------------
// measuring

interface PlanNode {
  'Node Type': string;
  'Partial Mode'?: string;
  Strategy?: string;
  Relations?: string;
  'Async Capable'?: boolean;
  'Actual Rows'?: number;
  'Actual Loops'?: number;
  'Remote SQL'?: string;
  Plans?: PlanNode[];
}

interface PlanFacts {
  /** Compact path from the root, e.g. "Finalize HashAggregate > Append ×4 > ...". */
  shape: string;
  foreignScans: number;
  aggregatePushed: boolean;
  /** Sum over Foreign Scan nodes of Actual Rows x Actual Loops (null for the single-node table). */
  rowsShipped: number | null;
  remoteSql: string[];
}

interface QueryResult {
  id: string;
  title: string;
  sql: string;
  medianMs: Record<Target, number>;
  samplesMs: Record<Target, number[]>;
  ratioToSingle: Record<Distributed, number>;
  plans: Record<Target, PlanFacts>;
  sameResult: boolean;
  expectSpaceFirstPushed: boolean;
}

function* walk(node: PlanNode): Generator<PlanNode> {
  yield node;
  for (const child of node.Plans ?? []) yield* walk(child);
}

function rootPlan(raw: unknown): PlanNode {
  const parsed = (typeof raw === 'string' ? JSON.parse(raw) : raw) as { Plan: PlanNode }[];
  const first = parsed[0];
  if (first === undefined) throw new Error('EXPLAIN returned no plan');
  return first.Plan;
}

function nodeLabel(node: PlanNode): string {
  if (node['Node Type'] === 'Aggregate') {
    const kind = node.Strategy === 'Hashed' ? 'HashAggregate' : node.Strategy === 'Sorted' ? 'GroupAggregate' : 'Aggregate';
    return node['Partial Mode'] === undefined || node['Partial Mode'] === 'Simple' ? kind : `${node['Partial Mode']} ${kind}`;
  }
  if (node['Node Type'] === 'Foreign Scan') {
    const pushed = node.Relations?.startsWith('Aggregate on') === true ? ' (Aggregate)' : '';
    return `${node['Async Capable'] === true ? 'Async ' : ''}Foreign Scan${pushed}`;
  }
  return node['Node Type'];
}

/** Follows the first child at each level; "×n" when a node has n children (Append's partitions). */
function planShape(root: PlanNode): string {
  const parts: string[] = [];
  for (let node: PlanNode | undefined = root; node !== undefined; node = node.Plans?.[0]) {
    const kids = node.Plans?.length ?? 0;
    parts.push(nodeLabel(node) + (kids > 1 ? ` ×${kids}` : ''));
  }
  return parts.join(' > ');
}

function planFacts(root: PlanNode, analyzed: PlanNode, distributed: boolean): PlanFacts {
  const scans = [...walk(root)].filter((n) => n['Node Type'] === 'Foreign Scan');
  const analyzedScans = [...walk(analyzed)].filter((n) => n['Node Type'] === 'Foreign Scan');
  // PG 18 reports Actual Rows as a per-loop average with decimals; round the product.
  const shipped = analyzedScans.reduce((sum, n) => sum + Math.round((n['Actual Rows'] ?? 0) * (n['Actual Loops'] ?? 0)), 0);
  return {
    shape: planShape(root),
    foreignScans: scans.length,
    aggregatePushed: scans.some((n) => n.Relations?.startsWith('Aggregate on') === true),
    rowsShipped: distributed ? shipped : null,
    remoteSql: scans.map((n) => n['Remote SQL'] ?? ''),
  };
}

async function explain(client: pg.Client, sql: string, distributed: boolean): Promise<PlanFacts> {
  const plain = await client.query<{ 'QUERY PLAN': unknown }>(`EXPLAIN (VERBOSE, FORMAT JSON) ${sql}`);
  const analyzed = await client.query<{ 'QUERY PLAN': unknown }>(`EXPLAIN (ANALYZE, VERBOSE, FORMAT JSON) ${sql}`);
  return planFacts(rootPlan(plain.rows[0]?.['QUERY PLAN']), rootPlan(analyzed.rows[0]?.['QUERY PLAN']), distributed);
}

/** Wall time as a client sees it, including transferring the result. */
async function timeQuery(client: pg.Client, sql: string): Promise<{ ms: number; rows: pg.QueryResultRow[] }> {
  const t0 = performance.now();
  const { rows } = await client.query<pg.QueryResultRow>(sql);
  return { ms: performance.now() - t0, rows };
}

/** Order-independent fingerprint of a result; floats rounded because aggregation order differs. */
function fingerprint(rows: pg.QueryResultRow[]): string {
  const norm = (v: unknown): string =>
    v instanceof Date ? v.toISOString() : typeof v === 'number' ? v.toFixed(6) : String(v);
  return rows
    .map((r) => Object.values(r).map(norm).join('|'))
    .sort()
    .join('\n');
}

/**
 * One warm-up round (also opens the access node's connections to the shards), then `runs`
 * rounds. Queries and layouts are interleaved, and the layout order rotates every round, so that
 * drift on the machine (caches, other load) spreads over all three instead of favouring one.
 */
async function measure(access: pg.Client, defs: readonly QueryDef[], runs: number): Promise<QueryResult[]> {
  const samples = defs.map(() => ({ single: [] as number[], timeFirst: [] as number[], spaceFirst: [] as number[] }));
  const prints = defs.map(() => ({} as Partial<Record<Target, string>>));
  for (let round = 0; round <= runs; round++) {
    const order = TARGETS.map((_, i) => TARGETS[(i + round) % TARGETS.length]!);
    for (const [qi, def] of defs.entries()) {
      for (const target of order) {
        const { ms, rows } = await timeQuery(access, def.sql(TABLE[target]));
        if (round === 0) prints[qi]![target] = fingerprint(rows);
        else samples[qi]![target].push(ms);
      }
    }
  }
  const results: QueryResult[] = [];
  for (const [qi, def] of defs.entries()) {
    const s = samples[qi]!;
    const med = { single: median(s.single), timeFirst: median(s.timeFirst), spaceFirst: median(s.spaceFirst) };
    const p = prints[qi]!;
    results.push({
      id: def.id,
      title: def.title,
      sql: def.sql('<table>'),
      medianMs: med,
      samplesMs: s,
      ratioToSingle: { timeFirst: med.timeFirst / med.single, spaceFirst: med.spaceFirst / med.single },
      plans: {
        single: await explain(access, def.sql(TABLE.single), false),
        timeFirst: await explain(access, def.sql(TABLE.timeFirst), true),
        spaceFirst: await explain(access, def.sql(TABLE.spaceFirst), true),
      },
      sameResult: p.single === p.timeFirst && p.single === p.spaceFirst,
      expectSpaceFirstPushed: def.expectSpaceFirstPushed,
    });
  }
  return results;
}

// ---------------------------------------------------------------------------------------------
// the run

interface Report {
  generatedAt: string;
  machine: MachineInfo;
  postgres: { source: 'embedded' | 'system'; version: string; versionFull: string; jit: Record<string, string> };
  topology: { accessNodes: 1; dataNodes: number; shards: number; serversPerShard: 1; timeSlices: number; chunkInterval: '1 day' };
  data: { hosts: number; hours: number; intervalSeconds: number; rowsPerCopy: number; from: string; to: string };
  settings: Record<string, string>;
  setupSeconds: number;
  runs: number;
  queries: QueryResult[];
}

const SESSION_SETTINGS: Record<string, string> = {
  enable_partitionwise_aggregate: 'on',
  enable_partitionwise_join: 'on',
  enable_async_append: 'on',
  TimeZone: 'UTC',
};

function connect(node: DevNode): Promise<pg.Client> {
  return connectUrl(node.url);
}

async function runBenchmark(cluster: DevCluster, opts: Options): Promise<Report> {
  const end = DATA_END;
  const start = new Date(end.getTime() - opts.hours * HOUR_MS);
  const days = dailySlices(start, end);
  const access = await connect(cluster.accessNode);
  const dataClients = await Promise.all(cluster.dataNodes.map(connect));
  try {
    const setupStart = performance.now();
    await setupAccessParents(access, { days });
    const layout: Layout = {
      start,
      end,
      days,
      shardHosts: await readShardHosts(access, opts.hosts),
      shardNode: (s) => s % cluster.dataNodes.length,
    };
    const shardsOn = (node: number) => Array.from({ length: SHARDS }, (_, s) => s).filter((s) => layout.shardNode(s) === node);
    // The three copies load concurrently: each node has its own backend, and loading is not measured.
    await Promise.all([setupSingle(access, opts, layout), ...dataClients.map((c, i) => setupDataNode(c, shardsOn(i), layout))]);
    await setupForeignTables(access, cluster.dataNodes, layout);
    const rowsPerCopy = opts.hosts * opts.hours * (3600 / INTERVAL_SECONDS);
    await verifyCopies(access, dataClients, rowsPerCopy);
    const setupSeconds = (performance.now() - setupStart) / 1000;

    for (const [name, value] of Object.entries(SESSION_SETTINGS)) await access.query(`SELECT set_config($1, $2, false)`, [name, value]);
    const defs = queries(layout);
    const results = await measure(access, defs, opts.runs);

    const { rows: pgInfo } = await access.query<{ v: string; full: string }>(
      `SELECT current_setting('server_version') AS v, version() AS full`,
    );
    const jit: Record<string, string> = {};
    for (const [name, c] of [['access', access], ...cluster.dataNodes.map((n, i) => [n.name, dataClients[i]!] as const)] as const) {
      const { rows } = await c.query<{ jit: string; available: boolean }>(`SELECT current_setting('jit') AS jit, pg_jit_available() AS available`);
      jit[name] = `jit=${rows[0]?.jit ?? '?'}, available=${String(rows[0]?.available)}`;
    }
    return {
      generatedAt: new Date().toISOString(),
      machine: machineInfo(),
      postgres: { source: cluster.postgres.source, version: pgInfo[0]?.v ?? '?', versionFull: pgInfo[0]?.full ?? '?', jit },
      topology: { accessNodes: 1, dataNodes: cluster.dataNodes.length, shards: SHARDS, serversPerShard: 1, timeSlices: days.length, chunkInterval: '1 day' },
      data: { hosts: opts.hosts, hours: opts.hours, intervalSeconds: INTERVAL_SECONDS, rowsPerCopy, from: start.toISOString(), to: end.toISOString() },
      settings: { ...SESSION_SETTINGS, fdw_tuple_cost: '0.2', fetch_size: '10000', batch_size: '1000', async_capable: 'true' },
      setupSeconds: Math.round(setupSeconds * 10) / 10,
      runs: opts.runs,
      queries: results,
    };
  } finally {
    await Promise.all([access, ...dataClients].map((c) => c.end().catch(() => undefined)));
  }
}

// ---------------------------------------------------------------------------------------------
// report

const fmtMs = (ms: number) => (ms < 10 ? ms.toFixed(2) : ms.toFixed(1));
const fmtRatio = (r: number) => (r < 10 ? r.toFixed(2) : r.toFixed(0));
const fmtInt = (n: number | null) => (n === null ? '–' : n.toLocaleString('en-US'));
const yesNo = (b: boolean) => (b ? 'yes' : 'no');

function toMarkdown(r: Report): string {
  const lines = [
    `# Layout benchmark: single node vs time-first vs space-first`,
    '',
    `PostgreSQL ${r.postgres.version} (${r.postgres.source}); 1 access node + ${r.topology.dataNodes} data nodes on loopback; ` +
      `${r.topology.shards} shards, one SERVER each; time-first has ${r.topology.timeSlices} daily time slices × ${r.topology.shards} space slices.`,
    `Data: ${r.data.hosts} hosts × every ${r.data.intervalSeconds} s × ${r.data.hours} h = ${fmtInt(r.data.rowsPerCopy)} rows per copy ` +
      `(${r.data.from} .. ${r.data.to}). Windows: last 12 h / last 1 h, literal bounds.`,
    `Machine: ${r.machine.cores} cores (${r.machine.cpuModel}), ${r.machine.memoryGiB} GiB, ${r.machine.os}, Node ${r.machine.node}.`,
    `Median of ${r.runs} runs after 1 warm-up, queries and layouts interleaved; ratio = layout / single. ` +
      `Session: ${Object.entries(SESSION_SETTINGS).map(([k, v]) => `${k}=${v}`).join(', ')}. Generated ${r.generatedAt}.`,
    '',
    '| query | single ms | time-first ms | space-first ms | time-first / single | space-first / single | aggregate pushed (tf / sf) | rows shipped (tf / sf) | same result |',
    '|---|---:|---:|---:|---:|---:|---|---:|---|',
    ...r.queries.map(
      (q) =>
        '| ' +
        [
        `${q.id}: ${q.title}`,
        fmtMs(q.medianMs.single),
        fmtMs(q.medianMs.timeFirst),
        fmtMs(q.medianMs.spaceFirst),
        fmtRatio(q.ratioToSingle.timeFirst),
        fmtRatio(q.ratioToSingle.spaceFirst),
        `${yesNo(q.plans.timeFirst.aggregatePushed)} / ${yesNo(q.plans.spaceFirst.aggregatePushed)}`,
        `${fmtInt(q.plans.timeFirst.rowsShipped)} / ${fmtInt(q.plans.spaceFirst.rowsShipped)}`,
        yesNo(q.sameResult),
        ].join(' | ') +
        ' |',
    ),
    '',
    'Plan shapes on the access node (first child followed at each level; ×n = number of children):',
    '',
    '| query | layout | plan |',
    '|---|---|---|',
    ...r.queries.flatMap((q) => TARGETS.map((t) => `| ${q.id} | ${LABEL[t]} | ${q.plans[t].shape} |`)),
    '',
  ];
  const surprises = r.queries.filter((q) => q.plans.timeFirst.aggregatePushed || q.plans.spaceFirst.aggregatePushed !== q.expectSpaceFirstPushed);
  if (surprises.length > 0) {
    lines.push(`Pushdown differs from the field notes' prediction for: ${surprises.map((q) => q.id).join(', ')}.`, '');
  }
  return lines.join('\n');
}

// ---------------------------------------------------------------------------------------------
// main: the cluster is always stopped, also on Ctrl-C

async function main(): Promise<void> {
  const opts = parseOptions(process.argv.slice(2));
  const t0 = performance.now();
  const postgres = opts.system ? { kind: 'system' as const, binDir: SYSTEM_BIN_DIR } : { kind: 'embedded' as const };
  // The cluster is always stopped, also on Ctrl-C.
  await withBenchCluster({ dataNodes: 2, postgres, handleSignals: true }, async (cluster) => {
    const report = await runBenchmark(cluster, opts);
    const markdown = toMarkdown(report);
    // One file per major version, so runs on different versions sit side by side.
    const out = await writeResults(`layout-pg${cluster.postgres.version}`, report, markdown);
    process.stdout.write(markdown + '\n');
    process.stdout.write(`wrote ${out}.json and .md; total ${((performance.now() - t0) / 1000).toFixed(0)} s\n`);
  });
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exitCode = 1;
});
