/**
 * Reference tables without a server: what the spec accepts and refuses, the names and copies the
 * layout derives, the SQL each node gets, and the migrations each spec change becomes.
 */
import { describe, expect, it } from 'vitest';
import { renderSync } from '../../src/cli/commands/reference.js';
import { compareReferenceTables } from '../../src/drift/compare/referenceTables.js';
import { SpecError } from '../../src/errors.js';
import { evolve } from '../../src/evolve/diff.js';
import { planLayout, type ClusterLayout } from '../../src/plan/layout.js';
import { metadataFromLayout } from '../../src/rewrite/metadata.js';
import { parseSpec } from '../../src/spec/load.js';
import type { ClusterSpecInput } from '../../src/spec/schema.js';
import { validateSpec } from '../../src/spec/validate.js';
import { syncReferenceTables } from '../../src/reference/sync.js';
import { generateSql } from '../../src/sql/generate.js';
import { syncFunctionStatement } from '../../src/sql/referenceTables.js';

type ReferenceInput = NonNullable<ClusterSpecInput['referenceTables']>[number];

const devices = (extra: Partial<ReferenceInput> = {}): ReferenceInput => ({
  name: 'devices',
  columns: [
    { name: 'device_id', type: 'integer', notNull: true },
    { name: 'region', type: 'text' },
  ],
  primaryKey: ['device_id'],
  ...extra,
});

/** 3 data nodes; `metrics` (2 shards) on dn1 and dn2 only, so dn3 has no server of its own. */
function specOf(extra: Partial<ClusterSpecInput> = {}): ClusterSpecInput {
  return {
    version: 1,
    accessNode: { name: 'access', url: 'postgres://postgres@a/app' },
    dataNodes: [
      { name: 'dn1', url: 'postgres://postgres@b/app' },
      { name: 'dn2', url: 'postgres://postgres@c/app' },
      { name: 'dn3', url: 'postgres://postgres@d/app' },
    ],
    fdw: { serviceRole: { password: { env: 'SVC' } } },
    hypertables: [
      {
        name: 'metrics',
        columns: [
          { name: 'time', type: 'timestamptz', notNull: true },
          { name: 'device_id', type: 'integer', notNull: true },
        ],
        timeColumn: 'time',
        spaceColumn: 'device_id',
        shards: 2,
        dataNodes: ['dn1', 'dn2'],
      },
    ],
    referenceTables: [devices()],
    ...extra,
  };
}

const layoutOf = (extra: Partial<ClusterSpecInput> = {}): ClusterLayout => planLayout(validateSpec(specOf(extra)));

function issues(input: unknown): string[] {
  try {
    validateSpec(input);
  } catch (error) {
    expect(error).toBeInstanceOf(SpecError);
    return (error as SpecError).issues.map((i) => `${i.path}: ${i.message}`);
  }
  throw new Error('expected a SpecError');
}

describe('reference tables in the spec', () => {
  it('fills in the schema and accepts grants on them', () => {
    const spec = validateSpec(specOf({ roles: [{ name: 'reader', grants: [{ on: 'devices', privileges: ['SELECT'] }] }] }));
    expect(spec.referenceTables).toEqual([
      { name: 'devices', schema: 'public', columns: [{ name: 'device_id', type: 'integer', notNull: true }, { name: 'region', type: 'text', notNull: false }], primaryKey: ['device_id'] },
    ]);
  });

  it('defaults to none', () => {
    const { referenceTables: _, ...rest } = specOf();
    expect(validateSpec(rest).referenceTables).toEqual([]);
  });

  it('takes any name PostgreSQL takes: quotes, spaces, non-ASCII letters, reserved words', () => {
    const hostile = { schema: 'Ref "S" ü', name: 'select "x" ß', columns: [{ name: 'from', type: 'int', notNull: true }, { name: 'na"me ü', type: 'text', notNull: true }], primaryKey: ['from', 'na"me ü'] };
    expect(validateSpec(specOf({ referenceTables: [hostile] })).referenceTables[0]?.name).toBe('select "x" ß');
  });

  it('reports every problem with its path', () => {
    expect(
      issues(
        specOf({
          referenceTables: [
            devices({ name: 'metrics' }),
            devices({ schema: '_hypershard' }),
            {
              name: 'bad',
              columns: [
                { name: 'a', type: 'json', notNull: true },
                { name: 'b', type: 'int' },
                { name: 'b', type: 'int; drop table x' },
                { name: 'c\nd', type: 'text' },
              ],
              primaryKey: ['a', 'b', 'nope', 'a'],
            },
          ],
          roles: [{ name: 'r', grants: [{ on: 'missing', privileges: ['SELECT'] }] }],
        }),
      ),
    ).toEqual([
      'roles[0].grants[0].on: unknown hypertable or reference table "missing"',
      'referenceTables[0].name: duplicate table name "metrics"; hypertables and reference tables need names of their own',
      'referenceTables[1].schema: schema "_hypershard" is reserved',
      'referenceTables[2].columns[2].name: duplicate column "b"',
      expect.stringMatching(/^referenceTables\[2\]\.columns\[2\]\.type: unsupported column type "int; drop table x"/),
      'referenceTables[2].columns[3].name: "c\\nd" must not contain control characters (newline, tab, NUL …)',
      'referenceTables[2].primaryKey[0]: column "a" is json, which cannot be in a primary key (jsonb can)',
      'referenceTables[2].columns[2].notNull: primary key column "b" must be notNull: true',
      'referenceTables[2].primaryKey[2]: no column named "nope"',
      'referenceTables[2].primaryKey[3]: column "a" is listed twice',
      'referenceTables[2].primaryKey[3]: column "a" is json, which cannot be in a primary key (jsonb can)',
    ]);
  });

  it('needs columns and a primary key, and says on which line when read from YAML', () => {
    const yaml = [
      /* 1 */ 'version: 1',
      /* 2 */ 'accessNode: { name: access, url: "postgres://p@a/app" }',
      /* 3 */ 'dataNodes: [ { name: dn1, url: "postgres://p@b/app" } ]',
      /* 4 */ 'fdw: { serviceRole: { password: { env: SVC } } }',
      /* 5 */ 'referenceTables:',
      /* 6 */ '  - name: regions',
      /* 7 */ '    columns: [ { name: code, type: text } ]',
      /* 8 */ '    primaryKey: [ code ]',
      /* 9 */ '  - name: empty',
      /* 10 */ '    columns: []',
    ].join('\n');
    let error: SpecError | undefined;
    try {
      parseSpec(yaml);
    } catch (e) {
      error = e as SpecError;
    }
    expect(error?.issues.map((i) => `${i.path}: ${i.message}`)).toEqual([
      expect.stringMatching(/^referenceTables\[1\]\.columns: .* \(line 10\)$/),
      expect.stringMatching(/^referenceTables\[1\]\.primaryKey: .* \(line 9\)$/),
      'referenceTables[0].columns[0].notNull: primary key column "code" must be notNull: true (line 7)',
    ]);
  });
});

describe('reference tables in the layout', () => {
  it('has a copy per FDW server, one writer per data node, and a server for a data node no shard uses', () => {
    const layout = layoutOf();
    expect(layout.servers.map((s) => s.name)).toEqual(['hypershard_dn1_0', 'hypershard_dn2_1', 'hypershard_dn3_0']);
    const [r] = layout.referenceTables;
    expect(r).toEqual({
      table: { schema: 'public', name: 'devices' },
      columns: [
        { name: 'device_id', type: { base: 'integer', modifier: '', arrayDepth: 0, sql: 'integer' }, notNull: true, renamedFrom: undefined },
        { name: 'region', type: { base: 'text', modifier: '', arrayDepth: 0, sql: 'text' }, notNull: false, renamedFrom: undefined },
      ],
      primaryKey: ['device_id'],
      primaryKeyName: 'devices_pkey',
      copies: [
        { server: 'hypershard_dn1_0', dataNode: 'dn1', table: { schema: '_hypershard', name: 'devices_hypershard_dn1_0' }, writer: true },
        { server: 'hypershard_dn2_1', dataNode: 'dn2', table: { schema: '_hypershard', name: 'devices_hypershard_dn2_1' }, writer: true },
        { server: 'hypershard_dn3_0', dataNode: 'dn3', table: { schema: '_hypershard', name: 'devices_hypershard_dn3_0' }, writer: true },
      ],
      syncFunction: { schema: '_hypershard', name: 'devices_sync' },
    });
  });

  it('writes each data node through its first server only', () => {
    const layout = layoutOf({ hypertables: [{ ...specOf().hypertables![0]!, shards: 6, dataNodes: undefined }] });
    expect(layout.referenceTables[0]!.copies.map((c) => [c.server, c.writer])).toEqual([
      ['hypershard_dn1_0', true],
      ['hypershard_dn1_3', false],
      ['hypershard_dn2_1', true],
      ['hypershard_dn2_4', false],
      ['hypershard_dn3_2', true],
      ['hypershard_dn3_5', false],
    ]);
  });

  it('adds no server without reference tables', () => {
    expect(layoutOf({ referenceTables: [] }).servers.map((s) => s.name)).toEqual(['hypershard_dn1_0', 'hypershard_dn2_1']);
  });

  it('gives every data node a server when there is no hypertable at all', () => {
    const layout = layoutOf({ hypertables: [] });
    expect(layout.servers.map((s) => s.name)).toEqual(['hypershard_dn1_0', 'hypershard_dn2_0', 'hypershard_dn3_0']);
  });

  it('keeps derived names within 63 bytes, with a hash when it must cut', () => {
    const name = `d${'é'.repeat(30)}`; // 61 bytes
    const r = layoutOf({ referenceTables: [devices({ name })] }).referenceTables[0]!;
    for (const copy of r.copies) {
      expect(Buffer.byteLength(copy.table.name)).toBeLessThanOrEqual(63);
      expect(copy.table.name).toMatch(/_[0-9a-f]{8}$/);
    }
    expect(new Set(r.copies.map((c) => c.table.name)).size).toBe(3);
    expect(r.syncFunction.name).toMatch(/_[0-9a-f]{8}_sync$/);
    expect(r.primaryKeyName).toMatch(/_[0-9a-f]{8}_pkey$/);
  });

  it('refuses names that collide with another table\'s', () => {
    expect(() => layoutOf({ hypertables: [{ ...specOf().hypertables![0]!, indexes: [{ name: 'devices_pkey', columns: ['device_id'] }] }] })).toThrow(
      'derived name "public.devices_pkey" collides with the one of hypertables[0] (metrics)',
    );
    // Copy names join table and server names: p + hypershard_q_hypershard_r_0 = p_hypershard_q + hypershard_r_0.
    expect(() =>
      layoutOf({
        dataNodes: [{ name: 'q_hypershard_r', url: 'postgres://postgres@b/app' }, { name: 'r', url: 'postgres://postgres@c/app' }],
        hypertables: [],
        referenceTables: [devices({ name: 'p' }), devices({ name: 'p_hypershard_q' })],
      }),
    ).toThrow('derived name "p_hypershard_q_hypershard_r_0" collides with the one of referenceTables[0] (p); shorten one of the names');
  });

  it('gives the rewriter each copy by server', () => {
    expect(metadataFromLayout(layoutOf()).referenceTables).toEqual([
      {
        table: { schema: 'public', name: 'devices' },
        columns: [
          { name: 'device_id', type: 'integer', notNull: true },
          { name: 'region', type: 'text', notNull: false },
        ],
        copies: [
          { server: 'hypershard_dn1_0', table: { schema: '_hypershard', name: 'devices_hypershard_dn1_0' } },
          { server: 'hypershard_dn2_1', table: { schema: '_hypershard', name: 'devices_hypershard_dn2_1' } },
          { server: 'hypershard_dn3_0', table: { schema: '_hypershard', name: 'devices_hypershard_dn3_0' } },
        ],
      },
    ]);
  });
});

describe('reference tables in the generated SQL', () => {
  const sql = generateSql(validateSpec(specOf({ roles: [{ name: 'reader', grants: [{ on: 'devices', privileges: ['SELECT'] }] }] })));
  const node = (name: string) => sql.nodes.find((n) => n.node === name)!;

  it('gives every data node the copy, writable by the service role and readable by roles that may read the table', () => {
    const dn3 = node('dn3');
    expect(dn3.up.map((s) => s.what)).toEqual([
      'schema _hypershard',
      'chunk function',
      'write guard function',
      'service role hypershard_fdw',
      'usage on _hypershard for hypershard_fdw',
      'planner settings of hypershard_fdw',
      'role reader',
      'usage on schema public for hypershard_fdw',
      'copy of reference table public.devices',
      'privileges of hypershard_fdw on public.devices',
      'usage on schema public for reader',
      'grant on public.devices to reader',
    ]);
    const create = dn3.up.find((s) => s.what === 'copy of reference table public.devices')!.sql;
    expect(create).toBe('CREATE TABLE "public"."devices" (\n  "device_id" integer NOT NULL,\n  "region" text,\n  CONSTRAINT "devices_pkey" PRIMARY KEY ("device_id")\n);');
    expect(dn3.up.find((s) => s.what === 'privileges of hypershard_fdw on public.devices')!.sql).toBe('GRANT DELETE, INSERT, SELECT, TRUNCATE, UPDATE ON TABLE "public"."devices" TO "hypershard_fdw";');
    expect(dn3.up.find((s) => s.what === 'grant on public.devices to reader')!.sql).toBe('GRANT SELECT ON TABLE "public"."devices" TO "reader";');
  });

  it('gives the access node the table, a foreign table per server, the sync function and four statement triggers', () => {
    const access = node('access');
    const whats = access.up.map((s) => s.what);
    const from = whats.indexOf('reference table public.devices');
    expect(whats.slice(from, from + 9)).toEqual([
      'reference table public.devices',
      'copy of public.devices on hypershard_dn1_0 (data node dn1)',
      'copy of public.devices on hypershard_dn2_1 (data node dn2)',
      'copy of public.devices on hypershard_dn3_0 (data node dn3)',
      'sync function of public.devices (writes to dn1, dn2, dn3)',
      'sync trigger hypershard_sync_insert on public.devices',
      'sync trigger hypershard_sync_update on public.devices',
      'sync trigger hypershard_sync_delete on public.devices',
      'sync trigger hypershard_sync_truncate on public.devices',
    ]);
    const sqlOf = (what: string): string => access.up.find((s) => s.what === what)!.sql;
    expect(sqlOf('copy of public.devices on hypershard_dn3_0 (data node dn3)')).toBe(
      'CREATE FOREIGN TABLE "_hypershard"."devices_hypershard_dn3_0" (\n  "device_id" integer NOT NULL,\n  "region" text\n) SERVER "hypershard_dn3_0"\n  OPTIONS (schema_name \'public\', table_name \'devices\');',
    );
    expect(sqlOf('sync trigger hypershard_sync_update on public.devices')).toBe(
      'CREATE TRIGGER "hypershard_sync_update" AFTER UPDATE ON "public"."devices"\n  REFERENCING OLD TABLE AS hypershard_old NEW TABLE AS hypershard_new\n  FOR EACH STATEMENT EXECUTE FUNCTION "_hypershard"."devices_sync"();',
    );
    expect(sqlOf('sync trigger hypershard_sync_truncate on public.devices')).toBe(
      'CREATE TRIGGER "hypershard_sync_truncate" AFTER TRUNCATE ON "public"."devices"\n  FOR EACH STATEMENT EXECUTE FUNCTION "_hypershard"."devices_sync"();',
    );
    expect(whats).toContain('grant on _hypershard.devices_hypershard_dn1_0 to reader');
    expect(whats).toContain('usage on schema _hypershard for reader');
    // Down: the table (and its triggers), then the function, then the copies; servers after.
    const down = access.down.map((s) => s.what);
    expect(down.indexOf('reference table public.devices')).toBeLessThan(down.indexOf('sync function of public.devices'));
    expect(down.indexOf('copy of public.devices on hypershard_dn3_0 (data node dn3)')).toBeLessThan(down.indexOf('server hypershard_dn3_0'));
  });

  it('deletes a single scalar key with one = ANY per data node, other keys row by row, every column qualified', () => {
    const single = syncFunctionStatement(layoutOf().referenceTables[0]!).sql;
    expect(single).toContain('SECURITY DEFINER SET search_path = pg_catalog, pg_temp');
    expect(single).toContain('  gone integer[];');
    expect(single).toContain('      gone := ARRAY(SELECT hs_rows."device_id" FROM hypershard_old AS hs_rows);');
    expect(single).toContain('      DELETE FROM "_hypershard"."devices_hypershard_dn2_1" AS hs_copy WHERE hs_copy."device_id" = ANY (gone);');
    expect(single).toContain('    TRUNCATE "_hypershard"."devices_hypershard_dn1_0", "_hypershard"."devices_hypershard_dn2_1", "_hypershard"."devices_hypershard_dn3_0";');
    expect(single).toContain('      INSERT INTO "_hypershard"."devices_hypershard_dn3_0" ("device_id", "region")\n        SELECT hs_rows."device_id", hs_rows."region" FROM hypershard_new AS hs_rows;');

    const composite = syncFunctionStatement(
      layoutOf({ referenceTables: [{ name: 'pairs', columns: [{ name: 'a', type: 'int', notNull: true }, { name: 'gone', type: 'text', notNull: true }], primaryKey: ['a', 'gone'] }] }).referenceTables[0]!,
    ).sql;
    expect(composite).toContain('  gone record;');
    expect(composite).toContain('      FOR gone IN SELECT hs_rows."a", hs_rows."gone" FROM hypershard_old AS hs_rows LOOP');
    expect(composite).toContain('        DELETE FROM "_hypershard"."pairs_hypershard_dn1_0" AS hs_copy WHERE hs_copy."a" = gone."a" AND hs_copy."gone" = gone."gone";');

    const arrayKey = syncFunctionStatement(layoutOf({ referenceTables: [{ name: 'tagsets', columns: [{ name: 'tags', type: 'text[]', notNull: true }], primaryKey: ['tags'] }] }).referenceTables[0]!).sql;
    expect(arrayKey).toContain('  gone record;');
  });

  it('writes only through the writer copy of each data node', () => {
    const r = layoutOf({ hypertables: [{ ...specOf().hypertables![0]!, shards: 6, dataNodes: undefined }] }).referenceTables[0]!;
    const fn = syncFunctionStatement(r).sql;
    expect(fn).toContain('devices_hypershard_dn1_0');
    expect(fn).not.toContain('devices_hypershard_dn1_3');
  });
});

describe('reference tables in schema evolution', () => {
  const changes = (before: Partial<ClusterSpecInput>, after: Partial<ClusterSpecInput>) => evolve(layoutOf(before), layoutOf(after));
  const whats = (e: ReturnType<typeof evolve>, node: string): string[] => (e.steps.get(node) ?? []).flatMap((s) => s.up.map((u) => u.what));

  it('adds a reference table on every node', () => {
    const e = changes({ referenceTables: [] }, {});
    expect(e.changes).toEqual(['FDW server hypershard_dn3_0 added', 'reference table public.devices added']);
    expect(e.destructive).toEqual([]);
    expect(whats(e, 'dn3')).toEqual(['usage on schema public for hypershard_fdw', 'copy of reference table public.devices', 'privileges of hypershard_fdw on public.devices']);
    expect(whats(e, 'access')).toEqual([
      'server hypershard_dn3_0 (data node dn3)',
      'parallel commit on hypershard_dn3_0 (PostgreSQL 15+)',
      'user mapping on hypershard_dn3_0',
      'reference table public.devices',
      'copy of public.devices on hypershard_dn1_0 (data node dn1)',
      'copy of public.devices on hypershard_dn2_1 (data node dn2)',
      'copy of public.devices on hypershard_dn3_0 (data node dn3)',
      'sync function of public.devices (writes to dn1, dn2, dn3)',
      'sync trigger hypershard_sync_insert on public.devices',
      'sync trigger hypershard_sync_update on public.devices',
      'sync trigger hypershard_sync_delete on public.devices',
      'sync trigger hypershard_sync_truncate on public.devices',
    ]);
  });

  it('drops one only as a destructive change, copies before the server they use', () => {
    const e = changes({}, { referenceTables: [] });
    expect(e.destructive).toEqual(['reference table public.devices dropped, with its rows on the access node and every data node']);
    expect(whats(e, 'dn1')).toEqual(['copy of reference table public.devices', 'usage on schema public for hypershard_fdw']);
    expect((e.steps.get('dn1') ?? []).flatMap((s) => s.up.map((u) => u.sql))).toEqual(['DROP TABLE IF EXISTS "public"."devices";', 'REVOKE USAGE ON SCHEMA "public" FROM "hypershard_fdw";']);
    const access = whats(e, 'access');
    expect(access.indexOf('copy of public.devices on hypershard_dn3_0 (data node dn3)')).toBeLessThan(access.indexOf('server hypershard_dn3_0'));
  });

  it('changes a column on the table, every copy and the sync function', () => {
    const e = changes({}, { referenceTables: [devices({ columns: [...devices().columns!, { name: 'firmware', type: 'text' }] })] });
    expect(e.changes).toEqual(['column public.devices.firmware text added']);
    expect((e.steps.get('access') ?? []).flatMap((s) => s.up.map((u) => u.sql)).slice(0, 4)).toEqual([
      'ALTER TABLE "public"."devices" ADD COLUMN "firmware" text;',
      'ALTER TABLE "_hypershard"."devices_hypershard_dn1_0" ADD COLUMN "firmware" text;',
      'ALTER TABLE "_hypershard"."devices_hypershard_dn2_1" ADD COLUMN "firmware" text;',
      'ALTER TABLE "_hypershard"."devices_hypershard_dn3_0" ADD COLUMN "firmware" text;',
    ]);
    expect(whats(e, 'access').at(-1)).toBe('sync function of public.devices (writes to dn1, dn2, dn3)');
    expect(whats(e, 'dn2')).toEqual(['add column firmware to public.devices']);
  });

  it('retypes with USING where rows are stored, without it on the foreign tables', () => {
    const e = changes({}, { referenceTables: [devices({ columns: [{ name: 'device_id', type: 'bigint', notNull: true }, { name: 'region', type: 'text' }] })] });
    const sql = (e.steps.get('access') ?? []).flatMap((s) => s.up.map((u) => u.sql));
    expect(sql[0]).toBe('ALTER TABLE "public"."devices" ALTER COLUMN "device_id" TYPE bigint USING "device_id"::bigint;');
    expect(sql[1]).toBe('ALTER TABLE "_hypershard"."devices_hypershard_dn1_0" ALTER COLUMN "device_id" TYPE bigint;');
    expect(sql.at(-1)).toContain('gone bigint[];');
  });

  it('refuses a new primary key or schema, and follows a renamed key column', () => {
    expect(changes({}, { referenceTables: [devices({ columns: [{ name: 'device_id', type: 'integer', notNull: true }, { name: 'region', type: 'text', notNull: true }], primaryKey: ['device_id', 'region'] })] }).refused).toEqual([
      'reference table public.devices: the primary key changed from (device_id) to (device_id, region); that needs a new reference table',
    ]);
    expect(changes({}, { referenceTables: [devices({ schema: 'ref' })] }).refused).toEqual(['reference table devices moved from schema public to ref; moving is not supported']);
    const renamed = changes({}, { referenceTables: [devices({ columns: [{ name: 'id', type: 'integer', notNull: true, renamedFrom: 'device_id' }, { name: 'region', type: 'text' }], primaryKey: ['id'] })] });
    expect(renamed.refused).toEqual([]);
    expect(renamed.changes).toEqual(['column public.devices.device_id renamed to id']);
  });

  it('gives a new data node its copy, and the access node the copy on its server and a sync function that writes there', () => {
    const two = { dataNodes: specOf().dataNodes!.slice(0, 2) };
    const e = changes(two, {});
    expect(e.changes).toEqual([
      'data node dn3 added',
      'FDW server hypershard_dn3_0 added',
      'copies of reference table public.devices follow the FDW servers: +hypershard_dn3_0',
    ]);
    expect(whats(e, 'dn3')).toContain('copy of reference table public.devices');
    expect(whats(e, 'access').slice(3)).toEqual(['copy of public.devices on hypershard_dn3_0 (data node dn3)', 'sync function of public.devices (writes to dn1, dn2, dn3)']);
    expect(e.steps.has('dn1')).toBe(false);
  });

  it('grants SELECT on every copy when a role may read the table, and revokes it again', () => {
    const reader = (privileges: ('SELECT' | 'INSERT')[]) => ({ roles: [{ name: 'reader', grants: [{ on: 'devices', privileges }] }] });
    const e = changes(reader(['INSERT']), reader(['INSERT', 'SELECT']));
    expect(e.changes).toEqual([
      'grants of reader on public.devices: +SELECT',
      'grants of reader on _hypershard.devices_hypershard_dn1_0: +SELECT',
      'grants of reader on _hypershard.devices_hypershard_dn2_1: +SELECT',
      'grants of reader on _hypershard.devices_hypershard_dn3_0: +SELECT',
    ]);
    expect((e.steps.get('dn1') ?? []).flatMap((s) => s.up.map((u) => u.sql))).toEqual(['GRANT USAGE ON SCHEMA "public" TO "reader";', 'GRANT SELECT ON TABLE "public"."devices" TO "reader";']);
    expect((e.steps.get('access') ?? []).flatMap((s) => s.up.map((u) => u.sql)).slice(0, 2)).toEqual([
      'GRANT USAGE ON SCHEMA "_hypershard" TO "reader";',
      'GRANT SELECT ON TABLE "public"."devices" TO "reader";',
    ]);
    const back = changes(reader(['INSERT', 'SELECT']), reader(['INSERT']));
    // With no privilege left on the data nodes, USAGE goes too (check expects none there).
    expect((back.steps.get('dn2') ?? []).flatMap((s) => s.up.map((u) => u.sql))).toEqual(['REVOKE SELECT ON TABLE "public"."devices" FROM "reader";', 'REVOKE USAGE ON SCHEMA "public" FROM "reader";']);
  });
});

describe('reference tables in check', () => {
  const layout = layoutOf();
  const r = layout.referenceTables[0]!;
  const columns = [
    { name: 'device_id', type: 'integer', notNull: true },
    { name: 'region', type: 'text', notNull: false },
  ];
  const functionBody = (/AS (\$[a-z0-9]*\$)([\s\S]*)\1;$/.exec(syncFunctionStatement(r).sql) as RegExpExecArray)[2]!;
  const TYPES: Record<string, number> = { INSERT: 4, UPDATE: 16, DELETE: 8, TRUNCATE: 32 };
  /** The access node's catalog as `apply` leaves it. */
  const clean = () => ({
    relations: [
      { table: r.table, kind: 'r', parent: undefined, bound: undefined, partitionKey: undefined, server: undefined, options: new Map<string, string>() },
      ...r.copies.map((c) => ({ table: c.table, kind: 'f', parent: undefined, bound: undefined, partitionKey: undefined, server: c.server, options: new Map([['schema_name', 'public'], ['table_name', 'devices']]) })),
    ],
    columns: new Map([r.table, ...r.copies.map((c) => c.table)].map((t) => [`${t.schema}\u0000${t.name}`, columns])),
    objects: {
      primaryKeys: [{ table: r.table, name: 'devices_pkey', columns: ['device_id'] }],
      triggers: (['INSERT', 'UPDATE', 'DELETE', 'TRUNCATE'] as const).map((event) => ({
        table: r.table,
        name: `hypershard_sync_${event.toLowerCase()}`,
        enabled: 'O',
        type: TYPES[event] ?? 0,
        oldTable: event === 'UPDATE' || event === 'DELETE' ? 'hypershard_old' : undefined,
        newTable: event === 'UPDATE' || event === 'INSERT' ? 'hypershard_new' : undefined,
        function: r.syncFunction,
      })),
      functions: [{ function: r.syncFunction, body: functionBody, securityDefiner: true }],
      foreignTables: r.copies.map((c) => ({ table: c.table, server: c.server, remote: r.table })),
    },
  });
  const found = (c: ReturnType<typeof clean>, role: 'access' | 'data' = 'access') =>
    compareReferenceTables(layout, role, c.relations, c.columns, c.objects).map((f) => `${f.kind} ${f.object}: ${f.message}`);

  it('finds nothing on a node as apply leaves it', () => {
    expect(found(clean())).toEqual([]);
    const data = clean();
    expect(found({ ...data, relations: data.relations.slice(0, 1), objects: { ...data.objects, triggers: [], functions: [], foreignTables: [] } }, 'data')).toEqual([]);
  });

  it('names a missing copy, a stale sync function, a disabled or changed trigger and a missing key', () => {
    const c = clean();
    c.relations = c.relations.filter((x) => x.table.name !== 'devices_hypershard_dn2_1');
    c.objects.functions = [{ function: r.syncFunction, body: functionBody.replace(', "_hypershard"."devices_hypershard_dn3_0"', ''), securityDefiner: true }];
    c.objects.triggers = c.objects.triggers.map((t) => (t.name === 'hypershard_sync_delete' ? { ...t, enabled: 'D' } : t.name === 'hypershard_sync_insert' ? { ...t, type: 5 } : t));
    c.objects.primaryKeys = [];
    expect(found(c)).toEqual([
      'missing primary key of public.devices: public.devices has no primary key; changes reach the copies by key',
      'missing copy _hypershard.devices_hypershard_dn2_1 of public.devices: foreign table _hypershard.devices_hypershard_dn2_1 on hypershard_dn2_1 (data node dn2) does not exist',
      'different sync function _hypershard.devices_sync: differs from what the spec generates (it writes other copies or columns); changes may not reach every data node',
      'different sync trigger hypershard_sync_insert on public.devices: is AFTER INSERT FOR EACH ROW NEW TABLE hypershard_new EXECUTE _hypershard.devices_sync(), expected AFTER INSERT FOR EACH STATEMENT NEW TABLE hypershard_new EXECUTE _hypershard.devices_sync()',
      'different sync trigger hypershard_sync_delete on public.devices: is disabled: DELETE on public.devices does not reach the copies',
    ]);
  });

  it('names a copy column that differs from the spec', () => {
    const c = clean();
    c.columns.set('_hypershard\u0000devices_hypershard_dn1_0', [columns[0]!]);
    expect(found(c)).toEqual(['missing column public.devices.region on _hypershard.devices_hypershard_dn1_0: _hypershard.devices_hypershard_dn1_0: no column region']);
  });
});

describe('reference sync without reference tables', () => {
  it('contacts no node and says so per node, instead of reporting copies synced', async () => {
    // The spec's hosts do not resolve: a sync that tried any node would report it failed.
    const spec = validateSpec(specOf({ referenceTables: [] }));
    const result = await syncReferenceTables(spec, '/nowhere/hypershard.yaml', { dataNodes: ['dn1', 'dn3'] });
    expect(result.ok).toBe(true);
    expect(result.nodes.map((n) => [n.node, n.status, n.tables.length, n.rowsCopied])).toEqual([
      ['dn1', 'no-tables', 0, 0],
      ['dn3', 'no-tables', 0, 0],
    ]);
    expect(renderSync(result)).toBe('the spec declares no reference tables: nothing to copy, no node contacted');
  });
});
