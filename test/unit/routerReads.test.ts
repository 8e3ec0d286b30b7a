/**
 * Which rewrites are answered from one data node (src/route/reads.ts) and the
 * statement it sends there; run against real clusters in test/integration/gatewayRouterReads.test.ts.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { IngestCluster } from '../../src/ingest/cluster.js';
import { cachedRouterPlan, checkSql, clockMicros, clockText, planRouterRead, RouterPredictions, RouterReadState, RESULT_SETTINGS, type CheckRow, type Confirmation, type Prediction, type RouterPlan } from '../../src/route/reads.js';
import type { ClusterMetadata, DistributedTable } from '../../src/rewrite/model.js';
import { findKeyLookup } from '../../src/rewrite/referenceKeys.js';
import { rewriteSql } from '../../src/rewrite/rewrite.js';
import type { SessionSettings } from '../../src/rewrite/session.js';
import { DATE_SPAN_GUARD_NAME } from '../../src/rewrite/dates.js';
import type { ZoneGrid } from '../../src/rewrite/zoneGrid.js';

const CPU: DistributedTable = {
  table: { schema: 'public', name: 'cpu' },
  columns: [{ name: 'time', type: 'timestamptz', notNull: true }, { name: 'tags_id', type: 'integer', notNull: true }, { name: 'usage', type: 'double precision' }],
  spaceColumn: 'tags_id',
  timeColumn: 'time',
  shards: [0, 1, 2, 3].map((i) => ({ index: i, modulus: 4, remainder: i, table: { schema: '_hypershard', name: `cpu_s${i}` }, server: `srv_${i}` })),
};
const TAGS = {
  table: { schema: 'public', name: 'tags' },
  columns: [{ name: 'id', type: 'integer' }, { name: 'hostname', type: 'text' }],
  copies: CPU.shards.map((s) => ({ server: s.server, table: { schema: '_hypershard', name: `tags_${s.server}` } })),
};
const META: ClusterMetadata = { hypertables: [CPU], referenceTables: [TAGS], relationSchemas: { cpu: ['public'], tags: ['public'] } };
const SETTINGS: SessionSettings = { timeZone: 'UTC', searchPath: ['pg_catalog', 'public'], role: 'app', enabled: true };

const plan = (sql: string): RouterPlan | string => planRouterRead(rewriteSql(sql, META, { timeZone: 'UTC' }).sql, META, SETTINGS);
const remote = (p: RouterPlan): Map<string, { schema: string; name: string }> => new Map(p.foreignTables.map((t) => [`${t.schema}.${t.name}`, { schema: 'public', name: `${t.name}_there` }]));

describe('router reads', () => {
  it('plans a rewrite pinned to one shard: its foreign table becomes the data node’s, guards their values, now() the access node’s', () => {
    const p = plan(`SELECT date_trunc('minute', time) AS m, max(usage) FROM cpu WHERE tags_id = 3 AND time > now() - interval '1 hour' GROUP BY 1 ORDER BY 1`);
    if (typeof p === 'string') throw new Error(p);
    expect(p.shard.index).toBe(1);
    expect(p.foreignTables).toEqual([{ schema: '_hypershard', name: 'cpu_s1' }]);
    expect(p.readTables).toEqual([{ schema: 'public', name: 'cpu' }]);
    expect(p.guards.map((g) => g.holds)).toEqual([false]);
    const sent = p.build(remote(p), '2024-05-06 07:08:09.123456');
    expect(sent).toContain('FROM public.cpu_s1_there AS cpu');
    expect(sent).not.toMatch(/_hypershard|has_table_privilege|now\(\)|regclass/);
    // The bound is an expression the data node's planner estimates and prunes chunks by, not a sub-select it runs later.
    expect(sent).toContain(`cpu."time" > (CAST('2024-05-06 07:08:09.123456+00' AS timestamp with time zone) - '1 hour'::interval)`);
    expect(sent).not.toContain('(SELECT');
    expect(checkSql(p)).toContain('pg_try_advisory_xact_lock_shared(');
  });

  it('evaluates a bound of the clock in the check and sends its value as a literal, which the data node prunes chunks by at planning', () => {
    const sql = `SELECT max(usage) FROM cpu WHERE tags_id = 3 AND time > now() - interval '1 hour' AND time <= CURRENT_TIMESTAMP GROUP BY time ORDER BY time`;
    const p = plan(sql);
    if (typeof p === 'string') throw new Error(p);
    expect(p.bounds).toEqual(["now() - '1 hour'::interval", 'CURRENT_TIMESTAMP']);
    expect(checkSql(p)).toContain(`ARRAY[pg_catalog.quote_nullable((now() - '1 hour'::interval)::pg_catalog.text) || '::' || pg_catalog.pg_typeof(now() - '1 hour'::interval)::pg_catalog.text, `);
    const values = ["'2024-05-06 06:08:09.123456+00'::timestamp with time zone", "'2024-05-06 07:08:09.123456+00'::timestamp with time zone"];
    const sent = p.build(remote(p), '2024-05-06 07:08:09.123456', values);
    expect(sent).toContain(`cpu."time" > CAST('2024-05-06 06:08:09.123456+00' AS timestamp with time zone) AND cpu."time" <= CAST('2024-05-06 07:08:09.123456+00' AS timestamp with time zone)`);
    expect(sent).not.toMatch(/interval|now\(\)|CURRENT_TIMESTAMP/);
    // Remembered (the gateway's and hypershard/pg's path): the same text, the values put in by text, each time anew.
    const cached = cachedRouterPlan(rewriteSql(sql, META, { timeZone: 'UTC' }).sql, META, SETTINGS);
    if (typeof cached === 'string') throw new Error(cached);
    const first = cached.build(remote(cached), '2024-05-06 07:08:09.123456', values);
    expect(first).toContain(`cpu."time" > ${values[0]} AND cpu."time" <= ${values[1]} GROUP BY 1`);
    const later = ["'2024-05-06 08:00:00+00'::timestamp with time zone", "'2024-05-06 09:00:00+00'::timestamp with time zone"];
    expect(cached.build(remote(cached), '2024-05-06 09:00:00', later)).toBe(first.replace(values[0]!, later[0]!).replace(values[1]!, later[1]!));
    // Without values (an older check), each bound is sent as an expression of the access node's now().
    expect(p.build(remote(p), '2024-05-06 07:08:09.123456')).toContain(`(CAST('2024-05-06 07:08:09.123456+00' AS timestamp with time zone) - '1 hour'::interval)`);
  });

  it('with keys read first, the keys guard is checked on the access node and the data node gets neither it nor the reference table', () => {
    const lookup = findKeyLookup(`SELECT max(usage) FROM cpu WHERE tags_id IN (SELECT id FROM tags WHERE hostname = 'h1') GROUP BY time ORDER BY time`, META);
    const p = planRouterRead(rewriteSql(lookup!.substitute({ keys: '{3}', type: 'integer' }), META, { timeZone: 'UTC' }).sql, META, SETTINGS);
    if (typeof p === 'string') throw new Error(p);
    expect(p.guards.map((g) => g.holds).toSorted((a, b) => Number(a) - Number(b))).toEqual([false, true]);
    const sent = p.build(remote(p), "2024-01-01 00:00:00");
    expect(sent, sent).not.toMatch(/FROM tags|CASE/);
  });

  it("a date's span guard (a zone with daylight saving): its condition checked on the access node, its midnight sent", () => {
    const grid: ZoneGrid = { zone: 'America/New_York', hours: { minutes: 60, since: '1900-01-01T00:00:00.000Z' }, minutes: undefined, until: '2100-01-01T00:00:00.000Z', midnightsFixedSince: '1900-01-03' };
    const rewritten = rewriteSql(`SELECT max(usage) FROM cpu WHERE tags_id = 3 AND time::date = current_date - 1`, META, { timeZone: 'America/New_York', zoneGrid: grid }).sql;
    expect(rewritten).toContain(DATE_SPAN_GUARD_NAME);
    const p = planRouterRead(rewritten, META, { ...SETTINGS, timeZone: 'America/New_York' });
    if (typeof p === 'string') throw new Error(p);
    expect(p.guards.map((g) => [g.sql, g.holds])).toContainEqual([`(SELECT CAST(CURRENT_DATE - 1 AS date) BETWEEN '1900-01-03'::date AND '2099-12-29'::date)`, true]);
    const sent = p.build(remote(p), '2026-03-09 03:00:00');
    expect(sent).not.toMatch(/regclass|CASE|CURRENT_USER|hypershard:/);
    expect(sent).toContain(`cpu."time" >= CAST(CAST(CAST(CAST('2026-03-09 03:00:00+00' AS timestamp with time zone) AS pg_catalog.date) - 1 AS date) AS timestamptz)`);
  });

  it('keeps a sub-select that is more than constants and operators', () => {
    const p = plan(`SELECT max(usage) FROM cpu WHERE tags_id = 3 AND usage > (SELECT abs(-2)) AND time > (SELECT now() - interval '1 hour')`);
    if (typeof p === 'string') throw new Error(p);
    const sent = p.build(remote(p), '2024-05-06 07:08:09');
    expect(sent).toContain('(SELECT abs(-2))');
    expect(sent).toContain(`> (CAST('2024-05-06 07:08:09+00' AS timestamp with time zone) - '1 hour'::interval)`);
  });

  it('refuses what may depend on the node, the session or more than one shard', () => {
    const cases: [string, string][] = [
      [`SELECT max(usage) FROM cpu WHERE tags_id IN (3, 4, 5, 6)`, 'several-shards'],
      [`SELECT max(usage), current_setting('work_mem') FROM cpu WHERE tags_id = 3`, 'function:current_setting'],
      [`SELECT max(usage), pg_backend_pid() FROM cpu WHERE tags_id = 3`, 'function:pg_backend_pid'],
      [`SELECT max(usage), clock_timestamp() FROM cpu WHERE tags_id = 3`, 'function:clock_timestamp'],
      [`SELECT max(usage), session_user FROM cpu WHERE tags_id = 3`, 'keyword:SVFOP_SESSION_USER'],
      [`SELECT max(tableoid) FROM cpu WHERE tags_id = 3`, 'system-column'],
      [`SELECT max(usage), public.f(1) FROM cpu WHERE tags_id = 3`, 'function-schema'],
      [`SELECT max(usage), 'cpu'::regclass FROM cpu WHERE tags_id = 3`, 'type:regclass'],
      [`SELECT max(usage) FILTER (WHERE time::text COLLATE "C" > 'a') FROM cpu WHERE tags_id = 3`, 'node:CollateClause'],
      [`SELECT 1`, 'no-shard'],
    ];
    for (const [sql, reason] of cases) expect(plan(sql), sql).toBe(reason);
    expect(planRouterRead(`SELECT max(usage) FROM _hypershard.cpu_s1`, META, { ...SETTINGS, searchPath: ['public', 'pg_catalog'] })).toBe('search-path');
    expect(planRouterRead(`SELECT 1; SELECT 2`, META, SETTINGS)).toBe('not-select');
    expect(planRouterRead(`SELECT * FROM _hypershard.cpu_s1 FOR UPDATE`, META, SETTINGS)).toBe('locking-clause');
    expect(planRouterRead(`SELECT * INTO x FROM _hypershard.cpu_s1`, META, SETTINGS)).toBe('select-into');
    expect(planRouterRead(`WITH d AS (DELETE FROM _hypershard.cpu_s1 RETURNING *) SELECT * FROM d`, META, SETTINGS)).toBe('writable-cte');
    expect(planRouterRead(`SELECT * FROM _hypershard.cpu_s1 JOIN other ON true`, META, SETTINGS)).toBe('other-relation');
    expect(planRouterRead(`SELECT * FROM _hypershard.cpu_s1 JOIN _hypershard.tags_srv_2 ON true`, META, SETTINGS)).toBe('reference-copy');
  });

  it('remembers plans and their statements, the access node’s now() put in each time', () => {
    const sql = rewriteSql(`SELECT max(usage) FROM cpu WHERE tags_id = 3 AND time > now() - interval '1 hour'`, META, { timeZone: 'UTC' }).sql;
    const a = cachedRouterPlan(sql, META, SETTINGS);
    expect(cachedRouterPlan(sql, META, SETTINGS)).toBe(a);
    if (typeof a === 'string') throw new Error(a);
    expect(a.build(remote(a), '2024-01-01 00:00:00.000001')).toBe(planRouterRead(sql, META, SETTINGS) instanceof Object ? (planRouterRead(sql, META, SETTINGS) as RouterPlan).build(remote(a), '2024-01-01 00:00:00.000001') : '');
    expect(a.build(remote(a), '2025-02-02 00:00:00')).toContain(`'2025-02-02 00:00:00+00'`);
    expect(a.check()).toBe(a.check());
  });

  it('keeps hostile aliases and literals as the parser reads them', () => {
    const p = plan(`SELECT count(*) AS "we""ird; DROP", 'it''s' AS lit FROM cpu WHERE tags_id = 3 GROUP BY time ORDER BY time`);
    if (typeof p === 'string') throw new Error(p);
    const sent = p.build(remote(p), '2024-01-01 00:00:00');
    expect(sent).toContain(`AS "we""ird; DROP"`);
    expect(sent).toContain(`'it''s'`);
  });
});

describe('a read of the clock sent with its check', () => {
  // Where the shards' servers point: one data node, as the check's rows name it.
  const cluster = {
    spec: { dataNodes: [{ name: 'dn1', url: 'postgres://app@h1:5432/db', standbys: [] }] },
    targets: { dataNodes: new Map([['dn1', {}]]) },
  } as unknown as IngestCluster;
  const state = new RouterReadState();
  const sql = `SELECT max(usage) FROM cpu WHERE tags_id = 3 AND time > now() - interval '1 hour'`;
  const clockPlan = (): RouterPlan => {
    const p = plan(sql);
    if (typeof p === 'string') throw new Error(p);
    return p;
  };
  const row = (p: RouterPlan, now: string, clock: string, bounds: readonly (string | null)[]): CheckRow => ({
    version: '180004',
    now,
    clock,
    clock_bounds: [...bounds],
    settings: RESULT_SETTINGS.map(() => 'x'),
    scs: 'on',
    guards: [false, ...p.guards.map((g) => g.holds)],
    // The same bounds at the access node's now().
    bounds: bounds.map((b) => `'${b === null ? now : clockText(clockMicros(now) - (clockMicros(clock) - clockMicros(b)))}+00'::timestamp with time zone`),
    free: true,
    builtin: true,
    tables: p.foreignTables.map((t) => ({ schema: t.schema, name: t.name, server: 'srv', server_options: ['host=h1', 'port=5432', 'dbname=db'], table_options: null, renamed: false })),
  });
  let clockNow = 0;
  const at = (ms: number): void => {
    clockNow = ms;
  };
  vi.spyOn(performance, 'now').mockImplementation(() => clockNow);
  afterEach(() => at(0));

  it('writes and reads the check’s instants to the microsecond', () => {
    for (const text of ['2024-05-06 07:08:09.123456', '1999-12-31 23:59:59.999999', '2024-02-29 00:00:00.000001']) expect(clockText(clockMicros(text))).toBe(text);
    expect(clockMicros('2024-05-06 07:08:09')).toBeNaN();
    const p = clockPlan();
    expect(p.readsClock).toBe(true);
    expect(checkSql(p)).toContain(`pg_catalog.to_char(COALESCE($1::pg_catalog.timestamptz, pg_catalog.now()) AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') AS clock`);
    expect(checkSql(p)).toContain(`pg_catalog.pg_typeof((COALESCE(CAST($1 AS timestamp with time zone), pg_catalog.now())) - '1 hour'::interval) = 'pg_catalog.timestamptz'::pg_catalog.regtype`);
    // A statement that does not read the clock: its check takes no parameter.
    const still = plan(`SELECT max(usage) FROM cpu WHERE tags_id = 3`);
    if (typeof still === 'string') throw new Error(still);
    expect(checkSql(still)).not.toContain('$1');
    expect(new RouterPredictions().checkValues(still, { at: 0 })).toBeUndefined();
  });

  it('is given the last check’s clock plus the time since, its bounds there, and used when its check bears them out', () => {
    const p = clockPlan();
    const predictions = new RouterPredictions();
    at(1000);
    const first = predictions.predict(p, cluster, state);
    expect(first.target).toBeUndefined();
    expect(predictions.checkValues(p, first)).toEqual([null]);
    at(1000.4);
    const plain = predictions.confirm(p, row(p, '2024-05-06 07:00:00.000000', '2024-05-06 07:00:00.000000', ['2024-05-06 06:00:00.000000']), first, cluster, state);
    expect(plain).toMatchObject({ ahead: false, notBefore: 1000.4 });

    // Half a second later: the clock estimated from that check (with the rate margin), the bound learned from it.
    at(1500);
    const second = predictions.predict(p, cluster, state);
    expect(second.clock).toBe('2024-05-06 07:00:00.500050');
    expect(second.target?.text).toContain(`> CAST('2024-05-06 06:00:00.500050+00' AS timestamp with time zone)`);
    expect(second.target?.text).not.toContain('now()');
    expect(predictions.checkValues(p, second)).toEqual(['2024-05-06 07:00:00.500050+00']);
    // The access node's clock, read by the check, is past the estimate: used at once.
    at(1500.3);
    const used = predictions.confirm(p, row(p, '2024-05-06 07:00:00.500100', second.clock!, ['2024-05-06 06:00:00.500050']), second, cluster, state);
    expect(used).toMatchObject({ ahead: true, notBefore: 1500.3 });
    expect(typeof used.target === 'object' && used.target.text).toBe(second.target?.text);

    // The estimate is 40 µs past the check's clock: the client has its answer once that much more has passed.
    at(1600);
    const third = predictions.predict(p, cluster, state);
    // From the first check, whose now() came soonest after it was sent (the second's gives 07:00:00.600110).
    expect(third.clock).toBe('2024-05-06 07:00:00.600060');
    const given = clockMicros(third.clock!);
    at(1600.2);
    const waiting = predictions.confirm(p, row(p, clockText(given - 40), third.clock!, [clockText(given - 3_600_000_000)]), third, cluster, state);
    expect(waiting.ahead).toBe(true);
    expect(waiting.notBefore - 1600.2).toBeCloseTo(0.04, 4);
  });

  it('is not used when the access node’s clock stepped, or the bound is not where the last check put it', () => {
    const p = clockPlan();
    const predictions = new RouterPredictions();
    const HOUR = 3_600_000_000;
    /** A read predicted at `ms`, its check answering 0.3 ms later with the access node's now() `skew` µs from the clock given, and the bound `bound` of it. */
    const read = (ms: number, skew: number, bound: (clock: number) => string | null = (c) => clockText(c - HOUR)): { prediction: Prediction; confirmation: Confirmation; given: number } => {
      at(ms);
      const prediction = predictions.predict(p, cluster, state);
      const clock = prediction.clock ?? '2024-05-06 07:00:00.000000';
      const given = clockMicros(clock);
      at(ms + 0.3);
      return { prediction, confirmation: predictions.confirm(p, row(p, clockText(given + skew), clock, [bound(given)]), prediction, cluster, state), given };
    };
    const text = (c: Confirmation): string | false => typeof c.target === 'object' && c.target.text;
    read(1000, 0);
    // Stepped forward by a second: the estimate is further behind the check's clock than the check took; sent with the check's own clock instead.
    const stepped = read(2000, 1_000_000);
    expect(stepped.prediction.target).toBeDefined();
    expect(stepped.confirmation.ahead).toBe(false);
    expect(text(stepped.confirmation)).toContain(`CAST('${clockText(stepped.given + 1_000_000 - HOUR)}+00' AS timestamp with time zone)`);
    // Stepped back by 10 ms: not waited for.
    expect(read(3000, -10_000).confirmation.ahead).toBe(false);
    // The bound was not an hour behind at that clock (a day across a change of offset): the check's value is sent.
    const moved = read(4000, 10, (c) => clockText(c - 2 * HOUR));
    expect(moved.confirmation.ahead).toBe(false);
    expect(text(moved.confirmation)).toContain(`CAST('${clockText(moved.given - 2 * HOUR)}+00' AS timestamp with time zone)`);
    // A bound that is not a timestamptz: never sent ahead.
    read(5000, 10, () => null);
    at(6000);
    expect(predictions.predict(p, cluster, state).target).toBeUndefined();
    // A bound that held still between two checks (today's midnight) is guessed where it was.
    const midnight = '2024-05-06 00:00:00.000000';
    read(6500, 10, () => midnight);
    expect(read(6600, 10, () => midnight).confirmation.ahead).toBe(false);
    const held = read(6700, 10, () => midnight);
    expect(held.confirmation.ahead).toBe(true);
    expect(text(held.confirmation)).toContain(`CAST('${midnight}+00' AS timestamp with time zone)`);
    // Nor from a check older than ten seconds.
    read(7000, 0);
    at(7000 + 10_001);
    expect(predictions.predict(p, cluster, state).target).toBeUndefined();
  });
});
