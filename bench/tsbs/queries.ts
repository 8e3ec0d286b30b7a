/**
 * The 15 TSBS devops query types (timescale/tsbs `cmd/tsbs_generate_queries/databases/timescaledb/
 * devops.go`; SQL in shared/research/timescaledb-multinode.md §6), each in up to three forms:
 *
 *   users-bucket  as people write it against vanilla PostgreSQL: TSBS's SQL with `date_trunc` for
 *                 its BUCKET (TSBS itself used date_trunc until 2018; time_bucket is TimescaleDB's),
 *                 windows relative to `now()`, and hosts looked up in `tags` by a sub-select.
 *   shippable     what hypershard's README advises: `date_bin` with a literal origin (immutable),
 *                 time bounds as parameters, host ids as a parameter array. Same answers.
 *   per-shard     for aggregates whose GROUP BY lacks the space column (postgres_fdw never ships a
 *                 partial aggregate): aggregate per host first (`GROUP BY tags_id, …`, which each
 *                 shard can finish), then combine on the access node. `lastpoint` likewise takes
 *                 each host's last time per shard, then fetches those rows by key.
 *   rewritten     the users-bucket SQL as hypershard's rewriter turns it (src/rewrite): the
 *                 single node runs the users' SQL itself, the access node the rewritten SQL.
 *   product       the users-bucket SQL sent through `hypershard/pg`'s Client, as an application
 *                 sends it: rewritten and, outside a transaction, the keys of a sub-select on a
 *                 reference table read first (one more access-node round trip, timed) and written
 *                 in, as the gateway does too.
 *
 * A form is only listed where it means something for the type. Every form runs the same SQL on
 * the single-node table and on the distributed hypertable, and both answers are compared.
 */
import { prng } from '../../src/demo/devices.js';
import { METRICS } from './generate.js';
import type { Tables } from './setup.js';

export const QUERY_TYPES = [
  'single-groupby-1-1-1',
  'single-groupby-1-1-12',
  'single-groupby-1-8-1',
  'single-groupby-5-1-1',
  'single-groupby-5-1-12',
  'single-groupby-5-8-1',
  'cpu-max-all-1',
  'cpu-max-all-8',
  'double-groupby-1',
  'double-groupby-5',
  'double-groupby-all',
  'high-cpu-1',
  'high-cpu-all',
  'lastpoint',
  'groupby-orderby-limit',
] as const;
export type QueryType = (typeof QUERY_TYPES)[number];

export const FORMS = ['users-bucket', 'shippable', 'per-shard', 'rewritten', 'product'] as const;
export type Form = (typeof FORMS)[number];

export interface QueryCase {
  readonly type: QueryType;
  readonly form: Form;
  readonly sql: (t: Tables) => string;
  readonly params: readonly unknown[];
  /** The distributed side runs on hypershard/pg's Client (the `product` form), not a plain one. */
  readonly throughProduct?: true;
}

export interface QueryContext {
  readonly hosts: number;
  /** Epoch ms where the data ends (exclusive): the shippable forms' windows end here. */
  readonly endMs: number;
  readonly seed: number;
}

const HOUR_MS = 3_600_000;
/** date_bin's origin, spelled in UTC so the session time zone does not matter. */
const ORIGIN = `TIMESTAMPTZ '2000-01-01 00:00:00+00'`;

const bucket = {
  users: (unit: 'minute' | 'hour') => `date_trunc('${unit}', time)`,
  shippable: (unit: 'minute' | 'hour') => `date_bin('1 ${unit}', time, ${ORIGIN})`,
};

/** TSBS picks random distinct hosts per query; this picks them reproducibly per query type. */
function pickHosts(ctx: QueryContext, type: QueryType, count: number): number[] {
  if (count > ctx.hosts) throw new Error(`${type} needs ${count} hosts, the data has ${ctx.hosts}`);
  let h = ctx.seed >>> 0;
  for (const c of type) h = Math.imul(h ^ c.charCodeAt(0), 0x01000193) >>> 0;
  const random = prng(h);
  const chosen = new Set<number>();
  while (chosen.size < count) chosen.add(Math.floor(random() * ctx.hosts));
  return [...chosen].sort((a, b) => a - b);
}

const hostnames = (hosts: readonly number[]): string => hosts.map((h) => `'host_${h}'`).join(', ');
/** TSBS's HOSTS() with --timescale-use-tags (its default): a sub-select on tags. */
const usersHosts = (t: Tables, hosts: readonly number[]): string => `tags_id IN (SELECT id FROM ${t.tags} WHERE hostname IN (${hostnames(hosts)}))`;
const ids = (hosts: readonly number[]): number[] => hosts.map((h) => h + 1);
const hoursAgo = (hours: number): string => `now() - interval '${hours} hour${hours === 1 ? '' : 's'}'`;
const window = (ctx: QueryContext, hours: number): [string, string] => [
  new Date(ctx.endMs - hours * HOUR_MS).toISOString(),
  new Date(ctx.endMs).toISOString(),
];

/** `single-groupby-M-H-X` and `cpu-max-all-H`: max of M metrics per bucket, H hosts, X hours. */
function maxPerBucket(ctx: QueryContext, type: QueryType, metrics: number, hostCount: number, hours: number, unit: 'minute' | 'hour'): QueryCase[] {
  const ms = METRICS.slice(0, metrics);
  const hosts = pickHosts(ctx, type, hostCount);
  const maxes = ms.map((m) => `max(${m}) AS max_${m}`).join(', ');
  const bounds = `time >= $1::timestamptz AND time < $2::timestamptz`;
  const params = [...window(ctx, hours), ids(hosts)];
  return [
    {
      type,
      form: 'users-bucket',
      sql: (t) =>
        `SELECT ${bucket.users(unit)} AS ${unit}, ${maxes} FROM ${t.cpu} ` +
        `WHERE ${usersHosts(t, hosts)} AND time >= ${hoursAgo(hours)} GROUP BY ${unit} ORDER BY ${unit}`,
      params: [],
    },
    {
      type,
      form: 'shippable',
      sql: (t) =>
        `SELECT ${bucket.shippable(unit)} AS ${unit}, ${maxes} FROM ${t.cpu} ` +
        `WHERE tags_id = ANY($3::int[]) AND ${bounds} GROUP BY ${unit} ORDER BY ${unit}`,
      params,
    },
    {
      type,
      form: 'per-shard',
      // max of per-host maxima is the max: exact, and the inner GROUP BY holds the space column.
      sql: (t) =>
        `SELECT ${unit}, ${ms.map((m) => `max(max_${m}) AS max_${m}`).join(', ')} FROM (` +
        `SELECT tags_id, ${bucket.shippable(unit)} AS ${unit}, ${maxes} FROM ${t.cpu} ` +
        `WHERE tags_id = ANY($3::int[]) AND ${bounds} GROUP BY tags_id, ${unit}) per_host ` +
        `GROUP BY ${unit} ORDER BY ${unit}`,
      params,
    },
  ];
}

/** `double-groupby-M`: hourly average of M metrics per host over 12 h, joined to the host name. */
function doubleGroupby(ctx: QueryContext, type: QueryType, metrics: number): QueryCase[] {
  const ms = METRICS.slice(0, metrics);
  const avgs = ms.map((m) => `avg(${m}) AS mean_${m}`).join(', ');
  const means = ms.map((m) => `mean_${m}`).join(', ');
  const query = (t: Tables, hour: string, where: string): string =>
    `WITH cpu_avg AS (SELECT ${hour} AS hour, tags_id, ${avgs} FROM ${t.cpu} WHERE ${where} GROUP BY 1, 2) ` +
    `SELECT hour, tags.hostname, ${means} FROM cpu_avg JOIN ${t.tags} tags ON cpu_avg.tags_id = tags.id ORDER BY hour, tags.hostname`;
  return [
    { type, form: 'users-bucket', sql: (t) => query(t, bucket.users('hour'), `time >= ${hoursAgo(12)}`), params: [] },
    {
      type,
      form: 'shippable',
      sql: (t) => query(t, bucket.shippable('hour'), `time >= $1::timestamptz AND time < $2::timestamptz`),
      params: window(ctx, 12),
    },
  ];
}

/** `high-cpu-all` / `high-cpu-1`: raw rows with usage_user > 90 over 12 h. */
function highCpu(ctx: QueryContext, type: QueryType, hostCount: number | 'all'): QueryCase[] {
  const hosts = hostCount === 'all' ? [] : pickHosts(ctx, type, hostCount);
  return [
    {
      type,
      form: 'users-bucket',
      sql: (t) => `SELECT * FROM ${t.cpu} WHERE usage_user > 90.0 AND time >= ${hoursAgo(12)}${hosts.length === 0 ? '' : ` AND ${usersHosts(t, hosts)}`}`,
      params: [],
    },
    {
      type,
      form: 'shippable',
      sql: (t) =>
        `SELECT * FROM ${t.cpu} WHERE usage_user > 90.0 AND time >= $1::timestamptz AND time < $2::timestamptz` +
        (hosts.length === 0 ? '' : ` AND tags_id = ANY($3::int[])`),
      params: hosts.length === 0 ? window(ctx, 12) : [...window(ctx, 12), ids(hosts)],
    },
  ];
}

function lastpoint(): QueryCase[] {
  return [
    {
      type: 'lastpoint',
      form: 'users-bucket',
      sql: (t) =>
        `SELECT DISTINCT ON (t.hostname) * FROM ${t.tags} t INNER JOIN LATERAL ` +
        `(SELECT * FROM ${t.cpu} c WHERE c.tags_id = t.id ORDER BY time DESC LIMIT 1) AS b ON true ORDER BY t.hostname, b.time DESC`,
      params: [],
    },
    {
      type: 'lastpoint',
      form: 'per-shard',
      // The per-host max(time) is grouped by the space column, so every shard finishes it; the
      // LIMIT keeps the LATERAL from being flattened into a join that would ship every row, so
      // each host's row is fetched by (tags_id, time) from the one shard holding it.
      sql: (t) =>
        `SELECT t.*, b.* FROM (SELECT tags_id, max(time) AS time FROM ${t.cpu} GROUP BY tags_id) l ` +
        `JOIN ${t.tags} t ON t.id = l.tags_id ` +
        `JOIN LATERAL (SELECT * FROM ${t.cpu} c WHERE c.tags_id = l.tags_id AND c.time = l.time LIMIT 1) b ON true ORDER BY t.hostname`,
      params: [],
    },
  ];
}

/** `groupby-orderby-limit`: the last 5 minutes' max before a point in time. */
function groupbyOrderbyLimit(ctx: QueryContext): QueryCase[] {
  const type = 'groupby-orderby-limit';
  const end = [new Date(ctx.endMs).toISOString()];
  return [
    {
      type,
      form: 'users-bucket',
      sql: (t) => `SELECT ${bucket.users('minute')} AS minute, max(usage_user) FROM ${t.cpu} WHERE time < now() GROUP BY minute ORDER BY minute DESC LIMIT 5`,
      params: [],
    },
    {
      type,
      form: 'shippable',
      sql: (t) => `SELECT ${bucket.shippable('minute')} AS minute, max(usage_user) FROM ${t.cpu} WHERE time < $1::timestamptz GROUP BY minute ORDER BY minute DESC LIMIT 5`,
      params: end,
    },
    {
      type,
      form: 'per-shard',
      sql: (t) =>
        `SELECT minute, max(max_usage_user) AS max FROM (` +
        `SELECT tags_id, ${bucket.shippable('minute')} AS minute, max(usage_user) AS max_usage_user FROM ${t.cpu} ` +
        `WHERE time < $1::timestamptz GROUP BY tags_id, minute) per_host GROUP BY minute ORDER BY minute DESC LIMIT 5`,
      params: end,
    },
  ];
}

export function tsbsQueries(ctx: QueryContext): QueryCase[] {
  const cases = [
    ...maxPerBucket(ctx, 'single-groupby-1-1-1', 1, 1, 1, 'minute'),
    ...maxPerBucket(ctx, 'single-groupby-1-1-12', 1, 1, 12, 'minute'),
    ...maxPerBucket(ctx, 'single-groupby-1-8-1', 1, 8, 1, 'minute'),
    ...maxPerBucket(ctx, 'single-groupby-5-1-1', 5, 1, 1, 'minute'),
    ...maxPerBucket(ctx, 'single-groupby-5-1-12', 5, 1, 12, 'minute'),
    ...maxPerBucket(ctx, 'single-groupby-5-8-1', 5, 8, 1, 'minute'),
    ...maxPerBucket(ctx, 'cpu-max-all-1', 10, 1, 8, 'hour'),
    ...maxPerBucket(ctx, 'cpu-max-all-8', 10, 8, 8, 'hour'),
    ...doubleGroupby(ctx, 'double-groupby-1', 1),
    ...doubleGroupby(ctx, 'double-groupby-5', 5),
    ...doubleGroupby(ctx, 'double-groupby-all', 10),
    ...highCpu(ctx, 'high-cpu-1', 1),
    ...highCpu(ctx, 'high-cpu-all', 'all'),
    ...lastpoint(),
    ...groupbyOrderbyLimit(ctx),
  ];
  const missing = QUERY_TYPES.filter((q) => !cases.some((c) => c.type === q));
  if (missing.length > 0) throw new Error(`no query for ${missing.join(', ')}`);
  return cases;
}

/**
 * The users-bucket cases again, the distributed side rewritten by `rewrite`: measures what a
 * user gets from hypershard without changing their SQL.
 */
export function rewrittenCases(cases: readonly QueryCase[], rewrite: (sql: string) => string, distributed: Tables): QueryCase[] {
  return cases
    .filter((c) => c.form === 'users-bucket')
    .map((c) => {
      const rewritten = rewrite(c.sql(distributed));
      return { ...c, form: 'rewritten', sql: (t: Tables) => (t === distributed ? rewritten : c.sql(t)) };
    });
}

/** The users-bucket cases again, the distributed side sent through hypershard/pg's Client as written. */
export function productCases(cases: readonly QueryCase[]): QueryCase[] {
  return cases.filter((c) => c.form === 'users-bucket').map((c) => ({ ...c, form: 'product', throughProduct: true }));
}
