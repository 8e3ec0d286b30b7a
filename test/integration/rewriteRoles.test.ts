/**
 * The rewriter never shows a role more than the statement it wrote would (issue 11, item 5), on
 * real clusters (the example spec applied, rows in `metrics`): row-level security policies,
 * FORCE ROW LEVEL SECURITY and ownership, BYPASSRLS, column privileges, a security-barrier view
 * of the hypertable's name earlier on the search path, SET ROLE / SET SESSION AUTHORIZATION, a
 * role changed by a function where no statement shows it, and a SECURITY DEFINER function. Each
 * case runs the same statements through `hypershard/pg` and through plain pg as the same role and
 * compares the answers, and checks which per-shard rewrites were made and why not. The facts are
 * also read as a gateway would, through a connection in another role.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RewriteContext } from '../../src/pg/context.js';
import { Pool, type RewriteEvent } from '../../src/pg/index.js';
import { GUARD_NAME, isGuardError, readRoleAccess } from '../../src/rewrite/access.js';
import { discoverMetadata } from '../../src/rewrite/discover.js';
import type { ClusterMetadata, Rewrite } from '../../src/rewrite/model.js';
import { sessionSettings } from '../../src/rewrite/session.js';
import { appliedExampleCluster, type AppliedCluster } from '../support/appliedCluster.js';
import { clusterSources, type TestCluster } from '../support/clusters.js';
import { expectSameRows } from '../support/compare.js';

const sources = await Promise.all(clusterSources().map(async (s) => ({ source: s, skip: await s.unavailable() })));

/** Statements each per-shard rewrite applies to (for a role that may have them), and the issue's date_trunc/now() case. */
const QUERIES = [
  "SELECT date_trunc('hour', time) AS hour, count(*) AS n, max(cpu) AS peak FROM metrics WHERE time > now() - interval '1 day' GROUP BY 1 ORDER BY 1",
  'SELECT count(*) AS n, sum(cpu) AS total, min(time) AS first FROM metrics',
  'SELECT time, device_id, cpu FROM metrics ORDER BY time DESC, device_id LIMIT 7',
  'SELECT DISTINCT ON (device_id) device_id, time, cpu FROM metrics ORDER BY device_id, time DESC',
];
const PER_SHARD = new Set<Rewrite['kind']>(['partial-aggregate', 'limit-per-shard', 'distinct-on-per-shard', 'shard-pinning', 'reference-join']);
const perShard = (event: RewriteEvent | undefined): string[] => (event?.rewrites ?? []).filter((r) => PER_SHARD.has(r.kind)).map((r) => r.kind);

for (const { source, skip } of sources) {
  describe.skipIf(skip !== undefined)(`what a role may see, through the rewriter, on ${source.label}${skip === undefined ? '' : ` — skipped: ${skip}`}`, () => {
    let cluster: TestCluster;
    let applied: AppliedCluster;
    /** The spec's superuser, without the rewriter: the reference answers, and the DDL. */
    let admin: pg.Client;
    let metadata: ClusterMetadata;

    /** Runs `sql` through plain pg after `setup` (SET ROLE …), in a transaction rolled back. */
    const plainAs = async (setup: readonly string[], sql: string): Promise<pg.QueryResult<Record<string, unknown>>> => {
      await admin.query('BEGIN');
      try {
        for (const s of setup) await admin.query(s);
        return await admin.query(sql);
      } finally {
        await admin.query('ROLLBACK');
      }
    };

    /**
     * Each query through a hypershard/pg client on which `setup` ran, against plain pg after the
     * same setup (as `login`, the pool's role); returns the events, one per query.
     */
    const compare = async (pool: Pool, setup: readonly string[], label: string, login = 'postgres'): Promise<RewriteEvent[]> => {
      const client = await pool.connect();
      const events: RewriteEvent[] = [];
      client.on('rewrite', (e) => events.push(e));
      try {
        for (const s of setup) await client.query(s);
        for (const sql of QUERIES) {
          const expected = await plainAs([`SET SESSION AUTHORIZATION ${login}`, ...setup], sql);
          const actual = await client.query(sql);
          expectSameRows(actual.rows, expected.rows, { ordered: true, label: `${label}: ${sql}` });
          expect(events.at(-1)?.original, sql).toBe(sql);
          expect(events.at(-1)?.error, sql).toBeUndefined();
        }
      } finally {
        await client.query('RESET SESSION AUTHORIZATION').catch(() => undefined);
        await client.query('RESET ALL').catch(() => undefined);
        client.release();
      }
      return events;
    };

    const expectNoPerShard = (events: readonly RewriteEvent[], reason: RegExp): void => {
      for (const e of events) {
        expect(perShard(e), e.original).toEqual([]);
        expect(e.unchanged.filter((u) => u.kind === 'privileges').map((u) => u.reason), e.original).toEqual([expect.stringMatching(reason)]);
      }
    };
    const expectPerShard = (events: readonly RewriteEvent[]): void => {
      for (const e of events) expect(perShard(e).length, e.original).toBeGreaterThan(0);
    };

    beforeAll(async () => {
      cluster = await source.start(2);
      applied = await appliedExampleCluster(cluster, 'roles');
      admin = new pg.Client(applied.access);
      await admin.connect();
      metadata = await discoverMetadata(admin);
      // Roles a test switches to (SET ROLE works for a superuser without a login). Each may read
      // the shards, as hypershard grants a role that may read the hypertable: only what the
      // hypertable itself enforces can stop a per-shard rewrite from widening the answer.
      for (const statement of [
        'CREATE ROLE auditor BYPASSRLS',
        'CREATE ROLE analyst',
        'CREATE ROLE table_owner',
        'GRANT SELECT ON metrics TO auditor',
        'GRANT SELECT (time, device_id, cpu) ON metrics TO analyst',
        'GRANT USAGE ON SCHEMA _hypershard TO auditor, analyst, table_owner',
        ...metadata.hypertables[0]!.shards.map((s) => `GRANT SELECT ON _hypershard.${s.table.name} TO auditor, analyst, table_owner`),
        'CREATE POLICY reader_sees_device_1 ON metrics FOR SELECT TO metrics_reader USING (device_id = 1)',
      ]) {
        await admin.query(statement);
      }
    });
    afterAll(async () => {
      await admin?.end();
      await cluster?.stop();
    });

    it('leaves a role under a row-level security policy its policy: no per-shard rewrite, the same rows as psql, the reason said', async () => {
      await admin.query('ALTER TABLE metrics ENABLE ROW LEVEL SECURITY');
      const reader = new Pool(applied.reader);
      const superuser = new Pool(applied.access);
      try {
        // The issue's case: the policy shows metrics_reader device 1 only.
        const seen = await plainAs(['SET ROLE metrics_reader'], QUERIES[1]!);
        const all = await plainAs([], QUERIES[1]!);
        expect(Number(seen.rows[0]?.n)).toBeGreaterThan(0);
        expect(Number(seen.rows[0]?.n)).toBeLessThan(Number(all.rows[0]?.n) / 10);

        const events = await compare(reader, [], 'metrics_reader, logged in', 'metrics_reader');
        expectNoPerShard(events, /^row-level security on public\.metrics applies to role metrics_reader; its policies are enforced on public\.metrics, not on the shards/);
        // What does not read the shards directly is still made: the bucket and the now() window.
        expect(events[0]!.rewrites.map((r) => r.kind)).toEqual(['time-bucket', 'stable-expression']);

        // The superuser bypasses row security: its statements are rewritten per shard.
        expectPerShard(await compare(superuser, [], 'superuser'));
        // SET ROLE and SET SESSION AUTHORIZATION to the reader on the superuser's connection, and back.
        expectNoPerShard(await compare(superuser, ['SET ROLE metrics_reader'], 'SET ROLE'), /applies to role metrics_reader/);
        expectNoPerShard(await compare(superuser, ['SET SESSION AUTHORIZATION metrics_reader'], 'SET SESSION AUTHORIZATION'), /applies to role metrics_reader/);
        const client = await superuser.connect();
        try {
          await client.query('SET ROLE metrics_reader');
          await client.query(QUERIES[1]!);
          expect(perShard(client.lastRewrite)).toEqual([]);
          await client.query('RESET ROLE');
          await client.query(QUERIES[1]!);
          expect(client.lastRewrite?.role).toBe('postgres');
          expect(perShard(client.lastRewrite)).toEqual(['partial-aggregate']);
        } finally {
          client.release();
        }
        // A BYPASSRLS role sees every row, and gets per-shard rewrites.
        expectPerShard(await compare(superuser, ['SET ROLE auditor'], 'BYPASSRLS'));
      } finally {
        await reader.end();
        await superuser.end();
        await admin.query('ALTER TABLE metrics DISABLE ROW LEVEL SECURITY');
      }
    });

    it("rewrites for the table's owner unless row security is forced on it", async () => {
      const pool = new Pool(applied.access);
      await admin.query('ALTER TABLE metrics OWNER TO table_owner');
      await admin.query('ALTER TABLE metrics ENABLE ROW LEVEL SECURITY');
      try {
        expectPerShard(await compare(pool, ['SET ROLE table_owner'], 'owner'));
        await admin.query('ALTER TABLE metrics FORCE ROW LEVEL SECURITY');
        pool.refreshMetadata();
        // Forced, and no policy for the owner: the owner sees no row, and neither does the rewrite.
        const events = await compare(pool, ['SET ROLE table_owner'], 'owner, forced');
        expectNoPerShard(events, /^row-level security on public\.metrics applies to role table_owner \(FORCE ROW LEVEL SECURITY\)/);
        expect((await plainAs(['SET ROLE table_owner'], QUERIES[1]!)).rows[0]?.n).toBe('0');
      } finally {
        await pool.end();
        await admin.query('ALTER TABLE metrics NO FORCE ROW LEVEL SECURITY');
        await admin.query('ALTER TABLE metrics DISABLE ROW LEVEL SECURITY');
        await admin.query('ALTER TABLE metrics OWNER TO CURRENT_USER');
      }
    });

    it('gives a role with column privileges only the columns it may read: no per-shard rewrite, and the same errors', async () => {
      const pool = new Pool(applied.access);
      const client = await pool.connect();
      try {
        await client.query('SET ROLE analyst');
        const sql = "SELECT date_trunc('hour', time) AS hour, max(cpu) AS peak FROM metrics GROUP BY 1 ORDER BY 1";
        expectSameRows((await client.query(sql)).rows, (await plainAs(['SET ROLE analyst'], sql)).rows, { ordered: true, label: 'analyst' });
        expect(perShard(client.lastRewrite)).toEqual([]);
        expect(client.lastRewrite?.unchanged).toContainEqual({ kind: 'privileges', reason: 'role analyst may not SELECT the whole of public.metrics (column privileges, or none), and its shards would show every column' });
        // A column it may not read: the server's own error, rewritten or not.
        const denied = 'SELECT max(memory) AS m FROM metrics';
        const expected = (await plainAs(['SET ROLE analyst'], denied).catch((e: unknown) => e)) as pg.DatabaseError;
        const actual = (await client.query(denied).catch((e: unknown) => e)) as pg.DatabaseError;
        expect(expected.code).toBe('42501');
        expect({ code: actual.code, message: actual.message }).toEqual({ code: expected.code, message: expected.message });
      } finally {
        await client.query('RESET ROLE');
        client.release();
        await pool.end();
      }
    });

    it("takes a security-barrier view of the hypertable's name earlier on the search path for what it is", async () => {
      await admin.query('CREATE SCHEMA restricted');
      await admin.query('CREATE VIEW restricted.metrics WITH (security_barrier) AS SELECT * FROM public.metrics WHERE device_id = 2');
      await admin.query('GRANT USAGE ON SCHEMA restricted TO metrics_reader');
      await admin.query('GRANT SELECT ON restricted.metrics TO metrics_reader');
      const pool = new Pool(applied.reader);
      try {
        const events = await compare(pool, ['SET search_path TO restricted, public'], 'the view first on the path', 'metrics_reader');
        for (const e of events) expect(e).toMatchObject({ changed: false, unchanged: [{ kind: 'statement', reason: 'reads no distributed hypertable' }] });
        expect((await plainAs(['SET ROLE metrics_reader', 'SET search_path TO restricted, public'], 'SELECT DISTINCT device_id FROM metrics')).rows).toEqual([{ device_id: 2 }]);
        // On the default path the same name is the hypertable again.
        expectPerShard(await compare(pool, [], 'the hypertable', 'metrics_reader'));
      } finally {
        await pool.end();
        await admin.query('DROP SCHEMA restricted CASCADE');
      }
    });

    it('catches a role changed where no statement shows it (a function running SET ROLE): the guard refuses, the statement runs as written', async () => {
      await admin.query(`CREATE FUNCTION public.become(r text) RETURNS void LANGUAGE plpgsql AS $$ BEGIN EXECUTE format('SET ROLE %I', r); END $$`);
      await admin.query('ALTER TABLE metrics ENABLE ROW LEVEL SECURITY');
      const pool = new Pool(applied.access);
      const client = await pool.connect();
      try {
        await client.query(QUERIES[1]!);
        expect(perShard(client.lastRewrite)).toEqual(['partial-aggregate']);
        await client.query("SELECT public.become('metrics_reader')");
        expect((await client.query<{ r: string }>('SELECT current_user AS r')).rows).toEqual([{ r: 'metrics_reader' }]);
        // Rewritten for the superuser it was, per shard; the guard finds the policy applying to
        // metrics_reader, and the statement runs again as written: the policy's rows.
        const rows = (await client.query(QUERIES[1]!)).rows;
        expectSameRows(rows, (await plainAs(['SET ROLE metrics_reader'], QUERIES[1]!)).rows, { ordered: true, label: 'after become()' });
        expect(client.lastRewrite?.error).toMatch(/^the rewritten statement failed \(relation "hypershard: row security or privileges changed; run as written" does not exist\); ran as written$/);
        // Inside a transaction the statement cannot run again: the guard's error stands, no row.
        await client.query("SELECT public.become('postgres')");
        await client.query(QUERIES[1]!); // read again for the superuser, rewritten per shard
        await client.query('BEGIN');
        await client.query("SELECT public.become('metrics_reader')");
        const error = await client.query(QUERIES[1]!).then(() => undefined, (e: unknown) => e);
        await client.query('ROLLBACK');
        expect(isGuardError(error)).toBe(true);
        expect((error as pg.DatabaseError).message).toBe(`relation "${GUARD_NAME}" does not exist`);
      } finally {
        await client.query('RESET ROLE').catch(() => undefined);
        client.release();
        await pool.end();
        await admin.query('ALTER TABLE metrics DISABLE ROW LEVEL SECURITY');
        await admin.query('DROP FUNCTION public.become(text)');
      }
    });

    it('answers through a SECURITY DEFINER function as psql does (the function reads as its owner, unrewritten)', async () => {
      await admin.query('CREATE FUNCTION public.device_count() RETURNS bigint LANGUAGE sql SECURITY DEFINER AS $$ SELECT count(DISTINCT device_id) FROM public.metrics $$');
      await admin.query('ALTER TABLE metrics ENABLE ROW LEVEL SECURITY');
      const pool = new Pool(applied.reader);
      try {
        const sql = 'SELECT public.device_count() AS owner_sees, (SELECT count(DISTINCT device_id) FROM metrics) AS reader_sees';
        const actual = (await pool.query(sql)).rows;
        expect(actual).toEqual((await plainAs(['SET ROLE metrics_reader'], sql)).rows);
        expect(actual).toEqual([{ owner_sees: '20', reader_sees: '1' }]);
      } finally {
        await pool.end();
        await admin.query('ALTER TABLE metrics DISABLE ROW LEVEL SECURITY');
        await admin.query('DROP FUNCTION public.device_count()');
      }
    });

    it("reads the facts as a gateway does, through its own connection about the client's role, and the rewrite's guard backs them", async () => {
      const context = new RewriteContext();
      const reader = new pg.Client(applied.reader);
      await reader.connect();
      try {
        const settings = await sessionSettings(reader);
        expect(settings.role).toBe('metrics_reader');
        // The admin connection answers for the reader exactly as the reader's own session would.
        await admin.query('ALTER TABLE metrics ENABLE ROW LEVEL SECURITY');
        expect(await readRoleAccess(admin, 'metrics_reader', metadata)).toEqual(await readRoleAccess(reader, 'metrics_reader', metadata));
        await context.prepare(admin, settings.role);
        expect(context.ready('metrics_reader')).toBe(true);
        const refused = context.rewrite(QUERIES[0]!, settings);
        expect('sql' in refused && refused.unchanged.some((u) => u.kind === 'privileges')).toBe(true);
        if ('sql' in refused) expectSameRows((await reader.query(refused.sql)).rows, (await plainAs(['SET ROLE metrics_reader'], QUERIES[0]!)).rows, { ordered: true, label: 'gateway, refused' });

        // Facts read while row security was off, then turned on: the rewrite is per shard, and
        // its guard refuses to return a row.
        await admin.query('ALTER TABLE metrics DISABLE ROW LEVEL SECURITY');
        context.invalidateAccess();
        await context.prepare(admin, settings.role);
        const rewritten = context.rewrite(QUERIES[0]!, settings);
        expect('sql' in rewritten && rewritten.rewrites.some((r) => r.kind === 'partial-aggregate')).toBe(true);
        await admin.query('ALTER TABLE metrics ENABLE ROW LEVEL SECURITY');
        const error = await reader.query('sql' in rewritten ? rewritten.sql : '').then(() => undefined, (e: unknown) => e);
        expect(isGuardError(error)).toBe(true);
        // A column privilege revoked: the same.
        await admin.query('ALTER TABLE metrics DISABLE ROW LEVEL SECURITY');
        await admin.query('REVOKE SELECT ON metrics FROM metrics_reader');
        await admin.query('GRANT SELECT (time, cpu) ON metrics TO metrics_reader');
        expect(isGuardError(await reader.query('sql' in rewritten ? rewritten.sql : '').then(() => undefined, (e: unknown) => e))).toBe(true);
      } finally {
        await reader.end();
        await admin.query('ALTER TABLE metrics DISABLE ROW LEVEL SECURITY');
        await admin.query('REVOKE SELECT (time, cpu) ON metrics FROM metrics_reader');
        await admin.query('GRANT SELECT ON metrics TO metrics_reader');
      }
    });
  });
}
