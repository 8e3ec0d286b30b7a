/**
 * `space IN (SELECT … FROM <reference table>)` resolved before planning (src/rewrite/referenceKeys.ts),
 * through hypershard/pg and through the gateway (one code path: RewriteContext.rewriteWithKeys),
 * on PostgreSQL 15 and 18: answers equal those of a single-node copy; EXPLAIN (VERBOSE) of the
 * statement sent asks exactly the shards the keys hash to (what the rewrite says); a reference row
 * changed between two executions gives the new answer, and a change between the read and the
 * statement is caught by its guard; row-level security on the reference table and a missing
 * privilege apply to the read as to the statement; inside a transaction block it is left alone.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml, stringify } from 'yaml';
import { generateMigrations } from '../../src/migrations/files.js';
import { apply } from '../../src/nodes/apply.js';
import { clientConfig } from '../../src/nodes/connect.js';
import { Pool, type RewriteEvent } from '../../src/pg/index.js';
import { planLayout } from '../../src/plan/layout.js';
import { isGuardError } from '../../src/rewrite/access.js';
import { loadSpec } from '../../src/spec/load.js';
import type { AppliedCluster } from '../support/appliedCluster.js';
import { clusterSources, type TestCluster } from '../support/clusters.js';
import { expectSameRows } from '../support/compare.js';
import { withDatabase } from '../support/db.js';
import { startTestGateway, type TestGateway } from '../support/gateway.js';
import { writeExampleSpec, writeSecrets } from '../support/spec.js';

const sources = await Promise.all(clusterSources().map(async (s) => ({ source: s, skip: await s.unavailable() })));

/** Statements with a key sub-select; `single` runs them on the plain copies. */
const QUERIES: readonly { id: string; sql: string; values?: unknown[]; keys: number[] }[] = [
  { id: 'hourly max, IN (SELECT …)', sql: `SELECT date_trunc('hour', time) AS hour, max(cpu) AS peak, count(*) AS n FROM metrics WHERE device_id IN (SELECT id FROM devices WHERE region = 'eu' AND id <= 6) GROUP BY 1 ORDER BY 1`, keys: [3, 6] },
  { id: '= ANY(ARRAY(SELECT …)), one key', sql: `SELECT device_id, count(*) AS n, avg(temperature) AS t FROM metrics WHERE device_id = ANY(ARRAY(SELECT id FROM devices WHERE name = 'dev 7')) GROUP BY 1 ORDER BY 1`, keys: [7] },
  { id: 'rows, a bind value in the sub-select', sql: `SELECT time, device_id, cpu FROM metrics WHERE cpu > $2 AND device_id IN (SELECT id FROM devices WHERE region = $1 AND id <= 7) ORDER BY time DESC, device_id LIMIT 20`, values: ['us', 50], keys: [1, 4, 7] },
  { id: 'keys on every shard', sql: `SELECT count(*) AS n, max(cpu) AS peak FROM metrics WHERE device_id IN (SELECT id FROM devices)`, keys: [] },
  { id: 'no key matches', sql: `SELECT count(*) AS n FROM metrics WHERE device_id IN (SELECT id FROM devices WHERE region = 'nowhere')`, keys: [] },
];

/** node-postgres' deprecation warnings for its Client fields hypershard/pg must not touch (each is given once a process). */
const deprecations: string[] = [];
process.on('warning', (w) => {
  if (w.name === 'DeprecationWarning' && /\bClient\.(activeQuery|queryQueue)\b/.test(w.message)) deprecations.push(w.message);
});

const single = (sql: string): string => sql.replace(/\bmetrics\b/g, 'single.metrics').replace(/\bdevices\b/g, 'single.devices');

for (const { source, skip } of sources) {
  describe.skipIf(skip !== undefined)(`reference keys read before planning on ${source.label}${skip === undefined ? '' : ` — skipped: ${skip}`}`, () => {
    let cluster: TestCluster;
    let applied: AppliedCluster;
    let plain: pg.Pool;
    let pool: Pool;
    let reader: Pool;
    let gateway: TestGateway;
    const events: RewriteEvent[] = [];
    /** The shard (foreign table) each device's rows are on. */
    let shardOf: Map<number, string>;

    beforeAll(async () => {
      cluster = await source.start(2);
      const dir = join(cluster.workDir, 'keys');
      const file = await writeExampleSpec(cluster, dir, { shards: 4 });
      const secrets = await writeSecrets(dir);
      const doc = parseYaml(await readFile(file, 'utf8')) as Record<string, unknown>;
      doc.referenceTables = [{ name: 'devices', columns: [{ name: 'id', type: 'integer', notNull: true }, { name: 'name', type: 'text', notNull: true }, { name: 'region', type: 'text' }], primaryKey: ['id'] }];
      await writeFile(file, stringify(doc));
      const { spec, file: specFile } = await loadSpec(file);
      await generateMigrations(spec, specFile);
      const result = await apply(spec, specFile);
      if (!result.ok) throw new Error(`apply failed: ${JSON.stringify(result.nodes)}`);
      const access = clientConfig(cluster.accessNode.url, process.env.HYPERSHARD_TEST_CONTAINER_PASSWORD);
      plain = new pg.Pool(access);
      const { rows } = await plain.query<{ db: string }>('SELECT current_database() AS db');
      const readerConfig = clientConfig(withDatabase(cluster.accessNode.url, rows[0]!.db, 'metrics_reader'), secrets.reader);
      applied = { spec, specFile, layout: planLayout(spec), access, reader: readerConfig };
      await plain.query(`INSERT INTO devices SELECT i, 'dev ' || i, (ARRAY['eu', 'us', NULL])[i % 3 + 1] FROM generate_series(1, 20) AS i`);
      await plain.query(
        `INSERT INTO metrics (time, device_id, cpu, memory, temperature)
         SELECT now() - i * interval '37 seconds', i % 20 + 1, (i * 7 % 100) + 0.5, i % 13, 20 + i % 17 FROM generate_series(1, 2000) AS i`,
      );
      await plain.query(`CREATE SCHEMA single`);
      await plain.query(`CREATE TABLE single.metrics AS SELECT * FROM metrics`);
      await plain.query(`CREATE TABLE single.devices AS SELECT * FROM devices`);
      await plain.query(`GRANT USAGE ON SCHEMA single TO metrics_reader`);
      await plain.query(`GRANT SELECT ON single.metrics, single.devices, devices TO metrics_reader`);
      await plain.query('ANALYZE');
      const shards = await plain.query<{ device_id: number; shard: string }>(`SELECT DISTINCT device_id, tableoid::regclass::text AS shard FROM metrics`);
      shardOf = new Map(shards.rows.map((r) => [r.device_id, r.shard.replace(/^.*\./, '')]));
      pool = new Pool(access);
      pool.on('rewrite', (e) => events.push(e));
      reader = new Pool(readerConfig);
      gateway = await startTestGateway(applied);
    });
    afterAll(async () => {
      await gateway?.close();
      await reader?.end();
      await pool?.end();
      await plain?.end();
      await cluster?.stop();
    });

    /** The keys the rewrite says it put in (read first, or reused from an earlier execution's read). */
    const KEYS_READ = /\(([-\d, ]+)\) (?:read first|as read for an earlier execution)/;
    /** The keys the rewrite says it read, and the shards EXPLAIN (VERBOSE) of the statement sent asks. */
    const keysAndShards = async (event: RewriteEvent, values?: unknown[]): Promise<{ keys: number[]; shards: string[] }> => {
      const detail = event.rewrites.find((r) => r.kind === 'shard-pinning' && KEYS_READ.test(r.detail))?.detail ?? '';
      const keys = (KEYS_READ.exec(detail)?.[1] ?? '').split(', ').filter((k) => k !== '').map(Number);
      // A statement with its values written in (a router read's, through the gateway) takes none.
      const plan = await plain.query<{ 'QUERY PLAN': string }>(`EXPLAIN (VERBOSE, COSTS OFF) ${event.sql}`, /\$[0-9]/.test(event.sql) ? values : undefined);
      const shards = [...new Set(plan.rows.flatMap((r) => [...r['QUERY PLAN'].matchAll(/Remote SQL: .*? FROM _hypershard\.(metrics_s\d+)/g)].map((m) => m[1] as string)))].sort();
      return { keys, shards };
    };

    it('answers as a single node does, and asks only the shards holding the keys read first', async () => {
      for (const q of QUERIES) {
        events.length = 0;
        const got = await pool.query(q.sql, q.values);
        const expected = await plain.query(single(q.sql), q.values);
        expectSameRows(got.rows, expected.rows, { ordered: true, label: q.id });
        const event = events.at(-1)!;
        if (q.id === 'no key matches' || q.id === 'keys on every shard') {
          expect(event.unchanged.map((u) => u.reason).join('\n'), q.id).toContain(q.id === 'no key matches' ? 'the sub-select returned no key' : 'its 20 keys hash to all 4 shards, so none would be pruned');
          continue;
        }
        const { keys, shards } = await keysAndShards(event, q.values);
        expect(keys, q.id).toEqual(q.keys);
        expect(shards, `${q.id}: ${event.sql}`).toEqual([...new Set(keys.map((k) => shardOf.get(k)!))].sort());
        if (q.keys.length === 1) expect(shards, q.id).toHaveLength(1);
      }
      // Reading the keys in a statement's turn waits for those before it, without pg's deprecated getters.
      await new Promise((resolve) => setImmediate(resolve));
      expect(deprecations).toEqual([]);
    });

    it('reuses the keys read for an earlier execution; a change is caught by the guard, answered as written, and the keys read again', async () => {
      const sql = QUERIES[0]!.sql;
      events.length = 0;
      await pool.query(sql);
      const before = events.at(-1)!;
      // A repeat sends the same statement without reading the keys first.
      await pool.query(sql);
      expect(events.at(-1)!.sql).toBe(before.sql);
      expect(events.at(-1)!.rewrites.find((r) => r.kind === 'shard-pinning')?.detail).toContain('as read for an earlier execution');
      await plain.query(`UPDATE devices SET region = 'eu' WHERE id = 2`);
      await plain.query(`UPDATE single.devices SET region = 'eu' WHERE id = 2`);
      try {
        // The statement sent before, run now: its keys are stale, its guard refuses to answer.
        const stale = await plain.query(before.sql).then(() => undefined, (error: unknown) => error);
        expect(isGuardError(stale), String(stale)).toBe(true);
        const expected = (await plain.query(single(sql))).rows;
        // The next execution reuses the stale keys: its guard refuses, and it runs as written.
        expectSameRows((await pool.query(sql)).rows, expected, { ordered: true, label: 'after the change' });
        expect(events.at(-1)).toMatchObject({ changed: false, error: expect.stringContaining('reference keys changed') as unknown });
        // The one after reads the keys again.
        expectSameRows((await pool.query(sql)).rows, expected, { ordered: true, label: 'keys read again' });
        const again = events.at(-1)!;
        expect(again.rewrites.find((r) => r.kind === 'shard-pinning')?.detail).toContain('read first');
        expect((await keysAndShards(again)).keys).toContain(2);
      } finally {
        await plain.query(`UPDATE devices SET region = NULL WHERE id = 2`);
        await plain.query(`UPDATE single.devices SET region = NULL WHERE id = 2`);
      }
    });

    it("reads the keys as the session's role: row-level security on the reference table applies, a missing privilege fails as written", async () => {
      const sql = QUERIES[0]!.sql;
      await plain.query(`ALTER TABLE devices ENABLE ROW LEVEL SECURITY`);
      await plain.query(`CREATE POLICY low ON devices FOR SELECT TO metrics_reader USING (id <= 4)`);
      await plain.query(`ALTER TABLE single.devices ENABLE ROW LEVEL SECURITY`);
      await plain.query(`CREATE POLICY low ON single.devices FOR SELECT TO metrics_reader USING (id <= 4)`);
      const seen: RewriteEvent[] = [];
      reader.on('rewrite', (e) => seen.push(e));
      try {
        const direct = new pg.Pool(applied.reader);
        try {
          // Keys this role read before the policy, if any, are refused by the guard (run as written, right) and read again.
          for (let i = 0; i < 2; i++) {
            const got = await reader.query(sql);
            expectSameRows(got.rows, (await direct.query(single(sql))).rows, { ordered: true, label: 'under a policy' });
          }
          const { keys } = await keysAndShards(seen.at(-1)!);
          // Keys 3 and 6 as the owner sees them; the policy leaves the reader 3.
          expect(keys).toEqual([3]);
          await plain.query(`REVOKE SELECT ON devices FROM metrics_reader`);
          const denied = await reader.query(sql).then(() => undefined, (error: unknown) => error as Error);
          const asWritten = await direct.query(sql).then(() => undefined, (error: unknown) => error as Error);
          expect(denied?.message).toBe(asWritten?.message);
          expect(denied?.message).toContain('permission denied');
          // Refused when reading the keys, or (keys reused from before the REVOKE) by the statement, then run as written.
          const last = seen.at(-1)!;
          expect([...last.unchanged.map((u) => u.reason), last.error ?? ''].join('\n')).toContain('failed (permission denied');
        } finally {
          await direct.end();
        }
      } finally {
        await plain.query(`GRANT SELECT ON devices TO metrics_reader`);
        await plain.query(`DROP POLICY low ON devices; ALTER TABLE devices DISABLE ROW LEVEL SECURITY`);
        await plain.query(`DROP POLICY low ON single.devices; ALTER TABLE single.devices DISABLE ROW LEVEL SECURITY`);
      }
    });

    it('leaves the sub-select in a transaction block, with the reason', async () => {
      const client = await pool.connect();
      const seen: RewriteEvent[] = [];
      client.on('rewrite', (e) => seen.push(e));
      try {
        await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ');
        const got = await client.query(QUERIES[0]!.sql);
        await client.query('COMMIT');
        expectSameRows(got.rows, (await plain.query(single(QUERIES[0]!.sql))).rows, { ordered: true, label: 'in a block' });
        expect(seen.at(-1)!.unchanged.map((u) => u.reason).join('\n')).toContain('inside a transaction block');
      } finally {
        client.release();
      }
    });

    it('through the gateway (simple query protocol), the same answer from the shards the keys hash to', async () => {
      const client = new pg.Client(gateway.through(applied.access));
      await client.connect();
      try {
        const sql = QUERIES[0]!.sql;
        gateway.events.length = 0;
        const got = await client.query(sql);
        expectSameRows(got.rows, (await plain.query(single(sql))).rows, { ordered: true, label: 'gateway' });
        const event = gateway.events.at(-1)!;
        const { keys, shards } = await keysAndShards({ ...event, timeZone: '', searchPath: [], role: '' } as unknown as RewriteEvent);
        expect(keys.length).toBeGreaterThan(0);
        expect(shards).toEqual([...new Set(keys.map((k) => shardOf.get(k)!))].sort());
        // A repeat reuses those keys; after a change its guard refuses (run as written), and the next reads them again.
        await plain.query(`UPDATE devices SET region = 'eu' WHERE id = 2`);
        await plain.query(`UPDATE single.devices SET region = 'eu' WHERE id = 2`);
        try {
          const expected = (await plain.query(single(sql))).rows;
          for (let i = 0; i < 2; i++) expectSameRows((await client.query(sql)).rows, expected, { ordered: true, label: `gateway, after the change (${i + 1})` });
          const again = gateway.events.at(-1)!;
          expect((await keysAndShards({ ...again, timeZone: '', searchPath: [], role: '' } as unknown as RewriteEvent)).keys).toEqual([2, 3, 6]);
        } finally {
          await plain.query(`UPDATE devices SET region = NULL WHERE id = 2`);
          await plain.query(`UPDATE single.devices SET region = NULL WHERE id = 2`);
        }
        // Extended protocol, the unnamed statement (parsed again each time): keys read first too,
        // unless the sub-select takes bind values (not known when it is parsed; a router read
        // writes them in, but this statement's keys are on several shards: the access node's).
        const extended = `SELECT device_id, max(cpu) AS peak FROM metrics WHERE cpu > $1 AND device_id IN (SELECT id FROM devices WHERE name = 'dev 7') GROUP BY 1 ORDER BY 1`;
        const rows = await client.query(extended, [10]);
        expectSameRows(rows.rows, (await plain.query(single(extended), [10])).rows, { ordered: true, label: 'gateway, extended' });
        const pinned = await keysAndShards(gateway.events.at(-1) as unknown as RewriteEvent, [10]);
        expect(pinned.keys).toEqual([7]);
        expect(pinned.shards).toEqual([shardOf.get(7)]);
        const withValue = QUERIES[2]!;
        const bound = await client.query(withValue.sql, withValue.values);
        expectSameRows(bound.rows, (await plain.query(single(withValue.sql), withValue.values)).rows, { ordered: true, label: 'gateway, bind value in the sub-select' });
        expect(gateway.events.at(-1)!.unchanged.map((u) => u.reason).join('\n')).toContain('bind values not known when the statement is prepared');
      } finally {
        await client.end();
      }
    });
  });
}
