import { describe, expect, it } from 'vitest';
import { renderMigration } from '../../src/migrations/render.js';
import { generateSql, type ClusterSql } from '../../src/sql/generate.js';
import type { Statement } from '../../src/sql/statement.js';
import { SpecError } from '../../src/errors.js';
import { parseSpec } from '../../src/spec/load.js';
import { render } from '../../src/sql/templates.js';

/** 1 access node, 2 data nodes, one hypertable with 2 shards in its own schema, one role with a grant. */
const SPEC = `version: 1
accessNode: { name: access, url: "postgres://postgres@10.0.0.1:5432/app" }
dataNodes:
  - { name: dn1, url: "postgres://postgres@10.0.0.2:5432/app" }
  - { name: dn2, url: "postgres://postgres@10.0.0.3:5432/app" }
fdw:
  serviceRole: { password: { env: SVC } }
roles:
  - name: reader
    login: true
    grants: [ { on: metrics, privileges: [SELECT] } ]
hypertables:
  - name: metrics
    schema: iot
    columns:
      - { name: time, type: timestamptz, notNull: true }
      - { name: device_id, type: int, notNull: true }
      - { name: value, type: float8 }
    timeColumn: time
    spaceColumn: device_id
    shards: 2
    chunkInterval: 1 hour
    chunks: { behind: 1, ahead: 2 }
    indexes:
      - columns: [device_id, { column: time, order: desc }]
timescaledb: { functions: false } # their SQL is tested in timescaledb.test.ts
`;

const generate = (text: string): ClusterSql => generateSql(parseSpec(text));
const node = (sql: ClusterSql, name: string) => {
  const found = sql.nodes.find((n) => n.node === name);
  if (found === undefined) throw new Error(`no node ${name}`);
  return found;
};

const CHUNK_FUNCTION = `CREATE OR REPLACE FUNCTION "_hypershard".create_chunks(
  shard pg_catalog.regclass, chunk_prefix pg_catalog.text, stride_seconds pg_catalog.int8,
  behind pg_catalog.int4, ahead pg_catalog.int4, utc_bounds pg_catalog.bool)
RETURNS pg_catalog.int4 LANGUAGE plpgsql SET search_path = pg_catalog AS $hs$
DECLARE
  stride interval := make_interval(secs => stride_seconds);
  lower_bound timestamptz := date_bin(stride, now(), '2000-01-01 00:00:00+00') - behind * stride;
  last_bound timestamptz := date_bin(stride, now(), '2000-01-01 00:00:00+00') + (ahead + 1) * stride;
  shard_schema name;
  chunk text;
  created int4 := 0;
BEGIN
  SELECT n.nspname INTO STRICT shard_schema FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = shard;
  WHILE lower_bound < last_bound LOOP
    chunk := chunk_prefix || '_' || to_char(lower_bound AT TIME ZONE 'UTC', 'YYYYMMDD"T"HH24MISS');
    IF to_regclass(format('%I.%I', shard_schema, chunk)) IS NULL THEN
      IF utc_bounds THEN
        EXECUTE format('CREATE TABLE %I.%I PARTITION OF %s FOR VALUES FROM (%L) TO (%L)', shard_schema, chunk, shard,
          lower_bound AT TIME ZONE 'UTC', (lower_bound + stride) AT TIME ZONE 'UTC');
      ELSE
        EXECUTE format('CREATE TABLE %I.%I PARTITION OF %s FOR VALUES FROM (%L) TO (%L)', shard_schema, chunk, shard,
          lower_bound, lower_bound + stride);
      END IF;
      created := created + 1;
    END IF;
    lower_bound := lower_bound + stride;
  END LOOP;
  RETURN created;
END
$hs$;`;

const createRole = (name: string, attributes: string): string => `DO $hs$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = '${name}') THEN
    CREATE ROLE "${name}";
  END IF;
  ALTER ROLE "${name}" WITH ${attributes} NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS CONNECTION LIMIT -1;
END
$hs$;`;

const HASH_PARENT = `CREATE TABLE "iot"."metrics" (
  "time" timestamptz NOT NULL,
  "device_id" integer NOT NULL,
  "value" double precision
) PARTITION BY HASH ("device_id");`;

const DROP_CHUNK_FUNCTION =
  'DROP FUNCTION IF EXISTS "_hypershard".create_chunks(pg_catalog.regclass, pg_catalog.text, pg_catalog.int8, pg_catalog.int4, pg_catalog.int4, pg_catalog.bool);';

/** The service role's settings in the node's database, whose name the migration does not know. */
const roleSettings = (action: string, args: readonly string[]): string =>
  `DO $hs$\nBEGIN\n${args.map((a) => `  EXECUTE pg_catalog.format('ALTER ROLE %I IN DATABASE %I ${action}', 'hypershard_fdw', pg_catalog.current_database()${a});\n`).join('')}END\n$hs$;`;

/** The write guard's function, as its template renders it. */
const WRITE_GUARD_FUNCTION = render('data/create-write-guard-function', { schema: '_hypershard' });

function dataNodeUp(shard: number): Statement[] {
  const name = `metrics_s${shard}`;
  const what = `shard ${shard} of iot.metrics`;
  return [
    { what: 'schema _hypershard', sql: 'CREATE SCHEMA IF NOT EXISTS "_hypershard";' },
    { what: 'chunk function', sql: CHUNK_FUNCTION },
    { what: 'write guard function', sql: WRITE_GUARD_FUNCTION },
    { what: 'service role hypershard_fdw', sql: createRole('hypershard_fdw', 'LOGIN NOINHERIT') },
    { what: 'usage on _hypershard for hypershard_fdw', sql: 'GRANT USAGE ON SCHEMA "_hypershard" TO "hypershard_fdw";' },
    { what: 'planner settings of hypershard_fdw', sql: roleSettings('SET %I = %L', [", 'cursor_tuple_fraction', '1'", ", 'random_page_cost', '1.1'"]) },
    { what: 'role reader', sql: createRole('reader', 'LOGIN INHERIT') },
    { what: 'schema iot', sql: 'CREATE SCHEMA IF NOT EXISTS "iot";' },
    { what: 'local parent of iot.metrics', sql: HASH_PARENT },
    {
      what,
      sql: `CREATE TABLE "_hypershard"."${name}"
  PARTITION OF "iot"."metrics" FOR VALUES WITH (MODULUS 2, REMAINDER ${shard})
  PARTITION BY RANGE ("time");`,
    },
    {
      what: `${what}: bounds check`,
      sql: `ALTER TABLE "_hypershard"."${name}" ADD CONSTRAINT "${name}_bounds"
  CHECK (pg_catalog.satisfies_hash_partition('"iot"."metrics"'::regclass, 2, ${shard}, "device_id"));`,
    },
    {
      what: `${what}: default chunk`,
      sql: `CREATE TABLE "_hypershard"."${name}_default" PARTITION OF "_hypershard"."${name}" DEFAULT;`,
    },
    {
      what: `${what}: chunks`,
      // 1 hour = 3600 s, 1 chunk behind, 2 ahead; timestamptz, so no UTC bounds.
      sql: `SELECT "_hypershard".create_chunks('"_hypershard"."${name}"'::regclass, '${name}', 3600, 1, 2, false);`,
    },
    {
      what: `${what}: write guard`,
      sql: `CREATE OR REPLACE TRIGGER hypershard_ctid_guard BEFORE UPDATE OR DELETE ON "_hypershard"."${name}"
  FOR EACH STATEMENT EXECUTE FUNCTION "_hypershard".refuse_ctid_writes();`,
    },
    {
      what: `${what}: privileges of hypershard_fdw`,
      sql: `GRANT DELETE, INSERT, SELECT, TRUNCATE, UPDATE ON TABLE "_hypershard"."${name}" TO "hypershard_fdw";`,
    },
    {
      what: 'index metrics_device_id_time_idx on iot.metrics',
      sql: `CREATE INDEX "metrics_device_id_time_idx" ON "iot"."metrics" USING btree (
  "device_id" asc,
  "time" desc
);`,
    },
    { what: 'usage on schema iot for reader', sql: 'GRANT USAGE ON SCHEMA "iot" TO "reader";' },
    { what: 'grant on iot.metrics to reader', sql: 'GRANT SELECT ON TABLE "iot"."metrics" TO "reader";' },
  ];
}

const DATA_NODE_DOWN: Statement[] = [
  { what: 'grant on iot.metrics to reader', sql: 'REVOKE SELECT ON TABLE "iot"."metrics" FROM "reader";' },
  { what: 'usage on schema iot for reader', sql: 'REVOKE USAGE ON SCHEMA "iot" FROM "reader";' },
  { what: 'local parent of iot.metrics with its shards and chunks', sql: 'DROP TABLE IF EXISTS "iot"."metrics";' },
  { what: 'schema iot', sql: 'DROP SCHEMA IF EXISTS "iot";' },
  { what: 'role reader', sql: 'DROP ROLE IF EXISTS "reader";' },
  { what: 'planner settings of hypershard_fdw', sql: roleSettings('RESET %I', [", 'cursor_tuple_fraction'", ", 'random_page_cost'"]) },
  { what: 'usage on _hypershard for hypershard_fdw', sql: 'REVOKE USAGE ON SCHEMA "_hypershard" FROM "hypershard_fdw";' },
  { what: 'service role hypershard_fdw', sql: 'DROP ROLE IF EXISTS "hypershard_fdw";' },
  { what: 'write guard function', sql: 'DROP FUNCTION IF EXISTS "_hypershard".refuse_ctid_writes();' },
  { what: 'chunk function', sql: DROP_CHUNK_FUNCTION },
];

const server = (name: string, host: string): string => `CREATE SERVER "${name}" FOREIGN DATA WRAPPER postgres_fdw OPTIONS (
  "host" '${host}',
  "port" '5432',
  "dbname" 'app',
  "async_capable" 'true',
  "fetch_size" '10000',
  "batch_size" '1000',
  "fdw_tuple_cost" '0.2',
  "fdw_startup_cost" '100',
  "keep_connections" 'true',
  "connect_timeout" '10',
  "keepalives" '1',
  "keepalives_idle" '10',
  "keepalives_interval" '5',
  "keepalives_count" '3',
  "tcp_user_timeout" '30000'
);`;

const parallelCommit = (name: string): string => `DO $hs$
BEGIN
  IF pg_catalog.current_setting('server_version_num')::int >= 150000 THEN
    ALTER SERVER "${name}" OPTIONS (ADD parallel_commit 'true');
  END IF;
END
$hs$;`;

const foreignPartition = (shard: number, serverName: string): string => `CREATE FOREIGN TABLE "_hypershard"."metrics_s${shard}"
  PARTITION OF "iot"."metrics" FOR VALUES WITH (MODULUS 2, REMAINDER ${shard})
  SERVER "${serverName}"
  OPTIONS (schema_name '_hypershard', table_name 'metrics_s${shard}');`;

const COMMIT_LOG_UP: Statement[] = [
  {
    what: 'commit log of routed writes',
    sql: `CREATE TABLE "_hypershard"."commits" (
  gid pg_catalog.text PRIMARY KEY,
  participants pg_catalog.text[] NOT NULL,
  created_at pg_catalog.timestamptz NOT NULL DEFAULT pg_catalog.now()
);`,
  },
  {
    what: 'commit record function',
    sql: `CREATE FUNCTION "_hypershard"."record_commit"(gid pg_catalog.text, participants pg_catalog.text[])
RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $hs$
BEGIN
  IF gid !~ ('^' || 'hypershard_tx_' || pg_catalog.pg_current_xact_id()::text || '_[0-9a-f]{16}$') THEN
    RAISE EXCEPTION 'commit record % does not name this transaction', gid USING ERRCODE = 'invalid_parameter_value';
  END IF;
  INSERT INTO "_hypershard"."commits" (gid, participants) VALUES (gid, participants);
END
$hs$;`,
  },
];

const ACCESS_UP: Statement[] = [
  { what: 'extension postgres_fdw', sql: 'CREATE EXTENSION IF NOT EXISTS postgres_fdw;' },
  { what: 'schema _hypershard', sql: 'CREATE SCHEMA IF NOT EXISTS "_hypershard";' },
  ...COMMIT_LOG_UP,
  {
    what: 'pushdown settings',
    sql: `DO $hs$
BEGIN
  EXECUTE pg_catalog.format('ALTER DATABASE %I SET enable_partitionwise_aggregate = on', pg_catalog.current_database());
  EXECUTE pg_catalog.format('ALTER DATABASE %I SET enable_partitionwise_join = on', pg_catalog.current_database());
  EXECUTE pg_catalog.format('ALTER DATABASE %I SET enable_async_append = on', pg_catalog.current_database());
END
$hs$;`,
  },
  { what: 'role reader', sql: createRole('reader', 'LOGIN INHERIT') },
  { what: 'server hypershard_dn1_0 (data node dn1)', sql: server('hypershard_dn1_0', '10.0.0.2') },
  { what: 'parallel commit on hypershard_dn1_0 (PostgreSQL 15+)', sql: parallelCommit('hypershard_dn1_0') },
  { what: 'user mapping on hypershard_dn1_0', sql: `CREATE USER MAPPING FOR PUBLIC SERVER "hypershard_dn1_0" OPTIONS (user 'hypershard_fdw');` },
  { what: 'server hypershard_dn2_1 (data node dn2)', sql: server('hypershard_dn2_1', '10.0.0.3') },
  { what: 'parallel commit on hypershard_dn2_1 (PostgreSQL 15+)', sql: parallelCommit('hypershard_dn2_1') },
  { what: 'user mapping on hypershard_dn2_1', sql: `CREATE USER MAPPING FOR PUBLIC SERVER "hypershard_dn2_1" OPTIONS (user 'hypershard_fdw');` },
  { what: 'schema iot', sql: 'CREATE SCHEMA IF NOT EXISTS "iot";' },
  { what: 'hypertable iot.metrics', sql: HASH_PARENT },
  { what: 'shard 0 of iot.metrics on dn1', sql: foreignPartition(0, 'hypershard_dn1_0') },
  { what: 'shard 1 of iot.metrics on dn2', sql: foreignPartition(1, 'hypershard_dn2_1') },
  ...[0, 1].map((shard) => ({
    what: `planner statistics of shard ${shard} of iot.metrics`,
    sql: `ALTER FOREIGN TABLE "_hypershard"."metrics_s${shard}" ALTER COLUMN "time" SET (n_distinct = '-0.05');`,
  })),
  { what: 'usage on schema iot for reader', sql: 'GRANT USAGE ON SCHEMA "iot" TO "reader";' },
  { what: 'grant on iot.metrics to reader', sql: 'GRANT SELECT ON TABLE "iot"."metrics" TO "reader";' },
  // A role that may read the hypertable reads its shards directly in rewritten queries.
  { what: 'usage on schema _hypershard for reader', sql: 'GRANT USAGE ON SCHEMA "_hypershard" TO "reader";' },
  { what: 'grant on _hypershard.metrics_s0 to reader', sql: 'GRANT SELECT ON TABLE "_hypershard"."metrics_s0" TO "reader";' },
  { what: 'grant on _hypershard.metrics_s1 to reader', sql: 'GRANT SELECT ON TABLE "_hypershard"."metrics_s1" TO "reader";' },
];

const ACCESS_DOWN: Statement[] = [
  { what: 'grant on _hypershard.metrics_s1 to reader', sql: 'REVOKE SELECT ON TABLE "_hypershard"."metrics_s1" FROM "reader";' },
  { what: 'grant on _hypershard.metrics_s0 to reader', sql: 'REVOKE SELECT ON TABLE "_hypershard"."metrics_s0" FROM "reader";' },
  { what: 'usage on schema _hypershard for reader', sql: 'REVOKE USAGE ON SCHEMA "_hypershard" FROM "reader";' },
  { what: 'grant on iot.metrics to reader', sql: 'REVOKE SELECT ON TABLE "iot"."metrics" FROM "reader";' },
  { what: 'usage on schema iot for reader', sql: 'REVOKE USAGE ON SCHEMA "iot" FROM "reader";' },
  // Dropping the parent drops the foreign partitions with it.
  { what: 'hypertable iot.metrics', sql: 'DROP TABLE IF EXISTS "iot"."metrics";' },
  { what: 'schema iot', sql: 'DROP SCHEMA IF EXISTS "iot";' },
  { what: 'user mapping on hypershard_dn2_1', sql: 'DROP USER MAPPING IF EXISTS FOR PUBLIC SERVER "hypershard_dn2_1";' },
  { what: 'server hypershard_dn2_1', sql: 'DROP SERVER IF EXISTS "hypershard_dn2_1";' },
  { what: 'user mapping on hypershard_dn1_0', sql: 'DROP USER MAPPING IF EXISTS FOR PUBLIC SERVER "hypershard_dn1_0";' },
  { what: 'server hypershard_dn1_0', sql: 'DROP SERVER IF EXISTS "hypershard_dn1_0";' },
  { what: 'role reader', sql: 'DROP ROLE IF EXISTS "reader";' },
  {
    what: 'pushdown settings',
    sql: `DO $hs$
BEGIN
  EXECUTE pg_catalog.format('ALTER DATABASE %I RESET enable_partitionwise_aggregate', pg_catalog.current_database());
  EXECUTE pg_catalog.format('ALTER DATABASE %I RESET enable_partitionwise_join', pg_catalog.current_database());
  EXECUTE pg_catalog.format('ALTER DATABASE %I RESET enable_async_append', pg_catalog.current_database());
END
$hs$;`,
  },
  { what: 'commit record function', sql: 'DROP FUNCTION IF EXISTS "_hypershard"."record_commit"(pg_catalog.text, pg_catalog.text[]);' },
  { what: 'commit log of routed writes', sql: 'DROP TABLE IF EXISTS "_hypershard"."commits";' },
  { what: 'extension postgres_fdw', sql: 'DROP EXTENSION IF EXISTS postgres_fdw;' },
];

describe('generateSql for a small spec', () => {
  const sql = generate(SPEC);

  it('orders nodes data nodes first, in spec order, then the access node', () => {
    expect(sql.nodes.map((n) => [n.node, n.role])).toEqual([
      ['dn1', 'data'],
      ['dn2', 'data'],
      ['access', 'access'],
    ]);
  });

  it('builds data node dn1 with shard 0', () => {
    expect(node(sql, 'dn1').up).toEqual(dataNodeUp(0));
  });

  it('builds data node dn2 with shard 1', () => {
    expect(node(sql, 'dn2').up).toEqual(dataNodeUp(1));
  });

  it('undoes a data node in reverse order', () => {
    expect(node(sql, 'dn1').down).toEqual(DATA_NODE_DOWN);
    expect(node(sql, 'dn2').down).toEqual(DATA_NODE_DOWN);
  });

  it('builds the access node', () => {
    expect(node(sql, 'access').up).toEqual(ACCESS_UP);
  });

  it('undoes the access node in reverse order', () => {
    expect(node(sql, 'access').down).toEqual(ACCESS_DOWN);
  });

  it('writes the chunk function with its body dollar-quoted and a fixed search_path', () => {
    const fn = node(sql, 'dn1').up.find((s) => s.what === 'chunk function')!.sql;
    expect(fn).toBe(CHUNK_FUNCTION);
    expect(fn.startsWith('CREATE OR REPLACE FUNCTION "_hypershard".create_chunks(')).toBe(true);
    expect(fn).toContain('SET search_path = pg_catalog AS $hs$\nDECLARE');
    expect(fn.endsWith('\nEND\n$hs$;')).toBe(true);
  });

  it('passes utc = true to the chunk function for a timestamp (without time zone) column', () => {
    const local = generate(SPEC.replace('{ name: time, type: timestamptz, notNull: true }', '{ name: time, type: timestamp, notNull: true }'));
    expect(node(local, 'dn1').up.find((s) => s.what === 'shard 0 of iot.metrics: chunks')!.sql).toBe(
      `SELECT "_hypershard".create_chunks('"_hypershard"."metrics_s0"'::regclass, 'metrics_s0', 3600, 1, 2, true);`,
    );
  });

  it('never writes a secret into the SQL', () => {
    for (const n of sql.nodes) for (const s of [...n.up, ...n.down]) expect(s.sql).not.toMatch(/password/i);
  });
});

describe('renderMigration', () => {
  const sql = generate(SPEC);
  const block = (list: readonly Statement[]): string => list.map((s) => `-- ${s.what}\n${s.sql}`).join('\n\n');
  /** Where node-pg-migrate sees a marker: its own pattern (sqlMigration.ts), every match. */
  const markers = (text: string, direction: 'up' | 'down'): number[] =>
    [...text.matchAll(new RegExp(`^\\s*--[\\s-]*${direction}\\s+migration`, 'gim'))].map((m) => m.index + m[0].length - m[0].trimStart().length);

  it('writes a node-pg-migrate SQL file with Up and Down sections', () => {
    expect(renderMigration(node(sql, 'access'), 'hypershard.yaml')).toBe(
      [
        '-- hypershard: access node access, generated from hypershard.yaml.',
        '-- Review it; do not edit it: change the spec and run `hypershard generate` again.',
        '',
        '-- Up Migration',
        '',
        block(ACCESS_UP),
        '',
        '-- Down Migration',
        '',
        block(ACCESS_DOWN),
        '',
      ].join('\n'),
    );
    expect(renderMigration(node(sql, 'dn2'), 'hypershard.yaml').split('\n')[0]).toBe('-- hypershard: data node dn2, generated from hypershard.yaml.');
  });

  it('keeps a hostile spec file name inside its comment', () => {
    const text = renderMigration(node(sql, 'dn1'), 'x.yaml\n-- Down Migration\nDROP TABLE t;');
    expect(text.split('\n')[0]).toBe('-- hypershard: data node dn1, generated from x.yaml\\u000a-- Down Migration\\u000aDROP TABLE t;.');
    expect(text.match(/^-- Down Migration$/gm)).toHaveLength(1);
  });

  it('is byte-identical across runs', () => {
    const again = generate(SPEC);
    for (const n of sql.nodes) expect(renderMigration(node(again, n.node), 'hypershard.yaml')).toBe(renderMigration(n, 'hypershard.yaml'));
  });

  it('does not depend on the order of keys, privileges or options in the spec', () => {
    const spec = (privileges: string, column: string, options: string, top: 'roles-first' | 'tables-first'): string => {
      const roles = `roles:
  - { grants: [ { privileges: ${privileges}, on: metrics } ], login: true, name: reader }
`;
      const tables = `hypertables:
  - columns:
      - ${column}
      - { notNull: true, type: int, name: device_id }
    spaceColumn: device_id
    timeColumn: time
    shards: 2
    name: metrics
`;
      return `fdw:
  connectionOptions: ${options}
  serviceRole: { password: { env: SVC } }
dataNodes:
  - { url: "postgres://postgres@10.0.0.2:5432/app", name: dn1 }
  - { url: "postgres://postgres@10.0.0.3:5432/app", name: dn2 }
accessNode: { url: "postgres://postgres@10.0.0.1:5432/app", name: access }
${top === 'roles-first' ? roles + tables : tables + roles}version: 1
`;
    };
    const a = generate(spec('[SELECT, INSERT, UPDATE]', '{ name: time, type: timestamptz, notNull: true }', '{ sslmode: require, application_name: hs }', 'roles-first'));
    const b = generate(spec('[UPDATE, INSERT, SELECT, INSERT]', '{ notNull: true, type: TIMESTAMPTZ, name: time }', '{ application_name: hs, sslmode: require }', 'tables-first'));
    for (const n of a.nodes) expect(renderMigration(node(b, n.node), 'hypershard.yaml')).toBe(renderMigration(n, 'hypershard.yaml'));
    expect(node(a, 'access').up.find((s) => s.what === 'grant on public.metrics to reader')!.sql).toBe(
      'GRANT INSERT, SELECT, UPDATE ON TABLE "public"."metrics" TO "reader";',
    );
  });

  it('has exactly one Up and one Down marker for node-pg-migrate, even with hostile names', () => {
    const hostile = generate(
      SPEC.replace('name: metrics\n    schema: iot', `name: "t -- Down Migration"\n    schema: "s\\" -- Up Migration"`).replace('on: metrics', 'on: "t -- Down Migration"'),
    );
    for (const n of hostile.nodes) {
      const text = renderMigration(n, 'hypershard.yaml');
      expect(markers(text, 'up')).toEqual([text.indexOf('\n-- Up Migration\n') + 1]);
      expect(markers(text, 'down')).toEqual([text.indexOf('\n-- Down Migration\n') + 1]);
    }
  });

  // JavaScript's multiline ^ also matches after U+2028/U+2029. Such a value in an FDW option
  // would end node-pg-migrate's Up section inside a string literal: rehearsal (which runs the
  // statements, not the file) passes, and the access node's migration fails with a syntax error.
  // The spec is refused instead, and the literal helper refuses it from any other caller.
  it('never writes a U+2028 from an FDW option value, so it cannot fake the Down marker', () => {
    const hostile = SPEC.replace('fdw:\n', 'fdw:\n  connectionOptions: { application_name: "x\\u2028-- Down Migration" }\n');
    expect(() => generate(hostile)).toThrow(SpecError);
    expect(() => generate(hostile)).toThrow('fdw.connectionOptions.application_name: "x\\u2028-- Down Migration" must not contain a Unicode line or paragraph separator');
    expect(() => render('access/create-server', { name: 's', options: [['application_name', 'x\u2028-- Down Migration']] })).toThrow(
      'access/create-server: literal "x\u2028-- Down Migration" must not contain a Unicode line or paragraph separator (U+2028, U+2029)',
    );
  });
});

describe('indexes and schemas', () => {
  const index = (spec: string): string => node(generate(SPEC.replace('- columns: [device_id, { column: time, order: desc }]', spec)), 'dn1').up.find((s) => s.what.startsWith('index '))!.sql;

  // PostgreSQL (verified on 18) rejects a column order for the other methods:
  // `access method "brin" does not support ASC/DESC options`.
  it('writes a brin, hash or gin index without ASC/DESC', () => {
    expect(index('- { columns: [time], method: brin }')).toBe(`CREATE INDEX "metrics_time_idx" ON "iot"."metrics" USING brin (
  "time"
);`);
    expect(index('- { columns: [{ column: device_id, order: asc }], method: hash }')).toBe(`CREATE INDEX "metrics_device_id_idx" ON "iot"."metrics" USING hash (
  "device_id"
);`);
    const gin = generate(SPEC.replace('{ name: value, type: float8 }', '{ name: value, type: jsonb }\n      - { name: tags, type: "text[]" }').replace('- columns: [device_id, { column: time, order: desc }]', '- { columns: [value, tags], method: gin, name: by_value }'));
    expect(node(gin, 'dn1').up.find((s) => s.what.startsWith('index '))!.sql).toBe(`CREATE INDEX "by_value" ON "iot"."metrics" USING gin (
  "value",
  "tags"
);`);
  });

  it('writes the order of every column of a btree index', () => {
    expect(index('- { columns: [time, { column: device_id, order: desc }], method: btree }')).toBe(`CREATE INDEX "metrics_time_device_id_idx" ON "iot"."metrics" USING btree (
  "time" asc,
  "device_id" desc
);`);
  });

  // Each hypertable's down step drops its schema right after its own table, so with two
  // hypertables in one schema the first DROP SCHEMA (no CASCADE) fails: the other table is still there.
  it('creates a schema once before its first hypertable and drops it only after the last', () => {
    const two = SPEC.replace(
      'hypertables:\n',
      `hypertables:
  - name: other
    schema: iot
    columns: [ { name: t, type: timestamptz, notNull: true }, { name: k, type: int, notNull: true } ]
    timeColumn: t
    spaceColumn: k
    shards: 2
`,
    );
    for (const n of generate(two).nodes) {
      const down = n.down.map((s) => s.sql);
      const lastTable = Math.max(down.indexOf('DROP TABLE IF EXISTS "iot"."metrics";'), down.indexOf('DROP TABLE IF EXISTS "iot"."other";'));
      expect(down.filter((sql) => sql === 'DROP SCHEMA IF EXISTS "iot";')).toHaveLength(1);
      expect(down.indexOf('DROP SCHEMA IF EXISTS "iot";')).toBeGreaterThan(lastTable);
      const up = n.up.map((s) => s.sql);
      const firstTable = Math.min(up.indexOf(HASH_PARENT), up.findIndex((sql) => sql.startsWith('CREATE TABLE "iot"."other"')));
      expect(up.filter((sql) => sql === 'CREATE SCHEMA IF NOT EXISTS "iot";')).toHaveLength(1);
      expect(up.indexOf('CREATE SCHEMA IF NOT EXISTS "iot";')).toBeLessThan(firstTable);
    }
  });
});

describe('lastpoint views', () => {
  const sql = generate(SPEC.replace('    shards: 2\n', '    shards: 2\n    lastpoint: true\n'));
  const whats = (list: readonly Statement[]): string[] => list.map((s) => s.what);

  it('makes the view beside each shard from a function planned once a session, readable by the service role only, and drops both before the local parent', () => {
    const dn1 = node(sql, 'dn1');
    const fn = dn1.up.find((s) => s.what === 'lastpoint view of shard 0 of iot.metrics: its function');
    expect(fn?.sql).toBe(`CREATE OR REPLACE FUNCTION "_hypershard"."metrics_s0_last_fn"() RETURNS SETOF "_hypershard"."metrics_s0"
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $hs$
BEGIN
  RETURN QUERY WITH RECURSIVE r(c) AS (
    (SELECT (c.*)::"_hypershard"."metrics_s0" FROM "_hypershard"."metrics_s0" AS c ORDER BY c."device_id", c."time" DESC LIMIT 1)
    UNION ALL
    SELECT (SELECT (n.*)::"_hypershard"."metrics_s0" FROM "_hypershard"."metrics_s0" AS n WHERE n."device_id" > (r.c)."device_id" ORDER BY n."device_id", n."time" DESC LIMIT 1)
    FROM r WHERE (r.c)."device_id" IS NOT NULL
  )
  SELECT (r.c).* FROM r WHERE (r.c)."device_id" IS NOT NULL;
END
$hs$;`);
    const view = dn1.up.find((s) => s.what === 'lastpoint view of shard 0 of iot.metrics');
    expect(view?.sql).toBe(`CREATE OR REPLACE VIEW "_hypershard"."metrics_s0_last" AS
SELECT r."time", r."device_id", r."value"
FROM "_hypershard"."metrics_s0_last_fn"() AS r;`);
    expect(dn1.up.find((s) => s.what === 'lastpoint view of shard 0 of iot.metrics: SELECT for hypershard_fdw')?.sql).toBe('GRANT SELECT ON TABLE "_hypershard"."metrics_s0_last" TO "hypershard_fdw";');
    expect(whats(dn1.up).filter((w) => w.startsWith('lastpoint'))).toEqual([
      'lastpoint view of shard 0 of iot.metrics: its function',
      'lastpoint view of shard 0 of iot.metrics',
      'lastpoint view of shard 0 of iot.metrics: SELECT for hypershard_fdw',
    ]);
    // The view, then its function (whose result type is the shard's), then the local parent.
    const down = whats(dn1.down);
    expect(down.indexOf('lastpoint view of shard 0 of iot.metrics')).toBeLessThan(down.indexOf('lastpoint view of shard 0 of iot.metrics: its function'));
    expect(down.indexOf('lastpoint view of shard 0 of iot.metrics: its function')).toBeLessThan(down.indexOf('local parent of iot.metrics with its shards and chunks'));
    expect(dn1.down.find((s) => s.what === 'lastpoint view of shard 0 of iot.metrics')?.sql).toBe('DROP VIEW IF EXISTS "_hypershard"."metrics_s0_last";');
    expect(dn1.down.find((s) => s.what === 'lastpoint view of shard 0 of iot.metrics: its function')?.sql).toBe('DROP FUNCTION IF EXISTS "_hypershard"."metrics_s0_last_fn"();');
  });

  it('imports each view on the access node through its shard’s server, granted to roles that read the hypertable', () => {
    const access = node(sql, 'access');
    expect(access.up.find((s) => s.what === 'lastpoint view of shard 1 of iot.metrics (foreign table on hypershard_dn2_1)')?.sql).toBe(`CREATE FOREIGN TABLE "_hypershard"."metrics_s1_last" (
  "time" timestamptz NOT NULL,
  "device_id" integer NOT NULL,
  "value" double precision
) SERVER "hypershard_dn2_1"
  OPTIONS (schema_name '_hypershard', table_name 'metrics_s1_last');`);
    expect(access.up.map((s) => s.sql)).toContain('GRANT SELECT ON TABLE "_hypershard"."metrics_s1_last" TO "reader";');
    const down = whats(access.down);
    expect(down.indexOf('lastpoint view of shard 1 of iot.metrics (foreign table)')).toBeLessThan(down.indexOf('hypertable iot.metrics'));
  });

  it('makes nothing without the option', () => {
    expect(generate(SPEC).nodes.flatMap((n) => [...n.up, ...n.down]).filter((s) => s.sql.includes('_last'))).toEqual([]);
  });
});
