/**
 * Hostile names on a real cluster: every identifier and literal the spec feeds into SQL carries
 * quotes, semicolons with SQL after them, backslashes, dollar tags, reserved words and unicode.
 * Apply must create exactly those names, move rows through them unchanged, and touch nothing else.
 */
import { mkdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SpecError } from '../../src/errors.js';
import { generateMigrations } from '../../src/migrations/files.js';
import { apply } from '../../src/nodes/apply.js';
import { verifierMatches } from '../../src/nodes/scram.js';
import { planLayout, type ClusterLayout } from '../../src/plan/layout.js';
import { metadataFromLayout } from '../../src/rewrite/metadata.js';
import { rewriteSql } from '../../src/rewrite/rewrite.js';
import { loadSpec } from '../../src/spec/load.js';
import { clusterSources, type TestCluster, type TestNode } from '../support/clusters.js';
import { catalogFingerprint, sql } from '../support/db.js';
import { specNode } from '../support/spec.js';

/** Our own quoting, independent of src/sql/quote.ts, for the test's queries. */
const qi = (name: string): string => `"${name.replaceAll('"', '""')}"`;
const bytes = (s: string): number => Buffer.byteLength(s, 'utf8');
const codePoints = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
/** A literal for the test's own SQL: E'' with quotes and backslashes doubled. */
const quoteForTest = (value: string): string => `E'${value.replaceAll('\\', '\\\\').replaceAll("'", "''")}'`;
const escapeRegExp = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

function padTo(text: string, size: number): string {
  const padded = text + 'x'.repeat(size - bytes(text));
  if (bytes(padded) !== size) throw new Error(`cannot pad ${text} to ${size} bytes`);
  return padded;
}

const DATABASE = `hs db 'q' "dq" \\ $x 数据`;
/** Where an injection through the schema name would land. */
const NEIGHBOUR = 'ops';
const SCHEMA = `${NEIGHBOUR}"; DROP TABLE ${NEIGHBOUR}.canary; --`;
// Two 63-byte names sharing their first 60 bytes: PostgreSQL would cut `<name>_s0` of both to the same name.
const PREFIX = padTo(`数据 "t'; DROP TABLE canary; -- \\ $hs$ select `, 60);
const TABLE_A = `${PREFIX}_aa`;
const TABLE_B = `${PREFIX}_bb`;
const COLUMNS = {
  time: 'when "début"',
  space: 'x"; DROP TABLE canary; --',
  quote: "it's",
  backslash: 'back\\slash',
  accent: 'température',
  cjk: '数据',
  select: 'select',
  table: 'table',
  user: 'user',
  dollar: '$hs$',
  spaced: 'with space',
} as const;
const INDEX_A = `idx "A"; DROP INDEX x; -- $hs$`;
const READER = `rd "q" 'x'; DROP ROLE postgres; -- $hs$`;
const WRITER = `wr"'\\ 数据 $hs$`;
const SERVICE = `svc "fdw" 'x' \\ $hs$`;
const READER_PASSWORD = `p'w"\\d $hs$ 数据 ;--`;
const SERVICE_PASSWORD = `s'v"c\\ $hs$ ;--`;
// application_name is ASCII-only on the server, and PostgreSQL 15+ expands % in it.
const APPLICATION_NAME = `hs'"\\ app;-- $hs$`;

function hostileSpec(cluster: TestCluster): Record<string, unknown> {
  return {
    version: 1,
    accessNode: specNode(cluster.accessNode, DATABASE),
    dataNodes: cluster.dataNodes.map((n) => specNode(n, DATABASE)),
    fdw: {
      serviceRole: { name: SERVICE, password: { file: '.secrets/service' } },
      connectionOptions: { application_name: APPLICATION_NAME },
    },
    roles: [
      { name: READER, login: true, password: { file: '.secrets/reader' }, grants: [{ on: TABLE_A, privileges: ['SELECT'] }] },
      { name: WRITER, memberOf: [READER], grants: [{ on: TABLE_B, privileges: ['INSERT', 'SELECT'] }] },
    ],
    hypertables: [
      {
        schema: SCHEMA,
        name: TABLE_A,
        columns: [
          { name: COLUMNS.time, type: 'timestamptz', notNull: true },
          { name: COLUMNS.space, type: 'integer', notNull: true },
          { name: COLUMNS.quote, type: 'text' },
          { name: COLUMNS.backslash, type: 'double precision' },
          { name: COLUMNS.accent, type: 'numeric(6,2)' },
          { name: COLUMNS.cjk, type: 'jsonb' },
          { name: COLUMNS.select, type: 'text[]' },
          { name: COLUMNS.table, type: 'boolean' },
          { name: COLUMNS.user, type: 'bigint' },
          { name: COLUMNS.dollar, type: 'text' },
          { name: COLUMNS.spaced, type: 'varchar(20)' },
        ],
        timeColumn: COLUMNS.time,
        spaceColumn: COLUMNS.space,
        shards: 2,
        chunkInterval: '1 day',
        chunks: { behind: 1, ahead: 1 },
        indexes: [{ name: INDEX_A, columns: [COLUMNS.space, { column: COLUMNS.time, order: 'desc' }] }],
        lastpoint: true,
        // Node views of the hostile table and columns (the view names its columns).
        nodeViews: true,
      },
      {
        schema: SCHEMA,
        name: TABLE_B,
        columns: [
          { name: 'time', type: 'timestamptz', notNull: true },
          { name: 'user', type: 'integer', notNull: true },
          { name: 'value', type: 'double precision' },
          // Named like the lastpoint view's row alias: the view must read the row, not this column.
          { name: 'c', type: 'integer' },
        ],
        timeColumn: 'time',
        spaceColumn: 'user',
        shards: 2,
        chunkInterval: '1 day',
        chunks: { behind: 1, ahead: 1 },
        indexes: [{ columns: ['user'] }],
        lastpoint: true,
      },
    ],
    // TimescaleDB's functions in the hostile schema: its name inside every function body.
    timescaledb: { schema: SCHEMA },
  };
}

/** A URL's server, with another database, user and password. */
function loginConfig(node: TestNode, user: string, password: string): pg.ClientConfig {
  const url = new URL(node.url);
  return { host: url.hostname, port: Number(url.port || 5432), database: DATABASE, user, password };
}

const query = sql;

const sources = await Promise.all(clusterSources().map(async (s) => ({ source: s, skip: await s.unavailable() })));

for (const { source, skip } of sources) {
  describe.skipIf(skip !== undefined)(`hostile names on ${source.label}${skip === undefined ? '' : ` — skipped: ${skip}`}`, () => {
    let cluster: TestCluster;
    let dir: string;
    let specFile: string;
    let layout: ClusterLayout;
    /** Node URLs on the hostile database. */
    const url = (node: TestNode): string => {
      const u = new URL(node.url);
      u.pathname = `/${DATABASE}`;
      return u.toString();
    };
    const nodes = (): TestNode[] => [cluster.accessNode, ...cluster.dataNodes];
    const qualified = (table: string): string => `${qi(SCHEMA)}.${qi(table)}`;

    beforeAll(async () => {
      cluster = await source.start(2);
      for (const node of nodes()) {
        await sql(node.url, `CREATE DATABASE ${qi(DATABASE)}`);
        await sql(
          url(node),
          `CREATE TABLE public.canary (v text); INSERT INTO public.canary VALUES ('alive');
           CREATE SCHEMA ${qi(NEIGHBOUR)}; CREATE TABLE ${qi(NEIGHBOUR)}.canary (v text); INSERT INTO ${qi(NEIGHBOUR)}.canary VALUES ('alive')`,
        );
      }
      dir = join(cluster.workDir, 'hostile');
      await mkdir(join(dir, '.secrets'), { recursive: true });
      await writeFile(join(dir, '.secrets/service'), `${SERVICE_PASSWORD}\n`, { mode: 0o600 });
      await writeFile(join(dir, '.secrets/reader'), `${READER_PASSWORD}\n`, { mode: 0o600 });
      specFile = join(dir, 'hypershard.yaml');
      // JSON is YAML; every hostile string goes through the YAML parser as a quoted scalar.
      await writeFile(specFile, JSON.stringify(hostileSpec(cluster), null, 2));
    });
    afterAll(async () => {
      await cluster?.stop();
    });

    it('rejects names over 63 bytes and names with a newline, and applies nothing', async () => {
      const before = await Promise.all(nodes().map((n) => catalogFingerprint(url(n))));
      const bad = hostileSpec(cluster) as { roles: Record<string, unknown>[]; hypertables: { indexes: { name?: string }[]; columns: { name: string }[] }[] };
      bad.hypertables[0]!.indexes[0]!.name = 'é'.repeat(32); // 32 characters, 64 bytes
      bad.hypertables[1]!.columns[2]!.name = 'va\nlue"; DROP TABLE canary; --';
      bad.roles.push({ name: `${'r'.repeat(60)}"'\\x` });
      const badDir = join(cluster.workDir, 'bad');
      await mkdir(badDir, { recursive: true });
      await writeFile(join(badDir, 'hypershard.yaml'), JSON.stringify(bad, null, 2));

      const error = await loadSpec(join(badDir, 'hypershard.yaml')).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(SpecError);
      const issues = (error as SpecError).issues.map((i) => ({ path: i.path, message: i.message.replace(/ \(line \d+\)$/, '') }));
      expect(issues).toEqual([
        { path: 'roles[2].name', message: `${JSON.stringify(`${'r'.repeat(60)}"'\\x`)} is 64 bytes long; PostgreSQL truncates identifiers to 63 bytes` },
        { path: 'hypertables[0].indexes[0].name', message: `"${'é'.repeat(32)}" is 64 bytes long; PostgreSQL truncates identifiers to 63 bytes` },
        { path: 'hypertables[1].columns[2].name', message: '"va\\nlue\\"; DROP TABLE canary; --" must not contain control characters (newline, tab, NUL …)' },
      ]);
      expect((error as SpecError).message).toContain('3 problems');
      // Nothing was generated, let alone applied.
      await expect(stat(join(badDir, 'migrations'))).rejects.toThrow(/ENOENT/);
      expect(await Promise.all(nodes().map((n) => catalogFingerprint(url(n))))).toEqual(before);
    });

    it('applies the hostile spec on every node', async () => {
      const { spec, file } = await loadSpec(specFile);
      layout = planLayout(spec);
      await generateMigrations(spec, file);
      const result = await apply(spec, file);
      expect(result.nodes.map((n) => [n.node, n.status, n.error?.message])).toEqual([
        ['dn1', 'applied', undefined],
        ['dn2', 'applied', undefined],
        ['access', 'applied', undefined],
      ]);
      expect(result.ok).toBe(true);
    });

    it('keeps the two 63-byte hypertables apart: distinct shard tables, chunk prefixes and indexes', () => {
      const [a, b] = layout.hypertables;
      expect([a!.table.name, b!.table.name]).toEqual([TABLE_A, TABLE_B]);
      expect([bytes(TABLE_A), bytes(TABLE_B)]).toEqual([63, 63]);
      const shards = [...a!.shards, ...b!.shards];
      expect(new Set(shards.map((s) => s.table.name)).size).toBe(4);
      expect(new Set(shards.map((s) => s.chunkPrefix)).size).toBe(4);
      for (const s of shards) {
        expect(bytes(s.table.name)).toBeLessThanOrEqual(63);
        expect(bytes(`${s.chunkPrefix}_20260101T000000`)).toBeLessThanOrEqual(63);
      }
      expect(shards.map((s) => s.dataNode)).toEqual(['dn1', 'dn2', 'dn1', 'dn2']);
      expect(b!.indexes[0]!.name).not.toBe(a!.indexes[0]!.name);
    });

    it('creates exactly these names in the access node\'s catalog', async () => {
      const access = url(cluster.accessNode);
      expect(await sql(access, 'SELECT nspname FROM pg_namespace WHERE nspname = $1', [SCHEMA])).toEqual([{ nspname: SCHEMA }]);
      const relations = await sql<{ relname: string; relkind: string }>(
        access,
        'SELECT c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1',
        [SCHEMA],
      );
      expect(relations.sort((x, y) => codePoints(x.relname, y.relname))).toEqual([
        { relname: TABLE_A, relkind: 'p' },
        { relname: TABLE_B, relkind: 'p' },
      ]);
      const columns = await sql(
        access,
        `SELECT a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod) AS type, a.attnotnull
           FROM pg_attribute a WHERE a.attrelid = pg_catalog.to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`,
        [qualified(TABLE_A)],
      );
      expect(columns).toEqual([
        { attname: COLUMNS.time, type: 'timestamp with time zone', attnotnull: true },
        { attname: COLUMNS.space, type: 'integer', attnotnull: true },
        { attname: COLUMNS.quote, type: 'text', attnotnull: false },
        { attname: COLUMNS.backslash, type: 'double precision', attnotnull: false },
        { attname: COLUMNS.accent, type: 'numeric(6,2)', attnotnull: false },
        { attname: COLUMNS.cjk, type: 'jsonb', attnotnull: false },
        { attname: COLUMNS.select, type: 'text[]', attnotnull: false },
        { attname: COLUMNS.table, type: 'boolean', attnotnull: false },
        { attname: COLUMNS.user, type: 'bigint', attnotnull: false },
        { attname: COLUMNS.dollar, type: 'text', attnotnull: false },
        { attname: COLUMNS.spaced, type: 'character varying(20)', attnotnull: false },
      ]);

      for (const h of layout.hypertables) {
        const partitions = await sql(
          access,
          `SELECT n.nspname, c.relname, c.relkind, s.srvname, f.ftoptions, pg_catalog.pg_get_expr(c.relpartbound, c.oid) AS bound
             FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_namespace n ON n.oid = c.relnamespace
             JOIN pg_foreign_table f ON f.ftrelid = c.oid JOIN pg_foreign_server s ON s.oid = f.ftserver
            WHERE i.inhparent = pg_catalog.to_regclass($1) ORDER BY bound`,
          [qualified(h.table.name)],
        );
        expect(partitions).toEqual(
          h.shards.map((s) => ({
            nspname: '_hypershard',
            relname: s.table.name,
            relkind: 'f',
            srvname: s.server,
            ftoptions: ['schema_name=_hypershard', `table_name=${s.table.name}`],
            bound: `FOR VALUES WITH (modulus 2, remainder ${s.remainder})`,
          })),
        );
      }

      const servers = await sql<{ srvname: string; srvoptions: string[] }>(access, 'SELECT srvname, srvoptions FROM pg_foreign_server ORDER BY srvname');
      expect(servers.map((s) => s.srvname)).toEqual(['hypershard_dn1_0', 'hypershard_dn2_1']);
      for (const server of servers) {
        expect(server.srvoptions).toEqual(expect.arrayContaining([`dbname=${DATABASE}`, `application_name=${APPLICATION_NAME}`, 'keep_connections=true']));
      }
      const mappings = await sql<{ srvname: string; umoptions: string[] }>(
        access,
        `SELECT srvname, umoptions FROM pg_user_mappings WHERE usename = 'public' ORDER BY srvname`,
      );
      expect(mappings).toEqual([
        { srvname: 'hypershard_dn1_0', umoptions: [`user=${SERVICE}`, `password=${SERVICE_PASSWORD}`] },
        { srvname: 'hypershard_dn2_1', umoptions: [`user=${SERVICE}`, `password=${SERVICE_PASSWORD}`] },
      ]);
    });

    it('creates TimescaleDB\'s functions in the hostile schema, callable by its quoted name', async () => {
      const access = url(cluster.accessNode);
      const routines = await sql(
        access,
        `SELECT p.proname, count(*)::int AS n FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = $1 GROUP BY 1 ORDER BY 1`,
        [SCHEMA],
      );
      expect(routines).toEqual([
        { proname: 'first', n: 1 },
        { proname: 'last', n: 1 },
        { proname: 'time_bucket', n: 16 },
      ]);
      const s = qi(SCHEMA);
      expect(
        await sql(
          access,
          `SELECT (${s}.time_bucket('1 hour', t, "offset" => '15 minutes') AT TIME ZONE 'UTC')::text AS b, ${s}.last(v, t) AS l, ${s}.time_bucket(10, v) AS i
             FROM (VALUES (timestamptz '2024-01-01 10:30:00+00', 7)) x(t, v)
            GROUP BY 1, 3`,
        ),
      ).toEqual([{ b: '2024-01-01 10:15:00', l: 7, i: 0 }]);
    });

    it('creates exactly these names on each data node, with each shard on its own node', async () => {
      for (const [n, node] of cluster.dataNodes.entries()) {
        const at = url(node);
        const relations = await sql<{ relname: string; relkind: string }>(
          at,
          'SELECT c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1',
          [SCHEMA],
        );
        expect(relations.sort((x, y) => codePoints(x.relname, y.relname))).toEqual(
          [
            { relname: TABLE_A, relkind: 'p' },
            { relname: TABLE_B, relkind: 'p' },
            { relname: INDEX_A, relkind: 'I' },
            { relname: layout.hypertables[1]!.indexes[0]!.name, relkind: 'I' },
          ].sort((x, y) => codePoints(x.relname, y.relname)),
        );
        for (const h of layout.hypertables) {
          const mine = h.shards.filter((s) => s.dataNode === node.name);
          expect(mine.map((s) => s.index)).toEqual([n]);
          const shards = await sql(
            at,
            `SELECT n.nspname, c.relname, c.relkind FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
               JOIN pg_namespace n ON n.oid = c.relnamespace WHERE i.inhparent = pg_catalog.to_regclass($1)`,
            [qualified(h.table.name)],
          );
          expect(shards).toEqual(mine.map((s) => ({ nspname: '_hypershard', relname: s.table.name, relkind: 'p' })));
          const chunks = await sql<{ relname: string }>(
            at,
            `SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = pg_catalog.to_regclass($1)`,
            [`"_hypershard".${qi(mine[0]!.table.name)}`],
          );
          // The default chunk, and one chunk behind the current one, the current one and one ahead.
          expect(chunks).toHaveLength(4);
          expect(chunks.map((c) => c.relname)).toContain(`${mine[0]!.chunkPrefix}_default`);
          for (const chunk of chunks) expect(chunk.relname).toMatch(new RegExp(`^${escapeRegExp(mine[0]!.chunkPrefix)}_(default|\\d{8}T\\d{6})$`));
        }
        const roles = await sql(at, 'SELECT rolname, rolcanlogin FROM pg_roles WHERE rolname = ANY($1) ORDER BY rolname COLLATE "C"', [[READER, WRITER, SERVICE]]);
        expect(roles).toEqual(
          [
            { rolname: READER, rolcanlogin: true },
            { rolname: WRITER, rolcanlogin: false },
            { rolname: SERVICE, rolcanlogin: true },
          ].sort((x, y) => codePoints(x.rolname, y.rolname)),
        );
      }
    });

    it('replicates roles and memberships with their exact names to every node', async () => {
      for (const node of nodes()) {
        const members = await sql(
          url(node),
          `SELECT r.rolname AS role, m.rolname AS member FROM pg_auth_members am
             JOIN pg_roles r ON r.oid = am.roleid JOIN pg_roles m ON m.oid = am.member WHERE m.rolname = $1`,
          [WRITER],
        );
        expect(members).toEqual([{ role: READER, member: WRITER }]);
        const grants = await sql(
          url(node),
          `SELECT grantee, table_name, privilege_type FROM information_schema.role_table_grants
            WHERE table_schema = $1 AND grantee = ANY($2) ORDER BY grantee COLLATE "C", table_name COLLATE "C", privilege_type`,
          [SCHEMA, [READER, WRITER]],
        );
        expect(grants).toEqual(
          [
            { grantee: READER, table_name: TABLE_A, privilege_type: 'SELECT' },
            { grantee: WRITER, table_name: TABLE_B, privilege_type: 'INSERT' },
            { grantee: WRITER, table_name: TABLE_B, privilege_type: 'SELECT' },
          ].sort((x, y) => codePoints(x.grantee, y.grantee) || codePoints(x.privilege_type, y.privilege_type)),
        );
      }
    });

    it('returns rows inserted through the access node unchanged, each stored on one shard', async () => {
      const access = url(cluster.accessNode);
      const names = Object.values(COLUMNS);
      const rows = Array.from({ length: 20 }, (_, i) => [
        new Date(Date.now() - (i + 1) * 60_000),
        i + 1,
        `it's "${i}" ; DROP TABLE canary; --`,
        i / 4,
        (i * 1.25).toFixed(2),
        { k: `v'"\\${i}`, 数据: [i, null] },
        [`a"b`, "c'd", '\\', `$hs$${i}`],
        i % 2 === 0,
        String(2 ** 40 + i),
        `$hs$ $hs0$ ${i}`,
        `température ${i}`,
      ]);
      const placeholders = rows.map((_, r) => `(${names.map((__, c) => `$${r * names.length + c + 1}`).join(', ')})`).join(', ');
      await sql(access, `INSERT INTO ${qualified(TABLE_A)} (${names.map(qi).join(', ')}) VALUES ${placeholders}`, rows.flat());

      const back = await sql(access, `SELECT ${names.map(qi).join(', ')} FROM ${qualified(TABLE_A)} ORDER BY ${qi(COLUMNS.space)}`);
      expect(back).toEqual(rows.map((row) => Object.fromEntries(names.map((name, c) => [name, row[c]]))));

      await sql(access, `INSERT INTO ${qualified(TABLE_B)} ("time", "user", "value") SELECT now() - g * interval '1 minute', g, g / 2.0 FROM generate_series(1, 10) g`);
      const stored = async (h: number): Promise<number[]> =>
        Promise.all(
          layout.hypertables[h]!.shards.map(async (s) => {
            const node = cluster.dataNodes.find((d) => d.name === s.dataNode)!;
            const count = await sql<{ n: string }>(url(node), `SELECT count(*) AS n FROM "_hypershard".${qi(s.table.name)}`);
            return Number(count[0]!.n);
          }),
        );
      const a = await stored(0);
      const b = await stored(1);
      expect(a.reduce((x, y) => x + y)).toBe(20);
      expect(b.reduce((x, y) => x + y)).toBe(10);
      expect(a.every((n) => n > 0) && b.every((n) => n > 0)).toBe(true);
      expect((await sql<{ n: string }>(access, `SELECT count(*) AS n FROM ${qualified(TABLE_B)}`))[0]!.n).toBe('10');
    });

    it('rewrites statements over the hostile names into SQL that runs and answers as written', async () => {
      const metadata = metadataFromLayout(layout);
      const t = qualified(TABLE_A);
      const [time, space, value] = [qi(COLUMNS.time), qi(COLUMNS.space), qi(COLUMNS.accent)];
      const statements = [
        `SELECT date_trunc('minute', ${time}) AS ${qi('m"; --')}, max(${value}) AS v, count(*) AS n FROM ${t} WHERE ${time} > now() - interval '1 day' GROUP BY 1 ORDER BY 1`,
        `SELECT ${space}, ${time} FROM ${t} ORDER BY ${time} DESC LIMIT 3`,
        `SELECT count(*) AS n, min(${value}) AS v FROM ${t} WHERE ${space} IN (3, 4)`,
        `SELECT DISTINCT ON (${space}) ${space}, ${time} FROM ${t} ORDER BY ${space}, ${time} DESC`,
        `SELECT count(*) AS n FROM ${t} WHERE ${time}::date >= current_date - 1`,
        // Read from the lastpoint views (hostile view names; a column named c in TABLE_B).
        `SELECT DISTINCT ON (${space}) * FROM ${t} ORDER BY ${space}, ${time} DESC`,
        `SELECT DISTINCT ON ("user") * FROM ${qualified(TABLE_B)} AS b ORDER BY "user", "time" DESC`,
      ];
      const client = new pg.Client({ connectionString: url(cluster.accessNode) });
      await client.connect();
      try {
        await client.query(`SET TimeZone = 'UTC'`);
        for (const statement of statements) {
          const r = rewriteSql(statement, metadata, { timeZone: 'UTC' });
          expect(r.changed, statement).toBe(true);
          if (statement.includes('DISTINCT ON') && statement.includes('*')) expect(r.rewrites.map((x) => x.kind), statement).toEqual(['lastpoint']);
          await client.query('BEGIN');
          const written = await client.query(statement);
          const rewritten = await client.query(r.sql);
          await client.query('ROLLBACK');
          expect(rewritten.fields.map((f) => f.name), r.sql).toEqual(written.fields.map((f) => f.name));
          expect(rewritten.rows, r.sql).toEqual(written.rows);
          expect(written.rows.length).toBeGreaterThan(0);
        }
      } finally {
        await client.end();
      }
    });

    it('reads each data node\'s shards of the hostile table through its node view: the same rows as its shards', async () => {
      const access = url(cluster.accessNode);
      const h = layout.hypertables[0]!;
      const views = h.nodeViews ?? [];
      expect(views.map((v) => v.dataNode)).toEqual(['dn1', 'dn2']);
      const order = `ORDER BY ${qi(COLUMNS.space)}, ${qi(COLUMNS.time)}`;
      for (const v of views) {
        expect(bytes(v.view.name)).toBeLessThanOrEqual(63);
        const shards = v.shards.map((i) => h.shards[i]!.table);
        const through = await sql(access, `SELECT * FROM "_hypershard".${qi(v.view.name)} ${order}`);
        const direct = await sql(access, `SELECT * FROM (${shards.map((s) => `SELECT * FROM "_hypershard".${qi(s.name)}`).join(' UNION ALL ')}) AS s ${order}`);
        expect(through.length).toBeGreaterThan(0);
        expect(through).toEqual(direct);
      }
    });

    it('leaves the canary tables alone on every node', async () => {
      for (const node of nodes()) {
        expect(await sql(url(node), 'SELECT v FROM public.canary')).toEqual([{ v: 'alive' }]);
        expect(await sql(url(node), `SELECT v FROM ${qi(NEIGHBOUR)}.canary`)).toEqual([{ v: 'alive' }]);
        expect(await sql(url(node), `SELECT relname FROM pg_class WHERE relnamespace = $1::regnamespace`, [NEIGHBOUR])).toEqual([{ relname: 'canary' }]);
      }
    });

    it('lets the hostile role log in with its hostile password on every node and read exactly where granted', async () => {
      let seen = 0;
      for (const node of nodes()) {
        const asReader = loginConfig(node, READER, READER_PASSWORD);
        expect(await query(asReader, 'SELECT current_user AS who')).toEqual([{ who: READER }]);
        const n = Number((await query<{ n: string }>(asReader, `SELECT count(*) AS n FROM ${qualified(TABLE_A)}`))[0]!.n);
        if (node === cluster.accessNode) expect(n).toBe(20);
        else seen += n;
        await expect(query(asReader, `SELECT count(*) FROM ${qualified(TABLE_B)}`)).rejects.toThrow(/permission denied for table/);
        await expect(query(asReader, `INSERT INTO ${qualified(TABLE_A)} (${qi(COLUMNS.time)}, ${qi(COLUMNS.space)}) VALUES (now(), 1)`)).rejects.toThrow(
          /permission denied for table/,
        );
        await expect(query(loginConfig(node, READER, `${READER_PASSWORD}x`), 'SELECT 1')).rejects.toThrow(/password authentication failed/);
      }
      // On the data nodes the same name reads each node's own shard.
      expect(seen).toBe(20);
    });

    it('sets one SCRAM verifier for the hostile password on every node, and agrees with PostgreSQL\'s own', async () => {
      const verifiers = await Promise.all(
        nodes().map(async (node) => (await sql<{ v: string }>(url(node), 'SELECT rolpassword AS v FROM pg_authid WHERE rolname = $1', [READER]))[0]!.v),
      );
      expect(new Set(verifiers).size).toBe(1);
      expect(verifierMatches(verifiers[0], READER_PASSWORD)).toBe(true);
      // The same password hashed by the server itself.
      const access = url(cluster.accessNode);
      await sql(access, `SET password_encryption = 'scram-sha-256'; CREATE ROLE hs_scram_check PASSWORD ${quoteForTest(READER_PASSWORD)}`);
      const own = await sql<{ v: string }>(access, `SELECT rolpassword AS v FROM pg_authid WHERE rolname = 'hs_scram_check'`);
      await sql(access, 'DROP ROLE hs_scram_check');
      expect(own[0]!.v).toMatch(/^SCRAM-SHA-256\$4096:/);
      expect(verifierMatches(own[0]!.v, READER_PASSWORD)).toBe(true);
      expect(verifierMatches(own[0]!.v, `${READER_PASSWORD} `)).toBe(false);
    });

    it('a second apply changes nothing: passwords and user mappings with hostile text match', async () => {
      const before = await Promise.all(nodes().map((n) => catalogFingerprint(url(n))));
      const { spec, file } = await loadSpec(specFile);
      const result = await apply(spec, file);
      expect(result.nodes.map((n) => [n.node, n.status, n.secretsChanged])).toEqual([
        ['dn1', 'up-to-date', 0],
        ['dn2', 'up-to-date', 0],
        ['access', 'up-to-date', 0],
      ]);
      expect(await Promise.all(nodes().map((n) => catalogFingerprint(url(n))))).toEqual(before);
    });
  });
}
