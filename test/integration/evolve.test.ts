/**
 * Schema evolution on real clusters with rows in place (1 access + 3 data nodes): each spec change
 * becomes one new migration per node group, applied with data kept and queries still answering.
 */
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { check } from '../../src/drift/check.js';
import { MigrationStateError } from '../../src/errors.js';
import { generateMigrations } from '../../src/migrations/files.js';
import { apply } from '../../src/nodes/apply.js';
import { clientConfig } from '../../src/nodes/connect.js';
import { discoverMetadata } from '../../src/rewrite/discover.js';
import { rewriteSql } from '../../src/rewrite/rewrite.js';
import { loadSpec } from '../../src/spec/load.js';
import { clusterSources, type TestCluster } from '../support/clusters.js';
import { sql } from '../support/db.js';
import { writeExampleSpec, writeSecrets } from '../support/spec.js';

const sources = await Promise.all(clusterSources().map(async (s) => ({ source: s, skip: await s.unavailable() })));

for (const { source, skip } of sources) {
  describe.skipIf(skip !== undefined)(`schema evolution on ${source.label}${skip === undefined ? '' : ` — skipped: ${skip}`}`, () => {
    let cluster: TestCluster;
    let specFile: string;
    let dir: string;

    /** Edits the spec text, generates, applies; returns the new files and the changes. */
    const change = async (edit: (yaml: string) => string, options: { allowDestructive?: boolean } = {}) => {
      await writeFile(specFile, edit(await readFile(specFile, 'utf8')));
      const { spec, file } = await loadSpec(specFile);
      const generated = await generateMigrations(spec, file, options);
      const applied = await apply(spec, file);
      expect(applied.ok, JSON.stringify(applied.nodes)).toBe(true);
      return { generated, applied, written: generated.files.filter((f) => f.status === 'written').map((f) => f.path.slice(join(dir, 'migrations').length + 1)) };
    };
    const count = async (): Promise<number> => Number((await sql<{ n: string }>(cluster.accessNode.url, 'SELECT count(*) AS n FROM metrics'))[0]!.n);
    const columnsOn = async (url: string, table: string): Promise<string[]> =>
      (await sql<{ c: string }>(url, `SELECT attname || ' ' || format_type(atttypid, atttypmod) AS c FROM pg_attribute WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum`, [table])).map((r) => r.c);

    beforeAll(async () => {
      cluster = await source.start(3);
      dir = join(cluster.workDir, 'evolve');
      specFile = await writeExampleSpec(cluster, dir, { shards: 6 });
      // With lastpoint views, every column change below must keep them right (and never be blocked by them).
      // And node views (remade around column changes alike).
      await writeFile(specFile, (await readFile(specFile, 'utf8')).replace('    shards: 6\n', '    shards: 6\n    lastpoint: true\n    nodeViews: true\n'));
      await writeSecrets(dir);
      const { spec, file } = await loadSpec(specFile);
      await generateMigrations(spec, file);
      expect((await apply(spec, file)).ok).toBe(true);
      await sql(cluster.accessNode.url, `INSERT INTO metrics SELECT date_trunc('hour', now()) - i * interval '1 minute', i % 30, i % 100, 50, 40 FROM generate_series(1, 3000) i`);
    });
    afterAll(async () => {
      await cluster?.stop();
    });

    it('adds a column across 3 data nodes with rows in place', async () => {
      const { written, generated } = await change((y) => y.replace('      - { name: temperature, type: double precision }', '      - { name: temperature, type: double precision }\n      - { name: humidity, type: real }'));
      expect(generated.changes).toEqual(['column public.metrics.humidity real added']);
      expect(written).toEqual([
        'data-nodes/dn1/0002_add_column.sql',
        'data-nodes/dn2/0002_add_column.sql',
        'data-nodes/dn3/0002_add_column.sql',
        'access-node/0002_add_column.sql',
      ]);
      expect(await readFile(join(dir, 'migrations', written[3]!), 'utf8')).toContain('ALTER TABLE "public"."metrics" ADD COLUMN "humidity" real;');
      // dn<i+1> holds shard i (and i + 3): the column reached every shard table.
      for (const [i, node] of cluster.dataNodes.entries()) expect(await columnsOn(node.url, `_hypershard.metrics_s${i}`)).toContain('humidity real');
      expect(await columnsOn(cluster.accessNode.url, '_hypershard.metrics_s5')).toContain('humidity real');
      await sql(cluster.accessNode.url, `UPDATE metrics SET humidity = 0.5 WHERE device_id = 7`);
      expect(await sql(cluster.accessNode.url, `SELECT count(*)::int AS n FROM metrics WHERE humidity = 0.5`)).toEqual([{ n: 100 }]);
      expect(await count()).toBe(3000);
    });

    it('renames a column when told, and never guesses a rename from a drop plus an add', async () => {
      const before = await readFile(specFile, 'utf8');
      await writeFile(specFile, before.replace('{ name: memory, type: double precision }', '{ name: mem_used, type: double precision }'));
      const { spec, file } = await loadSpec(specFile);
      const refused = await generateMigrations(spec, file).catch((e: unknown) => e);
      expect(refused).toBeInstanceOf(MigrationStateError);
      expect((refused as Error).message).toContain('column memory removed and mem_used added; for a rename write `renamedFrom: memory` on the new column');
      expect(await readdir(join(dir, 'migrations', 'access-node'))).toEqual(['0001_hypershard_init.sql', '0002_add_column.sql']);

      await writeFile(specFile, before);
      const { generated } = await change((y) => y.replace('{ name: memory, type: double precision }', '{ name: mem_used, type: double precision, renamedFrom: memory }'));
      expect(generated.changes).toEqual(['column public.metrics.memory renamed to mem_used']);
      expect(await sql(cluster.accessNode.url, 'SELECT count(*)::int AS n, min(mem_used) AS m FROM metrics')).toEqual([{ n: 3000, m: 50 }]);
      for (const node of cluster.dataNodes) expect((await columnsOn(node.url, 'public.metrics')).join()).toContain('mem_used double precision');
    });

    it('widens a type and adds an index; dropping a column needs --allow-destructive', async () => {
      const widened = await change((y) => y.replace('{ name: humidity, type: real }', '{ name: humidity, type: double precision }').replace('      - columns: [device_id, { column: time, order: desc }]', '      - columns: [device_id, { column: time, order: desc }]\n      - { name: metrics_cpu_idx, columns: [cpu] }'));
      expect(widened.generated.changes).toEqual(['column public.metrics.humidity retyped from real to double precision', 'index metrics_cpu_idx on public.metrics added']);
      expect(widened.written.filter((w) => w.startsWith('data-nodes'))).toHaveLength(3);
      for (const node of cluster.dataNodes) expect(await sql(node.url, `SELECT to_regclass('public.metrics_cpu_idx') IS NOT NULL AS ok`)).toEqual([{ ok: true }]);

      const text = await readFile(specFile, 'utf8');
      await writeFile(specFile, text.replace('      - { name: humidity, type: double precision }\n', ''));
      const { spec, file } = await loadSpec(specFile);
      const refused = await generateMigrations(spec, file).catch((e: unknown) => e);
      expect((refused as Error).message).toMatch(/drop or may lose data; nothing was written\. Review them and pass --allow-destructive:\n {2}- column public\.metrics\.humidity dropped/);
      await writeFile(specFile, text);
      const dropped = await change((y) => y.replace('      - { name: humidity, type: double precision }\n', ''), { allowDestructive: true });
      expect(dropped.generated.changes).toEqual(['column public.metrics.humidity dropped, with its values on every data node']);
      expect(await count()).toBe(3000);
    });

    it('adds a hypertable, a role with grants and changes an FDW option in one step', async () => {
      const { generated } = await change((y) =>
        y
          .replace('  fetchSize: 10000', '  fetchSize: 5000')
          .replace('roles:\n', 'roles:\n  - name: auditor\n    grants:\n      - { on: events, privileges: [SELECT] }\n')
          .replace(
            'hypertables:\n',
            'hypertables:\n  - name: events\n    columns:\n      - { name: time, type: timestamptz, notNull: true }\n      - { name: source, type: text, notNull: true }\n      - { name: body, type: jsonb }\n    timeColumn: time\n    spaceColumn: source\n    shards: 3\n',
          ),
      );
      expect([...generated.changes].sort()).toEqual([
        'FDW server hypershard_dn1_0: SET fetch_size',
        'FDW server hypershard_dn1_3: SET fetch_size',
        'FDW server hypershard_dn2_1: SET fetch_size',
        'FDW server hypershard_dn2_4: SET fetch_size',
        'FDW server hypershard_dn3_2: SET fetch_size',
        'FDW server hypershard_dn3_5: SET fetch_size',
        'grants of auditor on public.events: +SELECT',
        'hypertable public.events added',
        'role auditor added',
      ]);
      await sql(cluster.accessNode.url, `INSERT INTO events SELECT now(), 'src' || (i % 9), '{}' FROM generate_series(1, 90) i`);
      expect(await sql(cluster.accessNode.url, 'SELECT count(*)::int AS n FROM events')).toEqual([{ n: 90 }]);
      const options = await sql<{ o: string[] }>(cluster.accessNode.url, `SELECT srvoptions AS o FROM pg_foreign_server WHERE srvname = 'hypershard_dn1_0'`);
      expect(options[0]!.o).toContain('fetch_size=5000');
      for (const url of [cluster.accessNode.url, ...cluster.dataNodes.map((n) => n.url)]) {
        expect(await sql(url, `SELECT has_table_privilege('auditor', 'public.events', 'SELECT') AS ok`)).toEqual([{ ok: true }]);
      }
    });

    it('refuses resharding, and a second generate with no change writes nothing', async () => {
      const text = await readFile(specFile, 'utf8');
      await writeFile(specFile, text.replace('shards: 6', 'shards: 8'));
      const { spec, file } = await loadSpec(specFile);
      const refused = ((await generateMigrations(spec, file).catch((e: unknown) => e)) as Error).message;
      // What to do instead: keep the count and rebalance, or a new hypertable and a copy.
      expect(refused).toContain('shards changed from 6 to 8; a hypertable keeps its shard count');
      expect(refused).toContain('set it back to 6');
      expect(refused).toContain('hypershard node add) and run hypershard rebalance');
      expect(refused).toContain('declare a new hypertable with shards: 8, copy the rows into it (INSERT INTO new SELECT * FROM metrics)');
      await writeFile(specFile, text);
      const again = await loadSpec(specFile);
      const result = await generateMigrations(again.spec, again.file);
      expect(result.changes).toEqual([]);
      expect(result.files.every((f) => f.status === 'unchanged')).toBe(true);
      const applied = await apply(again.spec, again.file);
      expect(applied.nodes.map((n) => n.status)).toEqual(['up-to-date', 'up-to-date', 'up-to-date', 'up-to-date']);
    });

    it('keeps the node views right through the column changes above: check finds none missing or stale, the rewriter asks each of the 3 data nodes once, same answers', async () => {
      const { spec, file } = await loadSpec(specFile);
      const result = await check(spec, file);
      expect(result.nodes.flatMap((n) => n.items.filter((i) => i.kind !== 'warning' && (i.object.startsWith('node ') || i.object.includes('metrics_n'))).map((i) => `${n.node} ${i.kind} ${i.object}: ${i.message}`))).toEqual([]);
      const client = new pg.Client(clientConfig(cluster.accessNode.url, process.env.HYPERSHARD_TEST_CONTAINER_PASSWORD));
      await client.connect();
      try {
        const metadata = await discoverMetadata(client);
        expect(metadata.hypertables.find((h) => h.table.name === 'metrics')?.nodes?.map((n) => n.shards)).toEqual([[0, 3], [1, 4], [2, 5]]);
        const written = 'SELECT device_id, count(*) AS n, max(mem_used) AS m, sum(cpu) AS c FROM metrics GROUP BY device_id ORDER BY device_id';
        const rewritten = rewriteSql(written, metadata, { timeZone: 'UTC' });
        expect(rewritten.rewrites.map((r) => r.kind)).toEqual(['partial-aggregate']);
        expect(rewritten.rewrites[0]?.detail).toContain('each of 3 data nodes');
        const [a, b] = [await client.query(written), await client.query(rewritten.sql)];
        expect(b.rows).toHaveLength(30);
        expect(b.rows).toEqual(a.rows);
      } finally {
        await client.end();
      }
    });

    it('keeps the lastpoint views right through the column changes above, answers from them, drops and remakes them with the option; check reports one missing or stale', async () => {
      const lastpointDrift = async (): Promise<string[]> => {
        const { spec, file } = await loadSpec(specFile);
        const result = await check(spec, file);
        return result.nodes.flatMap((n) => n.items.filter((i) => i.kind !== 'warning' && i.object.includes('_last')).map((i) => `${n.node} ${i.kind} ${i.object}: ${i.message}`));
      };
      expect(await lastpointDrift()).toEqual([]);
      const parent = await columnsOn(cluster.accessNode.url, 'public.metrics');
      expect(parent).toContain('mem_used double precision');
      expect(await columnsOn(cluster.accessNode.url, '_hypershard.metrics_s4_last')).toEqual(parent);
      expect(await columnsOn(cluster.dataNodes[1]!.url, '_hypershard.metrics_s4_last')).toEqual(parent);

      // The rewriter finds the views from the catalogs and answers as the hypertable does.
      const client = new pg.Client(clientConfig(cluster.accessNode.url, process.env.HYPERSHARD_TEST_CONTAINER_PASSWORD));
      await client.connect();
      try {
        const written = 'SELECT DISTINCT ON (device_id) * FROM metrics ORDER BY device_id, time DESC';
        const rewritten = rewriteSql(written, await discoverMetadata(client), { timeZone: 'UTC' });
        expect(rewritten.rewrites.map((r) => r.kind)).toEqual(['lastpoint']);
        // With node views, each data node's lastpoint view (one remote query a node), no shard's.
        expect([...rewritten.sql.matchAll(/metrics_\w+_last/g)].map((m) => m[0])).toEqual([expect.stringMatching(/^metrics_n[0-9a-f]{8}_last$/), expect.stringMatching(/_last$/), expect.stringMatching(/_last$/)]);
        expect(rewritten.sql).not.toMatch(/metrics_s\d+_last/);
        const [a, b] = [await client.query(written), await client.query(rewritten.sql)];
        expect(b.rows).toHaveLength(30);
        expect(b.rows).toEqual(a.rows);
      } finally {
        await client.end();
      }

      const off = await change((y) => y.replace('    lastpoint: true\n', ''));
      expect(off.generated.changes).toEqual(['lastpoint views of public.metrics dropped']);
      for (const url of [cluster.accessNode.url, ...cluster.dataNodes.map((n) => n.url)]) {
        expect(await sql(url, `SELECT count(*)::int AS n FROM pg_class WHERE relname LIKE 'metrics_%_last'`)).toEqual([{ n: 0 }]);
      }
      const on = await change((y) => y.replace('    shards: 6\n', '    shards: 6\n    lastpoint: true\n'));
      expect(on.generated.changes).toEqual(['lastpoint views of public.metrics added']);
      expect(await lastpointDrift()).toEqual([]);
      // Roles that read the hypertable read the views' foreign tables (the rewriter reads them in their name).
      expect(await sql(cluster.accessNode.url, `SELECT has_table_privilege('metrics_reader', '_hypershard.metrics_s2_last', 'SELECT') AS ok`)).toEqual([{ ok: true }]);

      // By hand: one view dropped, another made again with old columns (CASCADE: the node's lastpoint view reads them).
      await sql(cluster.dataNodes[0]!.url, 'DROP VIEW _hypershard.metrics_s0_last CASCADE');
      await sql(cluster.dataNodes[0]!.url, 'DROP VIEW _hypershard.metrics_s3_last');
      await sql(cluster.dataNodes[0]!.url, 'CREATE VIEW _hypershard.metrics_s3_last AS SELECT "time", device_id FROM _hypershard.metrics_s3');
      const drift = await lastpointDrift();
      expect(drift).toEqual([
        expect.stringMatching(/^dn1 missing lastpoint view _hypershard\.metrics_s0_last: view _hypershard\.metrics_s0_last does not exist/),
        expect.stringMatching(/^dn1 different lastpoint view _hypershard\.metrics_s3_last: is stale/),
        // The view made by hand lacks the service role's grant too.
        // The node's lastpoint view read the dropped one (gone with it, by CASCADE).
        expect.stringMatching(/^dn1 missing node lastpoint view _hypershard\.metrics_n[0-9a-f]{8}_last: view .* does not exist \(lastpoint queries ask dn1 once through it, for shards 0, 3\)$/),
        expect.stringMatching(/^dn1 missing privileges of hypershard_fdw on _hypershard\.metrics_s3_last: hypershard_fdw on _hypershard\.metrics_s3_last: SELECT not granted/),
      ]);
    });
  });
}
