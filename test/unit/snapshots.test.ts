import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { generateMigrations } from '../../src/migrations/files.js';
import { readSnapshots, SNAPSHOT_DIR } from '../../src/migrations/snapshots.js';
import { exampleSpecYaml } from '../../src/spec/example.js';
import { parseSpec } from '../../src/spec/load.js';
import type { ClusterSpec } from '../../src/spec/schema.js';

/**
 * The example spec on two data nodes, as `edit` changes it, with its first migrations generated in
 * a temporary folder, for `body`; the folder is removed afterwards.
 */
async function withGenerated(edit: (yaml: string) => string, body: (g: { spec: ClusterSpec; file: string; migrations: string }) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'hypershard-snapshots-'));
  try {
    const file = join(dir, 'hypershard.yaml');
    const yaml = edit(
      exampleSpecYaml({
        accessNode: { name: 'access', url: 'postgres://postgres@a/app' },
        dataNodes: ['dn1', 'dn2'].map((name) => ({ name, url: `postgres://postgres@${name}/app` })),
        servicePassword: { env: 'SVC' },
        readerPassword: { env: 'READER' },
      }),
    );
    await writeFile(file, yaml);
    const spec = parseSpec(yaml, file);
    const migrations = join(dir, 'migrations');
    await generateMigrations(spec, file);
    await body({ spec, file, migrations });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

describe('snapshots written before a field existed', () => {
  it('read fdw.timeouts as absent, so the next generate adds the timeout options to every server', async () => {
    await withGenerated((yaml) => yaml, async ({ spec, file, migrations }) => {
      // As an earlier hypershard wrote it: no fdw.timeouts (and servers without those options).
      const snapshot = JSON.parse(await readFile(join(migrations, SNAPSHOT_DIR, '0001.json'), 'utf8')) as { fdw: Record<string, unknown> };
      delete snapshot.fdw.timeouts;
      await writeFile(join(migrations, SNAPSHOT_DIR, '0001.json'), JSON.stringify(snapshot));
      expect((await readSnapshots(migrations))[0]?.spec.fdw.timeouts).toBe(false);

      const result = await generateMigrations(spec, file);
      expect(result.changes).toEqual(expect.arrayContaining([expect.stringMatching(/^FDW server hypershard_dn1_0: ADD connect_timeout, ADD keepalives, ADD keepalives_idle, ADD keepalives_interval, ADD keepalives_count, ADD tcp_user_timeout$/)]));
      const written = result.files.filter((f) => f.status === 'written');
      expect(written.map((f) => f.path.slice(migrations.length + 1))).toEqual([expect.stringMatching(/^access-node\/0002_/)]);
      const sql = await readFile(written[0]!.path, 'utf8');
      expect(sql).toMatch(/ALTER SERVER "hypershard_dn2_1" OPTIONS \(\s*ADD "connect_timeout" '10',/);
      expect(sql).toContain(`ADD "tcp_user_timeout" '30000'`);
    });
  });

  it("give data nodes whose migrations predate the service role's planner settings one step that sets them, once", async () => {
    await withGenerated((yaml) => yaml, async ({ spec, file, migrations }) => {
      // dn1's first migration as an earlier hypershard wrote it: without the settings statement.
      const first = join(migrations, 'data-nodes', 'dn1', '0001_hypershard_init.sql');
      const text = await readFile(first, 'utf8');
      const older = text.replace(/-- planner settings of hypershard_fdw\nDO \$hs\$[\s\S]*?\$hs\$;\n*/g, '');
      expect(older).not.toContain('cursor_tuple_fraction');
      await writeFile(first, older);

      const result = await generateMigrations(spec, file);
      expect(result.changes).toEqual(['planner settings of the FDW service role on data node dn1']);
      const written = result.files.filter((f) => f.status === 'written');
      expect(written.map((f) => f.path.slice(migrations.length + 1))).toEqual(['data-nodes/dn1/0002_role_settings.sql']);
      expect(await readFile(written[0]!.path, 'utf8')).toContain(`SET %I = %L', 'hypershard_fdw', pg_catalog.current_database(), 'cursor_tuple_fraction', '1');`);
      expect((await generateMigrations(spec, file)).changes).toEqual([]);

      // dn2's as a hypershard wrote it before random_page_cost joined the settings: it gets them again.
      const dn2 = join(migrations, 'data-nodes', 'dn2', '0001_hypershard_init.sql');
      const before = (await readFile(dn2, 'utf8')).replace(/ {2}EXECUTE [^\n]*'random_page_cost'[^\n]*\n/g, '');
      expect(before).toContain('cursor_tuple_fraction');
      expect(before).not.toContain('random_page_cost');
      await writeFile(dn2, before);
      const again = await generateMigrations(spec, file);
      expect(again.changes).toEqual(['planner settings of the FDW service role on data node dn2']);
      const added = again.files.filter((f) => f.status === 'written');
      expect(added.map((f) => f.path.slice(migrations.length + 1))).toEqual(['data-nodes/dn2/0003_role_settings.sql']);
      expect(await readFile(added[0]!.path, 'utf8')).toContain(`'random_page_cost', '1.1');`);
    });
  });

  it('give a cluster whose migrations predate node lastpoint views one step that makes them, once', async () => {
    await withGenerated((yaml) => yaml.replace('    shards: 4\n', '    shards: 4\n    lastpoint: true\n    nodeViews: true\n'), async ({ spec, file, migrations }) => {
      // Every first migration as an earlier hypershard wrote it: node views, no node lastpoint views.
      const firsts = [join(migrations, 'access-node'), join(migrations, 'data-nodes', 'dn1'), join(migrations, 'data-nodes', 'dn2')].map((d) => join(d, '0001_hypershard_init.sql'));
      for (const first of firsts) {
        const text = await readFile(first, 'utf8');
        const older = text.replace(/-- node lastpoint view of [^\n]*\n[\s\S]*?;\n\n?/g, '').replace(/-- grant on _hypershard\.metrics_n[0-9a-f]{8}_last to [^\n]*\n[^\n]*\n\n?/g, '');
        expect(older).toContain('-- node view of public.metrics on dn');
        expect(older).not.toMatch(/metrics_n[0-9a-f]{8}_last/);
        await writeFile(first, older);
      }

      const result = await generateMigrations(spec, file);
      expect(result.changes).toEqual(['node lastpoint views of public.metrics added (one remote query a data node for lastpoint queries)']);
      const written = result.files.filter((f) => f.status === 'written');
      expect(written.map((f) => f.path.slice(migrations.length + 1)).sort()).toEqual(['access-node/0002_node_lastpoint.sql', 'data-nodes/dn1/0002_node_lastpoint.sql', 'data-nodes/dn2/0002_node_lastpoint.sql']);
      const access = await readFile(join(migrations, 'access-node/0002_node_lastpoint.sql'), 'utf8');
      const dn1 = await readFile(join(migrations, 'data-nodes/dn1/0002_node_lastpoint.sql'), 'utf8');
      // dn1 holds shards 0 and 2: its view is the union of their lastpoint views.
      expect(dn1).toMatch(/CREATE OR REPLACE VIEW "_hypershard"\."metrics_n[0-9a-f]{8}_last" AS\n.*FROM "_hypershard"\."metrics_s0_last"\nUNION ALL\n.*FROM "_hypershard"\."metrics_s2_last"\n;/);
      expect(dn1).toMatch(/GRANT SELECT ON TABLE "_hypershard"\."metrics_n[0-9a-f]{8}_last" TO "hypershard_fdw";/);
      // The access node's foreign tables, made anew, and readable by who reads the hypertable.
      expect(access.match(/CREATE FOREIGN TABLE "_hypershard"\."metrics_n[0-9a-f]{8}_last"/g)).toHaveLength(2);
      expect(access).toMatch(/DROP FOREIGN TABLE IF EXISTS "_hypershard"\."metrics_n[0-9a-f]{8}_last";\n\n-- node lastpoint view of public\.metrics on dn1 \(shards 0, 2\) \(foreign table on hypershard_dn1_0\)\nCREATE FOREIGN TABLE/);
      expect(access).toMatch(/GRANT SELECT ON TABLE "_hypershard"\."metrics_n[0-9a-f]{8}_last" TO "metrics_reader";/);
      expect((await generateMigrations(spec, file)).changes).toEqual([]);
    });
  });

  it('give data nodes whose lastpoint views predate their function one step that makes it and replaces the views in place, once', async () => {
    await withGenerated((yaml) => yaml.replace('    shards: 4\n', '    shards: 4\n    lastpoint: true\n'), async ({ spec, file, migrations }) => {
      // dn2's first migration as an earlier hypershard wrote it: lastpoint views, no functions.
      const first = join(migrations, 'data-nodes', 'dn2', '0001_hypershard_init.sql');
      const older = (await readFile(first, 'utf8')).replace(/-- lastpoint view of shard \d+ of public\.metrics: its function\n[\s\S]*?;\n\n?/g, '');
      expect(older).toContain('-- lastpoint view of shard 1 of public.metrics\n');
      expect(older).not.toMatch(/FUNCTION "_hypershard"\."metrics_s\d_last_fn"/);
      await writeFile(first, older);

      const result = await generateMigrations(spec, file);
      expect(result.changes).toEqual(['lastpoint views of public.metrics read a function planned once a session (on data node dn2)']);
      const written = result.files.filter((f) => f.status === 'written');
      expect(written.map((f) => f.path.slice(migrations.length + 1))).toEqual(['data-nodes/dn2/0002_lastpoint_function.sql']);
      const sql = await readFile(written[0]!.path, 'utf8');
      // dn2 holds shards 1 and 3: each function made, each view replaced in place (views reading it stay).
      for (const shard of [1, 3]) {
        expect(sql).toContain(`CREATE OR REPLACE FUNCTION "_hypershard"."metrics_s${shard}_last_fn"() RETURNS SETOF "_hypershard"."metrics_s${shard}"`);
        expect(sql).toContain(`CREATE OR REPLACE VIEW "_hypershard"."metrics_s${shard}_last" AS`);
      }
      expect(sql).not.toMatch(/metrics_s[02]_last/);
      expect(sql.slice(sql.indexOf('-- Down Migration'))).not.toContain('DROP');
      expect((await generateMigrations(spec, file)).changes).toEqual([]);
    });
  });
});
