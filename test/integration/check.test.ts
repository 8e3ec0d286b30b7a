/**
 * `check` on real clusters (access node + 3 data nodes): clean right after apply and without side
 * effects; then drift planted by hand, one kind per test and undone afterwards, each found naming
 * node and object; an unreachable node reported within the timeout; and the built CLI's exit codes.
 * The CLI part runs bin/hypershard.js, so build first (`npm test` does).
 */
import { execFile } from 'node:child_process';
import { createServer, type Server, type Socket } from 'node:net';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { check } from '../../src/drift/check.js';
import type { CheckResult, DriftItem } from '../../src/drift/model.js';
import { generateMigrations } from '../../src/migrations/files.js';
import { apply } from '../../src/nodes/apply.js';
import { planLayout } from '../../src/plan/layout.js';
import { loadSpec, type LoadedSpec } from '../../src/spec/load.js';
import { clusterSources, type TestCluster } from '../support/clusters.js';
import { catalogFingerprint, sql, withDatabase } from '../support/db.js';
import { specNode, writeExampleSpec, writeSecrets } from '../support/spec.js';

const BIN = fileURLToPath(new URL('../../bin/hypershard.js', import.meta.url));
const sources = await Promise.all(clusterSources().map(async (s) => ({ source: s, skip: await s.unavailable() })));

/** Node, kind and object of every finding: what each test asserts exactly, so no noise goes unseen. */
const found = (result: CheckResult): [string, string, string][] => result.nodes.flatMap((n) => n.items.map((i): [string, string, string] => [i.node, i.kind, i.object]));
const item = (result: CheckResult, object: string): DriftItem | undefined => result.nodes.flatMap((n) => n.items).find((i) => i.object === object);

function hypershard(args: string[], cwd: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { cwd, timeout: 60_000 }, (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : 1, stdout, stderr });
    });
  });
}

for (const { source, skip } of sources) {
  describe.skipIf(skip !== undefined)(`check on ${source.label}${skip === undefined ? '' : ` — skipped: ${skip}`}`, () => {
    let cluster: TestCluster;
    let dir: string;
    let loaded: LoadedSpec;
    const url = (node: string): string => (node === 'access' ? cluster.accessNode : cluster.dataNodes.find((n) => n.name === node)!).url;
    const run = (): Promise<CheckResult> => check(loaded.spec, loaded.file, { timeoutMs: 5000 });

    /** Plants drift, checks, and undoes the drift whatever happened. */
    async function withDrift(plant: () => Promise<unknown>, restore: () => Promise<unknown>): Promise<CheckResult> {
      await plant();
      try {
        return await run();
      } finally {
        await restore();
      }
    }

    beforeAll(async () => {
      cluster = await source.start(3);
      dir = join(cluster.workDir, 'check');
      const specFile = await writeExampleSpec(cluster, dir);
      await writeSecrets(dir);
      loaded = await loadSpec(specFile);
      await generateMigrations(loaded.spec, loaded.file);
      const result = await apply(loaded.spec, loaded.file);
      if (!result.ok) throw new Error(`apply failed: ${JSON.stringify(result.nodes)}`);
    });
    afterAll(async () => {
      await cluster?.stop();
    });
    // Every test undoes its drift: the cluster must be back to clean for the next one.
    afterEach(async () => {
      expect(found(await run()).filter(([, kind]) => kind !== 'warning')).toEqual([]);
    });

    it('finds nothing right after apply, on every node, and changes nothing', async () => {
      const urls = ['access', 'dn1', 'dn2', 'dn3'].map(url);
      const before = await Promise.all(urls.map(catalogFingerprint));
      const result = await run();
      expect(await Promise.all(urls.map(catalogFingerprint))).toEqual(before);
      expect(result.clean).toBe(true);
      expect(result.nodes.map((n) => [n.node, n.role, n.reachable, n.items.length])).toEqual([
        ['dn1', 'data', true, 0],
        ['dn2', 'data', true, 0],
        ['dn3', 'data', true, 0],
        ['access', 'access', true, 0],
      ]);
      for (const n of result.nodes) expect(n.serverVersion).toMatch(new RegExp(`^${cluster.major}\\.`));
    });

    it('finds a column added by hand on one data node, and NOT NULL set on its shard alone', async () => {
      const result = await withDrift(
        () => sql(url('dn2'), 'ALTER TABLE public.metrics ADD COLUMN note text; ALTER TABLE _hypershard.metrics_s1 ALTER COLUMN cpu SET NOT NULL'),
        () => sql(url('dn2'), 'ALTER TABLE public.metrics DROP COLUMN note; ALTER TABLE _hypershard.metrics_s1 ALTER COLUMN cpu DROP NOT NULL'),
      );
      expect(found(result)).toEqual([
        ['dn2', 'extra', 'column public.metrics.note'],
        ['dn2', 'different', 'column public.metrics.cpu on _hypershard.metrics_s1'],
      ]);
      expect(item(result, 'column public.metrics.cpu on _hypershard.metrics_s1')).toMatchObject({ expected: 'double precision', actual: 'double precision NOT NULL' });
      expect(result.clean).toBe(false);
    });

    it('finds a column type changed on the access node', async () => {
      const result = await withDrift(
        () => sql(url('access'), 'ALTER TABLE public.metrics ALTER COLUMN cpu TYPE real'),
        () => sql(url('access'), 'ALTER TABLE public.metrics ALTER COLUMN cpu TYPE double precision'),
      );
      expect(found(result)).toEqual([['access', 'different', 'column public.metrics.cpu']]);
      expect(item(result, 'column public.metrics.cpu')).toMatchObject({ expected: 'double precision', actual: 'real' });
    });

    it('finds a foreign partition dropped on the access node', async () => {
      const shard = planLayout(loaded.spec).hypertables[0]!.shards[3]!;
      const result = await withDrift(
        () => sql(url('access'), 'DROP FOREIGN TABLE _hypershard.metrics_s3'),
        async () => {
          await sql(
            url('access'),
            `CREATE FOREIGN TABLE _hypershard.metrics_s3 PARTITION OF public.metrics FOR VALUES WITH (MODULUS 4, REMAINDER 3)
             SERVER ${shard.server} OPTIONS (schema_name '_hypershard', table_name 'metrics_s3')`,
          );
          await sql(url('access'), 'GRANT SELECT ON _hypershard.metrics_s3 TO metrics_reader, metrics_writer');
        },
      );
      expect(found(result)).toEqual([['access', 'missing', 'foreign partition _hypershard.metrics_s3']]);
    });

    it('finds a server option changed and one added', async () => {
      const result = await withDrift(
        () => sql(url('access'), `ALTER SERVER hypershard_dn2_1 OPTIONS (SET fetch_size '500', ADD use_remote_estimate 'true')`),
        () => sql(url('access'), `ALTER SERVER hypershard_dn2_1 OPTIONS (SET fetch_size '10000', DROP use_remote_estimate)`),
      );
      expect(result.nodes.flatMap((n) => n.items).map((i) => [i.node, i.kind, i.object, i.expected, i.actual])).toEqual([
        ['access', 'different', 'server hypershard_dn2_1', 'fetch_size=10000', 'fetch_size=500'],
        ['access', 'extra', 'server hypershard_dn2_1', undefined, 'use_remote_estimate=true'],
      ]);
    });

    it('finds a user mapping without its password, without printing any password', async () => {
      const secret = (await readFile(join(dir, '.secrets/service'), 'utf8')).trim();
      const result = await withDrift(
        () => sql(url('access'), 'ALTER USER MAPPING FOR PUBLIC SERVER hypershard_dn1_0 OPTIONS (DROP password)'),
        () => sql(url('access'), `ALTER USER MAPPING FOR PUBLIC SERVER hypershard_dn1_0 OPTIONS (ADD password '${secret}')`),
      );
      expect(found(result)).toEqual([['access', 'missing', 'user mapping for PUBLIC on server hypershard_dn1_0']]);
      expect(item(result, 'user mapping for PUBLIC on server hypershard_dn1_0')?.message).toMatch(/^password missing/);
      expect(JSON.stringify(await run())).not.toContain(secret);
    });

    it('finds a bounds CHECK dropped on a data node', async () => {
      const result = await withDrift(
        () => sql(url('dn2'), 'ALTER TABLE _hypershard.metrics_s1 DROP CONSTRAINT metrics_s1_bounds'),
        () => sql(url('dn2'), `ALTER TABLE _hypershard.metrics_s1 ADD CONSTRAINT metrics_s1_bounds CHECK (satisfies_hash_partition('public.metrics'::regclass, 4, 1, device_id))`),
      );
      expect(found(result)).toEqual([['dn2', 'missing', 'constraint metrics_s1_bounds on _hypershard.metrics_s1']]);
    });

    it('finds an index dropped on a data node', async () => {
      const result = await withDrift(
        () => sql(url('dn3'), 'DROP INDEX public.metrics_device_id_time_idx'),
        () => sql(url('dn3'), 'CREATE INDEX metrics_device_id_time_idx ON public.metrics USING btree (device_id, time DESC)'),
      );
      expect(found(result)).toEqual([['dn3', 'missing', 'index public.metrics_device_id_time_idx']]);
      expect(item(result, 'index public.metrics_device_id_time_idx')?.expected).toBe('USING btree (device_id, time DESC)');
    });

    it('finds a role attribute changed on one data node', async () => {
      const result = await withDrift(
        () => sql(url('dn1'), 'ALTER ROLE metrics_reader CONNECTION LIMIT 3 NOINHERIT'),
        () => sql(url('dn1'), 'ALTER ROLE metrics_reader CONNECTION LIMIT -1 INHERIT'),
      );
      expect(found(result)).toEqual([['dn1', 'different', 'role metrics_reader']]);
      expect(item(result, 'role metrics_reader')).toMatchObject({ expected: 'INHERIT CONNECTION LIMIT -1', actual: 'NOINHERIT CONNECTION LIMIT 3' });
    });

    it("finds the service role's planner setting changed on one data node and gone on another; apply sets both again", async () => {
      const setting = (node: string): Promise<{ config: string[] | null }[]> =>
        sql(
          url(node),
          `SELECT s.setconfig AS config FROM pg_db_role_setting s JOIN pg_roles r ON r.oid = s.setrole
           WHERE r.rolname = 'hypershard_fdw' AND s.setdatabase = (SELECT oid FROM pg_database WHERE datname = current_database())`,
        );
      expect(await setting('dn1')).toEqual([{ config: ['cursor_tuple_fraction=1', 'random_page_cost=1.1'] }]);
      // What postgres_fdw's own session on the data node sees: a view read through a foreign table.
      await sql(url('dn1'), `CREATE VIEW public.hs_probe AS SELECT current_setting('cursor_tuple_fraction') AS v; GRANT SELECT ON public.hs_probe TO hypershard_fdw`);
      const server = planLayout(loaded.spec).servers.find((s) => s.dataNode === 'dn1')!.name;
      await sql(url('access'), `CREATE FOREIGN TABLE public.hs_probe (v text) SERVER "${server}" OPTIONS (schema_name 'public', table_name 'hs_probe')`);
      try {
        expect(await sql(url('access'), 'SELECT v FROM public.hs_probe')).toEqual([{ v: '1' }]);
      } finally {
        await sql(url('access'), 'DROP FOREIGN TABLE public.hs_probe');
        await sql(url('dn1'), 'DROP VIEW public.hs_probe');
      }

      const db = async (node: string): Promise<string> => (await sql<{ db: string }>(url(node), 'SELECT current_database() AS db'))[0]!.db;
      await sql(url('dn1'), `ALTER ROLE hypershard_fdw IN DATABASE "${await db('dn1')}" SET cursor_tuple_fraction = 0.1`);
      await sql(url('dn2'), `ALTER ROLE hypershard_fdw IN DATABASE "${await db('dn2')}" RESET cursor_tuple_fraction`);
      const result = await run();
      expect(found(result)).toEqual([
        ['dn1', 'different', 'setting cursor_tuple_fraction of role hypershard_fdw'],
        ['dn2', 'missing', 'setting cursor_tuple_fraction of role hypershard_fdw'],
      ]);
      expect(item(result, 'setting cursor_tuple_fraction of role hypershard_fdw')).toMatchObject({ expected: 'cursor_tuple_fraction=1', actual: 'cursor_tuple_fraction=0.1' });

      const repaired = await apply(loaded.spec, loaded.file);
      expect(repaired.nodes.map((n) => [n.node, n.status, n.settings])).toEqual([
        ['dn1', 'applied', ['cursor_tuple_fraction=1 for hypershard_fdw']],
        ['dn2', 'applied', ['cursor_tuple_fraction=1 for hypershard_fdw']],
        ['dn3', 'up-to-date', undefined],
        ['access', 'up-to-date', undefined],
      ]);
      // RESET took it out, apply put it back at the end.
      expect(await setting('dn2')).toEqual([{ config: ['random_page_cost=1.1', 'cursor_tuple_fraction=1'] }]);
    });

    it('refuses an UPDATE or DELETE postgres_fdw would run row by row (ctid repeats across chunks), changes nothing anywhere; ships whole ones; finds a guard dropped, apply makes it again', async () => {
      // One device, so one shard. (Rows that are each the first of their chunk share ctid (0,1): before
      // the guard, such a DELETE of one of them deleted them all.)
      const days = ['2001-01-01', '2001-01-05', '2001-01-09'];
      await sql(url('access'), `INSERT INTO metrics (time, device_id, cpu) SELECT d::timestamptz, 424242, 1 FROM unnest($1::text[]) AS d`, [days]);
      try {
        const where = `device_id = 424242 AND time IN (SELECT d::timestamptz FROM unnest($1::text[]) AS d LIMIT 1)`;
        // The sub-select keeps the filter on the access node: postgres_fdw would update and delete by ctid.
        const plan = (await sql<{ 'QUERY PLAN': string }>(url('access'), `EXPLAIN VERBOSE DELETE FROM metrics WHERE ${where}`, [days])).map((r) => r['QUERY PLAN']).join('\n');
        expect(plan).toContain('WHERE ctid = $1');
        for (const statement of [`DELETE FROM metrics WHERE ${where}`, `UPDATE metrics SET cpu = 2 WHERE ${where}`]) {
          await expect(sql(url('access'), statement, [days]), statement).rejects.toThrow(/hypershard: (DELETE|UPDATE) of _hypershard\.metrics_s\d+ row by row refused/);
        }
        expect(await sql(url('access'), `SELECT time::date::text AS day, cpu FROM metrics WHERE device_id = 424242 ORDER BY 1`)).toEqual(days.map((day) => ({ day, cpu: 1 })));
        // Shipped whole, the same change goes through.
        await sql(url('access'), `UPDATE metrics SET cpu = 3 WHERE device_id = 424242 AND time = $1::timestamptz`, [days[0]]);
        expect(await sql(url('access'), `SELECT cpu FROM metrics WHERE device_id = 424242 ORDER BY time`)).toEqual([{ cpu: 3 }, { cpu: 1 }, { cpu: 1 }]);

        // A guard dropped on one data node: check finds it, apply makes it again.
        const held = planLayout(loaded.spec).hypertables[0]!.shards.find((s) => s.dataNode === 'dn2')!;
        await sql(url('dn2'), `DROP TRIGGER hypershard_ctid_guard ON _hypershard.${held.table.name}`);
        expect(found(await run()).filter(([, kind]) => kind !== 'warning')).toEqual([['dn2', 'missing', `write guard on _hypershard.${held.table.name}`]]);
        const repaired = await apply(loaded.spec, loaded.file);
        expect(repaired.nodes.map((n) => [n.node, n.status, n.guards])).toEqual([
          ['dn1', 'up-to-date', undefined],
          ['dn2', 'applied', [`write guard on _hypershard.${held.table.name}`]],
          ['dn3', 'up-to-date', undefined],
          ['access', 'up-to-date', undefined],
        ]);
      } finally {
        await sql(url('access'), `DELETE FROM metrics WHERE device_id = 424242`);
        // Whatever failed above, the guards are back for the next test.
        await apply(loaded.spec, loaded.file);
      }
    });

    it('finds a grant revoked on one node and an extra grant on another', async () => {
      const result = await withDrift(
        async () => {
          await sql(url('dn3'), 'REVOKE INSERT ON public.metrics FROM metrics_writer');
          await sql(url('access'), 'GRANT DELETE ON public.metrics TO metrics_reader');
        },
        async () => {
          await sql(url('dn3'), 'GRANT INSERT ON public.metrics TO metrics_writer');
          await sql(url('access'), 'REVOKE DELETE ON public.metrics FROM metrics_reader');
        },
      );
      expect(found(result)).toEqual([
        ['dn3', 'missing', 'privileges of metrics_writer on public.metrics'],
        ['access', 'extra', 'privileges of metrics_reader on public.metrics'],
      ]);
      expect(result.nodes.flatMap((n) => n.items).map((i) => i.message)).toEqual([
        'metrics_writer on public.metrics: INSERT not granted',
        'metrics_reader on public.metrics: DELETE granted, the spec does not grant it',
      ]);
    });

    it('finds the service role missing a privilege on a shard', async () => {
      const result = await withDrift(
        () => sql(url('dn1'), 'REVOKE TRUNCATE ON _hypershard.metrics_s3 FROM hypershard_fdw'),
        () => sql(url('dn1'), 'GRANT TRUNCATE ON _hypershard.metrics_s3 TO hypershard_fdw'),
      );
      expect(found(result)).toEqual([['dn1', 'missing', 'privileges of hypershard_fdw on _hypershard.metrics_s3']]);
    });

    it('finds a migration file edited after it was applied', async () => {
      const file = join(dir, 'migrations', 'data-nodes', 'dn2', '0001_hypershard_init.sql');
      const original = await readFile(file, 'utf8');
      const result = await withDrift(
        () => writeFile(file, original.replace('-- Down Migration', '-- edited by hand\n\n-- Down Migration')),
        () => writeFile(file, original),
      );
      expect(found(result)).toEqual([['dn2', 'different', 'migration 0001_hypershard_init']]);
      expect(item(result, 'migration 0001_hypershard_init')?.message).toBe('0001_hypershard_init was edited after it was applied: the node ran another version of it');
    });

    it('warns about rows written straight into a default chunk, with count and time range', async () => {
      const device = (await sql<{ d: number }>(url('dn1'), `SELECT d FROM generate_series(1, 100) d WHERE pg_catalog.satisfies_hash_partition('public.metrics'::regclass, 4, 0, d) LIMIT 1`))[0]!.d;
      const result = await withDrift(
        () => sql(url('dn1'), `INSERT INTO _hypershard.metrics_s0_default (time, device_id) VALUES ('2001-01-01 00:00:00+00', $1), ('2001-01-02 12:00:00+00', $1)`, [device]),
        () => sql(url('dn1'), 'DELETE FROM _hypershard.metrics_s0_default'),
      );
      expect(found(result)).toEqual([['dn1', 'warning', 'default chunk _hypershard.metrics_s0_default']]);
      expect(item(result, 'default chunk _hypershard.metrics_s0_default')?.message).toMatch(/^2 rows outside the chunk horizon, from 2001-01-01 00:00:00\+00 to 2001-01-02 12:00:00\+00/);
      expect(result.clean).toBe(true); // a warning is not drift
    });

    it('reports a node that does not answer within the timeout, and still checks the others', async () => {
      // Accepts connections and never answers: a hung host, not a refused port.
      const sockets: Socket[] = [];
      const silent: Server = createServer((socket) => sockets.push(socket));
      await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
      const port = (silent.address() as { port: number }).port;
      try {
        const dn3 = new URL(url('dn3'));
        const spec = {
          ...loaded.spec,
          // The FDW address stays the real one, so the access node's servers do not differ.
          dataNodes: loaded.spec.dataNodes.map((n) => (n.name === 'dn3' ? { ...n, url: `postgres://postgres@127.0.0.1:${port}/postgres`, fdw: { host: dn3.hostname, port: Number(dn3.port) } } : n)),
        };
        const started = Date.now();
        const result = await check(spec, loaded.file, { timeoutMs: 1500 });
        expect(Date.now() - started).toBeLessThan(10_000);
        expect(result.clean).toBe(false);
        expect(result.nodes.map((n) => [n.node, n.reachable])).toEqual([['dn1', true], ['dn2', true], ['dn3', false], ['access', true]]);
        expect(result.nodes[2]!.error).toMatch(/^node dn3: no answer from postgres@127\.0\.0\.1:\d+\/postgres within 1500 ms/);
        expect(found(result)).toEqual([]);
      } finally {
        for (const s of sockets) s.destroy();
        await new Promise((resolve) => silent.close(resolve));
      }
    });

    it('the built CLI exits 0 when clean, 1 on drift (naming node and object), 2 on bad input', async () => {
      const clean = await hypershard(['check', '-c', loaded.file, '--json'], dir);
      expect(clean.stderr).toBe('');
      expect(clean.code).toBe(0);
      expect((JSON.parse(clean.stdout) as CheckResult).clean).toBe(true);

      await sql(url('access'), `ALTER SERVER hypershard_dn1_0 OPTIONS (SET batch_size '10')`);
      try {
        const drifted = await hypershard(['check', '-c', loaded.file, '--json'], dir);
        expect(drifted.code).toBe(1);
        expect(found(JSON.parse(drifted.stdout) as CheckResult)).toEqual([['access', 'different', 'server hypershard_dn1_0']]);
        const text = await hypershard(['check', '-c', loaded.file], dir);
        expect(text.code).toBe(1);
        expect(text.stdout).toContain('access (access node, PostgreSQL');
        expect(text.stdout).toContain('different  server hypershard_dn1_0: option batch_size is 10, expected 1000');
        expect(text.stdout).toMatch(/^dn1 \(data node, PostgreSQL [^\n]+\): matches the spec$/m);
      } finally {
        await sql(url('access'), `ALTER SERVER hypershard_dn1_0 OPTIONS (SET batch_size '1000')`);
      }

      const missing = await hypershard(['check', '-c', join(dir, 'nope.yaml')], dir);
      expect(missing.code).toBe(2);
      expect(missing.stderr).toMatch(/^hypershard: /);
    });

    it('finds nothing on a cluster with hostile names, and finds a bounds check dropped there', async () => {
      const database = `hs check "db" 'x'`;
      const hostile = {
        schema: `s"; DROP TABLE x; --`,
        table: `Select "t" 'q'`,
        time: 'time',
        space: `dev "id"; --`,
        reader: `rd "q" 'x' \\ $hs$`,
      };
      const hdir = join(cluster.workDir, 'check-hostile');
      const nodes = [cluster.accessNode, ...cluster.dataNodes];
      for (const n of nodes) await sql(n.url, `CREATE DATABASE "${database.replaceAll('"', '""')}"`);
      const at = (u: string): string => withDatabase(u, database);
      await writeSecrets(hdir);
      await writeFile(
        join(hdir, 'hypershard.yaml'),
        JSON.stringify({
          version: 1,
          accessNode: specNode(cluster.accessNode, database),
          dataNodes: cluster.dataNodes.map((n) => specNode(n, database)),
          fdw: { serviceRole: { name: `svc "h" 'x'`, password: { file: '.secrets/service' } } },
          roles: [{ name: hostile.reader, grants: [{ on: hostile.table, privileges: ['SELECT'] }] }],
          hypertables: [
            {
              schema: hostile.schema,
              name: hostile.table,
              columns: [
                { name: hostile.time, type: 'timestamptz', notNull: true },
                { name: hostile.space, type: 'integer', notNull: true },
                { name: `va"l 'ue'`, type: 'numeric(6,2)' },
              ],
              timeColumn: hostile.time,
              spaceColumn: hostile.space,
              shards: 3,
              chunks: { behind: 1, ahead: 1 },
              indexes: [{ name: `ix "a"`, columns: [hostile.space, { column: hostile.time, order: 'desc' }] }],
            },
          ],
        }),
      );
      const h = await loadSpec(join(hdir, 'hypershard.yaml'));
      await generateMigrations(h.spec, h.file);
      expect((await apply(h.spec, h.file)).ok).toBe(true);
      expect(found(await check(h.spec, h.file))).toEqual([]);

      const shard = planLayout(h.spec).hypertables[0]!.shards[0]!;
      const qualified = `"_hypershard"."${shard.table.name.replaceAll('"', '""')}"`;
      const constraint = `"${shard.table.name.replaceAll('"', '""')}_bounds"`;
      const [definition] = await sql<{ def: string }>(at(url('dn1')), `SELECT pg_get_constraintdef(oid) AS def FROM pg_constraint WHERE conname = $1 AND conrelid = $2::regclass`, [`${shard.table.name}_bounds`, qualified]);
      await sql(at(url('dn1')), `ALTER TABLE ${qualified} DROP CONSTRAINT ${constraint}`);
      try {
        expect(found(await check(h.spec, h.file))).toEqual([['dn1', 'missing', `constraint ${shard.table.name}_bounds on _hypershard.${shard.table.name}`]]);
      } finally {
        await sql(at(url('dn1')), `ALTER TABLE ${qualified} ADD CONSTRAINT ${constraint} ${definition!.def}`);
      }
      expect(found(await check(h.spec, h.file))).toEqual([]);
    });

    it('finds a spec changed since generate, then nothing once generated and applied', async () => {
      const yaml = await readFile(loaded.file, 'utf8');
      await writeFile(loaded.file, yaml.replace('      - { name: temperature, type: double precision }\n', '      - { name: temperature, type: double precision }\n      - { name: humidity, type: real }\n'));
      const changed = await loadSpec(loaded.file);
      const before = await check(changed.spec, changed.file);
      expect(found(before)).toEqual([
        ['dn1', 'missing', 'column public.metrics.humidity'],
        ['dn1', 'missing', 'migration (not generated)'],
        ['dn2', 'missing', 'column public.metrics.humidity'],
        ['dn2', 'missing', 'migration (not generated)'],
        ['dn3', 'missing', 'column public.metrics.humidity'],
        ['dn3', 'missing', 'migration (not generated)'],
        ['access', 'missing', 'column public.metrics.humidity'],
        ['access', 'missing', 'migration (not generated)'],
      ]);
      expect(item(before, 'migration (not generated)')?.message).toMatch(/^the spec changed since the last generate \(.*humidity.*\); run generate, review, then apply$/);

      await generateMigrations(changed.spec, changed.file);
      const pending = await check(changed.spec, changed.file);
      expect(found(pending).filter(([, , object]) => object.startsWith('migration'))).toEqual(
        ['dn1', 'dn2', 'dn3', 'access'].map((n) => [n, 'missing', expect.stringMatching(/^migration 0002_/)]),
      );
      expect((await apply(changed.spec, changed.file)).ok).toBe(true);
      loaded = changed;
      expect(found(await run())).toEqual([]);
    });
  });
}
