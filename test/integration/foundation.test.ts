/**
 * The foundation end to end on real clusters (access node + 2 data nodes): generate, plan, apply,
 * insert through the access node, placement, answers against a single-node table, pushdown,
 * roles, idempotence and failures that leave nothing half-done.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NodeConnectionError } from '../../src/errors.js';
import { generateMigrations } from '../../src/migrations/files.js';
import { apply } from '../../src/nodes/apply.js';
import { plan } from '../../src/nodes/plan.js';
import { loadSpec } from '../../src/spec/load.js';
import { clusterSources, type TestCluster } from '../support/clusters.js';
import { catalogFingerprint, sql, withDatabase } from '../support/db.js';
import { expectSameRows } from '../support/compare.js';
import { writeExampleSpec, writeSecrets } from '../support/spec.js';

const sources = await Promise.all(clusterSources().map(async (s) => ({ source: s, skip: await s.unavailable() })));

for (const { source, skip } of sources) {
  describe.skipIf(skip !== undefined)(`${source.label}${skip === undefined ? '' : ` — skipped: ${skip}`}`, () => {
    let cluster: TestCluster;
    let specFile: string;
    let secrets: { service: string; reader: string };
    const allUrls = (): string[] => [cluster.accessNode.url, ...cluster.dataNodes.map((n) => n.url)];
    const load = async (): Promise<Awaited<ReturnType<typeof loadSpec>>> => loadSpec(specFile);

    beforeAll(async () => {
      cluster = await source.start(2);
      const dir = join(cluster.workDir, 'project');
      specFile = await writeExampleSpec(cluster, dir);
      secrets = await writeSecrets(dir);
    });
    afterAll(async () => {
      await cluster?.stop();
    });

    it('generates migrations per node group, byte-identical on a second run', async () => {
      const { spec, file } = await load();
      const first = (await generateMigrations(spec, file)).files;
      expect(first.map((r) => r.status)).toEqual(['written', 'written', 'written']);
      expect(first.map((r) => r.path.slice(join(cluster.workDir, 'project', 'migrations').length + 1))).toEqual([
        'data-nodes/dn1/0001_hypershard_init.sql',
        'data-nodes/dn2/0001_hypershard_init.sql',
        'access-node/0001_hypershard_init.sql',
      ]);
      const content = await readFile(first[2]!.path, 'utf8');
      expect(content).toContain('-- Up Migration');
      expect(content).toContain('-- Down Migration');
      expect(content).not.toContain(secrets.service);
      const second = await generateMigrations(spec, file);
      expect(second.changes).toEqual([]);
      expect(second.files.map((r) => r.status)).toEqual(['unchanged', 'unchanged', 'unchanged']);
    });

    it('plan reports every migration as pending and changes nothing on any node', async () => {
      const before = await Promise.all(allUrls().map(catalogFingerprint));
      const { spec, file } = await load();
      const plans = await plan(spec, file);
      expect(plans.map((p) => [p.node, p.pending.map((m) => m.name)])).toEqual([
        ['dn1', ['0001_hypershard_init']],
        ['dn2', ['0001_hypershard_init']],
        ['access', ['0001_hypershard_init']],
      ]);
      expect(await Promise.all(allUrls().map(catalogFingerprint))).toEqual(before);
    });

    it('applies data nodes, then the access node', async () => {
      const { spec, file } = await load();
      const result = await apply(spec, file);
      expect(result.ok).toBe(true);
      expect(result.nodes.map((n) => [n.node, n.status, n.migrations])).toEqual([
        ['dn1', 'applied', ['0001_hypershard_init']],
        ['dn2', 'applied', ['0001_hypershard_init']],
        ['access', 'applied', ['0001_hypershard_init']],
      ]);
      for (const url of allUrls()) {
        const history = await sql<{ name: string }>(url, 'SELECT name FROM _hypershard.migrations');
        expect(history.map((h) => h.name)).toEqual(['0001_hypershard_init']);
      }
      // One server per shard, concurrent scans and parallel commit on every version we run.
      const servers = await sql<{ srvname: string; srvoptions: string[] }>(cluster.accessNode.url, 'SELECT srvname, srvoptions FROM pg_foreign_server ORDER BY 1');
      expect(servers.map((s) => s.srvname)).toEqual(['hypershard_dn1_0', 'hypershard_dn1_2', 'hypershard_dn2_1', 'hypershard_dn2_3']);
      for (const server of servers) expect(server.srvoptions).toEqual(expect.arrayContaining(['async_capable=true', 'parallel_commit=true', 'fdw_tuple_cost=0.2']));
    });

    it('a second apply is a no-op, and plan then shows nothing to do', async () => {
      const before = await Promise.all(allUrls().map(catalogFingerprint));
      const { spec, file } = await load();
      const result = await apply(spec, file);
      expect(result.nodes.map((n) => [n.node, n.status, n.migrations.length, n.secretsChanged])).toEqual([
        ['dn1', 'up-to-date', 0, 0],
        ['dn2', 'up-to-date', 0, 0],
        ['access', 'up-to-date', 0, 0],
      ]);
      expect(await Promise.all(allUrls().map(catalogFingerprint))).toEqual(before);
      const plans = await plan(spec, file);
      expect(plans.every((p) => p.pending.length === 0 && p.secretsToSet === 0)).toBe(true);
    });

    it('stores each row inserted through the access node only on the data node that owns its shard', async () => {
      await sql(cluster.accessNode.url, `CREATE SCHEMA single; CREATE TABLE single.metrics (LIKE public.metrics)`);
      // 40 devices x 2 days every 5 minutes, some NULL metrics, inside the chunks made at apply.
      const rows = `SELECT t, d, CASE WHEN (d + extract(epoch FROM t)::int / 300) % 17 = 0 THEN NULL ELSE ((d * 37 + extract(epoch FROM t)::bigint / 300) % 1000) / 10.0 END,
                           ((d * 13 + extract(epoch FROM t)::bigint / 60) % 800) / 10.0, 20 + (d % 7) + ((extract(epoch FROM t)::bigint / 300) % 50) / 10.0
                    FROM generate_series(date_trunc('hour', now()) - interval '2 days', date_trunc('hour', now()) - interval '5 minutes', interval '5 minutes') t,
                         generate_series(1, 40) d`;
      await sql(cluster.accessNode.url, `INSERT INTO public.metrics ${rows}`);
      await sql(cluster.accessNode.url, `INSERT INTO single.metrics ${rows}`);
      await sql(cluster.accessNode.url, 'ANALYZE public.metrics; ANALYZE single.metrics');

      const total = Number((await sql<{ n: string }>(cluster.accessNode.url, 'SELECT count(*) AS n FROM public.metrics'))[0]!.n);
      expect(total).toBe(40 * 576);
      // Where the access node routed each device (tableoid = foreign partition = shard).
      const routed = await sql<{ shard: string; device_id: number; n: string }>(
        cluster.accessNode.url,
        `SELECT tableoid::regclass::text AS shard, device_id, count(*) AS n FROM public.metrics GROUP BY 1, 2 ORDER BY 1, 2`,
      );
      const shardsOf: Record<string, string[]> = { dn1: ['_hypershard.metrics_s0', '_hypershard.metrics_s2'], dn2: ['_hypershard.metrics_s1', '_hypershard.metrics_s3'] };
      let stored = 0;
      for (const node of cluster.dataNodes) {
        const tables = await sql<{ t: string }>(node.url, `SELECT c.oid::regclass::text AS t FROM pg_class c JOIN pg_inherits i ON i.inhrelid = c.oid WHERE i.inhparent = 'public.metrics'::regclass ORDER BY 1`);
        expect(tables.map((t) => t.t)).toEqual(shardsOf[node.name]);
        for (const shard of shardsOf[node.name]!) {
          const here = await sql<{ device_id: number; n: string }>(node.url, `SELECT device_id, count(*) AS n FROM ${shard} GROUP BY 1 ORDER BY 1`);
          expect(here).toEqual(routed.filter((r) => r.shard === shard).map(({ device_id, n }) => ({ device_id, n })));
          stored += here.reduce((sum, r) => sum + Number(r.n), 0);
          // And nothing fell into the default chunk: the apply made chunks around now().
          const inDefault = await sql<{ n: string }>(node.url, `SELECT count(*) AS n FROM _hypershard.${shard.split('.')[1]}_default`);
          expect(inDefault[0]!.n).toBe('0');
        }
      }
      expect(stored).toBe(total);
      expect(new Set(routed.map((r) => r.device_id)).size).toBe(40);
      expect(new Set(routed.map((r) => r.shard)).size).toBe(4);
    });

    it('the data nodes refuse a row that belongs to another shard', async () => {
      const dn1 = cluster.dataNodes[0]!.url;
      const foreignDevice = (await sql<{ device_id: number }>(dn1, `SELECT d AS device_id FROM generate_series(1, 100) d WHERE NOT pg_catalog.satisfies_hash_partition('public.metrics'::regclass, 4, 0, d) LIMIT 1`))[0]!.device_id;
      await expect(sql(dn1, `INSERT INTO _hypershard.metrics_s0 (time, device_id) VALUES (now(), $1)`, [foreignDevice])).rejects.toThrow(/violates (partition|check) constraint/);
    });

    it('answers queries through the access node exactly as a single-node table does', async () => {
      const queries = [
        'SELECT device_id, count(*), avg(cpu), min(memory), max(temperature), sum(cpu) FROM {t} GROUP BY device_id ORDER BY device_id',
        `SELECT device_id, date_bin('1 hour', time, '2000-01-01'), avg(cpu), max(temperature) FROM {t} WHERE time >= date_trunc('hour', now()) - interval '12 hours' GROUP BY 1, 2 ORDER BY 1, 2`,
        `SELECT date_bin('1 hour', time, '2000-01-01') AS hour, max(cpu), count(cpu) FROM {t} GROUP BY 1 ORDER BY 1`,
        'SELECT count(*), count(cpu), avg(temperature) FROM {t} WHERE device_id IN (3, 17, 29)',
        'SELECT device_id, time, cpu FROM {t} WHERE cpu > 95 ORDER BY time DESC, device_id LIMIT 50',
        'SELECT device_id, max(temperature) AS m FROM {t} GROUP BY device_id HAVING max(temperature) > 25 ORDER BY m DESC, device_id LIMIT 5',
      ];
      for (const q of queries) {
        const distributed = await sql(cluster.accessNode.url, q.replaceAll('{t}', 'public.metrics'));
        const single = await sql(cluster.accessNode.url, q.replaceAll('{t}', 'single.metrics'));
        expect(distributed.length).toBeGreaterThan(0);
        expectSameRows(distributed, single, { ordered: true, label: q });
      }
    });

    it('pushes an aggregate grouped by the space column to every shard, with no session setting', async () => {
      const explain = await sql<{ 'QUERY PLAN': string }>(
        cluster.accessNode.url,
        'EXPLAIN (VERBOSE, COSTS OFF) SELECT device_id, count(*), avg(cpu), max(temperature) FROM public.metrics GROUP BY device_id',
      );
      const text = explain.map((r) => r['QUERY PLAN']).join('\n');
      for (const shard of [0, 1, 2, 3]) expect(text).toContain(`Relations: Aggregate on (_hypershard.metrics_s${shard} `);
      expect(text).toContain('Async Foreign Scan');
      expect(text).not.toMatch(/HashAggregate|GroupAggregate|Partial/);
    });

    it('replicates roles identically to every node, and a role reads exactly where it was granted', async () => {
      const roles = await Promise.all(
        allUrls().map((url) =>
          sql(url, `SELECT rolname, rolcanlogin, rolinherit, rolsuper, rolcreaterole, rolconnlimit, rolpassword FROM pg_authid WHERE rolname IN ('metrics_reader', 'metrics_writer') ORDER BY 1`),
        ),
      );
      expect(roles[0]).toHaveLength(2);
      expect(roles[1]).toEqual(roles[0]);
      expect(roles[2]).toEqual(roles[0]);
      const grants = await Promise.all(
        allUrls().map((url) => sql(url, `SELECT grantee, privilege_type FROM information_schema.role_table_grants WHERE table_schema = 'public' AND table_name = 'metrics' AND grantee LIKE 'metrics_%' ORDER BY 1, 2`)),
      );
      expect(grants[0]).toEqual([
        { grantee: 'metrics_reader', privilege_type: 'SELECT' },
        { grantee: 'metrics_writer', privilege_type: 'INSERT' },
        { grantee: 'metrics_writer', privilege_type: 'SELECT' },
      ]);
      expect(grants[1]).toEqual(grants[0]);
      expect(grants[2]).toEqual(grants[0]);

      const asReader = (url: string): { url: string; password: string } => ({ url: withDatabase(url, new URL(url).pathname.slice(1), 'metrics_reader'), password: secrets.reader });
      const access = asReader(cluster.accessNode.url);
      const count = await sql<{ n: string }>(access, 'SELECT count(*) AS n FROM public.metrics');
      expect(Number(count[0]!.n)).toBe(40 * 576);
      await expect(sql(access, `INSERT INTO public.metrics (time, device_id) VALUES (now(), 1)`)).rejects.toThrow(/permission denied for table metrics/);
      // It may read the shards' foreign tables (rewritten queries read them directly), never write them.
      expect((await sql<{ n: string }>(access, 'SELECT count(*) AS n FROM _hypershard.metrics_s0')).length).toBe(1);
      await expect(sql(access, `INSERT INTO _hypershard.metrics_s0 (time, device_id) VALUES (now(), 1)`)).rejects.toThrow(/permission denied/);
      await expect(sql(access, 'SELECT count(*) FROM single.metrics')).rejects.toThrow(/permission denied/);
      // On a data node the same role reads its local share through the same name.
      const dn1 = asReader(cluster.dataNodes[0]!.url);
      expect(Number((await sql<{ n: string }>(dn1, 'SELECT count(*) AS n FROM public.metrics'))[0]!.n)).toBeGreaterThan(0);
      await expect(sql(dn1, `DELETE FROM public.metrics`)).rejects.toThrow(/permission denied/);
    });

    it('the service role can do exactly what postgres_fdw needs on a data node', async () => {
      const dn1 = { url: withDatabase(cluster.dataNodes[0]!.url, 'postgres', 'hypershard_fdw'), password: secrets.service };
      expect(Number((await sql<{ n: string }>(dn1, 'SELECT count(*) AS n FROM _hypershard.metrics_s0'))[0]!.n)).toBeGreaterThan(0);
      await expect(sql(dn1, 'SELECT count(*) FROM public.metrics')).rejects.toThrow(/permission denied/);
      await expect(sql(dn1, 'CREATE TABLE _hypershard.x (a int)')).rejects.toThrow(/permission denied/);
      const attrs = await sql(cluster.dataNodes[0]!.url, `SELECT rolsuper, rolcreaterole, rolcreatedb, rolinherit, rolbypassrls FROM pg_roles WHERE rolname = 'hypershard_fdw'`);
      expect(attrs).toEqual([{ rolsuper: false, rolcreaterole: false, rolcreatedb: false, rolinherit: false, rolbypassrls: false }]);
    });

    it('names a node that cannot be reached, within the timeout, and touches no node', async () => {
      const { spec, file } = await load();
      // The CLI's address breaks; the access node's stays, so the migrations are the same.
      const dn2 = new URL(spec.dataNodes[1]!.url);
      const fdw = { host: spec.dataNodes[1]!.fdw?.host ?? dn2.hostname, port: spec.dataNodes[1]!.fdw?.port ?? Number(dn2.port) };
      const broken = { ...spec, dataNodes: spec.dataNodes.map((n, i) => (i === 1 ? { ...n, url: 'postgres://postgres@127.0.0.1:1/postgres', fdw } : n)) };
      const before = await Promise.all(allUrls().map(catalogFingerprint));
      const started = Date.now();
      const error = await apply(broken, file, { timeoutMs: 3000 }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(NodeConnectionError);
      expect((error as NodeConnectionError).message).toMatch(/^node dn2: connection refused at postgres@127\.0\.0\.1:1\/postgres/);
      expect(Date.now() - started).toBeLessThan(5000);
      expect(await Promise.all(allUrls().map(catalogFingerprint))).toEqual(before);
    });

    it('when one node cannot take its migration, names node, migration and statement, and applies nothing anywhere', async () => {
      // A fresh database per node, and a table already in the way on dn2.
      for (const url of allUrls()) await sql(url, 'CREATE DATABASE conflict');
      await sql(withDatabase(cluster.dataNodes[1]!.url, 'conflict'), 'CREATE TABLE public.metrics (a int)');
      const dir = join(cluster.workDir, 'conflict');
      const file = await writeExampleSpec(cluster, dir, { database: 'conflict' });
      await writeSecrets(dir);
      const { spec } = await loadSpec(file);
      await generateMigrations(spec, file);
      const result = await apply(spec, file);
      expect(result.ok).toBe(false);
      expect(result.nodes.map((n) => [n.node, n.status])).toEqual([
        ['dn1', 'not-run'],
        ['dn2', 'failed'],
        ['access', 'not-run'],
      ]);
      expect(result.nodes[1]!.error).toMatchObject({ migration: '0001_hypershard_init', statement: 'local parent of public.metrics' });
      expect(result.nodes[1]!.error!.message).toMatch(/relation "metrics" already exists/);
      for (const url of allUrls()) {
        const leftovers = await sql(withDatabase(url, 'conflict'), `SELECT nspname FROM pg_namespace WHERE nspname = '_hypershard'`);
        expect(leftovers).toEqual([]);
      }
    });
  });
}
