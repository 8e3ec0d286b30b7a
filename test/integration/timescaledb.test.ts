/**
 * TimescaleDB's functions on a real access node (PostgreSQL 15 and 18), created by generate and
 * apply: TimescaleDB's own regression cases (statements and expected output from its repository)
 * run through psql; time_bucket shipped to every shard from plain SQL; first/last equal to their
 * definition and exact under any session settings; usable by a role with only its grants; turned
 * off and on again by migrations, a view that uses them stopping the drop.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { check } from '../../src/drift/check.js';
import { generateMigrations } from '../../src/migrations/files.js';
import { apply } from '../../src/nodes/apply.js';
import { clientConfig } from '../../src/nodes/connect.js';
import { loadSpec } from '../../src/spec/load.js';
import { appliedExampleCluster, type AppliedCluster } from '../support/appliedCluster.js';
import { clusterSources, type TestCluster } from '../support/clusters.js';
import { sql } from '../support/db.js';
import { psqlUnavailable, readFixture, runCases } from '../support/timescaledbCases.js';

/**
 * Where hypershard answers otherwise than TimescaleDB's expected output, by fixture and line,
 * and why. Every other case must match byte for byte; these must still differ (so the list is
 * updated when one starts to match).
 */
const DELIBERATE: Record<string, Record<number, { reason: string; actual: string }>> = {
  timestamp: Object.fromEntries(
    [1262, 1268, 1273, 1279].map((line) => [
      line,
      {
        reason: "a value and an origin ~292,000 years apart overflow date_bin's subtraction: PostgreSQL says \"interval out of range\" where TimescaleDB says \"timestamp out of range\"; both refuse",
        actual: 'ERROR:  interval out of range',
      },
    ]),
  ),
  agg_bookends: Object.fromEntries(
    ([[2565, '<'], [2567, '>']] as const).map(([line, op]) => [
      line,
      {
        reason: `first/last ordered by a type without ${op}: PL/pgSQL's "operator does not exist" where TimescaleDB says "could not find a ${op} operator"; the same SQLSTATE (42883)`,
        actual: `ERROR:  operator does not exist: point ${op} point at character 6`,
      },
    ]),
  ),
};

const sources = await Promise.all(clusterSources().map(async (s) => ({ source: s, skip: await s.unavailable() })));
const noPsql = await psqlUnavailable();
if (noPsql !== undefined && process.env.CI === 'true') throw new Error(`CI needs psql for TimescaleDB's regression cases: ${noPsql}`);

for (const { source, skip } of sources) {
  describe.skipIf(skip !== undefined)(`TimescaleDB functions on ${source.label}${skip === undefined ? '' : ` — skipped: ${skip}`}`, () => {
    let cluster: TestCluster;
    let applied: AppliedCluster;
    const access = (): string => cluster.accessNode.url;

    beforeAll(async () => {
      cluster = await source.start(2);
      applied = await appliedExampleCluster(cluster, 'compat');
    });
    afterAll(async () => {
      await cluster?.stop();
    });

    it('are created by apply as check expects them', async () => {
      const result = await check(applied.spec, applied.specFile);
      expect(result.nodes.flatMap((n) => n.items)).toEqual([]);
      expect(result.clean).toBe(true);
    });

    it.skipIf(noPsql !== undefined)(`answer TimescaleDB's own regression cases as its expected output says${noPsql === undefined ? '' : ` — skipped: ${noPsql}`}`, async () => {
      const summary: string[] = [];
      for (const name of ['timestamp', 'agg_bookends']) {
        const fixture = readFixture(name);
        const results = (await runCases(fixture, access(), process.env.HYPERSHARD_TEST_CONTAINER_PASSWORD)).filter((r) => r.expected !== '' || r.actual !== '');
        const differing = results.filter((r) => r.expected !== r.actual);
        const deliberate = DELIBERATE[name] ?? {};
        expect(
          differing.map((r) => ({ line: r.line, actual: r.actual })),
          differing.map((r) => `${fixture.files[1]}:${r.line}\n${r.sql}\n--- expected\n${r.expected}\n--- actual\n${r.actual}`).join('\n\n'),
        ).toEqual(Object.entries(deliberate).map(([line, d]) => ({ line: Number(line), actual: d.actual })));
        summary.push(`${name} ${results.length - differing.length}/${results.length}`);
        // Cases that run and print something: the fixture must keep exercising the functions.
        expect(results.length).toBeGreaterThan(name === 'timestamp' ? 90 : 180);
      }
      console.log(`TimescaleDB regression cases on PostgreSQL ${cluster.major}: ${summary.join(', ')} match (the rest are deliberate differences)`);
    });

    it('ship time_bucket to every shard from plain SQL (no rewriter): it folds to date_bin', async () => {
      const forms = [
        `time_bucket('5 minutes', time)`,
        `time_bucket('1 hour', time, "offset" => '30 minutes')`,
        `time_bucket(interval '1 day', time, timestamptz '2024-01-01 06:00:00+00')`,
      ];
      for (const form of forms) {
        const plan = (await sql<{ 'QUERY PLAN': string }>(access(), `EXPLAIN (VERBOSE) SELECT device_id, ${form} AS bucket, max(cpu) FROM metrics GROUP BY 1, 2`)).map((r) => r['QUERY PLAN']).join('\n');
        expect(plan.match(/Relations: Aggregate on/g), plan).toHaveLength(4);
        expect(plan.match(/Remote SQL: SELECT device_id, date_bin\(/g), plan).toHaveLength(4);
        expect(plan).not.toContain('time_bucket');
      }
    });

    it('first and last are the value at the earliest and latest time, on the hypertable as on their definition', async () => {
      const ours = await sql(access(), `SELECT device_id, first(cpu, time) AS f, last(cpu, time) AS l, first(memory, time) AS fm, last(memory, time) AS lm
                                          FROM metrics GROUP BY 1 ORDER BY 1`);
      const definition = await sql(
        access(),
        `SELECT a.device_id, a.cpu AS f, z.cpu AS l, a.memory AS fm, z.memory AS lm
           FROM (SELECT DISTINCT ON (device_id) * FROM metrics ORDER BY device_id, time) a
           JOIN (SELECT DISTINCT ON (device_id) * FROM metrics ORDER BY device_id, time DESC) z USING (device_id)
          ORDER BY 1`,
      );
      expect(ours).toEqual(definition);
      expect(ours).toHaveLength(20);
    });

    it('first and last return the stored value exactly, whatever the session prints values like', async () => {
      const probe = `SELECT first(f, t) = min(f) AS f, last(ts, t) = max(ts) AS ts, first(iv, t) = min(iv) AS iv, first(n, t)::text AS n, first(r, t) = min(r) AS r
                       FROM (VALUES (0.1::float8 + 0.2, 1, timestamptz '2024-03-31 02:30:00.123456+05:30', interval '-1 day 2 hours', 0.30000000000000004::numeric, 1.5::real)) v(f, t, ts, iv, n, r)`;
      const expected = [{ f: true, ts: true, iv: true, n: '0.30000000000000004', r: true }];
      expect(await sql(access(), probe)).toEqual(expected);
      const session = new pg.Client(clientConfig(access(), process.env.HYPERSHARD_TEST_CONTAINER_PASSWORD));
      await session.connect();
      try {
        // Floats printed with 15 digits, timestamps with a zone abbreviation that reads back as
        // another zone's (IST): text in these settings does not round-trip.
        await session.query(`SET extra_float_digits = 0; SET "DateStyle" = 'SQL, DMY'; SET "TimeZone" = 'Asia/Kolkata'; SET "IntervalStyle" = 'sql_standard'`);
        const premise = await session.query(`SELECT (0.1::float8 + 0.2)::text::float8 = 0.1::float8 + 0.2 AS f, t::text::timestamptz = t AS ts FROM (VALUES (timestamptz '2024-03-31 02:30:00.123456+05:30')) v(t)`);
        // PostgreSQL 18 reads the session zone's own abbreviations back; 15 takes IST for Israel's.
        expect(premise.rows).toEqual([{ f: false, ts: cluster.major >= 18 }]);
        expect((await session.query(probe)).rows).toEqual(expected);
      } finally {
        await session.end();
      }
    });

    it('work for a role with only its grants (the helpers\' schema is open to all)', async () => {
      const rows = await sql(applied.reader, `SELECT time_bucket('1 hour', time) AS b, first(cpu, time), last(cpu, time) FROM metrics GROUP BY 1 ORDER BY 1 LIMIT 1`);
      expect(rows).toHaveLength(1);
      await expect(sql(applied.reader, `SELECT time_bucket('0 minutes', time) FROM metrics LIMIT 1`)).rejects.toThrow('period must be greater than 0');
      await expect(sql(applied.reader, `SELECT time_bucket('1 month 1 day', now())`)).rejects.toThrow('month intervals cannot have day or time component');
    });

    it('are dropped and created again by migrations; a view that uses them stops the drop and nothing changes', async () => {
      const routines = async (): Promise<number> =>
        Number((await sql<{ n: string }>(access(), `SELECT count(*) AS n FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = '_hypershard_compat' OR (n.nspname = 'public' AND p.proname IN ('time_bucket', 'first', 'last'))`))[0]!.n);
      const before = await routines();
      expect(before).toBe(30);
      const flip = async (functions: boolean) => {
        const text = await readFile(applied.specFile, 'utf8');
        await writeFile(applied.specFile, text.replace(/functions: (true|false)/, `functions: ${functions}`));
        const { spec, file } = await loadSpec(applied.specFile);
        const generated = await generateMigrations(spec, file);
        return { spec, file, generated };
      };

      await sql(access(), `CREATE VIEW hourly AS SELECT time_bucket('1 hour', time) AS hour, max(cpu) FROM metrics GROUP BY 1`);
      const off = await flip(false);
      expect(off.generated.changes).toEqual(['TimescaleDB functions dropped from schema public']);
      const refused = await apply(off.spec, off.file);
      expect(refused.ok).toBe(false);
      const failed = refused.nodes.find((n) => n.node === 'access')!;
      expect(failed.status).toBe('failed');
      expect(JSON.stringify(failed)).toContain('cannot drop function time_bucket(interval,timestamp with time zone) because other objects depend on it');
      expect(await routines()).toBe(before);

      await sql(access(), 'DROP VIEW hourly');
      expect((await apply(off.spec, off.file)).ok).toBe(true);
      expect(await routines()).toBe(0);
      expect(await sql(access(), `SELECT to_regnamespace('_hypershard_compat') AS s`)).toEqual([{ s: null }]);
      expect((await check(off.spec, off.file)).clean).toBe(true);

      const on = await flip(true);
      expect(on.generated.changes).toEqual(['TimescaleDB functions (time_bucket, first, last) added in schema public']);
      expect((await apply(on.spec, on.file)).ok).toBe(true);
      expect(await routines()).toBe(before);
      expect((await check(on.spec, on.file)).clean).toBe(true);
      expect(await sql(access(), `SELECT time_bucket('1 week', date '2018-09-16')::text AS w`)).toEqual([{ w: '2018-09-10' }]);
    });
  });
}
