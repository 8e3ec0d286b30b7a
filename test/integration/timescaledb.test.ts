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
import { discoverMetadata } from '../../src/rewrite/discover.js';
import { metadataFromLayout } from '../../src/rewrite/metadata.js';
import { rewriteSql } from '../../src/rewrite/rewrite.js';
import { loadSpec } from '../../src/spec/load.js';
import { appliedExampleCluster, type AppliedCluster } from '../support/appliedCluster.js';
import { clusterSources, type TestCluster } from '../support/clusters.js';
import { runCli } from '../support/faults.js';
import { sql, withDatabase } from '../support/db.js';
import { psql, psqlUnavailable, readFixture, runCases } from '../support/timescaledbCases.js';

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

/** Session zones: none, whole-hour DST, half-hour DST (Lord Howe), a fixed Etc zone. */
const ZONES = ['UTC', 'America/New_York', 'Australia/Lord_Howe', 'Etc/GMT+5'];

/** time_bucket forms on the hypertable's timestamptz `time`, as such and cast to timestamp and date. */
const BUCKET_FORMS = [
  ...['1 second', '7 seconds', '5 minutes', '90 minutes', '1 hour', '1 day', '24 hours', '1 week', '2 weeks', '36500 days'].map((w) => `time_bucket('${w}', time)`),
  // Glued as Grafana's $__interval writes them, as PostgreSQL reads them.
  ...['5m', '1h30m', '2d'].map((w) => `time_bucket('${w}', time)`),
  ...["'1d'", "'-2d'"].flatMap((o) => [`time_bucket('1h', time, "offset" => ${o})`, `time_bucket('1w', time, interval ${o})`]),
  ...["'30 minutes'", "'-19 hours'", "'1 day'", "'-2 days'", "'1 week'"].flatMap((o) => [`time_bucket('1 hour', time, "offset" => ${o})`, `time_bucket('1 week', time, interval ${o})`]),
  `time_bucket('1 day', time, timestamptz '2024-01-01 06:30:00+05:30')`,
  `time_bucket('15 minutes', time, origin => timestamptz '1969-07-20 20:17:40+00')`,
  `time_bucket(bucket_width => '2 hours', ts => time)`,
  ...['1 second', '1 hour', '1 day', '1 week'].map((w) => `time_bucket('${w}', time::timestamp)`),
  `time_bucket('1 day', time::timestamp, "offset" => '-1 day')`,
  `time_bucket('1 week', time::timestamp, timestamp '2020-02-29 13:00')`,
  ...['1 day', '4 days', '1 week'].map((w) => `time_bucket('${w}', time::date)`),
  `time_bucket('1 week', time::date, "offset" => '2 days')`,
  `time_bucket('1 week', time::date, date '2020-01-01')`,
];

/** Forms the rewriter must leave to the function, each for its reason. */
const REFUSED_FORMS: [string, RegExp][] = [
  [`time_bucket('1 month', time)`, /months and years have no fixed width/],
  [`time_bucket('0 minutes', time)`, /not a literal fixed interval|zero or less/],
  [`time_bucket('-5 minutes', time)`, /zero or less/],
  [`time_bucket('12 hours', time::date)`, /whole days/],
  [`time_bucket('1 day', time::date, "offset" => '12 hours')`, /whole days/],
  [`time_bucket('1 day', time, 'Europe/Berlin')`, /time zone|neither a typed interval/],
  [`time_bucket('1 day', time, timezone => 'Europe/Berlin')`, /time zone/],
  [`time_bucket(10, device_id)`, /integer buckets/],
  [`time_bucket('1 hour', time, timestamptz '2020-01-01', "offset" => '1 hour')`, /time zone|both an origin and an offset/],
];

/** A TimescaleDB hypertable with every kind of value a CSV export must carry. */
const CONDITIONS_COLUMNS = `time timestamptz NOT NULL, device_id integer NOT NULL, location text, temperature double precision,
  humidity real, reading numeric(10,3), ok boolean, tags jsonb, labels text[]`;
const CONDITIONS_SPEC = `  - name: conditions
    columns:
      - { name: time, type: timestamptz, notNull: true }
      - { name: device_id, type: integer, notNull: true }
      - { name: location, type: text }
      - { name: temperature, type: double precision }
      - { name: humidity, type: real }
      - { name: reading, type: "numeric(10,3)" }
      - { name: ok, type: boolean }
      - { name: tags, type: jsonb }
      - { name: labels, type: "text[]" }
    timeColumn: time
    spaceColumn: device_id
    shards: 4
`;

const runPsql = (url: string, ...args: string[]): Promise<string> =>
  psql(url, ['-X', '-q', '-v', 'ON_ERROR_STOP=1', ...args], process.env.HYPERSHARD_TEST_CONTAINER_PASSWORD === undefined ? {} : { password: process.env.HYPERSHARD_TEST_CONTAINER_PASSWORD });

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
      // Rewritten, each shard returns its value at its earliest and latest time (built-ins that ship), the same rows.
      const rewritten = rewriteSql(`SELECT device_id, first(cpu, time) AS f, last(cpu, time) AS l, first(memory, time) AS fm, last(memory, time) AS lm FROM metrics GROUP BY 1 ORDER BY 1`, metadataFromLayout(applied.layout), { timeZone: 'UTC' });
      expect(rewritten.rewrites.map((r) => r.kind)).toEqual(['partial-aggregate']);
      expect(rewritten.sql).toContain('array_agg(metrics.cpu ORDER BY metrics."time" DESC)');
      expect(await sql(access(), rewritten.sql)).toEqual(definition);
      // The gateway and hypershard/pg find them in the access node's catalog, as the spec says.
      const client = new pg.Client(clientConfig(access(), process.env.HYPERSHARD_TEST_CONTAINER_PASSWORD));
      await client.connect();
      try {
        const discovered = await discoverMetadata(client);
        expect(discovered.timescaledb).toEqual({ schema: 'public' });
        expect(rewriteSql(`SELECT last(cpu, time) FROM metrics`, discovered, { timeZone: 'UTC' }).rewrites.map((r) => r.kind)).toEqual(['partial-aggregate']);
      } finally {
        await client.end();
      }
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

    it("the rewriter's time_bucket forms equal the function on every row, in every session zone; the others are left to it", async () => {
      const metadata = metadataFromLayout(applied.layout);
      // Rows where buckets go wrong if anything does: daylight-saving changes (incl. Lord Howe's
      // half hour), bucket edges, before 1970 and 2000, a leap day, far future, BC, infinities.
      await sql(
        access(),
        `INSERT INTO metrics (time, device_id, cpu) SELECT t, 1, 0 FROM unnest(ARRAY[
           '2024-03-10 06:59:59.999999+00', '2024-03-10 07:00:00+00', '2024-11-03 05:30:00+00', '2024-11-03 06:30:00+00',
           '2024-04-06 15:00:00+00', '2024-04-06 15:29:59+00', '2024-10-05 15:30:00+00', '2000-01-03 00:00:00+00',
           '2000-01-02 23:59:59.999999+00', '1999-12-31 23:00:00+00', '1969-07-20 20:17:40+00', '1901-12-13 20:45:52+00',
           '2020-02-29 12:59:59+00', '2020-02-29 13:00:00+00', '2262-04-11 23:47:16.854775+00', '0044-03-15 12:00:00+00 BC',
           'infinity', '-infinity']::timestamptz[]) AS t
         UNION ALL SELECT timestamptz '2024-01-01 00:00:00+00' + i * interval '7 hours 13 minutes 7.25 seconds', 2, 0 FROM generate_series(0, 300) AS i`,
      );
      let compared = 0;
      for (const zone of ZONES) {
        const session = new pg.Client(clientConfig(access(), process.env.HYPERSHARD_TEST_CONTAINER_PASSWORD));
        await session.connect();
        try {
          await session.query(`SELECT set_config('TimeZone', $1, false)`, [zone]);
          for (const form of BUCKET_FORMS) {
            const query = `SELECT time::text AS t, (${form})::text AS b FROM metrics`;
            const rewritten = rewriteSql(query, metadata, { timeZone: zone });
            const dayOffsetInDstZone = /(offset" => |interval )'-?\d+ ?(days?|weeks?|d|w)\b/.test(form) && !form.includes('::') && !['UTC', 'Etc/GMT+5'].includes(zone);
            if (dayOffsetInDstZone) {
              expect(rewritten.changed, `${zone}: ${form}`).toBe(false);
              expect(rewritten.unchanged.map((u) => u.reason).join(), form).toMatch(/session time zone/);
              continue;
            }
            expect(rewritten.rewrites.map((r) => r.kind), `${zone}: ${form}`).toContain('time-bucket');
            expect(rewritten.sql).not.toContain('time_bucket(');
            const byTime = (rows: { t: string; b: string | null }[]) => new Map(rows.map((r) => [r.t, r.b]));
            const ours = byTime((await session.query<{ t: string; b: string | null }>(query)).rows);
            const theirs = byTime((await session.query<{ t: string; b: string | null }>(rewritten.sql)).rows);
            expect(theirs.size, form).toBe(ours.size);
            for (const [t, b] of ours) if (theirs.get(t) !== b) expect({ zone, form, t, rewritten: theirs.get(t) }).toEqual({ zone, form, t, rewritten: b });
            compared += ours.size;
          }
          for (const [form, reason] of REFUSED_FORMS) {
            const rewritten = rewriteSql(`SELECT time AS t, ${form} AS b FROM metrics`, metadata, { timeZone: zone });
            expect(rewritten.rewrites.map((r) => r.kind), form).not.toContain('time-bucket');
            expect(rewritten.unchanged.filter((u) => u.kind === 'time-bucket').map((u) => u.reason).join('\n'), form).toMatch(reason);
          }
        } finally {
          await session.end();
        }
      }
      expect(compared).toBeGreaterThan(ZONES.length * 30 * 300);
      await sql(access(), 'DELETE FROM metrics WHERE device_id IN (1, 2) AND cpu = 0');
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

    it.skipIf(noPsql !== undefined)('take a TimescaleDB hypertable exported as CSV (COPY … TO STDOUT WITH CSV), loaded through the access node and with hypershard load, every value unchanged', async () => {
      // TimescaleDB's side: a hypertable is read with PostgreSQL's own COPY, so its export is
      // exactly this plain table's (same columns, same text forms); a session zone with DST.
      await sql(access(), 'CREATE DATABASE timescale_source');
      const exported = withDatabase(access(), 'timescale_source');
      await sql(
        exported,
        `CREATE TABLE conditions (${CONDITIONS_COLUMNS});
         INSERT INTO conditions
         SELECT timestamptz '2024-03-30 22:00:00.123456+00' + i * interval '17 minutes 3.000001 seconds', i % 40,
                CASE i % 7 WHEN 0 THEN NULL WHEN 1 THEN 'Zürich, "HQ"' WHEN 2 THEN e'line\\nbreak, and a backslash \\\\' WHEN 3 THEN '' ELSE 'room ' || i END,
                CASE i % 11 WHEN 0 THEN 'NaN' WHEN 1 THEN 'Infinity' WHEN 2 THEN '-Infinity' WHEN 3 THEN NULL ELSE i / 7.0 END,
                (i % 13) / 3.0, (i * 1.0005)::numeric(10,3), CASE WHEN i % 5 = 0 THEN NULL ELSE i % 2 = 0 END,
                CASE WHEN i % 9 = 0 THEN NULL ELSE jsonb_build_object('i', i, 'q', 'a "quoted", value', 'nested', jsonb_build_array(1, null, 'x')) END,
                CASE WHEN i % 6 = 0 THEN NULL ELSE ARRAY['a,b', NULL, 'say "hi"', ''] END
           FROM generate_series(1, 3000) AS i
         UNION ALL SELECT timestamptz '1969-12-31 23:59:59.999999+00', 7, 'before 1970', 1, 1, 1, true, '{}', '{}'
         UNION ALL SELECT timestamptz '2100-01-01 00:00:00+00', 8, 'far ahead', -1, -1, -1, false, '[]', '{NULL}'`,
      );
      const file = join(cluster.workDir, 'conditions.csv');
      await writeFile(file, await runPsql(exported, '-c', "SET timezone = 'Europe/Berlin'", '-c', 'COPY (SELECT * FROM conditions) TO STDOUT WITH CSV'));

      // hypershard's side: the same hypertable in the spec, then COPY into the access node.
      const text = await readFile(applied.specFile, 'utf8');
      await writeFile(applied.specFile, text.replace('\n# TimescaleDB', `\n${CONDITIONS_SPEC}\n# TimescaleDB`));
      const { spec, file: specFile } = await loadSpec(applied.specFile);
      expect((await generateMigrations(spec, specFile)).changes).toEqual(['hypertable public.conditions added']);
      expect((await apply(spec, specFile)).ok).toBe(true);
      await runPsql(access(), '-c', `\\copy conditions FROM '${file.replaceAll("'", "''")}' WITH CSV`);

      const digest = `SELECT count(*)::int AS n, md5(string_agg(c::text, e'\\n' ORDER BY c::text)) AS md5 FROM conditions c`;
      const [copied] = await sql<{ n: number; md5: string }>(access(), digest);
      expect(copied).toEqual((await sql(exported, digest))[0]);
      expect(copied!.n).toBe(3002);
      // And it is a distributed hypertable like any other: rows on the data nodes, TimescaleDB's
      // functions over it.
      const onShards = await Promise.all(cluster.dataNodes.map(async (n) => Number((await sql<{ n: string }>(n.url, `SELECT count(*) AS n FROM public.conditions`))[0]?.n ?? 0)));
      expect(onShards.reduce((a, b) => a + b, 0)).toBe(3002);
      const [bucketed] = await sql<{ buckets: number }>(access(), `SELECT count(DISTINCT time_bucket('1 day', time))::int AS buckets FROM conditions WHERE time >= '2024-01-01' AND time < '2025-01-01'`);
      expect(bucketed!.buckets).toBeGreaterThan(30);

      // The other way in, for large exports: `hypershard load` writes the same CSV straight to the
      // data nodes owning each row (two-phase commit), with the same values.
      await sql(access(), 'TRUNCATE conditions');
      const loaded = await runCli(['load', '-c', applied.specFile, '--table', 'conditions', '--format', 'csv', '--json', file]);
      expect(loaded.code, loaded.stderr).toBe(0);
      expect((JSON.parse(loaded.stdout) as { rows: number }).rows).toBe(3002);
      expect((await sql(access(), digest))[0]).toEqual(copied);
    });
  });
}
