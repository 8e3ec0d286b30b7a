/**
 * Randomized SELECTs over a device-metrics hypertable for the differential harness, and the rows
 * they run on.
 *
 * The table is the example spec's `metrics` plus one column of each other common kind:
 * `time timestamptz, device_id integer (space), cpu/memory/temperature double precision, region
 * text, ok boolean, amount numeric(12,2), bytes bigint`. The rows have NULLs in every nullable
 * column, groups that are entirely NULL, duplicate timestamps (and duplicate rows), devices on
 * every shard, hours of data around now() and a few days far in the past.
 *
 * Every query is seeded (`generateQueries(seed, count, anchorMs)` always gives the same SQL for
 * the same anchor), valid on PostgreSQL 14–18 (run on 15 and 18), and deterministic in its answer
 * except where the top-level ORDER BY / LIMIT leave ties, which the harness compares as such: a
 * LIMIT inside a LATERAL or a DISTINCT ON always orders by every column it returns.
 */
import type pg from 'pg';
import { prng } from '../../src/demo/devices.js';

// ---------------------------------------------------------------------------------------------
// The data

/** The hypertable's columns, as a spec lists them. */
export const METRICS_COLUMNS = [
  { name: 'time', type: 'timestamptz', notNull: true },
  { name: 'device_id', type: 'integer', notNull: true },
  { name: 'cpu', type: 'double precision' },
  { name: 'memory', type: 'double precision' },
  { name: 'temperature', type: 'double precision' },
  { name: 'region', type: 'text' },
  { name: 'ok', type: 'boolean' },
  { name: 'amount', type: 'numeric(12,2)' },
  { name: 'bytes', type: 'bigint' },
] as const;

/**
 * Region names that sort the same under every collation (lowercase letters only), so a text
 * min(), max() or ORDER BY cannot differ between the access node and a data node.
 */
export const REGIONS = ['africa', 'america', 'asia', 'europe'] as const;

/** `devices` (a small local table): 1–12 have rows, 12 only far in the past, 13 and 14 none. */
export const DEVICE_IDS = Array.from({ length: 14 }, (_, i) => i + 1);
const WITH_ROWS = 12;
/** Only far-past rows: empty in every now() window. */
const PAST_ONLY = 12;
/** Every nullable column NULL in every row: NULL-only groups. */
const ALL_NULL = 11;
/** region NULL in every row: a NULL group under GROUP BY region. */
const NO_REGION = 10;

export const deviceRegion = (id: number): string | null => (id === NO_REGION ? null : REGIONS[id % REGIONS.length]!);

export interface MetricsRow {
  readonly time: string;
  readonly deviceId: number;
  readonly cpu: number | null;
  readonly memory: number | null;
  readonly temperature: number | null;
  readonly region: string | null;
  readonly ok: boolean | null;
  /** numeric and bigint as text, so no digit is lost on the way. */
  readonly amount: string | null;
  readonly bytes: string | null;
}

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
/** Recent rows every 4 minutes from 6 h before the anchor to 2 h after it. */
const RECENT = { fromMs: -6 * HOUR, toMs: 2 * HOUR, stepMs: 4 * MINUTE };
/** Far-past rows every 3 hours over three days from 2020-01-01 00:00 UTC (the default chunks). */
const PAST = { fromMs: Date.UTC(2020, 0, 1), count: 24, stepMs: 3 * HOUR };

/**
 * The rows: the same for the same anchor (epoch ms, on a minute) and seed. About 2,300 rows, so a
 * query over everything still answers in milliseconds.
 */
export function metricsRows(anchorMs: number, seed: number): MetricsRow[] {
  const random = prng(seed);
  const maybe = <T>(pNull: number, value: () => T): T | null => (random() < pNull ? null : value());
  const two = (lo: number, hi: number): number => Math.round((lo + random() * (hi - lo)) * 100) / 100;
  const row = (time: number, deviceId: number): MetricsRow => {
    if (deviceId === ALL_NULL) {
      return { time: new Date(time).toISOString(), deviceId, cpu: null, memory: null, temperature: null, region: deviceRegion(deviceId), ok: null, amount: null, bytes: null };
    }
    return {
      time: new Date(time).toISOString(),
      deviceId,
      cpu: maybe(0.08, () => two(0, 100)),
      memory: maybe(0.08, () => two(0, 100)),
      temperature: maybe(0.08, () => two(20, 95)),
      region: deviceId === NO_REGION || random() < 0.05 ? null : deviceRegion(deviceId),
      ok: maybe(0.1, () => random() < 0.7),
      amount: maybe(0.08, () => two(0, 5000).toFixed(2)),
      bytes: maybe(0.08, () => String(Math.floor(random() * 2 ** 40))),
    };
  };
  const rows: MetricsRow[] = [];
  const emit = (time: number, deviceId: number): void => {
    const r = row(time, deviceId);
    rows.push(r);
    const dice = random();
    if (dice < 0.04) rows.push(row(time, deviceId)); // same device and time, other values
    else if (dice < 0.05) rows.push(r); // the same row twice
  };
  for (let t = anchorMs + RECENT.fromMs; t < anchorMs + RECENT.toMs; t += RECENT.stepMs) {
    for (let d = 1; d <= WITH_ROWS; d++) if (d !== PAST_ONLY) emit(t, d);
  }
  for (let k = 0; k < PAST.count; k++) {
    for (let d = 1; d <= WITH_ROWS; d++) emit(PAST.fromMs + k * PAST.stepMs, d);
  }
  return rows;
}

/** Inserts the rows into a table with the metrics columns (through the access node for a hypertable). */
export async function insertMetrics(client: pg.Client, table: string, rows: readonly MetricsRow[]): Promise<void> {
  await client.query(
    `INSERT INTO ${table} (time, device_id, cpu, memory, temperature, region, ok, amount, bytes)
     SELECT * FROM unnest($1::timestamptz[], $2::int[], $3::float8[], $4::float8[], $5::float8[], $6::text[], $7::bool[], $8::numeric[], $9::bigint[])`,
    [
      rows.map((r) => r.time),
      rows.map((r) => r.deviceId),
      rows.map((r) => r.cpu),
      rows.map((r) => r.memory),
      rows.map((r) => r.temperature),
      rows.map((r) => r.region),
      rows.map((r) => r.ok),
      rows.map((r) => r.amount),
      rows.map((r) => r.bytes),
    ],
  );
}

/** The small local table the generated sub-selects and LATERAL joins read. */
/** The devices rows in `table`, created first unless it exists (a reference table the spec made). */
export async function createDevices(client: pg.Client, table: string, create = true): Promise<void> {
  if (create) await client.query(`CREATE TABLE ${table} (id integer PRIMARY KEY, name text NOT NULL, region text)`);
  await client.query(`INSERT INTO ${table} SELECT * FROM unnest($1::int[], $2::text[], $3::text[])`, [
    DEVICE_IDS,
    DEVICE_IDS.map((id) => `device_${String(id).padStart(2, '0')}`),
    DEVICE_IDS.map(deviceRegion),
  ]);
}

// ---------------------------------------------------------------------------------------------
// The queries

export interface GeneratedQuery {
  readonly id: string;
  readonly sql: string;
  readonly params: readonly unknown[];
  readonly shape: QueryShape;
  /**
   * Aggregates that cannot be combined from per-shard parts (percentiles, mode, ordered
   * aggregates) or only from each shard's distinct values (count(DISTINCT) of a column other than
   * the space column) under a grouping without the space column; the harness checks the answer
   * either way.
   */
  readonly unsplittable: boolean;
}

export const QUERY_SHAPES = ['aggregate', 'rows', 'distinct-on', 'lateral', 'distinct', 'cte-join', 'nested-aggregate', 'join-aggregate'] as const;
export type QueryShape = (typeof QUERY_SHAPES)[number];

class Dice {
  private readonly random: () => number;
  constructor(seed: number) {
    this.random = prng(seed);
  }
  chance(p: number): boolean {
    return this.random() < p;
  }
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.random() * (hi - lo + 1));
  }
  pick<T>(xs: readonly T[]): T {
    return xs[Math.floor(this.random() * xs.length)]!;
  }
  /** Picks by weight: [[weight, value], …]. */
  weighted<T>(choices: readonly (readonly [number, T])[]): T {
    let x = this.random() * choices.reduce((s, [w]) => s + w, 0);
    for (const [w, v] of choices) if ((x -= w) < 0) return v;
    return choices[choices.length - 1]![1];
  }
  shuffle<T>(xs: readonly T[]): T[] {
    const out = [...xs];
    for (let i = out.length - 1; i > 0; i--) {
      const j = Math.floor(this.random() * (i + 1));
      [out[i], out[j]] = [out[j]!, out[i]!];
    }
    return out;
  }
  /** `min`–`max` distinct elements, in random order. */
  some<T>(xs: readonly T[], min: number, max: number): T[] {
    return this.shuffle(xs).slice(0, this.int(min, Math.min(max, xs.length)));
  }
}

/** Bind parameters of one statement: each value added becomes the next `$n`. */
class Params {
  readonly values: unknown[] = [];
  add(value: unknown): string {
    this.values.push(value);
    return `$${this.values.length}`;
  }
}

/** A column reference, qualified by the table alias when the query uses one. */
type Col = (name: string) => string;

const NUMBERS = ['cpu', 'memory', 'temperature', 'amount', 'bytes'] as const;
const FLOATS = ['cpu', 'memory', 'temperature'] as const;
const RAW_COLUMNS = ['time', 'device_id', 'cpu', 'memory', 'temperature', 'region', 'ok', 'amount', 'bytes'] as const;
const DIRECTIONS = ['', ' ASC', ' DESC'] as const;
const NULLS = ['', '', ' NULLS FIRST', ' NULLS LAST'] as const;

interface Ctx {
  readonly d: Dice;
  readonly p: Params;
  readonly c: Col;
  /** Epoch ms the data is laid out around. */
  readonly anchorMs: number;
  /** A device every WHERE keeps to (`device_id = k`, written or a parameter): the query reads one shard. */
  readonly pin?: { readonly device: number; readonly param: boolean };
}

const iso = (ms: number): string => new Date(ms).toISOString();

function timeFilter({ d, p, c, anchorMs }: Ctx): string {
  const t = c('time');
  return d.weighted<() => string>([
    [3, () => `${t} >= now() - interval '${d.pick(['15 minutes', '1 hour', '2 hours', '6 hours'])}'`],
    [2, () => `${t} > now() - interval '3 hours' AND ${t} <= now()`],
    [1, () => `${t} < now() - interval '30 minutes'`],
    [1, () => `${t} BETWEEN now() - interval '5 hours' AND now() - interval '2 hours'`],
    [1, () => `${t} >= current_timestamp - interval '90 minutes'`],
    [1, () => `${t} >= date_trunc('hour', now()) - interval '2 hours'`],
    [1, () => `${t} > now()`],
    // A local date compared with a date (a range on the column in fixed-offset zones).
    [1, () => `${t}::date ${d.pick(['=', '>=', '>', '<>'])} current_date${d.pick(['', ' - 1'])}`],
    // (Or the local hour or minute compared with a number: a shipped filter in fixed-offset zones.)
    [
      1,
      () => {
        const op = d.pick(['<', '<=', 'hour >=', 'minute <']);
        const rhs = d.pick(['current_date', `'2020-01-02'`]);
        if (op.length <= 2) return `date(${t}) ${op} ${rhs}`;
        const [field, cmp] = op.split(' ') as [string, string];
        return field === 'hour' ? `extract(hour FROM ${t}) ${cmp} ${rhs === 'current_date' ? '3' : '13.5'}` : `date_part('minute', ${t}) ${cmp} ${rhs === 'current_date' ? '30' : '0'}`;
      },
    ],
    [1, () => `${t} >= '2020-01-01 00:00:00+00' AND ${t} < '2020-01-02 12:00:00+00'`],
    [1, () => `${t} < '2020-01-02'`],
    [2, () => `${t} >= ${p.add(iso(anchorMs - d.int(1, 5) * HOUR))}::timestamptz AND ${t} < ${p.add(iso(anchorMs + d.int(-30, 60) * MINUTE))}::timestamptz`],
    // Empty windows.
    [1, () => `${t} > now() + interval '1 day'`],
    [1, () => `${t} < '1990-01-01 00:00:00+00'`],
  ])();
}

function deviceFilter({ d, p, c }: Ctx): string {
  const dev = c('device_id');
  const some = (): number[] => d.some(DEVICE_IDS, 1, 5).sort((a, b) => a - b);
  return d.weighted<() => string>([
    [3, () => `${dev} = ${d.pick(DEVICE_IDS)}`],
    [3, () => `${dev} IN (${some().join(', ')})`],
    [2, () => `${dev} IN (SELECT id FROM devices WHERE region = '${d.pick(REGIONS)}')`],
    [1, () => `${dev} IN (SELECT id FROM devices WHERE id % 3 = ${d.int(0, 2)})`],
    [2, () => `${dev} = ANY(${p.add(some())})`],
    [2, () => `${dev} = ANY(${p.add(some())}::int[])`],
    [1, () => `${dev} = ${p.add(d.pick(DEVICE_IDS))}`],
    [1, () => `${dev} <> ${d.pick(DEVICE_IDS)}`],
    [1, () => `${dev} NOT IN (${some().join(', ')})`],
    [1, () => `${dev} BETWEEN ${d.int(1, 6)} AND ${d.int(6, 14)}`],
  ])();
}

/** Conditions on values, NULL tests among them; also used in FILTER (WHERE …). */
function valueFilter({ d, c }: Ctx): string {
  return d.pick([
    `${c('cpu')} IS NULL`,
    `${c('cpu')} IS NOT NULL`,
    `${c('temperature')} IS NULL`,
    `${c('region')} IS NULL`,
    `${c('region')} = '${d.pick(REGIONS)}'`,
    c('ok'),
    `NOT ${c('ok')}`,
    `${c('ok')} IS NOT TRUE`,
    `${c('ok')} IS ${d.pick(['TRUE', 'FALSE', 'NOT FALSE', 'UNKNOWN', 'NOT UNKNOWN'])}`,
    `${c('amount')} IS NOT NULL AND ${c('amount')} < 2500`,
    `${c('bytes')} > 500000000000`,
    `${c('temperature')} > 60`,
    `${c('cpu')} > ${d.pick([50, 80, 95])}`,
    `(${c('region')} = '${d.pick(REGIONS)}' OR ${c('cpu')} > 80)`,
    `${c('memory')} BETWEEN 20 AND 60`,
  ]);
}

function where(ctx: Ctx, options: { atLeastOne?: boolean } = {}): string {
  const { d } = ctx;
  const parts: string[] = [];
  if (d.chance(0.55)) parts.push(timeFilter(ctx));
  if (d.chance(0.4)) parts.push(deviceFilter(ctx));
  if (d.chance(0.3)) parts.push(valueFilter(ctx));
  if (parts.length === 0 && options.atLeastOne === true) parts.push(d.chance(0.5) ? timeFilter(ctx) : deviceFilter(ctx));
  // After the shuffle, so a seed's other choices are the same pinned or not.
  const { pin } = ctx;
  const all = pin === undefined ? d.shuffle(parts) : [...d.shuffle(parts), `${ctx.c('device_id')} = ${pin.param ? ctx.p.add(pin.device) : pin.device}`];
  return all.length === 0 ? '' : ` WHERE ${all.join(' AND ')}`;
}

/** A grouping key: the expression, its alias (never an input column's name) and what it is. */
interface Key {
  readonly expr: string;
  readonly alias: string;
  readonly space: boolean;
}

function bucketKey({ d, c }: Ctx): Key {
  const t = c('time');
  const expr = d.pick([
    `date_trunc('hour', ${t})`,
    `date_trunc('day', ${t})`,
    `date_trunc('minute', ${t})`,
    `date_trunc('hour', ${t}, 'Asia/Kolkata')`,
    `date_bin('15 minutes', ${t}, TIMESTAMPTZ '2000-01-01 00:00:00+00')`,
    `date_bin('1 hour', ${t}, '2000-01-01 00:07:00+00'::timestamptz)`,
    `date_bin('10 minutes', ${t}, TIMESTAMPTZ '2020-01-01')`,
    `time_bucket('5 minutes', ${t})`,
    `time_bucket('1 hour', ${t}, '2000-01-01 00:30:00+00'::timestamptz)`,
    `time_bucket('1 day', ${t})`,
    `time_bucket(interval '30 minutes', ${t}, interval '10 minutes')`,
  ]);
  return { expr, alias: 'bucket', space: false };
}

function grouping(ctx: Ctx): Key[] {
  const { d, c } = ctx;
  const dev: Key = { expr: c('device_id'), alias: 'dev', space: true };
  const reg: Key = { expr: c('region'), alias: 'reg', space: false };
  const ok: Key = { expr: c('ok'), alias: 'okay', space: false };
  // Expressions of columns: of the space column (not the space key itself) and zone-dependent.
  const derived = (): Key =>
    d.pick<Key>([
      { expr: `${c('device_id')} % 3`, alias: 'dmod', space: false },
      { expr: `(${c('cpu')} > 50)`, alias: 'hot', space: false },
      { expr: `extract(hour FROM ${c('time')})`, alias: 'hr', space: false },
      // Keys that read the session's zone: in UTC grouped per shard by a bucket of time.
      { expr: `${c('time')}::date`, alias: 'd_day', space: false },
      { expr: `date_part('dow', ${c('time')})`, alias: 'd_dow', space: false },
      { expr: `date_trunc('month', ${c('time')})`, alias: 'd_mon', space: false },
      { expr: `extract(minute FROM ${c('time')})`, alias: 'd_min', space: false },
    ]);
  return d.weighted<() => Key[]>([
    [4, () => []],
    [4, () => [dev]],
    [4, () => [bucketKey(ctx)]],
    [4, () => [dev, bucketKey(ctx)]],
    [1, () => [reg]],
    [1, () => [ok]],
    [1, () => [reg, ok]],
    [1, () => [bucketKey(ctx), reg]],
    [1, () => [dev, reg]],
    [1, () => [dev, ok]],
    [1, () => [dev, bucketKey(ctx), ok]],
    [1, () => [derived()]],
    [1, () => [derived(), bucketKey(ctx)]],
  ])();
}

interface Aggregate {
  readonly expr: string;
  /** Cannot be combined from per-shard parts unless grouped by the space column. */
  readonly unsplittable: boolean;
}

function aggregate(ctx: Ctx): Aggregate {
  const { d, c } = ctx;
  const simple = (expr: string, unsplittable = false): Aggregate => ({
    expr: d.chance(0.2) ? `${expr} FILTER (WHERE ${valueFilter(ctx)})` : expr,
    unsplittable,
  });
  return d.weighted<() => Aggregate>([
    [3, () => simple('count(*)')],
    [2, () => simple(`count(${c(d.pick([...NUMBERS, 'region', 'ok', 'time']))})`)],
    [1, () => simple(`count(DISTINCT ${c('device_id')})`)],
    [
      1,
      () => {
        const x = d.pick(['region', 'ok', 'bytes', 'cpu']);
        return simple(`count(DISTINCT ${c(x)})`, true);
      },
    ],
    [4, () => simple(`${d.pick(['sum', 'avg'])}(${c(d.pick(NUMBERS))})`)],
    [4, () => simple(`${d.pick(['min', 'max'])}(${c(d.pick([...NUMBERS, 'time', 'region', 'device_id']))})`)],
    [2, () => simple(`${d.pick(['bool_and', 'bool_or', 'every'])}(${c('ok')})`)],
    [3, () => simple(`${d.pick(['stddev', 'stddev_samp', 'stddev_pop', 'variance', 'var_samp', 'var_pop'])}(${c(d.pick(NUMBERS))})`)],
    [1, () => simple(`percentile_cont(${d.pick(['0.5', '0.9', '0.25'])}) WITHIN GROUP (ORDER BY ${c(d.pick(FLOATS))})`, true)],
    [1, () => simple(`percentile_disc(0.5) WITHIN GROUP (ORDER BY ${c(d.pick([...NUMBERS, 'time']))})`, true)],
    [1, () => simple(`mode() WITHIN GROUP (ORDER BY ${c(d.pick(['region', 'device_id', 'ok']))})`, true)],
    [
      1,
      () => {
        const x = c(d.pick([...FLOATS, 'amount']));
        return { expr: `max(${x}) - min(${x})`, unsplittable: false };
      },
    ],
    [1, () => ({ expr: `count(*) - count(${c('cpu')})`, unsplittable: false })],
    [1, () => ({ expr: `sum(${c('amount')}) / nullif(count(${c('amount')}), 0)`, unsplittable: false })],
    // Aggregates of expressions, and results of aggregates in expressions.
    [1, () => simple(`${d.pick(['sum', 'avg', 'max'])}(${c('cpu')} * 2 + coalesce(${c('memory')}, 0))`)],
    [1, () => ({ expr: `coalesce(sum(${c('cpu')}), 0)`, unsplittable: false })],
    [1, () => ({ expr: `max(${c('time')}) - min(${c('time')})`, unsplittable: false })],
    [1, () => ({ expr: `count(*) > ${d.int(1, 20)}`, unsplittable: false })],
    // Order-sensitive aggregates (no per-shard parts combine into them) and DISTINCT ones (from each shard's distinct values).
    [1, () => simple(`${d.pick(['sum', 'avg'])}(DISTINCT ${c(d.pick(['bytes', 'amount']))})`, true)],
    [1, () => simple(`string_agg(DISTINCT ${c('region')}, ',' ORDER BY ${c('region')})`, true)],
    [1, () => simple(`array_agg(${c('device_id')} ORDER BY ${c('device_id')})`, true)],
  ])();
}

/**
 * HAVING conditions. A float aggregate is compared with a threshold no mean of two-decimal values
 * can equal, so a last-bit difference between summation orders cannot flip the condition.
 */
function having(ctx: Ctx): string {
  const { d, c } = ctx;
  return ` HAVING ${d.pick([
    `count(*) > ${d.int(1, 30)}`,
    `max(${c('cpu')}) > 50`,
    `count(${c('cpu')}) = 0`,
    `sum(${c('amount')}) IS NULL`,
    `avg(${c('temperature')}) < 55.50137`,
    `bool_or(${c('ok')})`,
    `min(${c('time')}) < now() - interval '1 hour'`,
    `count(DISTINCT ${c('region')}) > 1`,
  ])}`;
}

/** One output column of a SELECT list: how ORDER BY and GROUP BY may spell it. */
interface Output {
  readonly expr: string;
  readonly alias: string | undefined;
}

/** ORDER BY item for output `index` (0-based): by ordinal, by alias or by repeating its expression. */
function orderItem({ d }: Ctx, outputs: readonly Output[], index: number): string {
  const o = outputs[index]!;
  const spelled = d.weighted<string>([
    [1, String(index + 1)],
    [o.alias === undefined ? 0 : 1, o.alias ?? ''],
    [1, o.expr],
  ]);
  return `${spelled}${d.pick(DIRECTIONS)}${d.pick(NULLS)}`;
}

/**
 * LIMIT / OFFSET / FETCH FIRST. `withTies: false` for an aggregate without GROUP BY: on at most one
 * row WITH TIES means nothing, and PostgreSQL 15–18 fail it ("more than one row returned by a
 * subquery used as an expression") whenever min/max/bool_and/bool_or take the index-ordered path,
 * as they do on the hypertable's foreign shards; the test pins that case on its own.
 */
function limit(ctx: Ctx, ordered: boolean, withTies = true): string {
  const { d, p } = ctx;
  if (!ordered) return d.chance(0.08) ? ` LIMIT ${d.int(1, 10)}` : '';
  if (!d.chance(0.45)) return '';
  const n = d.int(1, 12);
  const offset = d.chance(0.25) ? ` OFFSET ${d.int(1, 5)}` : '';
  return d.weighted<() => string>([
    [6, () => ` LIMIT ${n}${offset}`],
    [1, () => ` LIMIT ${p.add(n)}${offset}`],
    [1, () => `${offset} FETCH FIRST ${n} ROWS ONLY`],
    [withTies ? 1 : 0, () => `${offset} FETCH FIRST ${n} ROWS WITH TIES`],
  ])();
}

function aggregateQuery(ctx: Ctx, alias: string): { sql: string; unsplittable: boolean } {
  const { d } = ctx;
  const keys = grouping(ctx);
  const aggregates = Array.from({ length: d.int(1, 4) }, () => aggregate(ctx));
  // Keys are usually selected (first or after the aggregates); sometimes one is grouped by only.
  const selectedKeys = keys.filter(() => !d.chance(0.1));
  const keyOutputs: Output[] = selectedKeys.map((k) => ({ expr: k.expr, alias: d.chance(0.5) ? k.alias : undefined }));
  const aggOutputs: Output[] = aggregates.map((a, i) => ({ expr: a.expr, alias: d.chance(0.5) ? `a${i + 1}` : undefined }));
  const outputs = d.chance(0.8) ? [...keyOutputs, ...aggOutputs] : [...aggOutputs, ...keyOutputs];
  const select = outputs.map((o) => (o.alias === undefined ? o.expr : `${o.expr} AS ${o.alias}`)).join(', ');

  const groupBy = keys.map((k) => {
    const index = outputs.findIndex((o) => o.expr === k.expr);
    const o = outputs[index];
    if (o === undefined) return k.expr;
    return d.weighted<string>([
      [2, k.expr],
      [1, String(index + 1)],
      [o.alias === undefined ? 0 : 1, o.alias ?? ''],
    ]);
  });

  let order = '';
  if (d.chance(0.65)) {
    const keyIdx = keyOutputs.map((k) => outputs.indexOf(k));
    const aggIdx = aggOutputs.map((a) => outputs.indexOf(a));
    const items = d.weighted<() => string[]>([
      [5, () => [...d.shuffle(keyIdx), ...(d.chance(0.3) ? d.some(aggIdx, 1, 1) : [])].map((i) => orderItem(ctx, outputs, i))],
      [2, () => [...d.some(aggIdx, 1, 2), ...d.shuffle(keyIdx)].map((i) => orderItem(ctx, outputs, i))],
      [2, () => d.some(outputs.map((_, i) => i), 1, 3).map((i) => orderItem(ctx, outputs, i))],
      // An aggregate that is not selected, then the keys.
      [1, () => [`count(*)${d.pick(DIRECTIONS)}`, ...d.shuffle(keyIdx).map((i) => orderItem(ctx, outputs, i))]],
    ])();
    if (items.length > 0) order = ` ORDER BY ${items.join(', ')}`;
  }
  const grouped = keys.length > 0;
  const sql =
    `SELECT ${select} FROM metrics${alias}${where(ctx)}` +
    (grouped ? ` GROUP BY ${groupBy.join(', ')}` : '') +
    (d.chance(grouped ? 0.25 : 0.05) ? having(ctx) : '') +
    order +
    limit(ctx, order !== '', grouped);
  const unsplittable = !keys.some((k) => k.space) && aggregates.some((a) => a.unsplittable);
  return { sql, unsplittable };
}

function rowsQuery(ctx: Ctx, alias: string): string {
  const { d, c } = ctx;
  const star = d.chance(0.15);
  const columns = star ? ['time', 'device_id'] : d.chance(0.8) ? ['time', 'device_id', ...d.some(RAW_COLUMNS.slice(2), 0, 4)] : d.some(RAW_COLUMNS, 1, 4);
  const select = star ? '*' : d.shuffle(columns).map(c).join(', ');
  const orderings: string[][] = [
    [`${c('time')} DESC`, c('device_id')],
    [c('device_id'), c('time')],
    [c('time')],
    [c('device_id'), `${c('time')} DESC`],
    [`${c('cpu')} DESC NULLS LAST`, c('time')],
  ];
  const ordered = d.chance(0.7);
  const order = ordered ? ` ORDER BY ${d.pick(orderings).join(', ')}` : '';
  return `SELECT ${select} FROM metrics${alias}${where(ctx, { atLeastOne: true })}${order}${limit(ctx, ordered)}`;
}

/** `DISTINCT ON (device_id) … ORDER BY device_id, time DESC`: each device's last (or first) row. */
function distinctOnQuery(ctx: Ctx): string {
  const { d } = ctx;
  const values = d.some(['cpu', 'memory', 'temperature', 'region', 'amount'], 0, 2);
  // Duplicate timestamps: the values themselves break ties, so the row picked is determined.
  const tieBreaks = values.map((v) => `${v} DESC NULLS LAST`);
  const time = d.chance(0.8) ? 'time DESC' : 'time';
  return (
    `SELECT DISTINCT ON (device_id) device_id, time${values.map((v) => `, ${v}`).join('')} FROM metrics${where(ctx)} ` +
    `ORDER BY ${['device_id', time, ...tieBreaks].join(', ')}${d.chance(0.2) ? ` LIMIT ${d.int(1, 6)}` : ''}`
  );
}

/** Top-k per device through LATERAL, from the small devices table (13 and 14 have no rows). */
function lateralQuery(ctx: Ctx): string {
  const { d } = ctx;
  const k = d.weighted<number>([
    [3, 1],
    [1, 3],
  ]);
  const value = d.pick(['cpu', 'temperature', 'amount']);
  const inner = `SELECT m.time, m.${value} FROM metrics m WHERE m.device_id = d.id${d.chance(0.4) ? ` AND ${timeFilter({ ...ctx, c: (n) => `m.${n}` })}` : ''} ORDER BY m.time DESC, m.${value} DESC NULLS LAST LIMIT ${k}`;
  const join = d.chance(0.5) ? `CROSS JOIN LATERAL (${inner}) l` : `LEFT JOIN LATERAL (${inner}) l ON true`;
  return `SELECT d.id, d.name, l.time, l.${value} FROM devices d ${join} ORDER BY d.id, l.time DESC`;
}

function distinctQuery(ctx: Ctx): string {
  const { d } = ctx;
  const columns = d.some(['region', 'ok', 'device_id', `date_trunc('hour', time)`], 1, 2);
  const ordered = d.chance(0.6);
  const order = ordered ? ` ORDER BY ${columns.map((_, i) => `${i + 1}${d.pick(DIRECTIONS)}${d.pick(NULLS)}`).join(', ')}` : '';
  return `SELECT DISTINCT ${columns.join(', ')} FROM metrics${where(ctx)}${order}${limit(ctx, ordered)}`;
}

/** TSBS's double-groupby shape: aggregate per device and bucket in a CTE, then join device names. */
function cteJoinQuery(ctx: Ctx): string {
  const { d } = ctx;
  const bucket = bucketKey(ctx).expr;
  const agg = d.pick(['avg(cpu)', 'max(temperature)', 'sum(amount)', 'count(*)', 'stddev(memory)']);
  return (
    `WITH per AS (SELECT device_id, ${bucket} AS bucket, ${agg} AS v FROM metrics${where(ctx, { atLeastOne: true })} GROUP BY 1, 2) ` +
    `SELECT per.bucket, d.name, per.v FROM per JOIN devices d ON d.id = per.device_id ORDER BY per.bucket, d.name`
  );
}

/** An aggregate of per-device aggregates (the benchmark's per-shard form, as a user might write it). */
function nestedAggregateQuery(ctx: Ctx): string {
  const { d } = ctx;
  const byBucket = d.chance(0.6);
  const bucket = byBucket ? `, ${bucketKey(ctx).expr} AS bucket` : '';
  const [inner, outer] = d.pick([
    ['max(cpu)', 'max(v)'],
    ['count(*)', 'sum(v)'],
    ['min(temperature)', 'min(v)'],
    ['sum(amount)', 'sum(v)'],
  ] as const);
  return (
    `SELECT ${byBucket ? 'bucket, ' : ''}${outer} AS v, count(*) AS devices FROM (` +
    `SELECT device_id${bucket}, ${inner} AS v FROM metrics${where(ctx)} GROUP BY device_id${byBucket ? ', bucket' : ''}) s` +
    (byBucket ? ' GROUP BY bucket ORDER BY bucket' : '')
  );
}

/** Grouping by a column of the devices table joined to the hypertable. */
function joinAggregateQuery(ctx: Ctx): string {
  const { d } = ctx;
  const agg = aggregate({ ...ctx, c: (n) => `m.${n}` }).expr;
  return (
    `SELECT dv.region, count(*) AS n, ${agg} AS v FROM metrics m JOIN devices dv ON dv.id = m.device_id` +
    `${where({ ...ctx, c: (n) => `m.${n}` })} GROUP BY dv.region ORDER BY 1${d.pick(NULLS)}`
  );
}

/**
 * `count` queries from `seed`: the same SQL for the same seed, anchor and `pinned`. Mostly
 * aggregates (functions × groupings × filters × HAVING × ORDER BY × LIMIT/OFFSET), then raw rows, each
 * device's last point, top-k per device, DISTINCT, CTEs, nested aggregates and joins.
 */
export function generateQueries(seed: number, count: number, anchorMs: number, options: { pinned?: boolean } = {}): GeneratedQuery[] {
  const d = new Dice(seed);
  return Array.from({ length: count }, (_, i) => {
    const p = new Params();
    const aliased = d.chance(0.25);
    // `pinned`: every other query keeps each WHERE to one device, every fourth as a parameter (as drivers send it).
    const pin = options.pinned === true && i % 2 === 1 ? { device: DEVICE_IDS[(i * 7) % DEVICE_IDS.length] as number, param: i % 4 === 3 } : undefined;
    const ctx: Ctx = { d, p, c: aliased ? (n) => `m.${n}` : (n) => n, anchorMs, ...(pin === undefined ? {} : { pin }) };
    const alias = aliased ? ' m' : '';
    const shape = d.weighted<QueryShape>([
      [70, 'aggregate'],
      [10, 'rows'],
      [5, 'distinct-on'],
      [4, 'lateral'],
      [3, 'distinct'],
      [3, 'cte-join'],
      [3, 'nested-aggregate'],
      [2, 'join-aggregate'],
    ]);
    let sql: string;
    let unsplittable = false;
    switch (shape) {
      case 'aggregate':
        ({ sql, unsplittable } = aggregateQuery(ctx, alias));
        break;
      case 'rows':
        sql = rowsQuery(ctx, alias);
        break;
      case 'distinct-on':
        sql = distinctOnQuery({ ...ctx, c: (n) => n });
        break;
      case 'lateral':
        sql = lateralQuery(ctx);
        break;
      case 'distinct':
        sql = distinctQuery({ ...ctx, c: (n) => n });
        break;
      case 'cte-join':
        sql = cteJoinQuery({ ...ctx, c: (n) => n });
        break;
      case 'nested-aggregate':
        sql = nestedAggregateQuery({ ...ctx, c: (n) => n });
        break;
      case 'join-aggregate':
        sql = joinAggregateQuery(ctx);
        break;
    }
    return { id: `${seed}#${i}`, sql, params: p.values, shape, unsplittable };
  });
}
