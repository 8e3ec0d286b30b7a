/**
 * The rewriter on its own: which rewrites apply to which SQL, what comes out, and the reasons it
 * gives when it leaves a query alone. Equality of answers is proven on real clusters by
 * test/integration/rewriteDifferential.test.ts; here the shapes and the refusals.
 */
import { describe, expect, it } from 'vitest';
import type { ClusterMetadata, DistributedTable } from '../../src/rewrite/model.js';
import { parseSelect, parseStatements } from '../../src/rewrite/parser.js';
import { columnName } from '../../src/rewrite/ast.js';
import { rewriteSql } from '../../src/rewrite/rewrite.js';
import { DATE_SPAN_GUARD_NAME } from '../../src/rewrite/dates.js';
import type { ZoneGrid } from '../../src/rewrite/zoneGrid.js';

function hypertable(schema: string, name: string, space: string, time: string, columns: [string, string][]): DistributedTable {
  return {
    table: { schema, name },
    columns: columns.map(([n, type]) => ({ name: n, type, notNull: n === space || n === time })),
    spaceColumn: space,
    timeColumn: time,
    shards: [0, 1, 2, 3].map((i) => ({ index: i, modulus: 4, remainder: i, table: { schema: '_hypershard', name: `${name}_s${i}` }, server: `srv_${i % 2}_${i}` })),
  };
}

const CPU = hypertable('public', 'cpu', 'tags_id', 'time', [
  ['time', 'timestamptz'],
  ['tags_id', 'integer'],
  ['usage_user', 'double precision'],
  ['bytes', 'bigint'],
  ['amount', 'numeric(12,2)'],
  ['region', 'text'],
  ['ok', 'boolean'],
]);
const HOSTILE = hypertable('we"ird schema', 'Mé"trics; DROP', 'dev"ice', 'ti me', [
  ['ti me', 'timestamptz'],
  ['dev"ice', 'integer'],
  ['va"lue', 'double precision'],
]);
const META: ClusterMetadata = { hypertables: [CPU, HOSTILE], referenceTables: [] };
const rewrite = (sql: string, timeZone: string | undefined = 'UTC') => rewriteSql(sql, META, { timeZone });
const kinds = (sql: string, timeZone?: string) => rewrite(sql, timeZone).rewrites.map((r) => r.kind);
const reparses = (sql: string): void => {
  expect(() => parseStatements(sql)).not.toThrow();
};

describe('statements it leaves alone', () => {
  it('returns SQL that reads no hypertable byte for byte, and says why', () => {
    const sql = 'select  now() - interval \'1 hour\',  x FROM other WHERE t > now() -- comment';
    const r = rewrite(sql);
    expect(r).toMatchObject({ sql, changed: false, touchesHypertable: false, rewrites: [] });
    expect(r.unchanged).toEqual([{ kind: 'statement', reason: 'reads no distributed hypertable' }]);
  });

  it('returns already-shippable SQL unchanged', () => {
    const sql = 'SELECT tags_id, max(usage_user) FROM cpu WHERE time >= $1 GROUP BY tags_id';
    const r = rewrite(sql);
    expect(r.changed).toBe(false);
    expect(r.sql).toBe(sql);
    expect(r.touchesHypertable).toBe(true);
  });

  it('does not take a CTE or another schema’s table of the same name for the hypertable', () => {
    expect(rewrite('WITH cpu AS (SELECT 1 AS tags_id, now() AS time) SELECT max(tags_id) FROM cpu WHERE time > now() - interval \'1 hour\'').touchesHypertable).toBe(false);
    expect(rewrite('SELECT max(usage_user) FROM other.cpu').touchesHypertable).toBe(false);
    expect(rewriteSql('SELECT max(usage_user) FROM cpu', META, { searchPath: ['other'] }).touchesHypertable).toBe(false);
  });

  it('throws the parser’s error on invalid SQL', () => {
    expect(() => rewrite('SELEC 1')).toThrow(/syntax error/);
  });

  it('leaves statements other than SELECT as they are, and rewrites the SELECTs beside them', () => {
    const r = rewrite(`UPDATE cpu SET ok = true WHERE time < now(); SELECT max(usage_user) FROM cpu`);
    expect(r.changed).toBe(true);
    expect(r.sql.startsWith('UPDATE cpu SET ok = true WHERE time < now();\n')).toBe(true);
    reparses(r.sql);
  });
});

describe('joins left on the access node', () => {
  const joined = (sql: string): string[] =>
    rewrite(sql)
      .unchanged.filter((u) => u.kind === 'statement' && !u.reason.startsWith('postgres_fdw already ships'))
      .map((u) => u.reason.replace(/ is joined on the access node.*$/, ''));

  it('names the FROM item a hypertable is joined with on the access node, never saying postgres_fdw ships it all', () => {
    expect(joined(`SELECT c.tags_id, count(*) FROM cpu c JOIN (VALUES (1), (2)) v(d) ON v.d = c.tags_id GROUP BY 1`)).toEqual(['the VALUES list v']);
    expect(joined(`SELECT * FROM cpu c, generate_series(1, 3) g WHERE c.tags_id = g LIMIT 5`)).toEqual(['the function call g']);
    expect(joined(`SELECT c.* FROM cpu c LEFT JOIN other.devices d ON d.id = c.tags_id`)).toEqual(['other.devices d (not distributed)']);
    // Through a sub-select or a CTE that reads the hypertable, and with a sub-select of local rows.
    expect(joined(`SELECT s.tags_id FROM (SELECT tags_id FROM cpu) s JOIN devices ON devices.id = s.tags_id`)).toEqual(['devices (not distributed)']);
    expect(joined(`WITH x AS (SELECT tags_id FROM cpu) SELECT count(*) FROM x JOIN (SELECT 1 AS d) l ON l.d = x.tags_id`)).toEqual(['the sub-select l']);
    expect(joined(`SELECT 1 FROM "we""ird schema"."Mé""trics; DROP" m JOIN "Odd ""T""" o ON o.k = m."dev""ice"`)).toEqual(['"Odd ""T""" o (not distributed)']);
    for (const sql of [`SELECT c.tags_id, count(*) FROM cpu c JOIN (VALUES (1)) v(d) ON v.d = c.tags_id GROUP BY 1`, `SELECT * FROM cpu, unnest(ARRAY[1]) u`]) {
      expect(rewrite(sql).unchanged.some((u) => u.reason.startsWith('postgres_fdw already ships')), sql).toBe(false);
    }
  });

  it('names nothing for a hypertable alone, joined with itself or read by a sub-select in WHERE', () => {
    expect(joined(`SELECT a.tags_id FROM cpu a JOIN cpu b ON b.tags_id = a.tags_id AND b.time = a.time`)).toEqual([]);
    expect(joined(`SELECT count(*) FROM cpu WHERE tags_id IN (SELECT id FROM devices)`)).toEqual([]);
    expect(joined(`SELECT x.n FROM (SELECT count(*) AS n FROM cpu) x`)).toEqual([]);
    // Groups, a DISTINCT or first rows of the hypertable, joined: not its rows (the join is over what the shards made).
    expect(joined(`WITH g AS (SELECT tags_id, avg(usage_user) AS a FROM cpu GROUP BY 1) SELECT d.name, g.a FROM g JOIN devices d ON d.id = g.tags_id`)).toEqual([]);
    expect(joined(`SELECT v.d, s.n FROM (SELECT count(*) AS n FROM cpu) s, (VALUES (1)) v(d)`)).toEqual([]);
    expect(joined(`SELECT * FROM devices d JOIN LATERAL (SELECT * FROM cpu c WHERE c.tags_id = d.id ORDER BY time DESC LIMIT 1) b ON true`)).toEqual([]);
    expect(joined(`SELECT * FROM (SELECT DISTINCT tags_id FROM cpu) k JOIN devices d ON d.id = k.tags_id`)).toEqual([]);
    // …but the hypertable's own rows joined with such groups are named, and a set operation with one arm of rows is rows.
    expect(joined(`WITH g AS (SELECT tags_id, max(time) AS t FROM cpu GROUP BY 1) SELECT c.* FROM cpu c JOIN g ON g.tags_id = c.tags_id AND g.t = c.time`)).toEqual(['g (not distributed)']);
    expect(joined(`SELECT u.tags_id FROM (SELECT tags_id FROM cpu GROUP BY 1 UNION ALL SELECT tags_id FROM cpu) u JOIN devices ON devices.id = u.tags_id`)).toEqual(['devices (not distributed)']);
    expect(joined(`SELECT u.tags_id FROM (SELECT tags_id FROM cpu GROUP BY 1 UNION ALL SELECT 1) u JOIN devices ON devices.id = u.tags_id`)).toEqual([]);
    expect(joined(`SELECT d.id FROM devices d JOIN (VALUES (1)) v(k) ON v.k = d.id`)).toEqual(['reads no distributed hypertable']);
  });
});

describe('stable expressions', () => {
  it('turns a now() window into an InitPlan constant', () => {
    const r = rewrite(`SELECT * FROM cpu WHERE time >= now() - interval '1 hour' AND tags_id > 3`);
    expect(r.sql).toBe(`SELECT * FROM cpu WHERE "time" >= ((SELECT now() - '1 hour'::interval)) AND tags_id > 3`);
    expect(r.rewrites).toEqual([{ kind: 'stable-expression', detail: `now() - '1 hour'::interval → evaluated once on the access node (InitPlan), shipped as a constant` }]);
  });

  it('pins a plain SELECT whose constant key hashes to one shard to that shard, behind the guard (a statement the gateway can route)', () => {
    const r = rewrite(`SELECT * FROM cpu WHERE tags_id = 3 AND usage_user > 90 ORDER BY time`);
    expect(r.sql.match(/_hypershard\.cpu_s\d/g)).toHaveLength(1);
    expect(r.sql).toContain('UNION ALL SELECT NULL');
    expect(r.rewrites.map((x) => x.kind)).toEqual(['shard-pinning']);
    expect(rewrite(`SELECT * FROM cpu WHERE tags_id IN (1, 2, 3, 4, 5, 6, 7, 8) ORDER BY time`).changed).toBe(false);
    // A string cast to an integer type is that integer (a bound value written as a literal); the same shard.
    for (const key of [`'3'::int`, `CAST(' 3' AS pg_catalog.int8)`, `'+3'::smallint`]) {
      expect(rewrite(`SELECT * FROM cpu WHERE tags_id = ${key} AND usage_user > 90 ORDER BY time`).sql.match(/_hypershard\.cpu_s\d/g), key).toEqual(r.sql.match(/_hypershard\.cpu_s\d/g));
    }
    // Not integers: not pinned by them.
    for (const key of [`'3'::text::int`, `'3.0'::int`, `'{3}'::int[]`, `'99999999999'::int8`]) {
      expect(rewrite(`SELECT * FROM cpu WHERE tags_id = ${key} ORDER BY time`).rewrites.map((x) => x.kind), key).not.toContain('shard-pinning');
    }
  });

  it('wraps CURRENT_TIMESTAMP, LOCALTIMESTAMP and date_trunc of a constant, and leaves literals and parameters', () => {
    const r = rewrite(`SELECT * FROM cpu WHERE time > CURRENT_TIMESTAMP - interval '1 day' AND time < date_trunc('day', now()) AND time <> '2026-01-01'::timestamptz AND time <> $1::timestamptz AND time::timestamp > LOCALTIMESTAMP`);
    expect(r.sql).toContain(`(SELECT CURRENT_TIMESTAMP - '1 day'::interval)`);
    expect(r.sql).toContain(`(SELECT date_trunc('day', now()))`);
    expect(r.sql).toContain(`(SELECT LOCALTIMESTAMP)`);
    expect(r.sql).toContain(`"time" <> '2026-01-01'::timestamptz`);
    expect(r.sql).toContain(`"time" <> CAST($1 AS timestamptz)`);
  });

  it('leaves casts of array literals alone, and never wraps the array side of ANY/ALL (it would read as a sub-select)', () => {
    const sql = "SELECT max(usage_user) FROM cpu WHERE tags_id = ANY (ARRAY[1, 2, 3]::int[]) AND time > now() - interval '1 hour'";
    // Constant keys: the shards they hash to are read, each with the array as written.
    expect(rewrite(sql).sql).toContain('cpu.tags_id = ANY (CAST(ARRAY[1, 2, 3] AS int[]))');
    expect(rewrite(sql.replace('ARRAY[1, 2, 3]', 'ARRAY[1, 2, $1]')).sql).toContain('unnest(CAST(ARRAY[1, 2, $1] AS int[]))');
    const stableArray = "SELECT count(*) FROM cpu WHERE time = ANY (ARRAY[now() - interval '1 hour'])";
    expect(rewrite(stableArray).sql).not.toMatch(/ANY \(\(SELECT/);
    reparses(rewrite(sql).sql);
  });

  it('never wraps volatile functions or expressions over columns', () => {
    expect(rewrite(`SELECT * FROM cpu WHERE time > clock_timestamp() - interval '1 hour'`).changed).toBe(false);
    expect(rewrite(`SELECT * FROM cpu WHERE usage_user > random() * 100`).changed).toBe(false);
    expect(rewrite(`SELECT * FROM cpu WHERE time + interval '1 day' > $1`).changed).toBe(false);
  });
});

describe('local dates compared with dates', () => {
  it('makes a range on the column, bounds at local midnights evaluated once, in a zone with a fixed offset', () => {
    const r = rewrite(`SELECT * FROM cpu WHERE time::date = current_date AND date(time) > '2026-01-01' AND current_date - 2 <= CAST(time AS date) AND time::date <> $1::date`);
    expect(r.sql).toBe(
      `SELECT * FROM cpu WHERE ("time" >= ((SELECT CAST(CAST(CURRENT_DATE AS date) AS timestamptz))) AND "time" < ((SELECT CAST(CAST(CURRENT_DATE AS date) + 1 AS timestamptz))))` +
        ` AND "time" >= ((SELECT CAST('2026-01-01'::date + 1 AS timestamptz)))` +
        ` AND "time" >= ((SELECT CAST(CAST(CURRENT_DATE - 2 AS date) AS timestamptz)))` +
        ` AND ("time" < ((SELECT CAST(CAST(CAST($1 AS date) AS date) AS timestamptz))) OR "time" >= ((SELECT CAST(CAST(CAST($1 AS date) AS date) + 1 AS timestamptz))))`,
    );
    expect(r.rewrites.map((x) => x.kind)).toEqual(['date-range', 'date-range', 'date-range', 'date-range']);
    expect(kinds(`SELECT * FROM cpu WHERE time::date < current_date`, 'Etc/GMT-3')).toEqual(['date-range']);
  });

  it('in a zone with daylight saving whose changes never touch a midnight (by its zone data): the same range, a date outside the data guarded', () => {
    const grid = (fixed: boolean, since = '1900-01-03'): ZoneGrid => ({ zone: 'America/New_York', hours: { minutes: 60, since: '1900-01-01T00:00:00.000Z' }, minutes: undefined, until: '2100-01-01T00:00:00.000Z', midnightsFixedSince: fixed ? since : undefined });
    const sql = `SELECT count(*) FROM cpu WHERE time::date = current_date AND time::date >= '2026-03-08'`;
    const r = rewriteSql(sql, META, { timeZone: 'America/New_York', zoneGrid: grid(true) });
    expect(r.sql).toContain(`"time" >= ((SELECT CASE WHEN CAST(CURRENT_DATE AS date) BETWEEN '1900-01-03'::date AND '2099-12-29'::date THEN CAST(CAST(CURRENT_DATE AS date) AS timestamptz) ELSE CAST(CAST(CAST('"${DATE_SPAN_GUARD_NAME}"' || pg_catalog.left(CURRENT_USER, 0) AS regclass) AS text) AS timestamptz) END))`);
    // A literal inside the span needs no guard.
    expect(r.sql).toContain(`"time" >= ((SELECT CAST('2026-03-08'::date AS timestamptz)))`);
    expect(r.rewrites.filter((x) => x.kind === 'date-range').map((x) => x.detail)).toEqual([expect.stringContaining('touches a local midnight'), expect.stringContaining('touches a local midnight')]);
    expect(Buffer.byteLength(DATE_SPAN_GUARD_NAME)).toBeLessThanOrEqual(63);
    reparses(r.sql);
    // A literal outside the span would always fail the guard: left as written. The span starts where the zone data says.
    expect(rewriteSql(`SELECT count(*) FROM cpu WHERE time::date < '2100-01-01'`, META, { timeZone: 'America/New_York', zoneGrid: grid(true) }).rewrites.map((x) => x.kind)).not.toContain('date-range');
    expect(rewriteSql(`SELECT count(*) FROM cpu WHERE time::date < '1950-01-01'`, META, { timeZone: 'America/New_York', zoneGrid: grid(true, '1949-10-05') }).rewrites.map((x) => x.kind)).toContain('date-range');
    expect(rewriteSql(`SELECT count(*) FROM cpu WHERE time::date < '1949-01-01'`, META, { timeZone: 'America/New_York', zoneGrid: grid(true, '1949-10-05') }).rewrites.map((x) => x.kind)).not.toContain('date-range');
    expect(rewriteSql(sql, META, { timeZone: 'America/New_York', zoneGrid: grid(true, '1949-10-05') }).sql).toContain(`BETWEEN '1949-10-05'::date AND '2099-12-29'::date`);
    // Changes that touch a midnight, or a grid of another zone: left as written.
    expect(rewriteSql(sql, META, { timeZone: 'America/New_York', zoneGrid: grid(false) }).rewrites.map((x) => x.kind)).not.toContain('date-range');
    expect(rewriteSql(sql, META, { timeZone: 'Europe/Berlin', zoneGrid: grid(true) }).rewrites.map((x) => x.kind)).not.toContain('date-range');
  });

  it('leaves it where the offset changes (without zone data), and where the other side is not plainly a date', () => {
    expect(kinds(`SELECT * FROM cpu WHERE time::date = current_date`, 'America/New_York')).not.toContain('date-range');
    expect(kinds(`SELECT * FROM cpu WHERE time::date >= now() - interval '1 day'`)).not.toContain('date-range');
    expect(kinds(`SELECT * FROM cpu WHERE time::date = tags_id + current_date`)).not.toContain('date-range');
  });
});

describe('time buckets', () => {
  it('turns time_bucket into date_bin with TimescaleDB’s Monday origin, its offset or its origin', () => {
    const one = rewrite(`SELECT time_bucket('5 minutes', time) AS b, tags_id, max(usage_user) FROM cpu GROUP BY b, tags_id`);
    expect(one.sql).toBe(`SELECT date_bin('5 minutes'::interval, "time", '2000-01-03 00:00:00+00'::timestamptz) AS b, tags_id, max(usage_user) FROM cpu GROUP BY b, tags_id`);
    expect(rewrite(`SELECT time_bucket('1 hour', time, interval '30 minutes') FROM cpu`).sql).toContain(`'2000-01-03 00:30:00+00'::timestamptz`);
    expect(rewrite(`SELECT time_bucket('1 hour', time, "offset" => '-15 minutes'::interval) FROM cpu`).sql).toContain(`'2000-01-02 23:45:00+00'::timestamptz`);
    expect(rewrite(`SELECT time_bucket('1 day', time, '2000-01-01 06:00+00'::timestamptz) FROM cpu`).sql).toContain(`date_bin('1 day'::interval, "time", '2000-01-01 06:00+00'::timestamptz)`);
    // Widths as Grafana's $__interval writes them, glued to their units as PostgreSQL reads them.
    expect(rewrite(`SELECT time_bucket('5m', time) FROM cpu`).sql).toContain(`date_bin('5 minutes'::interval, "time"`);
    expect(rewrite(`SELECT time_bucket('1h30m', time) FROM cpu`).sql).toContain(`date_bin('90 minutes'::interval, "time"`);
    // An offset of days, glued too, is still one PostgreSQL applies in the session's zone: left where that has daylight saving.
    expect(rewrite(`SELECT time_bucket('7d', time, '1d'::interval) FROM cpu`, 'Europe/Berlin').changed).toBe(false);
    expect(rewrite(`SELECT time_bucket('7d', time, '1 day'::interval) FROM cpu`, 'Europe/Berlin').changed).toBe(false);
    expect(rewrite(`SELECT time_bucket('7d', time, '1d'::interval) FROM cpu`, 'UTC').changed).toBe(true);
  });

  it('leaves month buckets, time zones and untyped third arguments with a reason', () => {
    for (const sql of [
      `SELECT time_bucket('1 month', time) FROM cpu`,
      `SELECT time_bucket('1 day', time, 'Europe/Berlin') FROM cpu`,
      `SELECT time_bucket('1 day', time, timezone => 'Europe/Berlin') FROM cpu`,
      `SELECT time_bucket('1 hour', region) FROM cpu`,
    ]) {
      const r = rewrite(sql);
      expect(r.changed, sql).toBe(false);
      expect(r.unchanged.some((u) => u.kind === 'time-bucket'), sql).toBe(true);
    }
  });

  it('turns date_trunc on timestamptz into date_bin only where the session time zone makes them equal', () => {
    expect(rewrite(`SELECT date_trunc('hour', time) FROM cpu`, 'UTC').sql).toBe(`SELECT date_bin('1 hour'::interval, "time", '2000-01-03 00:00:00+00'::timestamptz) AS date_trunc FROM cpu`);
    expect(rewrite(`SELECT date_trunc('week', time) FROM cpu`, 'Etc/UTC').sql).toContain(`date_bin('7 days'::interval`);
    expect(rewrite(`SELECT date_trunc('hour', time) FROM cpu`, 'Etc/GMT+5').changed).toBe(true);
    expect(rewrite(`SELECT date_trunc('day', time) FROM cpu`, 'Etc/GMT+5').changed).toBe(false);
    expect(rewrite(`SELECT date_trunc('second', time) FROM cpu`, 'Asia/Kolkata').changed).toBe(true);
    const berlin = rewrite(`SELECT date_trunc('hour', time) FROM cpu`, 'Europe/Berlin');
    expect(berlin.changed).toBe(false);
    expect(berlin.unchanged[0]?.reason).toMatch(/Europe\/Berlin/);
    expect(rewriteSql(`SELECT date_trunc('hour', time) FROM cpu`, META).unchanged[0]?.reason).toMatch(/time zone is not known/);
    expect(rewrite(`SELECT date_trunc('month', time) FROM cpu`).unchanged[0]?.reason).toMatch(/no fixed width/);
    // The 3-argument form and timestamp (without time zone) are immutable already.
    expect(rewrite(`SELECT date_trunc('hour', time, 'Europe/Berlin') FROM cpu`).changed).toBe(false);
    expect(rewrite(`SELECT date_trunc('hour', time::timestamp) FROM cpu`).changed).toBe(false);
  });
});

describe('IN (SELECT …)', () => {
  it('becomes = ANY(ARRAY(SELECT …)), computed once on the access node', () => {
    const r = rewrite(`SELECT * FROM cpu WHERE tags_id IN (SELECT id FROM tags WHERE hostname IN ('a', 'b'))`);
    expect(r.sql).toBe(`SELECT * FROM cpu WHERE tags_id = ANY (ARRAY(SELECT id FROM tags WHERE hostname IN ('a', 'b')))`);
  });

  it('leaves a correlated or row-valued IN', () => {
    expect(rewrite(`SELECT * FROM cpu c WHERE tags_id IN (SELECT id FROM tags t WHERE t.region = c.region)`).changed).toBe(false);
    expect(rewrite(`SELECT * FROM cpu WHERE (tags_id, ok) IN (SELECT id, true FROM tags)`).changed).toBe(false);
  });
});

describe('partial aggregates', () => {
  it('aggregates per shard and combines on the access node, keeping output names', () => {
    const r = rewrite(`SELECT date_bin('1 hour', time, '2000-01-01') AS hour, count(*), max(usage_user), avg(usage_user) AS mean FROM cpu WHERE time >= $1 GROUP BY hour HAVING count(*) > $2 ORDER BY hour DESC LIMIT 10`);
    expect(kinds(r.sql)).toEqual([]); // the output is final
    expect(r.rewrites.map((x) => x.kind)).toEqual(['partial-aggregate']);
    expect(r.sql).toContain('FROM _hypershard.cpu_s0 AS cpu WHERE cpu."time" >= $1 GROUP BY 1 UNION ALL');
    expect(r.sql).toContain('_hypershard.cpu_s3');
    expect(r.sql).toContain(`SELECT _hs.g0 AS hour, CAST(COALESCE(sum(_hs.p0), 0) AS bigint) AS count, max(_hs.p1) AS max, sum(_hs.p2) / CAST(NULLIF (sum(_hs.p3), 0) AS double precision) AS mean`);
    expect(r.sql).toMatch(/GROUP BY _hs\.g0 HAVING CAST\(COALESCE\(sum\(_hs\.p0\), 0\) AS bigint\) > \$2 ORDER BY hour DESC LIMIT 10$/);
  });

  it('shares partials between aggregates and keeps FILTER on them', () => {
    const r = rewrite(`SELECT region, count(usage_user) FILTER (WHERE ok), sum(bytes), avg(bytes), variance(amount), stddev_pop(usage_user), bool_and(ok), every(ok) FROM cpu GROUP BY region`);
    expect(r.sql).toContain('count(cpu.usage_user) FILTER (WHERE cpu.ok) AS p0');
    expect(r.sql).toContain('sum(cpu.bytes) AS p1');
    expect(r.sql).toContain('count(cpu.bytes) AS p2'); // avg(bytes) reuses sum(bytes)
    expect(r.sql).toContain('sqrt(');
    expect(r.sql).toContain('bool_and(_hs.p');
    expect(r.sql).toContain('AS every');
    reparses(r.sql);
  });

  it('casts sum of integers back to bigint, as sum(integer) is', () => {
    const meta: ClusterMetadata = { hypertables: [hypertable('public', 't', 'k', 'ts', [['ts', 'timestamptz'], ['k', 'integer'], ['n', 'integer']])], referenceTables: [] };
    expect(rewriteSql('SELECT sum(n) FROM t', meta).sql).toContain('CAST(sum(_hs.p0) AS bigint) AS sum');
  });

  it('leaves GROUP BY the space key to PostgreSQL, which already ships it', () => {
    expect(rewrite('SELECT tags_id, date_bin(\'1 hour\', time, \'2000-01-01\'), max(usage_user) FROM cpu GROUP BY 2, 1').changed).toBe(false);
  });

  it('refuses non-decomposable aggregates with a reason, and changes nothing else in that query', () => {
    for (const [sql, reason] of [
      [`SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY usage_user) FROM cpu`, /percentile_cont cannot be computed/],
      [`SELECT mode() WITHIN GROUP (ORDER BY region) FROM cpu`, /mode cannot be computed/],
      [`SELECT sum(DISTINCT amount) FROM cpu`, /values of numeric\(12,2\) are mostly distinct/],
      [`SELECT sum(DISTINCT usage_user * 2) FROM cpu`, /values of double precision are mostly distinct/],
      [`SELECT string_agg(DISTINCT region, ',') FROM cpu`, /string_agg cannot be computed/],
      [`SELECT string_agg(region, ',') FROM cpu`, /string_agg cannot be computed/],
      [`SELECT myagg(usage_user) FROM cpu GROUP BY region`, /myagg\(\) might be an aggregate/],
      [`SELECT sum(usage_user * 2::real) FROM cpu`, /type cannot be told/],
      [`SELECT region, max(usage_user) OVER () FROM cpu`, /window functions/],
    ] as const) {
      const r = rewrite(sql);
      expect(r.rewrites.filter((x) => x.kind === 'partial-aggregate'), sql).toEqual([]);
      expect(r.unchanged.map((u) => u.reason).join('\n'), sql).toMatch(reason);
    }
  });

  it('tells the type of arithmetic on numbers as PostgreSQL does, so such aggregates combine with their own result types', () => {
    expect(kinds(`SELECT sum(usage_user * 2), avg(usage_user + bytes) FROM cpu`)).toEqual(['partial-aggregate']);
    // sum(bigint) is numeric (so is the sum of its parts), sum(integer) bigint: the combined sums keep them.
    expect(rewrite(`SELECT sum(bytes * 8) AS b FROM cpu`).sql).toMatch(/^SELECT sum\(_hs\.p0\) AS b/);
    expect(rewrite(`SELECT sum(tags_id % 3) AS k FROM cpu`).sql).toMatch(/^SELECT CAST\(sum\(_hs\.p0\) AS bigint\) AS k/);
    expect(rewrite(`SELECT sum(amount * 3000000000) AS a FROM cpu`).sql).toMatch(/^SELECT sum\(_hs\.p0\) AS a/);
    expect(rewrite(`SELECT sum(tags_id * 3000000000) AS a FROM cpu`).sql).toMatch(/^SELECT sum\(_hs\.p0\) AS a/);
    expect(rewrite(`SELECT sum(tags_id * 3) AS a FROM cpu`).sql).toMatch(/^SELECT CAST\(sum\(_hs\.p0\) AS bigint\) AS a/);
  });

  it("splits hypershard's first/last into built-ins each shard runs, combined by first/last on the access node", () => {
    const meta: ClusterMetadata = { ...META, timescaledb: { schema: 'public' } };
    const r = rewriteSql(`SELECT tags_id, first(usage_user, time) AS f, last(usage_user, time) FILTER (WHERE ok) AS l FROM cpu GROUP BY 1`, meta, { timeZone: 'UTC' });
    // Grouped by the space key too: postgres_fdw never ships first/last as written.
    expect(r.rewrites.map((x) => x.kind)).toEqual(['partial-aggregate']);
    expect(r.sql).toContain(`(array_agg(cpu.usage_user ORDER BY cpu."time" ASC) FILTER (WHERE cpu."time" IS NOT NULL))[1] AS p0, min(cpu."time") FILTER (WHERE cpu."time" IS NOT NULL) AS p1`);
    expect(r.sql).toContain(`(array_agg(cpu.usage_user ORDER BY cpu."time" DESC) FILTER (WHERE cpu.ok AND cpu."time" IS NOT NULL))[1]`);
    expect(r.sql).toContain('public.first(_hs.p0, _hs.p1) AS f, public.last(_hs.p2, _hs.p3) AS l');
    expect(rewriteSql(`SELECT public.last(region, time) FROM cpu`, meta, { timeZone: 'UTC' }).rewrites.map((x) => x.kind)).toEqual(['partial-aggregate']);
    const hostile = rewriteSql(`SELECT first("va""lue", "ti me") FROM "we""ird schema"."Mé""trics; DROP"`, meta, { timeZone: 'UTC' });
    expect(hostile.rewrites.map((x) => x.kind)).toEqual(['partial-aggregate']);
    reparses(hostile.sql);
    // Not hypershard's (no TimescaleDB functions, another schema, off the search path), an order
    // that may differ between nodes (text), a value of a type the query does not tell: left as written.
    expect(kinds(`SELECT first(usage_user, time) FROM cpu`)).toEqual([]);
    expect(rewriteSql(`SELECT other.first(usage_user, time) FROM cpu`, meta, { timeZone: 'UTC' }).changed).toBe(false);
    expect(rewriteSql(`SELECT first(usage_user, time) FROM cpu`, meta, { timeZone: 'UTC', searchPath: ['app'] }).changed).toBe(false);
    expect(rewriteSql(`SELECT last(usage_user, region) FROM cpu`, meta, { timeZone: 'UTC' }).unchanged.map((u) => u.reason).join()).toMatch(/order of its second argument \(text\)/);
    expect(rewriteSql(`SELECT last(usage_user * 2::real, time) FROM cpu`, meta, { timeZone: 'UTC' }).unchanged.map((u) => u.reason).join()).toMatch(/value's type cannot be told/);
  });

  it('takes an unqualified name in a sub-select without FROM for the row’s, which keeps the sub-select on the access node', () => {
    for (const sql of [`SELECT (SELECT tags_id::text), count(*) FROM cpu GROUP BY 1`, `SELECT (SELECT tags_id % 3) AS k, count(*) FROM cpu GROUP BY 1`, `SELECT max((VALUES (usage_user))) FROM cpu`]) {
      const r = rewrite(sql);
      expect(r.rewrites.filter((x) => x.kind === 'partial-aggregate'), sql).toEqual([]);
      expect(r.unchanged.map((u) => u.reason).join(), sql).toMatch(/sub-select that refers to the row/);
    }
    // A sub-select of its own rows, or of none: a constant by then, even when its own FROM has the outer table's name.
    expect(kinds(`SELECT count(*) FROM cpu WHERE usage_user > (SELECT 50)`)).toEqual(['partial-aggregate']);
    const same = rewrite(`SELECT tags_id, usage_user FROM cpu WHERE usage_user = (SELECT max(usage_user) FROM cpu)`);
    expect(same.unchanged).toEqual([]);
    expect(rewrite(`SELECT count(*) FROM cpu c WHERE usage_user > (SELECT max(x.usage_user) FROM cpu x WHERE x.tags_id = c.tags_id)`).unchanged.map((u) => u.reason).join()).toMatch(/sub-select that refers to the row/);
  });

  it('combines count(DISTINCT space key): one key lives on one shard', () => {
    expect(kinds('SELECT region, count(DISTINCT tags_id) FROM cpu GROUP BY region')).toEqual(['partial-aggregate']);
  });

  it("groups Grafana's epoch buckets per shard by date_bin from the epoch, in any zone, finished as written on the access node", () => {
    for (const zone of ['UTC', 'America/New_York', undefined]) {
      const r = rewriteSql(`SELECT floor(extract(epoch from "time")/300)*300 AS "time", avg(usage_user) FROM cpu WHERE time BETWEEN '2026-12-07T10:00:00Z' AND '2026-12-07T16:00:00Z' GROUP BY 1 ORDER BY 1`, META, { timeZone: zone });
      expect(r.rewrites.map((x) => x.kind), zone).toEqual(['partial-aggregate']);
      expect(r.sql).toContain(
        `CASE WHEN cpu."time" >= '1337-01-01 00:00:00+00'::timestamptz AND cpu."time" < '2603-01-01 00:00:00+00'::timestamptz THEN date_bin('300 seconds'::interval, cpu."time", '1970-01-01 00:00:00+00'::timestamptz) ELSE cpu."time" END AS g0`,
      );
      expect(r.sql).toContain('GROUP BY floor(EXTRACT(EPOCH FROM _hs.g0) / 300) * 300');
    }
    // Arithmetic and numeric casts around the floor, a bucket of half a second.
    expect(rewrite(`SELECT (floor(extract(epoch from time)/3600)*3600)::bigint * 1000 AS t, max(usage_user) FROM cpu GROUP BY 1`).sql).toContain(`GROUP BY CAST(floor(EXTRACT(EPOCH FROM _hs.g0) / 3600) * 3600 AS bigint) * 1000`);
    expect(rewrite(`SELECT floor(extract(epoch from time)/0.5) AS t, count(*) FROM cpu GROUP BY 1`).sql).toContain(`date_bin('0.5 seconds'::interval`);
    const hostile = rewrite(`SELECT floor(extract(epoch from "ti me")/60)*60 AS t, count(*) FROM "we""ird schema"."Mé""trics; DROP" GROUP BY 1`);
    expect(hostile.rewrites.map((x) => x.kind)).toEqual(['partial-aggregate']);
    reparses(hostile.sql);
    // Not constant over a bucket, or not the epoch: left as written.
    for (const key of [
      'extract(epoch from time)',
      'extract(epoch from time)/300',
      'floor(extract(epoch from time)/300) + usage_user',
      'floor(extract(epoch from time)/0)',
      'floor(extract(epoch from time)/-60)',
      'floor(extract(epoch from time)/300) * random()',
      'floor(date_part(\'epoch\', time)/300)',
      'floor(extract(epoch from time)/300) + floor(extract(epoch from time)/60)',
      'floor(extract(epoch from time)::float8/300)',
    ]) {
      expect(kinds(`SELECT ${key}, count(*) FROM cpu GROUP BY 1`), key).toEqual([]);
    }
  });

  it('groups a key that only wraps a shippable value per shard by that value, finished on the access node', () => {
    const series = rewrite(`SELECT tags_id::text AS metric, max(usage_user) FROM cpu GROUP BY 1 ORDER BY 1`);
    expect(series.rewrites.map((x) => x.kind)).toEqual(['partial-aggregate']);
    expect(series.sql).toContain('SELECT cpu.tags_id AS g0');
    expect(series.sql).toContain('GROUP BY _hs.g0::text');
    expect(rewrite(`SELECT to_char(date_bin('1 day', time, '2000-01-01'::timestamptz), 'YYYY-MM-DD') AS d, count(*) FROM cpu GROUP BY 1`).sql).toContain(`GROUP BY to_char(_hs.g0, 'YYYY-MM-DD')`);
    expect(rewrite(`SELECT COALESCE(region, '?') AS r, count(*) FROM cpu GROUP BY 1`).sql).toContain(`GROUP BY COALESCE(_hs.g0, '?')`);
    const hostile = rewrite(`SELECT "dev""ice"::text AS d, count(*) FROM "we""ird schema"."Mé""trics; DROP" GROUP BY 1`);
    expect(hostile.rewrites.map((x) => x.kind)).toEqual(['partial-aggregate']);
    reparses(hostile.sql);
    // A group per instant or per reading, two values, a volatile or unknown function: left as written.
    for (const key of ['to_char(time, \'YYYY\')', 'usage_user::text', 'amount::text', 'tags_id::text || region', 'upper(region) || random()::text', 'public.f(tags_id)']) {
      expect(kinds(`SELECT ${key}, count(*) FROM cpu GROUP BY 1`), key).toEqual([]);
    }
  });

  it('groups keys that read the session zone per shard by a bucket of time in fixed-offset zones, finished on the access node', () => {
    const r = rewrite(`SELECT extract(hour FROM time) AS h, date_trunc('month', time) AS m, max(usage_user) FROM cpu GROUP BY 1, 2 ORDER BY 1`);
    expect(r.rewrites.map((x) => x.kind)).toEqual(['partial-aggregate']);
    expect(r.sql).toContain(`date_bin('1 hour'::interval, cpu."time", '2000-01-03 00:00:00+00'::timestamptz) AS g0, date_bin('1 day'::interval, cpu."time", '2000-01-03 00:00:00+00'::timestamptz) AS g1`);
    expect(r.sql).toContain(`GROUP BY EXTRACT(HOUR FROM _hs.g0), date_trunc('month', _hs.g1)`);
    // date_trunc('month', …) ships after all: no longer said to stay on the access node.
    expect(r.unchanged).toEqual([]);
    // A zone five hours behind UTC: its local days start at 05:00 UTC.
    const behind = rewrite(`SELECT time::date AS d, count(*) FROM cpu GROUP BY 1`, 'Etc/GMT+5');
    expect(behind.sql).toContain(`date_bin('1 day'::interval, cpu."time", '2000-01-03 05:00:00+00'::timestamptz) AS g0`);
    expect(behind.sql).toContain('GROUP BY _hs.g0::date');
    expect(rewrite(`SELECT date(time) AS d, count(*) FROM cpu GROUP BY 1`, 'Etc/GMT-9').sql).toContain(`'2000-01-02 15:00:00+00'`);
    // Grouped by the space key too, PostgreSQL would still aggregate on the access node: per shard instead.
    expect(kinds(`SELECT tags_id, date_part('dow', time), avg(usage_user) FROM cpu GROUP BY 1, 2`)).toEqual(['partial-aggregate']);
    // Daylight saving (or no known zone): a fixed-width bucket could straddle a local boundary.
    for (const zone of ['America/New_York', 'Asia/Kolkata', undefined]) {
      const left = rewriteSql(`SELECT time::date AS d, count(*) FROM cpu GROUP BY 1`, META, { timeZone: zone });
      expect(left.changed, zone).toBe(false);
      expect(left.unchanged.map((u) => u.reason).join(), zone).toMatch(/timestamptz cast to date is STABLE/);
    }
    const hostile = rewrite(`SELECT extract(hour FROM "ti me") AS h, count(DISTINCT "dev""ice") FROM "we""ird schema"."Mé""trics; DROP" GROUP BY 1`);
    expect(hostile.rewrites.map((x) => x.kind)).toEqual(['partial-aggregate']);
    reparses(hostile.sql);
    // Fields finer than a minute, or not constant over a local day, are not keyed by a bucket.
    for (const field of ['second', 'epoch', 'julian']) expect(kinds(`SELECT date_part('${field}', time), count(*) FROM cpu GROUP BY 1`), field).toEqual([]);
  });

  it('ships a filter on the local hour or minute as whole hours or minutes between date_bin buckets, in fixed-offset zones', () => {
    const r = rewrite(`SELECT count(*) FROM cpu WHERE extract(hour FROM time) >= 9 AND 30 > date_part('minute', time)`, 'Etc/GMT-2');
    expect(r.rewrites.map((x) => x.kind)).toEqual(['local-field', 'local-field', 'partial-aggregate']);
    expect(r.sql).toContain(`(date_bin('1 hour'::interval, cpu."time", '2000-01-02 22:00:00+00'::timestamptz) - date_bin('1 day'::interval, cpu."time", '2000-01-02 22:00:00+00'::timestamptz)) >= '9 hours'::interval`);
    expect(r.sql).toContain(`- date_bin('1 hour'::interval, cpu."time", '2000-01-02 22:00:00+00'::timestamptz)) < '30 minutes'::interval`);
    expect(kinds(`SELECT count(*) FROM cpu WHERE extract(hour FROM time) = 0`)).toEqual(['local-field', 'partial-aggregate']);
    for (const zone of ['America/New_York', undefined]) expect(rewriteSql(`SELECT * FROM cpu WHERE extract(hour FROM time) >= 9`, META, { timeZone: zone }).changed, zone).toBe(false);
    // Not a number, or a field it does not count: left.
    expect(kinds(`SELECT * FROM cpu WHERE extract(hour FROM time) >= tags_id`)).toEqual([]);
    expect(kinds(`SELECT * FROM cpu WHERE extract(second FROM time) >= 9`)).toEqual([]);
    expect(kinds(`SELECT * FROM cpu WHERE extract(hour FROM time) < 1e400`)).toEqual([]);
    expect(rewrite(`SELECT count(*) FROM cpu WHERE extract(hour FROM time) > -1.5`).sql).toContain(`> '-1.5 hours'::interval`);
  });

  it('ships a local-hour filter in a zone with daylight saving over a literal range of time with no offset change in it', () => {
    const at = (iso: string): number => Date.parse(iso) / 1000;
    const changes = [
      { at: at('1900-01-01T00:00:00Z'), before: -18_000, after: -18_000, whole: true },
      { at: at('2026-03-08T07:00:00Z'), before: -18_000, after: -14_400, whole: true },
      { at: at('2026-11-01T06:00:00Z'), before: -14_400, after: -18_000, whole: true },
    ];
    const zoneGrid: ZoneGrid = { zone: 'America/New_York', hours: { minutes: 60, since: '1900-01-01T00:00:00.000Z' }, minutes: undefined, until: '2100-01-01T00:00:00.000Z', midnightsFixedSince: '1900-01-03', changes };
    const ny = (sql: string) => rewriteSql(sql, META, { timeZone: 'America/New_York', zoneGrid });
    const fields = (sql: string): number => ny(sql).rewrites.filter((x) => x.kind === 'local-field').length;
    // Winter: EST, local midnight 05:00 UTC.
    const winter = ny(`SELECT count(*) FROM cpu WHERE time >= '2026-01-05T00:00:00Z' AND time < '2026-01-06 00:00:00+00' AND extract(hour FROM time) >= 9`);
    expect(winter.sql).toContain(`date_bin('1 hour'::interval, cpu."time", '2000-01-03 05:00:00+00'::timestamptz) - date_bin('1 day'::interval, cpu."time", '2000-01-03 05:00:00+00'::timestamptz)) >= '9 hours'::interval`);
    expect(winter.rewrites.find((x) => x.kind === 'local-field')?.detail).toContain('at -05:00 all through');
    reparses(winter.sql);
    // Summer, BETWEEN and a cast, the bounds in either order: EDT, 04:00 UTC.
    expect(ny(`SELECT count(*) FROM cpu WHERE time BETWEEN '2026-06-01T00:00:00Z'::timestamptz AND '2026-06-02T00:00:00Z' AND date_part('hour', time) < 17`).sql).toContain(`'2000-01-03 04:00:00+00'::timestamptz`);
    expect(fields(`SELECT count(*) FROM cpu WHERE '2026-06-02T00:00:00-04' > time AND '2026-06-01T00:00:00-0400' <= time AND extract(hour FROM time) < 17`)).toBe(1);
    // From the instant of a change on: one offset (the change at the lower bound is before every row).
    expect(fields(`SELECT count(*) FROM cpu WHERE time >= '2026-11-01T06:00:00Z' AND time < '2026-11-02T00:00:00Z' AND extract(hour FROM time) = 1`)).toBe(1);
    // Left as written: a change inside (or at the upper bound), a bound without an offset, one bound only, a range inside OR, a hand-made grid without its changes.
    for (const sql of [
      `SELECT count(*) FROM cpu WHERE time >= '2026-03-01T00:00:00Z' AND time < '2026-03-15T00:00:00Z' AND extract(hour FROM time) >= 9`,
      `SELECT count(*) FROM cpu WHERE time >= '2026-11-01T00:00:00Z' AND time < '2026-11-01T06:00:00Z' AND extract(hour FROM time) >= 9`,
      `SELECT count(*) FROM cpu WHERE time >= '2026-01-05 00:00:00' AND time < '2026-01-06T00:00:00Z' AND extract(hour FROM time) >= 9`,
      `SELECT count(*) FROM cpu WHERE time >= '2026-01-05T00:00:00Z' AND extract(hour FROM time) >= 9`,
      `SELECT count(*) FROM cpu WHERE (time >= '2026-01-05T00:00:00Z' AND time < '2026-01-06T00:00:00Z') OR extract(hour FROM time) >= 9`,
    ]) expect(fields(sql), sql).toBe(0);
    // Hostile names: the column as written, quoted, in the range and in the filter.
    const hostile = ny(`SELECT count(*) FROM "we""ird schema"."Mé""trics; DROP" WHERE "ti me" >= '2026-01-05T00:00:00Z' AND "ti me" < '2026-01-06T00:00:00Z' AND extract(hour FROM "ti me") >= 9`);
    expect(hostile.rewrites.filter((x) => x.kind === 'local-field')).toHaveLength(1);
    reparses(hostile.sql);
    const { changes: _dropped, ...handMade } = zoneGrid;
    expect(rewriteSql(`SELECT count(*) FROM cpu WHERE time >= '2026-01-05T00:00:00Z' AND time < '2026-01-06T00:00:00Z' AND extract(hour FROM time) >= 9`, META, { timeZone: 'America/New_York', zoneGrid: handMade }).rewrites.map((x) => x.kind)).not.toContain('local-field');
  });

  it('computes count(DISTINCT x) and other DISTINCT aggregates from the distinct values each shard returns per group', () => {
    const r = rewrite(`SELECT date_bin('1 hour', time, '2000-01-01') AS h, count(DISTINCT region) AS regions, count(DISTINCT ok) FILTER (WHERE usage_user > 1) AS b, count(*) AS n FROM cpu GROUP BY 1 ORDER BY 1`);
    expect(r.rewrites.map((x) => x.kind)).toEqual(['partial-aggregate']);
    expect(r.rewrites[0]?.detail).toContain('count(DISTINCT cpu.region), count(DISTINCT cpu.ok) FILTER (WHERE cpu.usage_user > 1) from the distinct values each shard returns per group');
    // Each shard groups by the hour and by the values; a FILTER's dropped rows give NULL, which DISTINCT aggregates skip.
    expect(r.sql).toContain(`cpu.region AS d0, CASE WHEN cpu.usage_user > 1 THEN cpu.ok END AS d1, count(*) AS p0 FROM _hypershard.cpu_s0 AS cpu GROUP BY 1, 2, 3`);
    expect(r.sql).toContain('count(DISTINCT _hs.d0) AS regions, count(DISTINCT _hs.d1) AS b, CAST(COALESCE(sum(_hs.p0), 0) AS bigint) AS n');
    expect(r.sql).toContain('GROUP BY _hs.g0');
    // A DISTINCT count over the space key beside one by values is by values too: per-value parts would count a key once per value.
    const both = rewrite('SELECT count(DISTINCT tags_id) AS hosts, count(DISTINCT region) AS regions FROM cpu');
    expect(both.sql).toContain('SELECT cpu.tags_id AS d0, cpu.region AS d1 FROM _hypershard.cpu_s0 AS cpu GROUP BY 1, 2');
    expect(both.sql).toContain('count(DISTINCT _hs.d0) AS hosts, count(DISTINCT _hs.d1) AS regions');
    expect(kinds('SELECT count(DISTINCT region), sum(DISTINCT tags_id) FROM cpu WHERE tags_id = 3')).toEqual(['partial-aggregate', 'shard-pinning']);
  });

  it('resolves GROUP BY ordinals and output names, and an input column over an output name', () => {
    expect(rewrite(`SELECT date_bin('1 hour', time, '2000-01-01') AS h, max(usage_user) FROM cpu GROUP BY 1`).sql).toContain('GROUP BY _hs.g0');
    // `region` is both an output name and a column: GROUP BY means the column.
    const r = rewrite(`SELECT upper(region) AS region, max(usage_user) FROM cpu GROUP BY region`);
    expect(r.sql).toContain('SELECT cpu.region AS g0');
    expect(r.sql).toContain('upper(_hs.g0) AS region');
  });
});

describe('ORDER BY … LIMIT per shard', () => {
  it('sends the LIMIT (plus OFFSET) to every shard and merges', () => {
    const r = rewrite(`SELECT time, usage_user FROM cpu WHERE usage_user > 90 ORDER BY time DESC LIMIT 10 OFFSET 5`);
    expect(r.sql).toContain('(SELECT * FROM _hypershard.cpu_s0 AS cpu WHERE cpu.usage_user > 90 ORDER BY cpu."time" DESC LIMIT 15)');
    expect(r.sql).toMatch(/\) AS cpu ORDER BY cpu\."time" DESC LIMIT 10 OFFSET 5$/);
    expect(kinds(`SELECT * FROM cpu ORDER BY time LIMIT $1`)).toEqual(['limit-per-shard']);
  });

  it('refuses to sort text on the data nodes, whose collation may differ', () => {
    const r = rewrite(`SELECT * FROM cpu ORDER BY region LIMIT 3`);
    expect(r.changed).toBe(false);
    expect(r.unchanged[0]?.reason).toMatch(/text sorts by collation/);
  });

  it('leaves a LATERAL LIMIT without ORDER BY alone, saying why', () => {
    const r = rewrite(`SELECT * FROM tags t JOIN LATERAL (SELECT * FROM cpu c WHERE c.tags_id = t.id LIMIT 1) b ON true`);
    expect(r.changed).toBe(false);
    expect(r.unchanged).toEqual([
      { kind: 'limit-per-shard', reason: expect.stringMatching(/^LIMIT without ORDER BY per row of an outer query \(t\.id\): run-time partition pruning/) },
    ]);
  });

  it('rewrites a LATERAL top-1 per key, gated to the key’s shard', () => {
    const r = rewrite(`SELECT * FROM tags t JOIN LATERAL (SELECT * FROM cpu c WHERE c.tags_id = t.id ORDER BY time DESC LIMIT 1) b ON true`);
    expect(r.rewrites.map((x) => x.kind)).toEqual(['limit-per-shard', 'shard-pinning']);
    expect(r.sql).toContain(`satisfies_hash_partition(CAST(CAST('"public"."cpu"' AS regclass) AS oid), 4, 2, t.id::int)`);
  });
});

describe('DISTINCT ON the space key', () => {
  it('takes the keys from a GROUP BY each shard finishes, then probes each key’s shard for its row', () => {
    const r = rewrite(`SELECT DISTINCT ON (tags_id) * FROM cpu WHERE usage_user > 1 ORDER BY tags_id, time DESC`);
    expect(r.rewrites.map((x) => x.kind)).toEqual(['distinct-on-per-shard', 'shard-pinning']);
    expect(r.sql).toMatch(/^SELECT cpu\.\* FROM \( SELECT cpu\.tags_id AS k FROM public\.cpu AS cpu WHERE cpu\.usage_user > 1 GROUP BY 1 \) AS _hs_keys CROSS JOIN LATERAL/);
    expect(r.sql).toContain(`ORDER BY cpu."time" DESC LIMIT 1 ) AS _hs_arm WHERE CASE WHEN _hs_keys.k BETWEEN`);
    expect(r.sql).toMatch(/ORDER BY cpu\.tags_id, cpu\."time" DESC$/);
  });

  it('leaves DISTINCT ON anything else, or a nullable key, with a reason', () => {
    expect(rewrite(`SELECT DISTINCT ON (region) * FROM cpu ORDER BY region, time DESC`).unchanged[0]?.reason).toMatch(/not DISTINCT ON the space key/);
    expect(rewrite(`SELECT DISTINCT ON (tags_id) * FROM cpu ORDER BY time DESC`).unchanged[0]?.reason).toMatch(/does not start with the space key/);
    const nullable: ClusterMetadata = { hypertables: [{ ...CPU, columns: CPU.columns.map((c) => ({ ...c, notNull: false })) }], referenceTables: [] };
    expect(rewriteSql(`SELECT DISTINCT ON (tags_id) * FROM cpu ORDER BY tags_id, time DESC`, nullable).unchanged[0]?.reason).toMatch(/may be NULL/);
  });
});

describe('reference tables', () => {
  const TAGS = {
    table: { schema: 'public', name: 'tags' },
    columns: [{ name: 'id', type: 'integer' }, { name: 'hostname', type: 'text' }, { name: 'rack', type: 'text' }],
    copies: CPU.shards.map((s) => ({ server: s.server, table: { schema: '_hypershard', name: `tags_${s.server}` } })),
  };
  const withTags: ClusterMetadata = { hypertables: [CPU], referenceTables: [TAGS] };

  it('runs a join with a reference table beside each shard, against that server’s copy', () => {
    const r = rewriteSql(`SELECT rack, max(usage_user) FROM cpu c JOIN tags t ON c.tags_id = t.id WHERE hostname LIKE 'host_%' GROUP BY rack`, withTags);
    expect(r.rewrites.map((x) => x.kind)).toEqual(['partial-aggregate', 'reference-join']);
    expect(r.sql).toContain('FROM _hypershard.cpu_s0 AS c JOIN _hypershard.tags_srv_0_0 AS t ON c.tags_id = t.id WHERE t.hostname LIKE');
    expect(r.sql).toContain('FROM _hypershard.cpu_s3 AS c JOIN _hypershard.tags_srv_1_3 AS t ON');
  });

  it('leaves a join with a table that is not a reference table, or an outer join', () => {
    const r = rewrite(`SELECT rack, max(usage_user) FROM cpu c JOIN tags t ON c.tags_id = t.id GROUP BY rack`);
    expect(r.rewrites).toEqual([]);
    expect(rewriteSql(`SELECT t.rack, max(c.usage_user) FROM tags t LEFT JOIN cpu c ON c.tags_id = t.id GROUP BY 1`, withTags).rewrites).toEqual([]);
  });
});

describe('shard pinning', () => {
  it('gates each shard’s arm on PostgreSQL’s own hash routing, for =, IN and = ANY', () => {
    // Constant keys: only the arms of the shards they hash to (PostgreSQL's hash: 42 → remainder 2 of 4, 1 → 0, 2 → 2, checked against satisfies_hash_partition()).
    const pinned = rewrite('SELECT max(usage_user) FROM cpu WHERE tags_id = 42');
    expect(pinned.sql.match(/_hypershard\.cpu_s\d/g)).toEqual(['_hypershard.cpu_s2']);
    expect(pinned.rewrites.map((x) => x.detail)).toEqual(['the aggregate lacks the space key tags_id: each of 1 shard aggregates its own rows on its data node, the access node combines max(cpu.usage_user)', 'tags_id = 42: only the shard that value hashes to is read']);
    expect(rewrite('SELECT max(usage_user) FROM cpu WHERE tags_id IN (1, 2)').sql.match(/_hypershard\.cpu_s\d/g)).toEqual(['_hypershard.cpu_s0', '_hypershard.cpu_s2']);
    // Written as a driver's untyped values are (strings the column's type reads) and as arrays: the same shards.
    for (const where of [`tags_id = '42'`, `tags_id = ' +42 '`, `'42' = tags_id`, `tags_id = ANY ('{42}')`, `tags_id = ANY ('{"42"}')`, `tags_id = ANY ('{42}'::int[])`, `tags_id = ANY (ARRAY[42])`]) {
      expect(rewrite(`SELECT max(usage_user) FROM cpu WHERE ${where}`).sql.match(/_hypershard\.cpu_s\d/g), where).toEqual(['_hypershard.cpu_s2']);
    }
    expect(rewrite(`SELECT max(usage_user) FROM cpu WHERE tags_id IN ('1', '2')`).sql.match(/_hypershard\.cpu_s\d/g)).toEqual(['_hypershard.cpu_s0', '_hypershard.cpu_s2']);
    expect(rewrite(`SELECT max(usage_user) FROM cpu WHERE tags_id = ANY ('{1, "2"}')`).sql.match(/_hypershard\.cpu_s\d/g)).toEqual(['_hypershard.cpu_s0', '_hypershard.cpu_s2']);
    // A string out of a smallint key's range is PostgreSQL's error (as the parameter would be), not an empty answer: no shard is pinned by it.
    const small: ClusterMetadata = { hypertables: [hypertable('public', 'small', 'k', 'time', [['time', 'timestamptz'], ['k', 'smallint'], ['v', 'double precision']])], referenceTables: [] };
    const pin = (where: string): string => rewriteSql(`SELECT max(v) FROM small WHERE ${where}`, small, { timeZone: 'UTC' }).rewrites.find((x) => x.kind === 'shard-pinning')?.detail ?? '';
    expect(pin(`k = '7'`)).toMatch(/only the shard/);
    for (const where of [`k = '40000'`, `k IN ('7', '40000')`, `k = ANY ('{7,40000}')`]) expect(pin(where), where).not.toMatch(/: only the/);
    // A LIMIT and OFFSET written as strings (LIMIT reads them as numbers) are per-shard LIMITs too.
    const limited = rewrite(`SELECT * FROM cpu WHERE tags_id = '42' ORDER BY time DESC LIMIT '5' OFFSET '2'`);
    expect(limited.rewrites.map((x) => x.kind)).toEqual(['limit-per-shard', 'shard-pinning']);
    expect(limited.sql).toContain('ORDER BY cpu."time" DESC LIMIT 7)');
    // Not a constant the column reads as the number (a cast to text, hex, a NULL element, a quoted comma): not pinned by it.
    for (const where of [`tags_id = '0x2A'`, `tags_id = ANY ('{42,NULL}')`, `tags_id = ANY ('{"4,2"}')`, `tags_id = ANY ('{}')`, `tags_id = '42'::text::int`]) {
      expect(rewrite(`SELECT max(usage_user) FROM cpu WHERE ${where}`).rewrites.find((x) => x.kind === 'shard-pinning')?.detail ?? '', where).not.toMatch(/only the shard/);
    }
    // Run-time keys: each arm is sent the keys that hash to its shard, as a filter on the space column (shipped).
    expect(rewrite('SELECT max(usage_user) FROM cpu WHERE tags_id = $1').sql).toContain(
      `cpu.tags_id = ANY (ARRAY(SELECT _hs_key.v FROM unnest(ARRAY[CAST($1 AS int)]) AS _hs_key(v) WHERE CASE WHEN _hs_key.v BETWEEN -2147483648 AND 2147483647 THEN satisfies_hash_partition(CAST(CAST('"public"."cpu"' AS regclass) AS oid), 4, 0, _hs_key.v::int) ELSE false END))`,
    );
    expect(rewrite('SELECT max(usage_user) FROM cpu WHERE tags_id IN (1, 2)').rewrites.map((x) => x.kind)).toEqual(['partial-aggregate', 'shard-pinning']);
    // The untyped parameter typed as the conjunct it stands for typed it; that conjunct is not kept beside it (the planner would count it twice).
    const any = rewrite('SELECT max(usage_user) FROM cpu WHERE tags_id = ANY($1) AND usage_user > 1').sql;
    expect(any).toContain('WHERE cpu.usage_user > 1 AND cpu.tags_id = ANY (ARRAY(SELECT _hs_key.v FROM unnest(CAST(ARRAY[] AS int[]) || $1) AS _hs_key(v) WHERE');
    expect(any).not.toContain('cpu.tags_id = ANY ($1)');
  });

  it('window functions: the one shard a constant key pins is read (a router read then runs them on its data node), else left, with the reason', () => {
    const pinned = rewrite(`SELECT time, lag(usage_user) OVER (ORDER BY time) AS prev FROM cpu WHERE tags_id = 42 ORDER BY time LIMIT 5`);
    expect(pinned.rewrites.map((x) => x.kind)).toEqual(['shard-pinning']);
    expect(pinned.sql.match(/_hypershard\.cpu_s\d/g)).toEqual(['_hypershard.cpu_s2']);
    expect(pinned.sql).toMatch(/^SELECT cpu\."time", lag\(cpu\.usage_user\) OVER \(ORDER BY cpu\."time"\) AS prev FROM \( SELECT \* FROM _hypershard\.cpu_s2 AS cpu WHERE cpu\.tags_id = 42 UNION ALL SELECT NULL/);
    expect(pinned.sql).toMatch(/ORDER BY cpu\."time" LIMIT 5$/);
    expect(pinned.unchanged.map((u) => u.reason)).toEqual(['window functions: postgres_fdw ships none, so they run on the access node over the one shard’s rows (a router read runs the statement whole on its data node)']);
    reparses(pinned.sql);
    for (const sql of [`SELECT tags_id, row_number() OVER (PARTITION BY tags_id ORDER BY time) FROM cpu`, `SELECT row_number() OVER () FROM cpu WHERE tags_id IN (1, 2)`, `SELECT row_number() OVER () FROM cpu WHERE tags_id = $1`]) {
      const left = rewrite(sql);
      expect(left.changed, sql).toBe(false);
      expect(left.unchanged.map((u) => u.reason), sql).toContain('window functions: postgres_fdw ships none, so they run on the access node over the rows the shards send');
    }
  });

  it('an aggregate that cannot be split is computed whole where each group lies: on the one shard left, or per shard grouped by the key under a LIMIT', () => {
    const r = rewrite(`SELECT date_bin('1 hour', time, '2000-01-01') AS h, percentile_cont(0.5) WITHIN GROUP (ORDER BY usage_user), count(*) FROM cpu WHERE tags_id = 42 GROUP BY 1 HAVING count(*) > 2 ORDER BY 1 DESC LIMIT 3`);
    expect(r.rewrites.map((x) => x.kind)).toEqual(['partial-aggregate', 'shard-pinning']);
    expect(r.unchanged).toEqual([]);
    expect(r.sql.match(/_hypershard\.cpu_s\d/g)).toEqual(['_hypershard.cpu_s2']);
    expect(r.sql).toContain(`WITH _hs AS MATERIALIZED (SELECT date_bin('1 hour', cpu."time", '2000-01-01') AS g0, percentile_cont(0.5) WITHIN GROUP (ORDER BY cpu.usage_user) AS p0, count(*) AS p1 FROM _hypershard.cpu_s2 AS cpu WHERE cpu.tags_id = 42 GROUP BY 1 UNION ALL SELECT NULL, NULL, NULL WHERE (SELECT CASE`);
    // The groups are put together, not regrouped; HAVING filters them.
    expect(r.sql).toMatch(/\) SELECT _hs\.g0 AS h, _hs\.p0 AS percentile_cont, _hs\.p1 AS count FROM _hs WHERE _hs\.p1 > 2 ORDER BY 1 DESC LIMIT 3$/);
    reparses(r.sql);
    const top = rewrite(`SELECT tags_id, percentile_cont(0.95) WITHIN GROUP (ORDER BY usage_user) AS p95 FROM cpu GROUP BY 1 ORDER BY 2 DESC LIMIT 10`);
    expect(top.rewrites.map((x) => x.kind)).toEqual(['partial-aggregate']);
    expect(top.sql.match(/_hypershard\.cpu_s\d/g)).toHaveLength(4);
    expect(top.sql).not.toContain('GROUP BY _hs');
    // Grouped by the key without a LIMIT: postgres_fdw ships it per shard as written.
    expect(rewrite(`SELECT tags_id, mode() WITHIN GROUP (ORDER BY usage_user) FROM cpu GROUP BY 1`).changed).toBe(false);
    // Two shards, the key not grouped: each would have to finish the percentile of rows it does not all hold.
    expect(rewrite(`SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY usage_user) FROM cpu WHERE tags_id IN (1, 2)`).unchanged.map((u) => u.kind)).toEqual(['partial-aggregate']);
    // A filter postgres_fdw keeps on the access node: the reason stands.
    expect(rewrite(`SELECT mode() WITHIN GROUP (ORDER BY usage_user) FROM cpu WHERE tags_id = 42 AND random() < 0.5`).unchanged.map((u) => u.kind)).toEqual(['partial-aggregate']);
  });

  it('reads constant keys through node views only when they need every shard of those nodes (a view cannot skip one)', () => {
    const node = (n: number, shards: number[]) => ({ table: { schema: '_hypershard', name: `cpu_n${n}` }, server: `srv_${n}`, shards });
    const withNodes = (nodes: ReturnType<typeof node>[]): ClusterMetadata => ({ hypertables: [{ ...CPU, nodes }], referenceTables: [] });
    const read = (metadata: ClusterMetadata, sql: string): string[] => rewriteSql(sql, metadata, { timeZone: 'UTC' }).sql.match(/_hypershard\.cpu_\w+/g) ?? [];
    const nodes = withNodes([node(1, [0, 1, 2]), node(2, [3])]);
    // Keys 1, 3 and 2 hash to shards 0, 1 and 2: all of the first node's shards, one view.
    expect(read(nodes, 'SELECT max(usage_user) FROM cpu WHERE tags_id IN (1, 3, 2)')).toEqual(['_hypershard.cpu_n1']);
    // Keys 1 and 3, shards 0 and 1: the view would plan and probe shard 2 too; each shard instead.
    expect(read(nodes, 'SELECT max(usage_user) FROM cpu WHERE tags_id IN (1, 3)')).toEqual(['_hypershard.cpu_s0', '_hypershard.cpu_s1']);
    // Run-time keys: every node's view, each sent the keys that hash to its shards.
    expect(read(nodes, 'SELECT max(usage_user) FROM cpu WHERE tags_id = ANY($1)')).toEqual(['_hypershard.cpu_n1', '_hypershard.cpu_n2']);
  });

  it('reads rows whose keys come from a sub-select once a node, each sent the keys of its shards; keys the planner prunes by, as written', () => {
    const node = (n: number, shards: number[]) => ({ table: { schema: '_hypershard', name: `cpu_n${n}` }, server: `srv_${n}`, shards });
    const metadata: ClusterMetadata = { hypertables: [{ ...CPU, nodes: [node(1, [0, 2]), node(2, [1, 3])] }], referenceTables: [] };
    const r = rewriteSql(`SELECT * FROM cpu WHERE usage_user > 90 AND tags_id IN (SELECT id FROM tags WHERE hostname = 'a') ORDER BY time`, metadata, { timeZone: 'UTC' });
    expect(r.sql.match(/_hypershard\.cpu_\w+/g)).toEqual(['_hypershard.cpu_n1', '_hypershard.cpu_n2']);
    expect(r.rewrites.map((x) => x.kind)).toEqual(['in-subquery', 'shard-pinning']);
    expect(r.rewrites.at(-1)?.detail).toContain('each of 2 data nodes');
    // Each node's arm keeps the rest of the WHERE and is sent the keys that hash to its own shards.
    expect(r.sql).toContain(`SELECT * FROM _hypershard.cpu_n1 AS cpu WHERE cpu.usage_user > 90 AND cpu.tags_id = ANY (ARRAY(SELECT _hs_key.v FROM unnest(ARRAY(SELECT id FROM tags WHERE hostname = 'a'))`);
    expect(r.sql).toMatch(/4, 0, _hs_key\.v::int\) OR satisfies_hash_partition\(.*?, 4, 2, _hs_key\.v::int\)/);
    expect(r.sql).toMatch(/\) AS cpu ORDER BY cpu\."time"$/);
    expect(r.unchanged.map((u) => u.kind)).toEqual(['limit-per-shard']);
    reparses(r.sql);
    // Parameters and constants: the planner prunes the partitions itself.
    expect(rewriteSql('SELECT * FROM cpu WHERE tags_id = ANY($1)', metadata, { timeZone: 'UTC' }).sql).toBe('SELECT * FROM cpu WHERE tags_id = ANY($1)');
    expect(rewriteSql('SELECT * FROM cpu WHERE tags_id = $1', metadata, { timeZone: 'UTC' }).changed).toBe(false);
    // Without node views every shard would still be asked: left as written.
    expect(rewriteSql(`SELECT * FROM cpu WHERE tags_id IN (SELECT id FROM tags WHERE hostname = 'a')`, { hypertables: [CPU], referenceTables: [] }, { timeZone: 'UTC' }).sql).not.toContain('_hypershard.');
    // A filter postgres_fdw keeps on the access node would read every row anyway.
    expect(rewriteSql(`SELECT * FROM cpu WHERE random() < 0.5 AND tags_id IN (SELECT id FROM tags WHERE hostname = 'a')`, metadata, { timeZone: 'UTC' }).sql).not.toContain('_hypershard.');
  });

  it('never gates on a volatile value, nor claims a shard aggregates rows a volatile filter keeps on the access node', () => {
    const r = rewrite('SELECT max(usage_user) FROM cpu WHERE tags_id = (random() * 10)::int');
    expect(r.rewrites).toEqual([]);
    expect(r.unchanged).toEqual([{ kind: 'partial-aggregate', reason: 'random() is VOLATILE: postgres_fdw would keep it on the access node, over every row a shard sends, so no shard could finish the aggregate' }]);
  });
});

describe('hostile names', () => {
  it('quotes schemas, tables, columns and aliases everywhere it writes them', () => {
    const r = rewrite(`SELECT time_bucket('1 hour', "ti me") AS "b""x", max("va""lue") FROM "we""ird schema"."Mé""trics; DROP" AS "a""lias" WHERE "dev""ice" = 7 AND "ti me" > now() - interval '1 day' GROUP BY 1 ORDER BY 1 LIMIT 3`);
    expect(r.rewrites.map((x) => x.kind).sort()).toEqual(['partial-aggregate', 'shard-pinning', 'stable-expression', 'time-bucket']);
    expect(r.sql).toMatch(/FROM _hypershard\."Mé""trics; DROP_s\d" AS "a""lias"/);
    expect(r.sql).toContain(`'"we""ird schema"."Mé""trics; DROP"'`);
    expect(r.sql).toContain(`AS "b""x"`);
    const [parsed] = parseStatements(r.sql);
    expect(parsed).toBeDefined();
  });
});

describe('found by the differential harness', () => {
  it('keeps the output name of a rewritten unaliased target (time_bucket, not date_bin)', () => {
    const r = rewrite(`SELECT time_bucket('5 minutes', time), max(usage_user) FROM cpu GROUP BY 1`);
    expect(r.sql).toContain('AS time_bucket');
    expect(rewrite(`SELECT time_bucket('5 minutes', time), tags_id FROM cpu`).sql).toBe(`SELECT date_bin('5 minutes'::interval, "time", '2000-01-03 00:00:00+00'::timestamptz) AS time_bucket, tags_id FROM cpu`);
  });

  it('puts IS [NOT] TRUE / FALSE / UNKNOWN in words postgres_fdw ships, wherever a shard may be given them', () => {
    const r = rewrite('SELECT tags_id, ok FROM cpu WHERE ok IS NOT TRUE AND tags_id = 10');
    expect(r.rewrites.map((x) => x.kind)).toEqual(['boolean-test', 'shard-pinning']);
    expect(r.sql).toContain('cpu.ok IS DISTINCT FROM true');
    expect(r.sql).not.toMatch(/IS NOT TRUE/);
    const every = rewrite('SELECT count(*) FILTER (WHERE ok IS TRUE), count(*) FILTER (WHERE ok IS FALSE) FROM cpu WHERE ok IS NOT FALSE OR ok IS UNKNOWN OR (usage_user > 1) IS NOT UNKNOWN');
    expect(every.rewrites.filter((x) => x.kind === 'boolean-test').map((x) => x.detail.split(':')[0])).toEqual([
      'ok IS TRUE → ok IS NOT DISTINCT FROM true',
      'ok IS FALSE → ok IS NOT DISTINCT FROM false',
      'ok IS NOT FALSE → ok IS DISTINCT FROM false',
      'ok IS UNKNOWN → ok IS NULL',
      // IS binds less tightly than >: the comparison is what is tested.
      'usage_user > 1 IS NOT UNKNOWN → usage_user > 1 IS NOT NULL',
    ]);
    expect(every.rewrites.map((x) => x.kind)).toContain('partial-aggregate');
    reparses(every.sql);
    // DISTINCT ON keeps matching its ORDER BY.
    const on = rewrite('SELECT DISTINCT ON (ok IS TRUE) ok IS TRUE, usage_user FROM cpu ORDER BY ok IS TRUE, time DESC').sql;
    expect(on).toContain('DISTINCT ON (ok IS NOT DISTINCT FROM true)');
    expect(on).toContain('ORDER BY ok IS NOT DISTINCT FROM true');
  });

  it('says why a pinned shard still sends every row when a filter cannot ship', () => {
    const r = rewrite(`SELECT * FROM cpu WHERE tags_id = 10 AND coalesce(region, 'x') = 'x'`);
    expect(r.rewrites.map((x) => x.kind)).toEqual(['shard-pinning']);
    expect(r.unchanged).toEqual([{ kind: 'shard-pinning', reason: 'COALESCE is never shipped by postgres_fdw: postgres_fdw keeps that filter on the access node, over every row of the one shard read' }]);
  });

  it('leaves FETCH FIRST … WITH TIES alone (the deparser would write a plain LIMIT)', () => {
    const sql = `SELECT * FROM cpu WHERE time > now() ORDER BY time FETCH FIRST 3 ROWS WITH TIES`;
    const r = rewrite(sql);
    expect(r.sql).toBe(sql);
    expect(r.unchanged[0]?.reason).toMatch(/WITH TIES/);
  });
});

describe('output names, as PostgreSQL’s FigureColname gives them', () => {
  it('names each kind of unaliased output as PostgreSQL does', () => {
    const names = (list: string): (string | undefined)[] => (parseSelect(`SELECT ${list} FROM t`).targetList ?? []).map((t) => ('ResTarget' in t && t.ResTarget.val !== undefined ? columnName(t.ResTarget.val) : 'none'));
    expect(names(`(array_agg(v ORDER BY ts))[1:3], (r).site, (r).a[1], a.b.c, "Foo"(1), v::text, 1::int, 'x'::timestamptz`)).toEqual(['array_agg', 'site', 'a', 'c', 'Foo', 'v', 'int4', 'timestamptz']);
    // A cast's type and `case` are second-best names: a CASE's ELSE names it, a cast names a CASE.
    expect(names(`CASE WHEN p THEN 1 ELSE v END, CASE WHEN p THEN 1 END, CASE WHEN p THEN 1 END::text, v COLLATE "C"`)).toEqual(['v', 'case', 'text', 'v']);
    expect(names(`ROW(1, 2), (1, 2), ARRAY[1], coalesce(v, 0), greatest(1, 2), nullif(v, 0), current_time(3), localtimestamp, user, grouping(v), xmlelement(name x), json_object('a': 1)`)).toEqual(['row', 'row', 'array', 'coalesce', 'greatest', 'nullif', 'current_time', 'localtimestamp', 'user', 'grouping', 'xmlelement', 'json_object']);
    expect(names(`EXISTS (SELECT 1), ARRAY(SELECT 1), (SELECT 1 AS z UNION SELECT 2), (SELECT v FROM t), (VALUES (1)), (SELECT * FROM t)`)).toEqual(['exists', 'array', 'z', 'v', 'column1', undefined]);
    expect(names(`v + 1, v IS NULL, v IS TRUE, -v, v IN (1)`)).toEqual(['?column?', '?column?', '?column?', '?column?', '?column?']);
  });

  it('keeps those names when it rewrites the outputs of a grouped query', () => {
    const sliced = rewrite('SELECT tags_id, (array_agg(usage_user ORDER BY time))[1:3] FROM cpu WHERE tags_id = 7 GROUP BY 1');
    expect(sliced.rewrites.map((r) => r.kind)).toContain('partial-aggregate');
    expect(sliced.sql).toContain('(_hs.p0)[1:3] AS array_agg');
    const field = rewrite('SELECT (c).region, count(*) FROM cpu c GROUP BY 1');
    expect(field.rewrites.map((r) => r.kind)).toContain('partial-aggregate');
    expect(field.sql).toMatch(/^SELECT _hs\.g0 AS region, /);
  });
});

describe('what ORDER BY, DISTINCT ON and GROUP BY name, as PostgreSQL resolves it', () => {
  it('takes a bare ORDER BY name for an output, by its implicit name too, before an input column', () => {
    // Sorted by the text output: not by the number per shard, nor qualified into the input column.
    for (const sql of ['SELECT usage_user::text FROM cpu WHERE tags_id = 5 ORDER BY usage_user LIMIT 5', 'SELECT tags_id::text FROM cpu ORDER BY tags_id DESC LIMIT 3']) {
      const r = rewrite(sql);
      expect(r.changed).toBe(false);
      expect(r.unchanged).toEqual([{ kind: 'limit-per-shard', reason: expect.stringMatching(/::text: text sorts by collation/) }]);
    }
    const grouped = rewrite('SELECT tags_id::text, count(*) FROM cpu GROUP BY 1 ORDER BY tags_id LIMIT 3');
    expect(grouped.rewrites.map((r) => r.kind)).toEqual(['partial-aggregate']);
    expect(grouped.sql).toMatch(/SELECT _hs\.g0::text AS tags_id, .* ORDER BY tags_id LIMIT 3$/);
    // A name for an output that is the input column itself is qualified as before.
    expect(rewrite('SELECT * FROM cpu ORDER BY time DESC LIMIT 5').sql).toMatch(/\) AS cpu ORDER BY cpu\."time" DESC LIMIT 5$/);
  });

  it('counts an ordinal among the columns * stands for', () => {
    const r = rewrite('SELECT *, usage_user * 2 FROM cpu ORDER BY 2 LIMIT 5');
    expect(r.rewrites.map((x) => x.kind)).toEqual(['limit-per-shard']);
    expect(r.sql).toContain('FROM _hypershard.cpu_s0 AS cpu ORDER BY cpu.tags_id LIMIT 5');
    expect(rewrite('SELECT time FROM cpu ORDER BY 2 LIMIT 5').unchanged).toEqual([{ kind: 'statement', reason: 'ORDER BY position 2 is not in select list' }]);
  });

  it('leaves a name two different outputs have to PostgreSQL, which refuses it (42702)', () => {
    const sql = 'SELECT time, time::date FROM cpu ORDER BY time LIMIT 2';
    expect(rewrite(sql)).toMatchObject({ sql, changed: false, unchanged: [{ kind: 'statement', reason: 'ORDER BY "time" is ambiguous: PostgreSQL refuses it (42702)' }] });
    const grouped = `SELECT upper(region), upper(region || 'x'), count(*) FROM cpu GROUP BY upper`;
    expect(rewrite(grouped)).toMatchObject({ sql: grouped, changed: false, unchanged: [{ kind: 'statement', reason: 'GROUP BY "upper" is ambiguous: PostgreSQL refuses it (42702)' }] });
    // The same expression twice is one output.
    expect(rewrite('SELECT time, time FROM cpu ORDER BY time LIMIT 2').rewrites.map((x) => x.kind)).toEqual(['limit-per-shard']);
  });

  it('takes a GROUP BY name for an input column first, then for an output by its implicit name', () => {
    const r = rewrite('SELECT upper(region), count(*) FROM cpu GROUP BY upper');
    expect(r.rewrites.map((x) => x.kind)).toEqual(['partial-aggregate']);
    expect(r.sql).toContain('SELECT upper(cpu.region) AS g0, count(*) AS p0 FROM _hypershard.cpu_s0');
  });

  it('leaves SELECT DISTINCT … ORDER BY an expression not in the select list to PostgreSQL, which refuses it (42P10)', () => {
    for (const [sql, item] of [
      ['SELECT DISTINCT region FROM cpu ORDER BY upper(region)', 'upper(region)'],
      ['SELECT DISTINCT tags_id FROM cpu WHERE tags_id < 5 ORDER BY -tags_id', '- tags_id'],
      ['SELECT DISTINCT region, count(*) FROM cpu GROUP BY region ORDER BY max(time)', 'max("time")'],
    ] as const) {
      expect(rewrite(sql)).toMatchObject({ sql, changed: false, unchanged: [{ kind: 'statement', reason: `SELECT DISTINCT … ORDER BY ${item}: for SELECT DISTINCT, ORDER BY expressions must appear in select list, so PostgreSQL refuses it (42P10)` }] });
    }
    // By an output, its name, position or expression, it is still GROUP BY each shard can run.
    for (const order of ['region', '1', 'cpu.region', 'r']) {
      expect(kinds(`SELECT DISTINCT region AS r FROM cpu ORDER BY ${order}`)).toEqual(['distinct-as-group-by', 'partial-aggregate']);
    }
  });

  it('reads DISTINCT ON a name as the output of that name', () => {
    const r = rewrite('SELECT DISTINCT ON (tags_id) tags_id::text, time FROM cpu ORDER BY tags_id, time DESC');
    expect(r.changed).toBe(false);
    const withViews: DistributedTable = { ...CPU, shards: CPU.shards.map((s) => ({ ...s, lastpoint: { schema: s.table.schema, name: `${s.table.name}_last` } })) };
    const lp = rewriteSql('SELECT DISTINCT ON (tags_id) usage_user AS tags_id, time FROM cpu ORDER BY tags_id, time DESC', { hypertables: [withViews], referenceTables: [] }, { timeZone: 'UTC' });
    expect(lp.rewrites.map((x) => x.kind)).not.toContain('lastpoint');
  });
});

describe('pinning through an IN (SELECT …) list', () => {
  it('gates the shards on the list the sub-select computes', () => {
    const r = rewrite(`SELECT max(usage_user) FROM cpu WHERE tags_id IN (SELECT id FROM tags WHERE hostname = 'host_7')`);
    expect(r.rewrites.map((x) => x.kind)).toEqual(['in-subquery', 'partial-aggregate', 'shard-pinning']);
    expect(r.sql).toContain(`cpu.tags_id = ANY (ARRAY(SELECT _hs_key.v FROM unnest(ARRAY(SELECT id FROM tags WHERE hostname = 'host_7')) AS _hs_key(v) WHERE`);
  });

  it('does not gate on a list that reads this query’s own row (nor split an aggregate whose filter stays on the access node)', () => {
    const r = rewrite(`SELECT max(c.usage_user) FROM cpu c WHERE c.tags_id = ANY(ARRAY(SELECT id FROM tags WHERE tags.rack = c.region))`);
    expect(r.rewrites).toEqual([]);
    expect(r.unchanged[0]?.reason).toMatch(/^a sub-select that refers to the row is evaluated on the access node: /);
  });
});

describe('what a role may see', () => {
  const allowed = { role: 'reader', tables: new Map([['public.cpu', undefined]]) };
  const policed = { role: 'reader', tables: new Map([['public.cpu', 'row-level security on public.cpu applies to role reader']]) };

  it('makes no per-shard rewrite for a role the facts refuse, and says why; rewrites that keep reading the hypertable stay', () => {
    const sql = `SELECT time_bucket('5 minutes', time) AS b, max(usage_user) FROM cpu WHERE time > now() - interval '1 hour' GROUP BY b`;
    const r = rewriteSql(sql, META, { timeZone: 'UTC', access: policed });
    expect(r.rewrites.map((x) => x.kind)).toEqual(['time-bucket', 'stable-expression']);
    expect(r.unchanged).toEqual([{ kind: 'privileges', reason: 'row-level security on public.cpu applies to role reader' }]);
    expect(r.sql).not.toContain('_hypershard');
    for (const q of ['SELECT * FROM cpu ORDER BY time DESC LIMIT 3', 'SELECT DISTINCT ON (tags_id) * FROM cpu ORDER BY tags_id, time DESC']) {
      expect(rewriteSql(q, META, { access: policed }).unchanged.map((u) => u.kind), q).toEqual(['privileges']);
    }
    // A table the facts do not mention is refused too.
    expect(rewriteSql('SELECT max(usage_user) FROM cpu', META, { access: { role: 'x', tables: new Map() } }).unchanged).toEqual([{ kind: 'privileges', reason: 'what role x may see of public.cpu is not known' }]);
  });

  it('guards every per-shard union with an arm that checks, when it runs, what the role may see', () => {
    for (const q of ['SELECT max(usage_user) FROM cpu', 'SELECT * FROM cpu ORDER BY time DESC LIMIT 3', 'SELECT DISTINCT ON (tags_id) * FROM cpu ORDER BY tags_id, time DESC']) {
      const r = rewriteSql(q, META, { access: allowed });
      expect(r.changed, q).toBe(true);
      expect(r.sql, q).toContain(`UNION ALL SELECT `);
      expect(r.sql, q).toContain(`WHERE (SELECT CASE WHEN pg_catalog.has_table_privilege(CAST('"public"."cpu"' AS regclass), 'SELECT') AND NOT (pg_catalog.row_security_active(CAST('"public"."cpu"' AS regclass))) THEN false ELSE CAST('"hypershard: row security or privileges changed; run as written"' || pg_catalog.left(CURRENT_USER, 0) AS regclass) IS NULL END)`);
    }
  });

  it('resolves an unqualified name where the server does: a view or temporary table of the same name earlier on the path wins', () => {
    const meta: ClusterMetadata = { ...META, relationSchemas: { cpu: ['app', 'pg_temp_3', 'public'] } };
    const q = 'SELECT max(usage_user) FROM cpu';
    expect(rewriteSql(q, meta, { searchPath: ['pg_catalog', 'public'] }).touchesHypertable).toBe(true);
    expect(rewriteSql(q, meta, { searchPath: ['pg_temp_3', 'pg_catalog', 'public'] }).touchesHypertable).toBe(false);
    expect(rewriteSql(q, meta, { searchPath: ['pg_catalog', 'app', 'public'] }).touchesHypertable).toBe(false);
    expect(rewriteSql('SELECT max(usage_user) FROM public.cpu', meta, { searchPath: ['pg_temp_3', 'app', 'public'] }).touchesHypertable).toBe(true);
  });
});

describe('statements that hold a SELECT', () => {
  const select = `SELECT time_bucket('1 hour', time) AS h, max(usage_user) FROM cpu GROUP BY 1`;
  const inner = rewrite(select).sql;

  it('rewrites the SELECT and keeps every byte of the statement around it', () => {
    for (const [before, after] of [
      ['EXPLAIN ', ''],
      ['EXPLAIN ANALYZE VERBOSE ', ''],
      ['explain ( analyze , format json, costs off ) ', ''],
      ['EXPLAIN /* c */ (VERBOSE) -- why\n', ''],
      ['DECLARE "c ur" BINARY INSENSITIVE NO SCROLL CURSOR WITH HOLD FOR ', ''],
      ['COPY (', ') TO STDOUT WITH (FORMAT csv, HEADER true, FORCE_QUOTE *)'],
      ['CREATE UNLOGGED TABLE IF NOT EXISTS "x y" (a, b) WITH (fillfactor=70) AS ', ' WITH NO DATA'],
      ['CREATE TEMP TABLE t ON COMMIT DROP AS ', ' WITH DATA'],
      ['EXPLAIN (COSTS OFF) CREATE TEMPORARY TABLE t AS ', ''],
    ] as const) {
      const r = rewrite(`${before}${select}${after}`);
      expect(r.sql, before).toBe(`${before}${inner}${after}`);
      expect(r.rewrites.map((x) => x.kind), before).toEqual(['time-bucket', 'partial-aggregate']);
      reparses(r.sql);
    }
  });

  it('writes SELECT … INTO as CREATE TABLE … AS, keeping TEMPORARY and UNLOGGED (the deparser would drop them)', () => {
    expect(rewrite(`SELECT time_bucket('1 hour', time) AS h, max(usage_user) INTO TEMP t FROM cpu GROUP BY 1`).sql).toBe(`CREATE TEMPORARY TABLE "t" AS ${inner}`);
    expect(rewrite(`SELECT time_bucket('1 hour', time) AS h, max(usage_user) INTO UNLOGGED s."T" FROM cpu GROUP BY 1`).sql).toBe(`CREATE UNLOGGED TABLE "s"."T" AS ${inner}`);
    expect(rewrite(`SELECT 1 AS x INTO t FROM cpu`).sql).toBe(`SELECT 1 AS x INTO t FROM cpu`);
  });

  it('leaves a materialized view and PREPARE as written, and says why', () => {
    for (const sql of [`CREATE MATERIALIZED VIEW mv AS ${select}`, `PREPARE p AS ${select}`, `EXPLAIN CREATE MATERIALIZED VIEW mv AS ${select}`]) {
      const r = rewrite(sql);
      expect(r.sql, sql).toBe(sql);
      expect(r.unchanged.map((u) => u.kind), sql).toEqual(['statement']);
      expect(r.unchanged[0]?.reason, sql).toMatch(/^(CREATE MATERIALIZED VIEW|PREPARE): /);
    }
  });
});

describe('lastpoint: the newest row per space key from the per-shard lastpoint views', () => {
  const withViews = (h: DistributedTable): DistributedTable => ({ ...h, shards: h.shards.map((s) => ({ ...s, lastpoint: { schema: s.table.schema, name: `${s.table.name}_last` } })) });
  const LP: ClusterMetadata = { hypertables: [withViews(CPU), withViews(HOSTILE)], referenceTables: [] };
  const lp = (sql: string) => rewriteSql(sql, LP, { timeZone: 'UTC' });
  const columns = '"time", tags_id, usage_user, bytes, amount, region, ok';
  const union = (alias: string): string =>
    `( (((SELECT ${columns} FROM _hypershard.cpu_s0_last UNION ALL SELECT ${columns} FROM _hypershard.cpu_s1_last) UNION ALL SELECT ${columns} FROM _hypershard.cpu_s2_last) UNION ALL SELECT ${columns} FROM _hypershard.cpu_s3_last) UNION ALL SELECT NULL, NULL, NULL, NULL, NULL, NULL, NULL WHERE (SELECT CASE WHEN pg_catalog.has_table_privilege(CAST('"public"."cpu"' AS regclass), 'SELECT') AND NOT (pg_catalog.row_security_active(CAST('"public"."cpu"' AS regclass))) THEN false ELSE CAST('"hypershard: row security or privileges changed; run as written"' || pg_catalog.left(CURRENT_USER, 0) AS regclass) IS NULL END) ) AS ${alias}`;

  it('reads DISTINCT ON (space) … ORDER BY space, time DESC from the union of the views, keeping DISTINCT ON, ORDER BY and a filter on the key', () => {
    const r = lp(`SELECT DISTINCT ON (tags_id) * FROM cpu WHERE tags_id IN (1, 2) ORDER BY tags_id DESC, time DESC LIMIT 5`);
    expect(r.rewrites).toEqual([{ kind: 'lastpoint', detail: "DISTINCT ON (tags_id) … ORDER BY tags_id, time DESC: read from the 4 shards' lastpoint views (each key's newest row, by a loose index scan on its data node)" }]);
    expect(r.sql).toBe(`SELECT DISTINCT ON (tags_id) * FROM ${union('cpu')} WHERE tags_id IN (1, 2) ORDER BY tags_id DESC, "time" DESC LIMIT 5`);
    expect(r.unchanged).toEqual([{ kind: 'lastpoint', reason: expect.stringMatching(/^DISTINCT ON runs on the access node over the lastpoint views' rows/) }]);
  });

  it('turns the TSBS LATERAL probe into a join with the views ON the key', () => {
    const r = lp(`SELECT DISTINCT ON (t.hostname) * FROM tags t INNER JOIN LATERAL (SELECT * FROM cpu c WHERE c.tags_id = t.id ORDER BY time DESC LIMIT 1) AS b ON true ORDER BY t.hostname, b.time DESC`);
    expect(r.rewrites.map((x) => x.kind)).toEqual(['lastpoint']);
    expect(r.sql).toBe(`SELECT DISTINCT ON (t.hostname) * FROM tags AS t JOIN ${union('b')} ON b.tags_id = t.id ORDER BY t.hostname, b."time" DESC`);
    expect(lp(`SELECT * FROM tags t LEFT JOIN LATERAL (SELECT * FROM cpu WHERE t.id = tags_id ORDER BY time DESC LIMIT 1) b ON true`).sql).toContain(`LEFT JOIN ${union('b')} ON b.tags_id = t.id`);
  });

  it("reads each data node's lastpoint view instead, when every node view has one (and each shard's when one lacks it)", () => {
    const node = (n: number, shards: number[], lastpoint: boolean) => ({ table: { schema: '_hypershard', name: `cpu_n${n}` }, server: `srv_${n}`, shards, lastpoint: lastpoint ? { schema: '_hypershard', name: `cpu_n${n}_last` } : undefined });
    const on = (both: boolean): ClusterMetadata => ({ hypertables: [{ ...withViews(CPU), nodes: [node(1, [0, 2], true), node(2, [1, 3], both)] }], referenceTables: [] });
    const sql = `SELECT DISTINCT ON (tags_id) * FROM cpu ORDER BY tags_id, time DESC`;
    const r = rewriteSql(sql, on(true), { timeZone: 'UTC' });
    expect(r.rewrites).toEqual([{ kind: 'lastpoint', detail: "DISTINCT ON (tags_id) … ORDER BY tags_id, time DESC: read from the 2 data nodes' lastpoint views (each key's newest row, by a loose index scan on its shard; one remote query a data node)" }]);
    expect([...r.sql.matchAll(/_hypershard\.(\w+)/g)].map((m) => m[1])).toEqual(['cpu_n1_last', 'cpu_n2_last']);
    expect([...rewriteSql(sql, on(false), { timeZone: 'UTC' }).sql.matchAll(/_hypershard\.(\w+)/g)].map((m) => m[1])).toEqual(['cpu_s0_last', 'cpu_s1_last', 'cpu_s2_last', 'cpu_s3_last']);
  });

  it('rewrites the TSBS LATERAL probe over 128 shards at once (expanding a long UNION ALL once, not per sub-chain)', () => {
    const wide: DistributedTable = {
      ...CPU,
      shards: Array.from({ length: 128 }, (_, i) => ({ index: i, modulus: 128, remainder: i, table: { schema: '_hypershard', name: `cpu_s${i}` }, server: `srv_${i % 2}`, lastpoint: { schema: '_hypershard', name: `cpu_s${i}_last` } })),
    };
    const started = performance.now();
    const r = rewriteSql(`SELECT DISTINCT ON (t.hostname) * FROM tags t INNER JOIN LATERAL (SELECT * FROM cpu c WHERE c.tags_id = t.id ORDER BY time DESC LIMIT 1) AS b ON true ORDER BY t.hostname, b.time DESC`, { hypertables: [wide], referenceTables: [] }, { timeZone: 'UTC' });
    expect(r.rewrites.map((x) => x.kind)).toEqual(['lastpoint']);
    expect(r.sql).toContain('_hypershard.cpu_s127_last');
    expect(performance.now() - started).toBeLessThan(2_000);
  });

  it('quotes hostile names', () => {
    const r = lp(`SELECT DISTINCT ON ("dev""ice") * FROM "we""ird schema"."Mé""trics; DROP" ORDER BY "dev""ice", "ti me" DESC`);
    expect(r.rewrites.map((x) => x.kind)).toEqual(['lastpoint']);
    expect(r.sql).toContain(`SELECT "ti me", "dev""ice", "va""lue" FROM _hypershard."Mé""trics; DROP_s0_last`);
    reparses(r.sql);
  });

  it('leaves alone, with the reason, what the views cannot answer exactly', () => {
    const reasons = (sql: string) => lp(sql).unchanged.filter((u) => u.kind === 'lastpoint').map((u) => u.reason);
    expect(kinds(`SELECT DISTINCT ON (tags_id) * FROM cpu ORDER BY tags_id, time DESC`)).not.toContain('lastpoint'); // no views
    expect(reasons(`SELECT DISTINCT ON (tags_id) * FROM cpu WHERE time > now() - interval '1 hour' ORDER BY tags_id, time DESC`)).toEqual([expect.stringMatching(/^the WHERE reads time, not the space key alone/)]);
    expect(reasons(`SELECT DISTINCT ON (tags_id, region) * FROM cpu ORDER BY tags_id, region, time DESC`)).toEqual([expect.stringMatching(/^DISTINCT ON \(tags_id, region\) is not DISTINCT ON the space key tags_id alone/)]);
    expect(reasons(`SELECT DISTINCT ON (tags_id) * FROM cpu ORDER BY tags_id, time`)).toEqual([expect.stringMatching(/^ORDER BY "time" is not time DESC/)]);
    expect(reasons(`SELECT DISTINCT ON (tags_id) * FROM cpu ORDER BY tags_id, time DESC NULLS LAST`)).toHaveLength(1);
    expect(reasons(`SELECT DISTINCT ON (tags_id) * FROM cpu ORDER BY tags_id, time DESC, usage_user`)).toHaveLength(1);
    expect(reasons(`SELECT DISTINCT ON (tags_id) * FROM cpu WHERE tags_id = (random() * 4)::int ORDER BY tags_id, time DESC`)).toEqual([expect.stringMatching(/calls a function/)]);
    expect(reasons(`SELECT * FROM tags t JOIN LATERAL (SELECT * FROM cpu c WHERE c.tags_id = t.id AND c.time < now() ORDER BY time DESC LIMIT 1) b ON true`)).toEqual([expect.stringMatching(/its WHERE is not tags_id = a column of the outer query alone/)]);
    expect(reasons(`SELECT * FROM tags t JOIN LATERAL (SELECT usage_user FROM cpu c WHERE c.tags_id = t.id ORDER BY time DESC LIMIT 1) b ON true`)).toEqual([expect.stringMatching(/does not select \*/)]);
    expect(reasons(`SELECT * FROM tags t JOIN LATERAL (SELECT * FROM cpu c WHERE c.tags_id = t.id ORDER BY time DESC LIMIT 2) b ON true`)).toEqual([expect.stringMatching(/not a plain ORDER BY … LIMIT 1 probe/)]);
    // Not a newest-row probe at all: nothing to say.
    expect(reasons(`SELECT * FROM tags t JOIN LATERAL (SELECT * FROM cpu c WHERE c.tags_id = t.id) b ON true`)).toEqual([]);
  });

  it('refuses a role that may not read the hypertable whole', () => {
    const access = { role: 'r', tables: new Map([['public.cpu', 'role r may not SELECT the whole of public.cpu']]) };
    const r = rewriteSql(`SELECT DISTINCT ON (tags_id) * FROM cpu ORDER BY tags_id, time DESC`, LP, { timeZone: 'UTC', access });
    expect(r.rewrites.map((x) => x.kind)).not.toContain('lastpoint');
    expect(r.unchanged).toContainEqual({ kind: 'privileges', reason: 'role r may not SELECT the whole of public.cpu' });
  });
});
