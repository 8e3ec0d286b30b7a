/**
 * `hypershard/pg` on real clusters (access node + 2 data nodes, the example spec applied, rows in
 * `metrics`): the wrapper answers like a plain pg.Pool on the same statements, with bind values,
 * named prepared statements, callbacks, transactions on checked-out clients and session settings
 * that change; each rewrite it makes is the one `rewriteSql` makes for the session's settings
 * (whatever the rewriter does today); and the catalogs yield the same metadata as the spec.
 */
import net from 'node:net';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client, Pool, type RewriteEvent } from '../../src/pg/index.js';
import { RewriteContext } from '../../src/pg/context.js';
import type { Queryable } from '../../src/rewrite/discover.js';
import { readRoleAccess } from '../../src/rewrite/access.js';
import { DATE_SPAN_GUARD_NAME } from '../../src/rewrite/dates.js';
import { discoverMetadata } from '../../src/rewrite/discover.js';
import { metadataFromLayout } from '../../src/rewrite/metadata.js';
import type { ClusterMetadata, RoleAccess } from '../../src/rewrite/model.js';
import { localMidnightOrigin } from '../../src/rewrite/buckets.js';
import { rewriteSql } from '../../src/rewrite/rewrite.js';
import { readZoneGrid, type ZoneGrid } from '../../src/rewrite/zoneGrid.js';
import { sessionSettings, type SessionSettings } from '../../src/rewrite/session.js';
import { appliedExampleCluster, METRICS_ROWS, type AppliedCluster } from '../support/appliedCluster.js';
import { clusterSources, type TestCluster } from '../support/clusters.js';
import { expectSameRows } from '../support/compare.js';

const sources = await Promise.all(clusterSources().map(async (s) => ({ source: s, skip: await s.unavailable() })));

/** Statements over the hypertable, with the values they take and whether they order their rows. */
const SINCE = new Date(Date.now() - 6 * 3600_000);
const QUERIES: readonly { sql: string; values?: unknown[]; ordered: boolean }[] = [
  { sql: 'SELECT device_id, count(*) AS n, avg(cpu) AS avg_cpu, max(temperature) AS peak FROM metrics GROUP BY device_id ORDER BY device_id', ordered: true },
  { sql: "SELECT count(*) AS n, sum(cpu) AS total, min(time) AS first, max(time) AS last FROM metrics WHERE time > now() - interval '1 day'", ordered: true },
  { sql: "SELECT date_trunc('hour', time) AS hour, count(*) AS n, max(cpu) AS peak, avg(memory) AS mem FROM metrics GROUP BY 1 ORDER BY 1", ordered: true },
  { sql: 'SELECT time, cpu FROM metrics WHERE device_id = $1 AND time > $2 ORDER BY time DESC LIMIT 5', values: [7, SINCE], ordered: true },
  { sql: 'SELECT device_id, max(cpu) AS peak FROM metrics WHERE device_id = ANY ($1::int[]) GROUP BY device_id ORDER BY peak DESC, device_id LIMIT 3', values: [[1, 2, 3, 4, 5]], ordered: true },
  { sql: 'SELECT DISTINCT ON (device_id) device_id, time, cpu FROM metrics ORDER BY device_id, time DESC', ordered: true },
  { sql: 'SELECT stddev(cpu) AS sd, variance(memory) AS v, count(DISTINCT device_id) AS devices FROM metrics WHERE time >= $1', values: [SINCE], ordered: true },
  { sql: 'SELECT device_id, cpu FROM metrics WHERE device_id IN (SELECT device_id FROM metrics WHERE cpu > $1) AND temperature = 36', values: [98], ordered: false },
];

for (const { source, skip } of sources) {
  describe.skipIf(skip !== undefined)(`hypershard/pg on ${source.label}${skip === undefined ? '' : ` — skipped: ${skip}`}`, () => {
    let cluster: TestCluster;
    let applied: AppliedCluster;
    let plain: pg.Pool;
    let pool: Pool;
    let events: RewriteEvent[];
    /** What rewrites are made against: the catalogs' metadata, as the wrapper discovers it. */
    let metadata: ClusterMetadata;
    let defaults: SessionSettings;
    /** What the spec's (superuser) role may have rewritten per shard. */
    let access: RoleAccess;

    /** The event the wrapper reports is the rewrite rewriteSql makes for those settings. */
    const grids = new Map<string, ZoneGrid | undefined>();
    const expectRewriteOf = async (event: RewriteEvent | undefined, sql: string, settings: SessionSettings = defaults): Promise<void> => {
      // The zone's grid as the wrapper reads it (zoneGrid.ts), for keys that read the session's zone.
      if (!grids.has(settings.timeZone)) grids.set(settings.timeZone, localMidnightOrigin(settings.timeZone) === undefined ? await readZoneGrid(plain, settings.timeZone) : undefined);
      const expected = rewriteSql(sql, metadata, { ...settings, access, zoneGrid: grids.get(settings.timeZone) });
      expect(event, sql).toEqual({ original: sql, sql: expected.sql, changed: expected.changed, rewrites: expected.rewrites, unchanged: expected.unchanged, timeZone: settings.timeZone, searchPath: settings.searchPath, role: settings.role });
    };

    beforeAll(async () => {
      cluster = await source.start(2);
      applied = await appliedExampleCluster(cluster, 'pg');
      plain = new pg.Pool(applied.access);
      pool = new Pool(applied.access);
      events = [];
      pool.on('rewrite', (event) => events.push(event));
      const client = await plain.connect();
      try {
        metadata = await discoverMetadata(client);
        defaults = await sessionSettings(client);
        access = await readRoleAccess(client, defaults.role, metadata);
      } finally {
        client.release();
      }
    });
    afterAll(async () => {
      await pool?.end();
      await plain?.end();
      await cluster?.stop();
    });

    it("discovers the spec's hypertables from the access node's catalogs, and what each role may have read per shard", async () => {
      expect(metadata).toEqual({ ...metadataFromLayout(applied.layout), relationSchemas: { metrics: ['public'] } });
      expect(access).toEqual({ role: defaults.role, tables: new Map([['public.metrics', undefined]]) });
      expect(metadata.hypertables[0]?.shards).toHaveLength(4);

      const client = new pg.Client(applied.access);
      await client.connect();
      try {
        // A hash-partitioned table with local partitions is not distributed.
        await client.query('CREATE TABLE local_hash (k int, v text) PARTITION BY HASH (k)');
        await client.query('CREATE TABLE local_hash_0 PARTITION OF local_hash FOR VALUES WITH (MODULUS 2, REMAINDER 0)');
        await client.query('CREATE TABLE local_hash_1 PARTITION OF local_hash FOR VALUES WITH (MODULUS 2, REMAINDER 1)');
        expect((await discoverMetadata(client)).hypertables.map((h) => h.table.name)).toEqual(['metrics']);
      } finally {
        await client.query('DROP TABLE IF EXISTS local_hash');
        await client.end();
      }

      // hypershard grants a role that may read metrics its shards too, which a rewrite reads
      // directly; a role missing one shard's grant is given no per-shard rewrite. The same facts
      // come through the role's own connection and through another role's.
      const reader = new pg.Client(applied.reader);
      const admin = new pg.Client(applied.access);
      await reader.connect();
      await admin.connect();
      try {
        expect((await reader.query('SELECT count(*)::int AS n FROM metrics')).rows).toEqual([{ n: METRICS_ROWS }]);
        expect(await discoverMetadata(reader)).toEqual(metadata);
        expect(await readRoleAccess(reader, 'metrics_reader', metadata)).toEqual({ role: 'metrics_reader', tables: new Map([['public.metrics', undefined]]) });
        await admin.query('REVOKE SELECT ON _hypershard.metrics_s0 FROM metrics_reader');
        const denied = { role: 'metrics_reader', tables: new Map([['public.metrics', 'role metrics_reader may not read _hypershard.metrics_s0, which a per-shard rewrite of public.metrics reads']]) };
        expect(await readRoleAccess(reader, 'metrics_reader', metadata)).toEqual(denied);
        expect(await readRoleAccess(admin, 'metrics_reader', metadata)).toEqual(denied);
        expect((await readRoleAccess(admin, 'nobody_here', metadata)).tables.get('public.metrics')).toBe('the role nobody_here does not exist on the access node');
      } finally {
        await admin.query('GRANT SELECT ON _hypershard.metrics_s0 TO metrics_reader');
        await reader.end();
        await admin.end();
      }
    });

    it('discovers a reference table by its copies and sync trigger', async () => {
      const client = new pg.Client(applied.access);
      await client.connect();
      const servers = [...new Set(applied.layout.hypertables[0]!.shards.map((s) => s.server))].sort();
      try {
        await client.query('CREATE TABLE public.devices (id integer PRIMARY KEY, name varchar(40), tags text[])');
        for (const server of servers) {
          await client.query(`CREATE FOREIGN TABLE _hypershard."devices_${server}" (id integer NOT NULL, name varchar(40), tags text[]) SERVER "${server}" OPTIONS (schema_name 'public', table_name 'devices')`);
        }
        // Copies nobody keeps in sync are not a reference table.
        expect((await discoverMetadata(client)).referenceTables).toEqual([]);
        await client.query(`CREATE FUNCTION _hypershard.devices_sync() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$`);
        await client.query('CREATE TRIGGER hypershard_sync_insert AFTER INSERT ON public.devices FOR EACH STATEMENT EXECUTE FUNCTION _hypershard.devices_sync()');
        expect((await discoverMetadata(client)).referenceTables).toEqual([
          {
            table: { schema: 'public', name: 'devices' },
            columns: [
              { name: 'id', type: 'integer', notNull: true },
              { name: 'name', type: 'varchar(40)', notNull: false },
              { name: 'tags', type: 'text[]', notNull: false },
            ],
            copies: servers.map((server) => ({ server, table: { schema: '_hypershard', name: `devices_${server}` } })),
          },
        ]);
      } finally {
        await client.query('DROP TABLE IF EXISTS public.devices');
        for (const server of servers) await client.query(`DROP FOREIGN TABLE IF EXISTS _hypershard."devices_${server}"`);
        await client.query('DROP FUNCTION IF EXISTS _hypershard.devices_sync()');
        await client.end();
      }
    });

    it('answers like a plain pg.Pool, with the same bind values, and reports the rewrite rewriteSql makes', async () => {
      for (const q of QUERIES) {
        const before = events.length;
        const expected = await plain.query(q.sql, q.values);
        const actual = await pool.query(q.sql, q.values);
        expectSameRows(actual.rows, expected.rows, { ordered: q.ordered, label: q.sql });
        expect(actual.fields.map((f) => [f.name, f.dataTypeID])).toEqual(expected.fields.map((f) => [f.name, f.dataTypeID]));
        expect(events.length - before, q.sql).toBe(1);
        await expectRewriteOf(events[events.length - 1], q.sql);
        expect(pool.lastRewrite).toBe(events[events.length - 1]);
      }
    });

    it('rewrites the SELECT inside EXPLAIN, DECLARE … CURSOR, COPY (…) TO, CREATE TABLE AS, SELECT INTO and WITH, keeping the rest as written', async () => {
      const select = "SELECT date_trunc('hour', time) AS hour, count(*) AS n, max(cpu) AS peak FROM metrics WHERE time > now() - interval '1 day' GROUP BY 1";
      const client = await pool.connect();
      const reference = await plain.connect();
      try {
        // EXPLAIN (VERBOSE) shows the plan of the rewritten statement: the aggregate on every shard.
        const plan = (await client.query<{ 'QUERY PLAN': string }>(`EXPLAIN (VERBOSE, COSTS OFF) ${select}`)).rows.map((r) => r['QUERY PLAN']).join('\n');
        expect(plan.match(/Relations: Aggregate on/g)).toHaveLength(4);
        expect(client.lastRewrite?.rewrites.map((r) => r.kind)).toEqual(['time-bucket', 'stable-expression', 'partial-aggregate']);
        expect(client.lastRewrite?.sql.startsWith('EXPLAIN (VERBOSE, COSTS OFF) SELECT _hs.g0 AS hour')).toBe(true);
        const analyzed = (await client.query<{ 'QUERY PLAN': unknown }>(`EXPLAIN (ANALYZE, FORMAT JSON) ${select}`)).rows[0]?.['QUERY PLAN'];
        expect(JSON.stringify(analyzed)).toContain('"Actual Rows"');

        const expected = (await reference.query(`${select} ORDER BY 1`)).rows;
        await client.query('BEGIN');
        await client.query(`DECLARE c NO SCROLL CURSOR FOR ${select} ORDER BY 1`);
        expect(client.lastRewrite?.changed).toBe(true);
        const fetched = [...(await client.query('FETCH 3 FROM c')).rows, ...(await client.query('FETCH ALL FROM c')).rows];
        await client.query('COMMIT');
        expectSameRows(fetched, expected, { ordered: true, label: 'DECLARE CURSOR' });

        const { default: copyStreams } = await import('pg-copy-streams');
        const copyOut = async (c: pg.PoolClient, sql: string): Promise<string> => {
          const chunks: Buffer[] = [];
          for await (const chunk of c.query(copyStreams.to(sql))) chunks.push(chunk as Buffer);
          return Buffer.concat(chunks).toString('utf8');
        };
        const copy = `COPY (${select} ORDER BY 1) TO STDOUT WITH (FORMAT csv, HEADER true)`;
        expect(await copyOut(client as unknown as pg.PoolClient, copy)).toBe(await copyOut(reference, copy));
        expect(client.lastRewrite?.changed).toBe(true);

        // The tables made have the same columns, types and rows; TEMPORARY is kept.
        const table = async (c: pg.PoolClient, name: string): Promise<unknown> => ({
          columns: (await c.query(`SELECT attname, atttypid::regtype::text AS type FROM pg_attribute WHERE attrelid = 'pg_temp.${name}'::regclass AND attnum > 0 ORDER BY attnum`)).rows,
          rows: (await c.query(`SELECT * FROM pg_temp.${name} ORDER BY 1`)).rows,
        });
        for (const [name, sql] of [
          ['ctas', `CREATE TEMPORARY TABLE ctas AS ${select}`],
          ['sinto', "SELECT date_trunc('hour', time) AS hour, count(*) AS n, max(cpu) AS peak INTO TEMP sinto FROM metrics WHERE time > now() - interval '1 day' GROUP BY 1"],
        ] as const) {
          await client.query(sql);
          await reference.query(sql);
          expect(client.lastRewrite?.changed, sql).toBe(true);
          const mine = await table(client as unknown as pg.PoolClient, name);
          expect(mine).toEqual(await table(reference, name));
          expect((mine as { rows: unknown[] }).rows.length).toBeGreaterThan(10);
          await client.query(`DROP TABLE pg_temp.${name}`);
          await reference.query(`DROP TABLE pg_temp.${name}`);
        }

        const withQuery = `WITH hourly AS (${select}) SELECT * FROM hourly WHERE n > 0 ORDER BY hour`;
        expectSameRows((await client.query(withQuery)).rows, (await reference.query(withQuery)).rows, { ordered: true, label: 'WITH' });
        expect(client.lastRewrite?.rewrites.map((r) => r.kind)).toContain('partial-aggregate');
      } finally {
        // Closed, not returned: their temporary schema would stay on the next user's search path.
        client.release(true);
        reference.release(true);
      }
    });

    it('passes statements that touch no hypertable through without consulting the rewriter', async () => {
      const before = events.length;
      expect((await pool.query('SELECT 1 AS one, $1::text AS two', ['x'])).rows).toEqual([{ one: 1, two: 'x' }]);
      expect((await pool.query("SELECT count(*)::int AS n FROM pg_class WHERE relname = 'metrics'")).rows).toEqual([{ n: 1 }]);
      expect(events.length).toBe(before);
    });

    it('takes callbacks on pool.query and client.query', async () => {
      const q = QUERIES[3]!;
      const expected = (await plain.query(q.sql, q.values)).rows;
      const viaPool = await new Promise<pg.QueryResult>((resolve, reject) => pool.query(q.sql, q.values ?? [], (err, res) => (err ? reject(err) : resolve(res))));
      expectSameRows(viaPool.rows, expected, { ordered: true, label: 'pool.query with a callback' });
      const client = await pool.connect();
      try {
        const viaClient = await new Promise<pg.QueryResult>((resolve, reject) => client.query(QUERIES[0]!.sql, (err: Error, res: pg.QueryResult) => (err ? reject(err) : resolve(res))));
        expectSameRows(viaClient.rows, (await plain.query(QUERIES[0]!.sql)).rows, { ordered: true, label: 'client.query with a callback' });
      } finally {
        client.release();
      }
    });

    it('runs a named prepared statement twice, rewritten once, and again under another TimeZone', async () => {
      const text = "SELECT date_trunc('day', time) AS day, count(*) AS n, avg(cpu) AS a FROM metrics WHERE device_id = $1 GROUP BY 1 ORDER BY 1";
      const client = await pool.connect();
      const reference = await plain.connect();
      const mine: RewriteEvent[] = [];
      client.on('rewrite', (event) => mine.push(event));
      try {
        for (const device of [3, 4]) {
          const actual = await client.query({ name: 'per_day', text, values: [device] });
          expectSameRows(actual.rows, (await reference.query(text, [device])).rows, { ordered: true, label: `device ${device}` });
        }
        expect(mine).toHaveLength(2);
        // The second run reused the first rewrite (the same result object, not a new one).
        expect(mine[1]!.rewrites).toBe(mine[0]!.rewrites);
        await expectRewriteOf(mine[0], text);

        await client.query("SET TIME ZONE 'Asia/Kathmandu'");
        await reference.query("SET TIME ZONE 'Asia/Kathmandu'");
        const actual = await client.query({ name: 'per_day', text, values: [3] });
        expectSameRows(actual.rows, (await reference.query(text, [3])).rows, { ordered: true, label: 'Asia/Kathmandu' });
        await expectRewriteOf(mine[2], text, { ...defaults, timeZone: 'Asia/Kathmandu' });
      } finally {
        await client.query('RESET TIME ZONE');
        await reference.query('RESET TIME ZONE');
        client.release();
        reference.release();
      }
    });

    it('runs a transaction on a checked-out client: its own writes seen, rolled back, SET LOCAL undone at its end', async () => {
      const count = 'SELECT count(*)::int AS n, max(cpu) AS peak FROM metrics WHERE device_id = $1';
      const client = await pool.connect();
      const mine: RewriteEvent[] = [];
      client.on('rewrite', (event) => mine.push(event));
      try {
        await client.query('BEGIN');
        await client.query("INSERT INTO metrics (time, device_id, cpu) SELECT now() - i * interval '1 minute', 999, i FROM generate_series(1, 30) AS i");
        await client.query("SET LOCAL TIME ZONE 'Pacific/Chatham'");
        expect((await client.query(count, [999])).rows).toEqual([{ n: 30, peak: 30 }]);
        expect(mine.at(-1)?.timeZone).toBe('Pacific/Chatham');
        const total = "SELECT count(*)::int AS n FROM metrics WHERE time > now() - interval '2 days'";
        expect((await client.query(total)).rows).toEqual([{ n: METRICS_ROWS + 30 }]);
        await expectRewriteOf(mine.at(-1), total, { ...defaults, timeZone: 'Pacific/Chatham' });
        await client.query('ROLLBACK');
        expect((await client.query(count, [999])).rows).toEqual([{ n: 0, peak: null }]);
        expect(mine.at(-1)?.timeZone).toBe(defaults.timeZone);
        expect((await plain.query(count, [999])).rows).toEqual([{ n: 0, peak: null }]);
      } finally {
        client.release();
      }
    });

    it('follows SET, RESET, set_config and search_path changes on the session', async () => {
      const text = "SELECT date_trunc('day', time) AS day, count(*) AS n FROM metrics GROUP BY 1 ORDER BY 1";
      const client = await pool.connect();
      const reference = await plain.connect();
      const mine: RewriteEvent[] = [];
      client.on('rewrite', (event) => mine.push(event));
      const both = async (sql: string): Promise<void> => {
        await client.query(sql);
        await reference.query(sql);
      };
      const check = async (timeZone: string, searchPath: readonly string[]): Promise<void> => {
        const actual = await client.query(text);
        expectSameRows(actual.rows, (await reference.query(text)).rows, { ordered: true, label: `${timeZone} ${searchPath.join(',')}` });
        await expectRewriteOf(mine.at(-1), text, { ...defaults, timeZone, searchPath });
      };
      try {
        await check(defaults.timeZone, defaults.searchPath);
        await both("SET TIME ZONE 'America/St_Johns'");
        await check('America/St_Johns', defaults.searchPath);
        await both('RESET timezone');
        await check(defaults.timeZone, defaults.searchPath);
        await both("SELECT set_config('TimeZone', 'Asia/Tokyo', false)");
        await check('Asia/Tokyo', defaults.searchPath);
        await both('CREATE SCHEMA IF NOT EXISTS elsewhere');
        await both('SET search_path TO elsewhere, public');
        await check('Asia/Tokyo', ['pg_catalog', 'elsewhere', 'public']);
        // A temporary table of the hypertable's name shadows it (pg_temp is searched first): the
        // statement reads the temporary table, and is not rewritten as if it read the hypertable.
        await both('CREATE TEMPORARY TABLE metrics (time timestamptz, device_id int, cpu float8)');
        await both("INSERT INTO metrics VALUES (now(), 1, 1), (now() - interval '2 days', 2, 2)");
        const actual = await client.query(text);
        expectSameRows(actual.rows, (await reference.query(text)).rows, { ordered: true, label: 'temporary metrics' });
        expect(actual.rows.reduce((n: number, r: { n: string }) => n + Number(r.n), 0)).toBe(2);
        expect(mine.at(-1)).toMatchObject({ original: text, changed: false, unchanged: [{ kind: 'statement', reason: 'reads no distributed hypertable' }] });
        const temp = mine.at(-1)?.searchPath[0] ?? '';
        expect(temp).toMatch(/^pg_temp_\d+$/);
        await both('DROP TABLE pg_temp.metrics');
        await check('Asia/Tokyo', [temp, 'pg_catalog', 'elsewhere', 'public']);
        // A table of the hypertable's name made in a schema searched first: the very next
        // statement reads it (the names are read again once the CREATE has run), in a block too.
        await client.query('CREATE TABLE elsewhere.metrics (time timestamptz, device_id int, cpu float8)');
        expect((await client.query(text)).rows).toEqual([]);
        expect(mine.at(-1)).toMatchObject({ original: text, changed: false });
        await client.query('DROP TABLE elsewhere.metrics');
        await check('Asia/Tokyo', [temp, 'pg_catalog', 'elsewhere', 'public']);
        await client.query('BEGIN');
        await client.query('CREATE TABLE elsewhere.metrics (time timestamptz, device_id int, cpu float8)');
        expect((await client.query(text)).rows).toEqual([]);
        await client.query('ROLLBACK');
        await check('Asia/Tokyo', [temp, 'pg_catalog', 'elsewhere', 'public']);
        await both('RESET ALL');
        await check(defaults.timeZone, [temp, ...defaults.searchPath]);
      } finally {
        await both('RESET ALL');
        await both('DROP SCHEMA IF EXISTS elsewhere');
        client.release();
        reference.release();
      }
    });

    it('compares a local date as a range in a zone with daylight saving (its zone data allows), and runs a date outside 1900–2100 as written', async () => {
      const text = `SELECT count(*) AS n, max(cpu) AS peak FROM metrics WHERE time::date >= $1::date AND time::date < current_date + 1`;
      const client = await pool.connect();
      const reference = await plain.connect();
      const mine: RewriteEvent[] = [];
      client.on('rewrite', (event) => mine.push(event));
      try {
        for (const c of [client, reference]) await c.query("SET TIME ZONE 'America/New_York'");
        for (const day of ['2000-01-01', '1850-01-01']) {
          const got = await client.query(text, [day]);
          expectSameRows(got.rows, (await reference.query(text, [day])).rows, { ordered: true, label: day });
          expect(Number((got.rows[0] as { n: string }).n), day).toBeGreaterThan(0);
        }
        // The first as a range on time (its bounds evaluated once), the second failed the date's guard and ran as written.
        const [inside, , outside] = mine.slice(-3);
        expect(inside?.rewrites.filter((r) => r.kind === 'date-range')).toHaveLength(2);
        expect(inside?.error).toBeUndefined();
        expect(outside?.changed).toBe(false);
        expect(outside?.error).toContain(DATE_SPAN_GUARD_NAME);
      } finally {
        for (const c of [client, reference]) await c.query('RESET TimeZone');
        client.release();
        reference.release();
      }
    });

    it("gives the server's own error for a statement that does not parse, or names what does not exist", async () => {
      for (const sql of ['SELEC device_id FROM metrics', 'SELECT device_id FROM metrics WHERE', 'SELECT nope FROM metrics GROUP BY device_id', 'SELECT count(nope), max(cpu) FROM metrics']) {
        const expected = (await plain.query(sql).catch((e: unknown) => e)) as pg.DatabaseError;
        const actual = (await pool.query(sql).catch((e: unknown) => e)) as pg.DatabaseError;
        expect(expected).toBeInstanceOf(Error);
        expect({ message: actual.message, code: actual.code, position: actual.position }, sql).toEqual({ message: expected.message, code: expected.code, position: expected.position });
      }
    });

    it('keeps the order of statements called without waiting, while the first waits for the metadata', async () => {
      const fresh = new Pool(applied.access);
      const client = await fresh.connect();
      try {
        expect(fresh.metadata).toBeUndefined();
        const first = client.query('SELECT count(*)::int AS n FROM metrics');
        const set = client.query("SET TIME ZONE 'Asia/Kolkata'");
        const after = client.query<{ tz: string }>("SELECT current_setting('TimeZone') AS tz");
        const last = client.query('SELECT count(*)::int AS n FROM metrics');
        expect((await first).rows).toEqual([{ n: METRICS_ROWS }]);
        await set;
        expect((await after).rows).toEqual([{ tz: 'Asia/Kolkata' }]);
        expect((await last).rows).toEqual([{ n: METRICS_ROWS }]);
        expect(client.lastRewrite?.timeZone).toBe('Asia/Kolkata');
        expect(fresh.metadata).toEqual(metadata);
      } finally {
        client.release();
        await fresh.end();
      }
    });

    it('rewrites a submitted query object (pg.Query) in place', async () => {
      const sql = QUERIES[0]!.sql;
      const client = await pool.connect();
      try {
        const query = new pg.Query(sql);
        const rows: unknown[] = [];
        query.on('row', (row: unknown) => rows.push(row));
        const done = new Promise((resolve, reject) => {
          query.on('end', resolve);
          query.on('error', reject);
        });
        expect(client.query(query)).toBe(query);
        await done;
        expectSameRows(rows as Record<string, unknown>[], (await plain.query(sql)).rows, { ordered: true, label: 'pg.Query' });
        await expectRewriteOf(client.lastRewrite, sql);
      } finally {
        client.release();
      }
    });

    it('gives a role that may not read the shards no per-shard rewrite, even with metadata given, and says why', async () => {
      const admin = new pg.Client(applied.access);
      await admin.connect();
      await admin.query('REVOKE USAGE ON SCHEMA _hypershard FROM metrics_reader');
      const given = metadataFromLayout(applied.layout);
      const reader = new Pool({ ...applied.reader, hypershard: { metadata: given } });
      expect(reader.metadata).toBe(given);
      const sql = 'SELECT count(*) AS n, max(cpu) AS peak, min(time) AS first FROM metrics';
      const client = await reader.connect();
      try {
        const rows = (await client.query(sql)).rows;
        expectSameRows(rows, (await plain.query(sql)).rows, { ordered: true, label: 'as the reader' });
        expect(client.lastRewrite).toMatchObject({ changed: false, role: 'metrics_reader', unchanged: [{ kind: 'privileges', reason: expect.stringMatching(/^role metrics_reader may not read _hypershard\.metrics_s0, _hypershard\.metrics_s1, /) as unknown }] });
        expect(client.lastRewrite?.error).toBeUndefined();
      } finally {
        client.release();
        await reader.end();
        await admin.query('GRANT USAGE ON SCHEMA _hypershard TO metrics_reader');
        await admin.end();
      }
    });

    it('keeps a Pool in use on a fresh reading: refreshed in the background past half its life, never stale for a statement', async () => {
      const ahead = new Pool({ ...applied.access, hypershard: { refreshMs: 2_000 } });
      const q = QUERIES[1]!; // now() evaluated once: rewritten
      try {
        await ahead.query(q.sql);
        const readings = new Set([ahead.metadata]);
        const started = Date.now();
        // Five seconds of statements, one every 100 ms: the reading would be stale twice over without refresh-ahead.
        while (Date.now() - started < 5_000) {
          expect(ahead.metadata, `${Date.now() - started} ms in`).toBeDefined();
          readings.add(ahead.metadata);
          const event = new Promise<RewriteEvent>((resolve) => ahead.once('rewrite', resolve));
          await ahead.query(q.sql);
          expect((await event).changed).toBe(true);
          await new Promise((r) => setTimeout(r, 100));
        }
        expect(readings.size).toBeGreaterThanOrEqual(3);
        expect([...readings].every((m) => JSON.stringify(m) === JSON.stringify(metadata))).toBe(true);
      } finally {
        await ahead.end();
      }
    });

    it('gives up a refresh-ahead on an access node that stopped answering within its bound, names the node, and recovers', async () => {
      const proxy = await stallingProxy({ host: String(applied.access.host), port: Number(applied.access.port) });
      const bound = 1_500;
      const ahead = new Pool({ ...applied.access, host: '127.0.0.1', port: proxy.port, query_timeout: bound, hypershard: { refreshMs: 1_000 } });
      const q = QUERIES[1]!;
      try {
        await ahead.query(q.sql);
        const session = await ahead.connect();
        await new Promise((r) => setTimeout(r, 600)); // past half the reading's life
        proxy.stall();
        const stalledAt = Date.now();
        // The statement waits on the node (its own query_timeout); the read ahead of it, started as it was rewritten, gives up.
        await expect(session.query(q.sql)).rejects.toThrow(/timeout/);
        session.release(true);
        while (ahead.refreshError === undefined && Date.now() - stalledAt < 3 * bound) await new Promise((r) => setTimeout(r, 50));
        expect(Date.now() - stalledAt).toBeLessThan(3 * bound);
        expect(ahead.refreshError?.message).toMatch(new RegExp(`^access node 127\\.0\\.0\\.1:${proxy.port}: reading its catalogs ahead of need failed \\(`));
        proxy.resume();
        // Answering again: the next statement's read ahead succeeds and clears the error.
        const resumedAt = Date.now();
        while (ahead.refreshError !== undefined && Date.now() - resumedAt < 10_000) {
          await ahead.query(q.sql);
          await new Promise((r) => setTimeout(r, 100));
        }
        expect(ahead.refreshError).toBeUndefined();
        expect(ahead.metadata).toEqual(metadata);
      } finally {
        proxy.resume();
        await ahead.end();
        await proxy.close();
      }
    });

    /** Reads through the plain pool that wait until `open()`: a catalog read held in flight. */
    const heldReads = (): { held: Queryable; open: () => void } => {
      let open!: () => void;
      const gate = new Promise<void>((resolve) => (open = resolve));
      return { held: { query: async (sql: string, values?: unknown[]) => (await gate, plain.query(sql, values)) } as Queryable, open };
    };

    it('puts in no reading that started before an invalidation, and a new read follows it', async () => {
      const context = new RewriteContext();
      const { held, open } = heldReads();
      const refreshing = context.refresh(held);
      const loading = context.load(held);
      context.invalidate();
      // Invalidated: a load after it reads anew rather than joining the one in flight.
      expect(await context.load(plain)).toEqual(metadata);
      const fresh = context.metadata;
      open();
      await Promise.all([refreshing, loading]);
      expect(context.metadata).toBe(fresh);
      context.invalidate();
      expect(context.metadata).toBeUndefined();
      await context.refresh(plain);
      expect(context.metadata).toEqual(metadata);
    });

    it('keeps the later of two catalog reads: a load that started before a refresh does not replace its reading', async () => {
      const context = new RewriteContext();
      const { held, open } = heldReads();
      const loading = context.load(held);
      await context.refresh(plain);
      const refreshed = context.metadata;
      expect(refreshed).toEqual(metadata);
      open();
      expect(await loading).toEqual(metadata);
      expect(context.metadata).toBe(refreshed);
    });

    it('a standalone Client discovers on first use and rewrites the same way', async () => {
      const client = new Client(applied.access);
      await client.connect();
      try {
        const q = QUERIES[4]!;
        expectSameRows((await client.query(q.sql, q.values)).rows, (await plain.query(q.sql, q.values)).rows, { ordered: true, label: q.sql });
        await expectRewriteOf(client.lastRewrite, q.sql);
      } finally {
        await client.end();
      }
    });
  });
}

it("'hypershard/pg' is pg with hypershard's Pool and Client", async () => {
  const { default: wrapped, Pool: Exported, types } = await import('../../src/pg/index.js');
  expect(wrapped.Pool).toBe(Exported);
  expect(wrapped.Client).toBe(Client);
  const unused = new Pool();
  expect(unused).toBeInstanceOf(pg.Pool);
  await unused.end();
  expect(types).toBe(pg.types);
  expect(wrapped.escapeIdentifier('a"b')).toBe('"a""b"');
  // The package's own subpath, as an application imports it (the built package).
  const subpath = 'hypershard/pg';
  const built = (await import(subpath)) as { default: { Pool: unknown; types: unknown }; Pool: new () => pg.Pool };
  expect(built.default.Pool).toBe(built.Pool);
  expect(built.default.types).toBe(pg.types);
  expect(new built.Pool()).toBeInstanceOf(pg.Pool);
});

/**
 * A loopback TCP relay to a node that can stop passing bytes either way (`stall`), as a frozen
 * node does: connections are still accepted, and nothing comes back until `resume`.
 */
async function stallingProxy(target: { host: string; port: number }): Promise<{ port: number; stall(): void; resume(): void; close(): Promise<void> }> {
  let stalled = false;
  const held: (() => void)[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(target.port, target.host);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => undefined).on('close', () => (client.destroy(), upstream.destroy(), sockets.delete(s)));
    }
    const relay = (from: net.Socket, to: net.Socket): void => {
      from.on('data', (chunk) => {
        if (!stalled) return void to.write(chunk);
        from.pause();
        held.push(() => (to.write(chunk), from.resume()));
      });
    };
    relay(client, upstream);
    relay(upstream, client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    stall: () => void (stalled = true),
    resume: () => {
      stalled = false;
      for (const release of held.splice(0)) release();
    },
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
