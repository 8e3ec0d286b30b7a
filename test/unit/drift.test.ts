/**
 * The pure comparisons of `check`: a catalog built by hand as a correct node would have it gives
 * no finding, and each planted difference gives exactly the finding that names it.
 */
import { describe, expect, it } from 'vitest';
import { renderCheck } from '../../src/cli/commands/check.js';
import type { NodeCatalog } from '../../src/drift/catalog/node.js';
import { NO_REFERENCE_OBJECTS } from '../../src/drift/catalog/referenceTables.js';
import { NO_TIMESCALE_ROUTINES } from '../../src/drift/catalog/routines.js';
import type { CatalogRelation } from '../../src/drift/catalog/relations.js';
import { compareMigrations } from '../../src/drift/compare/migrations.js';
import { compareNode } from '../../src/drift/compare/node.js';
import { formatType } from '../../src/drift/formatType.js';
import { isClean, nameKey, type Finding } from '../../src/drift/model.js';
import { formatHashBound, parseBoundsCheck, parseQualifiedIdent } from '../../src/drift/pgText.js';
import { planLayout, type ClusterLayout } from '../../src/plan/layout.js';
import { parseColumnType, type ColumnType } from '../../src/spec/columnType.js';
import { parseSpec } from '../../src/spec/load.js';

/** 1 access node, 3 data nodes, one hypertable with 4 shards in its own schema, two roles. */
const SPEC = `version: 1
accessNode: { name: access, url: "postgres://postgres@10.0.0.1:5432/app" }
dataNodes:
  - { name: dn1, url: "postgres://postgres@10.0.0.2:5432/app" }
  - { name: dn2, url: "postgres://postgres@10.0.0.3:5433/app" }
  - { name: dn3, url: "postgres://postgres@10.0.0.4:5432/app" }
fdw:
  serviceRole: { password: { env: SVC } }
roles:
  - name: reader
    login: true
    grants: [ { on: metrics, privileges: [SELECT] } ]
  - name: writer
    memberOf: [reader]
    grants: [ { on: metrics, privileges: [INSERT, SELECT] } ]
hypertables:
  - name: metrics
    schema: iot
    columns:
      - { name: time, type: timestamptz, notNull: true }
      - { name: device_id, type: int, notNull: true }
      - { name: value, type: float8 }
      - { name: label, type: varchar(64) }
    timeColumn: time
    spaceColumn: device_id
    shards: 4
    indexes:
      - columns: [device_id, { column: time, order: desc }]
timescaledb: { functions: false } # compared in timescaledb.test.ts
`;

const layout = planLayout(parseSpec(SPEC));
const PG18 = 180004;
const key = (schema: string, name: string): string => `${schema}\u0000${name}`;
const type = (text: string): ColumnType => parseColumnType(text) as ColumnType;

/** What a node that `apply` just built holds, written in catalog terms (as the server prints them). */
function cleanCatalog(l: ClusterLayout, node: string): NodeCatalog {
  const access = node === l.accessNode;
  const h = l.hypertables[0]!;
  const shards = h.shards.filter((s) => access || s.dataNode === node);
  const columns = [
    { name: 'time', type: 'timestamp with time zone', notNull: true },
    { name: 'device_id', type: 'integer', notNull: true },
    { name: 'value', type: 'double precision', notNull: false },
    { name: 'label', type: 'character varying(64)', notNull: false },
  ];
  const relations: CatalogRelation[] = [
    { table: h.table, kind: 'p', parent: undefined, bound: undefined, partitionKey: { strategy: 'hash', columns: ['device_id'] }, server: undefined, options: new Map() },
    ...shards.map((s): CatalogRelation => ({
      table: s.table,
      kind: access ? 'f' : 'p',
      parent: h.table,
      bound: `FOR VALUES WITH (modulus 4, remainder ${s.remainder})`,
      partitionKey: access ? undefined : { strategy: 'range', columns: ['time'] },
      server: access ? s.server : undefined,
      options: access ? new Map([['schema_name', '_hypershard'], ['table_name', s.table.name]]) : new Map(),
    })),
  ];
  const roles = [
    { name: 'reader', login: true, inherit: true, connectionLimit: -1 },
    { name: 'writer', login: false, inherit: true, connectionLimit: -1 },
    ...(access ? [] : [{ name: 'hypershard_fdw', login: true, inherit: false, connectionLimit: -1 }]),
  ].map((r) => ({ ...r, superuser: false, createdb: false, createrole: false, replication: false, bypassrls: false }));
  return {
    serverVersionNum: PG18,
    ingest: { maxPreparedTransactions: 64, commitLog: true, inDoubt: 0 },
    base: { schema: true, fdwExtension: access, chunkFunction: !access },
    relations,
    columns: new Map(relations.map((r) => [key(r.table.schema, r.table.name), columns])),
    checks: new Map(
      access ? [] : shards.map((s) => [key('_hypershard', s.table.name), [{ name: `${s.table.name}_bounds`, expression: `satisfies_hash_partition(('iot.metrics'::regclass)::oid, 4, ${s.remainder}, device_id)`, validated: true }]]),
    ),
    indexes: new Map(access ? [] : [[key('iot', 'metrics'), [{ name: 'metrics_device_id_time_idx', schema: 'iot', method: 'btree', columns: [{ name: 'device_id', order: 'asc' as const }, { name: 'time', order: 'desc' as const }], unique: false }]]]),
    servers: access
      ? l.servers.map((s) => ({
          name: s.name,
          wrapper: 'postgres_fdw',
          options: new Map([
            ['host', `10.0.0.${Number(s.dataNode.slice(2)) + 1}`],
            ['port', s.dataNode === 'dn2' ? '5433' : '5432'],
            ['dbname', 'app'],
            ['async_capable', 'true'],
            ['fetch_size', '10000'],
            ['batch_size', '1000'],
            ['fdw_tuple_cost', '0.2'],
            ['fdw_startup_cost', '100'],
            ['keep_connections', 'true'],
            ['connect_timeout', '10'],
            ['keepalives', '1'],
            ['keepalives_idle', '10'],
            ['keepalives_interval', '5'],
            ['keepalives_count', '3'],
            ['tcp_user_timeout', '30000'],
            ['parallel_commit', 'true'],
          ]),
        }))
      : [],
    userMappings: access ? l.servers.map((s) => ({ server: s.name, user: 'public', options: new Map([['user', 'hypershard_fdw']]), hasPassword: true, visible: true })) : [],
    settings: new Map(access ? [['enable_partitionwise_aggregate', 'on'], ['enable_partitionwise_join', 'on'], ['enable_async_append', 'on']] : []),
    roleSettings: new Map(access ? [] : [['cursor_tuple_fraction', '1'], ['random_page_cost', '1.1']]),
    roles,
    memberships: [{ member: 'writer', role: 'reader' }],
    tableGrants: [
      { table: h.table, role: 'reader', privilege: 'SELECT' },
      { table: h.table, role: 'writer', privilege: 'INSERT' },
      { table: h.table, role: 'writer', privilege: 'SELECT' },
      ...(access ? [] : shards.flatMap((s) => ['DELETE', 'INSERT', 'SELECT', 'TRUNCATE', 'UPDATE'].map((privilege) => ({ table: s.table, role: 'hypershard_fdw', privilege })))),
      // Roles that may read the hypertable read its shards directly in rewritten queries.
      ...(access ? shards.flatMap((s) => ['reader', 'writer'].map((role) => ({ table: s.table, role, privilege: 'SELECT' }))) : []),
    ],
    schemaGrants: [
      { schema: 'iot', role: 'reader', privilege: 'USAGE' },
      { schema: 'iot', role: 'writer', privilege: 'USAGE' },
      ...(access ? [] : [{ schema: '_hypershard', role: 'hypershard_fdw', privilege: 'USAGE' }]),
      ...(access ? ['reader', 'writer'].map((role) => ({ schema: '_hypershard', role, privilege: 'USAGE' })) : []),
    ],
    schemas: ['_hypershard', 'iot'],
    defaultChunks: access ? [] : shards.map((s) => ({ shard: s.table, chunk: { schema: '_hypershard', name: `${s.chunkPrefix}_default` }, rows: 0, from: undefined, to: undefined })),
    writeGuards: { function: !access, guarded: new Set(access ? [] : shards.map((s) => nameKey(s.table))) },
    referenceObjects: NO_REFERENCE_OBJECTS,
    timescale: NO_TIMESCALE_ROUTINES,
    appliedMigrations: ['0001_hypershard_init'],
    checksums: new Map([['0001_hypershard_init', 'a'.repeat(64)]]),
  };
}

const FILES = { files: [{ name: '0001_hypershard_init', checksum: 'a'.repeat(64) }], notGenerated: undefined };
const role = (node: string): 'access' | 'data' => (node === 'access' ? 'access' : 'data');

/** Findings for a node whose clean catalog was changed by `plant`. */
function drift(node: string, plant: (c: NodeCatalog) => Partial<NodeCatalog>): Finding[] {
  const clean = cleanCatalog(layout, node);
  return compareNode(layout, node, role(node), { ...clean, ...plant(clean) }, FILES);
}

const replaceRelation = (c: NodeCatalog, name: string, change: (r: CatalogRelation) => CatalogRelation | undefined): CatalogRelation[] =>
  c.relations.flatMap((r) => (r.table.name === name ? [change(r)].filter((x): x is CatalogRelation => x !== undefined) : [r]));

describe('formatType: spec types as format_type() prints them', () => {
  it.each([
    ['timestamptz', 'timestamp with time zone'],
    ['timestamp(3)', 'timestamp(3) without time zone'],
    ['timestamptz(0)', 'timestamp(0) with time zone'],
    ['time', 'time without time zone'],
    ['timetz(2)', 'time(2) with time zone'],
    ['int', 'integer'],
    ['int8', 'bigint'],
    ['float8', 'double precision'],
    ['float4', 'real'],
    ['numeric', 'numeric'],
    ['numeric(12,2)', 'numeric(12,2)'],
    ['numeric(10)', 'numeric(10,0)'],
    ['varchar', 'character varying'],
    ['varchar(64)', 'character varying(64)'],
    ['char', 'character(1)'],
    ['char(3)', 'character(3)'],
    ['text[]', 'text[]'],
    ['int[][]', 'integer[]'],
    ['jsonb', 'jsonb'],
    ['interval(6)', 'interval(6)'],
    ['bool', 'boolean'],
  ])('%s → %s', (spec, printed) => {
    expect(formatType(type(spec))).toBe(printed);
  });
});

describe('reading what the server prints', () => {
  it('parses identifiers quoted the way quote_ident does', () => {
    expect(parseQualifiedIdent('public.metrics')).toEqual(['public', 'metrics']);
    expect(parseQualifiedIdent('"My Schema"."we""ird.name"')).toEqual(['My Schema', 'we"ird.name']);
    expect(parseQualifiedIdent('"time"')).toEqual(['time']);
    expect(parseQualifiedIdent('a."b')).toBeUndefined();
    expect(parseQualifiedIdent('a..b')).toBeUndefined();
  });

  it('prints hash bounds as pg_get_expr does, and parses the shard bounds check', () => {
    expect(formatHashBound({ modulus: 4, remainder: 3 })).toBe('FOR VALUES WITH (modulus 4, remainder 3)');
    expect(parseBoundsCheck(`satisfies_hash_partition(('public.metrics'::regclass)::oid, 4, 0, device_id)`)).toEqual({
      parent: ['public', 'metrics'], modulus: 4, remainder: 0, column: 'device_id',
    });
    expect(parseBoundsCheck(`satisfies_hash_partition(('"o''b"."Sel ect"'::regclass)::oid, 8, 7, "Device ""id""")`)).toEqual({
      parent: ["o'b", 'Sel ect'], modulus: 8, remainder: 7, column: 'Device "id"',
    });
    expect(parseBoundsCheck('(device_id > 0)')).toBeUndefined();
  });
});

describe('a node as apply builds it', () => {
  it('gives no finding on the access node nor on any data node', () => {
    for (const node of ['access', 'dn1', 'dn2', 'dn3']) expect(drift(node, () => ({}))).toEqual([]);
  });

  it('does not expect parallel_commit below PostgreSQL 15', () => {
    const findings = drift('access', (c) => ({ serverVersionNum: 140011, servers: c.servers.map((s) => ({ ...s, options: new Map([...s.options].filter(([k]) => k !== 'parallel_commit')) })) }));
    expect(findings).toEqual([]);
  });
});

describe('tables and partitions', () => {
  it('reports a missing foreign partition on the access node', () => {
    expect(drift('access', (c) => ({ relations: replaceRelation(c, 'metrics_s3', () => undefined) }))).toEqual([
      { kind: 'missing', object: 'foreign partition _hypershard.metrics_s3', message: 'foreign table _hypershard.metrics_s3 does not exist' },
    ]);
  });

  it('reports a foreign partition on the wrong server, with wrong bounds and options', () => {
    const findings = drift('access', (c) => ({
      relations: replaceRelation(c, 'metrics_s1', (r) => ({ ...r, server: 'hypershard_dn1_0', bound: 'FOR VALUES WITH (modulus 4, remainder 2)', options: new Map([['schema_name', '_hypershard'], ['table_name', 'metrics_s0'], ['use_remote_estimate', 'true']]) })),
    }));
    expect(findings.map((f) => [f.kind, f.object, f.expected, f.actual])).toEqual([
      ['different', 'foreign partition _hypershard.metrics_s1', 'FOR VALUES WITH (modulus 4, remainder 1)', 'FOR VALUES WITH (modulus 4, remainder 2)'],
      ['different', 'foreign partition _hypershard.metrics_s1', 'hypershard_dn2_1', 'hypershard_dn1_0'],
      ['different', 'foreign partition _hypershard.metrics_s1', 'table_name=metrics_s1', 'table_name=metrics_s0'],
      ['extra', 'foreign partition _hypershard.metrics_s1', undefined, 'use_remote_estimate=true'],
    ]);
  });

  it('reports a partition nobody declared, and a detached shard', () => {
    const extra: CatalogRelation = { table: { schema: 'iot', name: 'metrics_local' }, kind: 'r', parent: { schema: 'iot', name: 'metrics' }, bound: 'DEFAULT', partitionKey: undefined, server: undefined, options: new Map() };
    const findings = drift('dn1', (c) => ({ relations: [...replaceRelation(c, 'metrics_s3', (r) => ({ ...r, parent: undefined, bound: undefined })), extra] }));
    expect(findings.map((f) => [f.kind, f.object, f.actual])).toEqual([
      ['different', 'shard _hypershard.metrics_s3', 'not attached'],
      ['extra', 'partition iot.metrics_local', 'DEFAULT'],
    ]);
  });

  it('reports a shard a data node should not hold', () => {
    const s1 = layout.hypertables[0]!.shards[1]!;
    const findings = drift('dn1', (c) => ({ relations: [...c.relations, { table: s1.table, kind: 'p', parent: { schema: 'iot', name: 'metrics' }, bound: 'FOR VALUES WITH (modulus 4, remainder 1)', partitionKey: { strategy: 'range', columns: ['time'] }, server: undefined, options: new Map() }] }));
    expect(findings).toEqual([{ kind: 'extra', object: 'shard _hypershard.metrics_s1', message: 'shard 1 of iot.metrics belongs on dn2, not here' }]);
  });

  it('reports partition keys that differ', () => {
    const findings = drift('dn2', (c) => ({
      relations: c.relations.map((r) => (r.kind === 'p' ? { ...r, partitionKey: r.parent === undefined ? { strategy: 'hash' as const, columns: ['label'] } : { strategy: 'list' as const, columns: ['time'] } } : r)),
    }));
    expect(findings.map((f) => [f.object, f.expected, f.actual])).toEqual([
      ['partition key of iot.metrics', 'HASH (device_id)', 'HASH (label)'],
      ['partition key of _hypershard.metrics_s1', 'RANGE (time)', 'LIST (time)'],
    ]);
  });

  it('reports a local parent on a data node that holds no shard of it', () => {
    const small = planLayout(parseSpec(SPEC.replace('shards: 4', 'shards: 2')));
    const clean = cleanCatalog(small, 'dn3');
    const findings = compareNode(small, 'dn3', 'data', { ...clean, relations: [clean.relations[0]!] }, FILES);
    expect(findings.filter((f) => f.object === 'local parent iot.metrics')).toEqual([
      { kind: 'extra', object: 'local parent iot.metrics', message: 'dn3 holds no shard of iot.metrics, yet has the table' },
    ]);
  });
});

describe('columns', () => {
  const withColumns = (c: NodeCatalog, table: string, change: (cols: NonNullable<ReturnType<NodeCatalog['columns']['get']>>) => { name: string; type: string; notNull: boolean }[]): Partial<NodeCatalog> => ({
    columns: new Map([...c.columns].map(([k, cols]) => [k, k.endsWith(`\u0000${table}`) ? change(cols) : cols])),
  });

  it('reports a column added by hand on a data node once, at its local parent', () => {
    // ALTER TABLE on the parent reaches every shard; the shards must not repeat the finding.
    const findings = drift('dn1', (c) => ({
      columns: new Map([...c.columns].map(([k, cols]) => [k, [...cols, { name: 'note', type: 'text', notNull: false }]])),
    }));
    expect(findings).toEqual([{ kind: 'extra', object: 'column iot.metrics.note', actual: 'text', message: 'iot.metrics: column note (text) is not in the spec' }]);
  });

  it('reports a column type changed on the access node', () => {
    const findings = drift('access', (c) => withColumns(c, 'metrics', (cols) => cols.map((col) => (col.name === 'value' ? { ...col, type: 'real' } : col))));
    expect(findings).toEqual([{ kind: 'different', object: 'column iot.metrics.value', expected: 'double precision', actual: 'real', message: 'iot.metrics: value is real, expected double precision' }]);
  });

  it('reports what only a shard has, naming the shard', () => {
    const findings = drift('dn1', (c) => withColumns(c, 'metrics_s0', (cols) => cols.map((col) => (col.name === 'value' ? { ...col, notNull: true } : col))));
    expect(findings).toEqual([
      { kind: 'different', object: 'column iot.metrics.value on _hypershard.metrics_s0', expected: 'double precision', actual: 'double precision NOT NULL', message: '_hypershard.metrics_s0: value is NOT NULL, the spec allows NULL' },
    ]);
  });

  it('reports a missing column', () => {
    const findings = drift('dn3', (c) => withColumns(c, 'metrics', (cols) => cols.filter((col) => col.name !== 'label')));
    expect(findings).toEqual([{ kind: 'missing', object: 'column iot.metrics.label', expected: 'character varying(64)', message: 'iot.metrics: no column label' }]);
  });
});

describe('FDW servers, user mappings and settings', () => {
  it('reports a changed, a missing and an extra server option', () => {
    const findings = drift('access', (c) => ({
      servers: c.servers.map((s) => (s.name === 'hypershard_dn2_1' ? { ...s, options: new Map([...s.options].filter(([k]) => k !== 'batch_size').map(([k, v]) => [k, k === 'port' ? '6432' : v] as [string, string]).concat([['use_remote_estimate', 'true']])) } : s)),
    }));
    expect(findings.map((f) => [f.kind, f.object, f.expected, f.actual])).toEqual([
      ['different', 'server hypershard_dn2_1', 'port=5433', 'port=6432'],
      ['missing', 'server hypershard_dn2_1', 'batch_size=1000', undefined],
      ['extra', 'server hypershard_dn2_1', undefined, 'use_remote_estimate=true'],
    ]);
  });

  it('reports missing and extra servers', () => {
    const findings = drift('access', (c) => ({
      servers: [...c.servers.filter((s) => s.name !== 'hypershard_dn3_2'), { name: 'hypershard_dn9_0', wrapper: 'postgres_fdw', options: new Map() }],
      userMappings: c.userMappings.filter((m) => m.server !== 'hypershard_dn3_2'),
    }));
    expect(findings.map((f) => [f.kind, f.object])).toEqual([
      ['missing', 'server hypershard_dn3_2'],
      ['extra', 'server hypershard_dn9_0'],
    ]);
  });

  it('reports a user mapping without password or for another user, and never carries a password', () => {
    const findings = drift('access', (c) => ({
      userMappings: [
        ...c.userMappings.map((m) => (m.server === 'hypershard_dn1_0' ? { ...m, hasPassword: false } : m.server === 'hypershard_dn1_3' ? { ...m, options: new Map([['user', 'postgres']]) } : m)),
        { server: 'hypershard_dn2_1', user: 'alice', options: new Map(), hasPassword: true, visible: true },
      ],
    }));
    expect(findings.map((f) => [f.kind, f.object, f.message])).toEqual([
      ['missing', 'user mapping for PUBLIC on server hypershard_dn1_0', 'password missing (run apply to set it from the secret reference)'],
      ['different', 'user mapping for PUBLIC on server hypershard_dn1_3', 'option user is postgres, expected hypershard_fdw'],
      ['extra', 'user mapping for alice on server hypershard_dn2_1', 'alice has its own mapping, overriding the PUBLIC one to the service role'],
    ]);
    expect(drift('access', (c) => ({ userMappings: c.userMappings.filter((m) => m.server !== 'hypershard_dn3_2') })).map((f) => f.object)).toEqual(['user mapping for PUBLIC on server hypershard_dn3_2']);
  });

  it('warns, rather than reporting a missing password, when the mapping options are hidden from the user', () => {
    const findings = drift('access', (c) => ({ userMappings: c.userMappings.map((m) => (m.server === 'hypershard_dn1_0' ? { ...m, options: new Map(), hasPassword: false, visible: false } : m)) }));
    expect(findings.map((f) => [f.kind, f.object])).toEqual([['warning', 'user mapping for PUBLIC on server hypershard_dn1_0']]);
  });

  it('reports pushdown settings missing or changed, reading booleans as PostgreSQL does', () => {
    const findings = drift('access', () => ({ settings: new Map([['enable_partitionwise_aggregate', 'true'], ['enable_async_append', 'off']]) }));
    expect(findings.map((f) => [f.kind, f.object, f.actual])).toEqual([
      ['missing', 'database setting enable_partitionwise_join', undefined],
      ['different', 'database setting enable_async_append', 'enable_async_append=off'],
    ]);
  });

  it("reports the service role's planner settings missing or changed on a data node, reading 1.0 as 1", () => {
    expect(drift('dn1', () => ({ roleSettings: new Map([['cursor_tuple_fraction', '1.0'], ['random_page_cost', '1.10']]) }))).toEqual([]);
    expect(drift('dn1', () => ({ roleSettings: new Map() })).map((f) => [f.kind, f.object, f.expected])).toEqual([
      ['missing', 'setting cursor_tuple_fraction of role hypershard_fdw', 'cursor_tuple_fraction=1'],
      ['missing', 'setting random_page_cost of role hypershard_fdw', 'random_page_cost=1.1'],
    ]);
    expect(
      drift('dn2', () => ({ roleSettings: new Map([['cursor_tuple_fraction', '0.1'], ['random_page_cost', '1.1']]) })).map((f) => [f.kind, f.object, f.actual]),
    ).toEqual([['different', 'setting cursor_tuple_fraction of role hypershard_fdw', 'cursor_tuple_fraction=0.1']]);
    // The access node has no such setting to check.
    expect(drift('access', () => ({ roleSettings: new Map() }))).toEqual([]);
  });

  it('reports postgres_fdw missing on the access node and the chunk function on a data node', () => {
    expect(drift('access', (c) => ({ base: { ...c.base, fdwExtension: false } })).map((f) => f.object)).toEqual(['extension postgres_fdw']);
    expect(drift('dn1', (c) => ({ base: { ...c.base, chunkFunction: false } })).map((f) => f.object)).toEqual(['function _hypershard.create_chunks']);
  });
});

describe('bounds checks and indexes on the data nodes', () => {
  it('reports a dropped, a different and an unvalidated bounds check', () => {
    const findings = drift('dn1', () => ({
      checks: new Map([
        [key('_hypershard', 'metrics_s0'), []],
        [key('_hypershard', 'metrics_s3'), [{ name: 'metrics_s3_bounds', expression: `satisfies_hash_partition(('iot.metrics'::regclass)::oid, 4, 1, device_id)`, validated: true }]],
      ]),
    }));
    expect(findings.map((f) => [f.kind, f.object, f.expected, f.actual])).toEqual([
      ['missing', 'constraint metrics_s0_bounds on _hypershard.metrics_s0', `satisfies_hash_partition('iot.metrics'::regclass, 4, 0, device_id)`, undefined],
      ['different', 'constraint metrics_s3_bounds on _hypershard.metrics_s3', `satisfies_hash_partition('iot.metrics'::regclass, 4, 3, device_id)`, `satisfies_hash_partition(('iot.metrics'::regclass)::oid, 4, 1, device_id)`],
    ]);
    const unvalidated = drift('dn2', (c) => ({ checks: new Map([...c.checks].map(([k, v]) => [k, v.map((x) => ({ ...x, validated: false }))])) }));
    expect(unvalidated.map((f) => [f.kind, f.object, f.actual])).toEqual([['different', 'constraint metrics_s1_bounds on _hypershard.metrics_s1', 'NOT VALID']]);
  });

  it('accepts a bounds check under another name', () => {
    expect(drift('dn2', (c) => ({ checks: new Map([...c.checks].map(([k, v]) => [k, v.map((x) => ({ ...x, name: 'renamed' }))])) }))).toEqual([]);
  });

  it('reports a dropped, a changed and an extra index', () => {
    const base = { schema: 'iot', method: 'btree', unique: false };
    expect(drift('dn1', () => ({ indexes: new Map([[key('iot', 'metrics'), []]]) }))).toEqual([
      { kind: 'missing', object: 'index iot.metrics_device_id_time_idx', expected: 'USING btree (device_id, time DESC)', message: 'iot.metrics has no index metrics_device_id_time_idx' },
    ]);
    const findings = drift('dn1', () => ({
      indexes: new Map([[key('iot', 'metrics'), [
        { ...base, name: 'metrics_device_id_time_idx', columns: [{ name: 'device_id', order: 'asc' as const }, { name: 'time', order: 'asc' as const }] },
        { ...base, name: 'by_label', method: 'hash', columns: [{ name: 'label', order: 'asc' as const }] },
      ]]]),
    }));
    expect(findings.map((f) => [f.kind, f.object, f.expected, f.actual])).toEqual([
      ['different', 'index iot.metrics_device_id_time_idx', 'USING btree (device_id, time DESC)', 'USING btree (device_id, time)'],
      ['extra', 'index iot.by_label', undefined, 'USING hash (label)'],
    ]);
  });
});

describe('roles and privileges', () => {
  it('reports a role attribute changed on one node', () => {
    const findings = drift('dn2', (c) => ({ roles: c.roles.map((r) => (r.name === 'reader' ? { ...r, connectionLimit: 5, createdb: true } : r)) }));
    expect(findings).toEqual([
      { kind: 'different', object: 'role reader', expected: 'CONNECTION LIMIT -1 NOCREATEDB', actual: 'CONNECTION LIMIT 5 CREATEDB', message: 'reader has CONNECTION LIMIT 5 instead of CONNECTION LIMIT -1, CREATEDB instead of NOCREATEDB' },
    ]);
  });

  it('checks the service role on data nodes only', () => {
    const findings = drift('dn3', (c) => ({ roles: c.roles.map((r) => (r.name === 'hypershard_fdw' ? { ...r, inherit: true, superuser: true } : r)) }));
    expect(findings.map((f) => [f.object, f.actual])).toEqual([['role hypershard_fdw', 'INHERIT SUPERUSER']]);
    expect(drift('dn3', (c) => ({ roles: c.roles.filter((r) => r.name !== 'hypershard_fdw') })).map((f) => [f.kind, f.object])).toEqual([['missing', 'role hypershard_fdw']]);
    // The access node never creates it; one on the same server is not its business.
    expect(drift('access', (c) => ({ roles: [...c.roles, { ...c.roles[0]!, name: 'hypershard_fdw', superuser: true }] }))).toEqual([]);
  });

  it('reports memberships missing and extra', () => {
    const findings = drift('access', () => ({ memberships: [{ member: 'reader', role: 'pg_read_all_data' }] }));
    expect(findings.map((f) => [f.kind, f.object])).toEqual([
      ['extra', 'membership of reader in pg_read_all_data'],
      ['missing', 'membership of writer in reader'],
    ]);
  });

  it('reports a revoked grant and an extra one', () => {
    const findings = drift('dn1', (c) => ({
      tableGrants: [...c.tableGrants.filter((g) => !(g.role === 'writer' && g.privilege === 'INSERT')), { table: { schema: 'iot', name: 'metrics' }, role: 'reader', privilege: 'DELETE' }],
    }));
    expect(findings).toEqual([
      { kind: 'extra', object: 'privileges of reader on iot.metrics', expected: 'SELECT', actual: 'SELECT, DELETE', message: 'reader on iot.metrics: DELETE granted, the spec does not grant it' },
      { kind: 'missing', object: 'privileges of writer on iot.metrics', expected: 'INSERT, SELECT', actual: 'SELECT', message: 'writer on iot.metrics: INSERT not granted' },
    ]);
  });

  it("reports the service role's privileges on shards, and declared roles' on shards and schemas", () => {
    const findings = drift('dn1', (c) => ({
      tableGrants: [
        ...c.tableGrants.filter((g) => !(g.role === 'hypershard_fdw' && g.table.name === 'metrics_s3' && g.privilege === 'TRUNCATE')),
        { table: { schema: '_hypershard', name: 'metrics_s0' }, role: 'reader', privilege: 'SELECT' },
      ],
      schemaGrants: [...c.schemaGrants.filter((g) => g.role !== 'hypershard_fdw'), { schema: '_hypershard', role: 'writer', privilege: 'CREATE' }],
    }));
    expect(findings.map((f) => [f.kind, f.object, f.message])).toEqual([
      ['extra', 'privileges of reader on _hypershard.metrics_s0', 'reader on _hypershard.metrics_s0: SELECT granted, the spec does not grant it'],
      ['missing', 'privileges of hypershard_fdw on _hypershard.metrics_s3', 'hypershard_fdw on _hypershard.metrics_s3: TRUNCATE not granted'],
      ['extra', 'privileges of writer on schema _hypershard', 'writer on schema _hypershard: CREATE granted, the spec does not grant it'],
      ['missing', 'privileges of hypershard_fdw on schema _hypershard', 'hypershard_fdw on schema _hypershard: USAGE not granted'],
    ]);
  });
});

describe('migrations', () => {
  const sha = (c: string): string => c.repeat(64);

  it('reports a file edited after apply, one not applied yet, one applied but gone, and a spec not generated yet', () => {
    expect(
      compareMigrations({
        applied: ['0001_init', '0002_gone'],
        recorded: new Map([['0001_init', sha('a')], ['0002_gone', sha('b')]]),
        files: [{ name: '0001_init', checksum: sha('c') }, { name: '0003_add_column', checksum: sha('d') }],
        notGenerated: 'the spec changed since the last generate',
      }).map((f) => [f.kind, f.object, f.expected, f.actual]),
    ).toEqual([
      ['different', 'migration 0001_init', 'sha256 aaaaaaaaaaaa (applied)', 'sha256 cccccccccccc (on disk)'],
      ['extra', 'migration 0002_gone', undefined, undefined],
      ['missing', 'migration 0003_add_column', undefined, undefined],
      ['missing', 'migration (not generated)', undefined, undefined],
    ]);
  });

  it('trusts a migration applied before checksums were recorded', () => {
    expect(compareMigrations({ applied: ['0001_init'], recorded: new Map(), files: [{ name: '0001_init', checksum: sha('c') }], notGenerated: undefined })).toEqual([]);
  });
});

describe('chunk health', () => {
  it('warns about rows in a default chunk, with count and time range', () => {
    const findings = drift('dn2', (c) => ({ defaultChunks: c.defaultChunks.map((d) => ({ ...d, rows: 3, from: '2001-01-01 00:00:00+00', to: '2001-01-03 00:00:00+00' })) }));
    expect(findings).toEqual([
      {
        kind: 'warning',
        object: 'default chunk _hypershard.metrics_s1_default',
        expected: '0 rows',
        actual: '3 rows, 2001-01-01 00:00:00+00 … 2001-01-03 00:00:00+00',
        message: '3 rows outside the chunk horizon, from 2001-01-01 00:00:00+00 to 2001-01-03 00:00:00+00; range pruning cannot skip them (maintain moves them into chunks)',
      },
    ]);
  });

  it('reports a shard without its write guard, and the guard function missing', () => {
    const why = 'an UPDATE or DELETE through the access node that postgres_fdw cannot ship whole would change the rows at the same ctid in every chunk of the shard (apply adds it)';
    expect(drift('dn2', () => ({ writeGuards: { function: false, guarded: new Set<string>() } }))).toEqual([
      { kind: 'missing', object: 'function _hypershard.refuse_ctid_writes', message: `the write guard's function is missing: ${why}` },
      ...['_hypershard.metrics_s1'].map((t) => ({ kind: 'missing', object: `write guard on ${t}`, message: `${t} has no write guard: ${why}` })),
    ]);
  });

  it('reports a shard without default chunk', () => {
    expect(drift('dn2', () => ({ defaultChunks: [] }))).toEqual([
      { kind: 'missing', object: 'default chunk _hypershard.metrics_s1_default', message: '_hypershard.metrics_s1 has no default chunk: a row outside every chunk fails to insert' },
    ]);
  });
});

describe('the result', () => {
  const node = (name: string, items: Finding[], extra: { reachable?: boolean; error?: string } = {}) => ({
    node: name, role: role(name), reachable: extra.reachable ?? true, ...(extra.error === undefined ? {} : { error: extra.error }), items: items.map((i) => ({ node: name, ...i })),
  });
  const warning: Finding = { kind: 'warning', object: 'default chunk _hypershard.metrics_s1_default', message: '3 rows outside the chunk horizon' };
  const missing: Finding = { kind: 'missing', object: 'foreign partition _hypershard.metrics_s3', message: 'foreign table _hypershard.metrics_s3 does not exist' };

  it('is clean with warnings only, not with drift or an unreachable node', () => {
    expect(isClean([node('dn1', []), node('dn2', [warning])])).toBe(true);
    expect(isClean([node('access', [missing])])).toBe(false);
    expect(isClean([node('dn1', [], { reachable: false, error: 'node dn1: connection refused' })])).toBe(false);
  });

  it('renders per node, naming node, object and what differs', () => {
    const nodes = [
      node('dn1', [], { reachable: false, error: 'node dn1: connection refused at 127.0.0.1:1/app' }),
      node('dn2', [warning]),
      node('access', [{ ...missing }, { kind: 'different', object: 'server hypershard_dn1_0', expected: 'fetch_size=10000', actual: 'fetch_size=500', message: 'option fetch_size is 500, expected 10000' }]),
    ];
    expect(renderCheck({ clean: false, nodes })).toBe(
      [
        'dn1 (data node): not checked',
        '  node dn1: connection refused at 127.0.0.1:1/app',
        'dn2 (data node): 1 warning',
        '  warning  default chunk _hypershard.metrics_s1_default: 3 rows outside the chunk horizon',
        'access (access node): 2 differences',
        '  missing    foreign partition _hypershard.metrics_s3: foreign table _hypershard.metrics_s3 does not exist',
        '  different  server hypershard_dn1_0: option fetch_size is 500, expected 10000',
        '               expected fetch_size=10000, found fetch_size=500',
        '',
        'Drift on 2 of 3 nodes.',
      ].join('\n'),
    );
  });
});

describe('indexes of other methods', () => {
  it('compares a brin index by method and columns (the catalog reports no order for it)', () => {
    const brin = planLayout(parseSpec(SPEC.replace('      - columns: [device_id, { column: time, order: desc }]', '      - { columns: [time], method: brin }')));
    const name = brin.hypertables[0]!.indexes[0]!.name;
    const index = { name, schema: 'iot', method: 'brin', columns: [{ name: 'time', order: 'asc' as const }], unique: false };
    const clean = { ...cleanCatalog(brin, 'dn1'), indexes: new Map([[key('iot', 'metrics'), [index]]]) };
    expect(compareNode(brin, 'dn1', 'data', clean, FILES)).toEqual([]);
    const asBtree = { ...clean, indexes: new Map([[key('iot', 'metrics'), [{ ...index, method: 'btree' }]]]) };
    expect(compareNode(brin, 'dn1', 'data', asBtree, FILES).map((f) => [f.kind, f.expected, f.actual])).toEqual([['different', 'USING brin (time)', 'USING btree (time)']]);
  });
});
