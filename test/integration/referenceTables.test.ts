/**
 * Reference tables on real clusters (access node + 2 data nodes, a third joining later): every
 * write on the access node reaches every data node's copy in the same transaction, a rollback
 * reaches none, hostile names work, joins with a shard run on its data node, resync repairs a
 * copy changed behind the access node's back, spec changes become migrations, and a data node
 * that joins gets its copy filled.
 */
import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addDataNode } from '../../src/cluster/addDataNode.js';
import { check } from '../../src/drift/check.js';
import { maintain } from '../../src/maintain/maintain.js';
import { MigrationStateError } from '../../src/errors.js';
import { generateMigrations } from '../../src/migrations/files.js';
import { apply } from '../../src/nodes/apply.js';
import { planLayout, type QualifiedName } from '../../src/plan/layout.js';
import { syncReferenceTables } from '../../src/reference/sync.js';
import { loadSpec } from '../../src/spec/load.js';
import { quoteIdent, quoteQualified } from '../../src/sql/quote.js';
import { clusterSources, type TestCluster } from '../support/clusters.js';
import { sql, withDatabase } from '../support/db.js';
import { specNode, writeExampleSpec, writeSecrets } from '../support/spec.js';

const BIN = fileURLToPath(new URL('../../bin/hypershard.js', import.meta.url));
const sources = await Promise.all(clusterSources().map(async (s) => ({ source: s, skip: await s.unavailable() })));

function hypershard(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { timeout: 120_000 }, (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : 1, stdout, stderr });
    });
  });
}

const DEVICES = { schema: 'public', name: 'devices' };
/** Quotes, spaces, non-ASCII letters and reserved words, in the schema, the table and the columns. */
const HOSTILE = { schema: 'Ref "Schema" ü', name: 'Dev "ice" ß table' };
const HOSTILE_KEY = ['select', 'na"me'];

const REFERENCE_TABLES = [
  {
    name: DEVICES.name,
    columns: [
      { name: 'device_id', type: 'integer', notNull: true },
      { name: 'region', type: 'text' },
      { name: 'label', type: 'varchar(64)' },
      { name: 'tags', type: 'text[]' },
      { name: 'meta', type: 'jsonb' },
      { name: 'weight', type: 'numeric(12,2)' },
    ],
    primaryKey: ['device_id'],
  },
  {
    schema: HOSTILE.schema,
    name: HOSTILE.name,
    columns: [
      { name: 'select', type: 'integer', notNull: true },
      { name: 'na"me', type: 'text', notNull: true },
      { name: 'ünï code', type: 'text' },
      { name: 'group', type: 'jsonb' },
    ],
    primaryKey: HOSTILE_KEY,
  },
];

/** The example spec with the two reference tables, and grants on devices for metrics_reader. */
function withReferenceTables(yaml: string): string {
  const grants = '      - { on: metrics, privileges: [SELECT] }\n';
  if (!yaml.includes(grants)) throw new Error('the example spec changed: no grant line for metrics_reader');
  return `${yaml.replace(grants, `${grants}      - { on: devices, privileges: [SELECT, INSERT, UPDATE] }\n`)}\nreferenceTables: ${JSON.stringify(REFERENCE_TABLES)}\n`;
}

for (const { source, skip } of sources) {
  describe.skipIf(skip !== undefined)(`reference tables on ${source.label}${skip === undefined ? '' : ` — skipped: ${skip}`}`, () => {
    let cluster: TestCluster;
    let dir: string;
    let specFile: string;
    let readerPassword: string;
    /** Data nodes of the spec (a third joins in the last tests). */
    let dataNodes: { name: string; url: string }[];
    const access = (): string => cluster.accessNode.url;

    /** Every row of a table on one node, ordered by its key, as JSON text. */
    const rowsOn = async (url: string, table: QualifiedName, key: readonly string[]): Promise<string> =>
      (await sql<{ rows: string }>(url, `SELECT coalesce(json_agg(t ORDER BY ${key.map((k) => `t.${quoteIdent(k)}`).join(', ')}), '[]')::text AS rows FROM ${quoteQualified(table.schema, table.name)} t`))[0]!.rows;

    /** Asserts every data node's copy equals the access node's table; returns the rows. */
    async function expectCopiesEqual(table: QualifiedName, key: readonly string[]): Promise<unknown[]> {
      const expected = await rowsOn(access(), table, key);
      for (const node of dataNodes) expect(await rowsOn(node.url, table, key), `${node.name}'s copy of ${table.name}`).toBe(expected);
      return JSON.parse(expected) as unknown[];
    }

    const edit = async (change: (yaml: string) => string): Promise<void> => {
      await writeFile(specFile, change(await readFile(specFile, 'utf8')));
    };
    const generateAndApply = async (options: { allowDestructive?: boolean } = {}) => {
      const { spec, file } = await loadSpec(specFile);
      const generated = await generateMigrations(spec, file, options);
      const applied = await apply(spec, file);
      expect(applied.ok, JSON.stringify(applied.nodes)).toBe(true);
      return generated;
    };

    beforeAll(async () => {
      cluster = await source.start(3);
      dataNodes = cluster.dataNodes.slice(0, 2).map((n) => ({ name: n.name, url: n.url }));
      dir = join(cluster.workDir, 'reference');
      specFile = await writeExampleSpec({ ...cluster, dataNodes: cluster.dataNodes.slice(0, 2) }, dir);
      readerPassword = (await writeSecrets(dir)).reader;
      await edit(withReferenceTables);
      await generateAndApply();
      await sql(access(), `INSERT INTO metrics SELECT now() - i * interval '1 minute', i % 20, i, 2, 3 FROM generate_series(1, 2000) i`);
    });
    afterAll(async () => {
      await cluster?.stop();
    });

    it('creates the table on the access node, a copy on every data node and a foreign table per FDW server', async () => {
      const { spec } = await loadSpec(specFile);
      const layout = planLayout(spec);
      const devices = layout.referenceTables.find((r) => r.table.name === 'devices')!;
      expect(devices.copies.map((c) => [c.server, c.table.name, c.writer])).toEqual(
        layout.servers.map((s) => [s.name, `devices_${s.name}`, s.name === 'hypershard_dn1_0' || s.name === 'hypershard_dn2_1']),
      );
      expect(
        await sql(access(), `SELECT c.relname AS name, s.srvname AS server FROM pg_foreign_table ft JOIN pg_class c ON c.oid = ft.ftrelid JOIN pg_foreign_server s ON s.oid = ft.ftserver WHERE c.relname LIKE 'devices%' ORDER BY 1`),
      ).toEqual(devices.copies.map((c) => ({ name: c.table.name, server: c.server })));
      for (const node of [cluster.accessNode, ...dataNodes]) {
        expect(await sql(node.url, `SELECT pg_get_constraintdef(oid) AS pk FROM pg_constraint WHERE conrelid = 'public.devices'::regclass AND contype = 'p'`)).toEqual([{ pk: 'PRIMARY KEY (device_id)' }]);
      }
      expect(await expectCopiesEqual(DEVICES, ['device_id'])).toEqual([]);
    });

    it('INSERT, UPDATE, DELETE, upserts and TRUNCATE on the access node reach every copy', async () => {
      await sql(access(), `INSERT INTO devices SELECT i, CASE WHEN i % 2 = 0 THEN 'eu' ELSE 'us' END, 'device ' || i, ARRAY['a', i::text], jsonb_build_object('i', i), i / 3.0 FROM generate_series(1, 20) i`);
      expect(await expectCopiesEqual(DEVICES, ['device_id'])).toHaveLength(20);
      await sql(access(), `UPDATE devices SET region = 'ap', meta = meta || '{"moved": true}' WHERE device_id % 5 = 0`);
      await expectCopiesEqual(DEVICES, ['device_id']);
      // A key changes: the old key leaves every copy, the new one arrives.
      await sql(access(), `UPDATE devices SET device_id = device_id + 100 WHERE device_id IN (3, 4)`);
      expect((await expectCopiesEqual(DEVICES, ['device_id'])).map((r) => (r as { device_id: number }).device_id)).toContain(103);
      await sql(access(), `DELETE FROM devices WHERE device_id > 15`);
      expect(await expectCopiesEqual(DEVICES, ['device_id'])).toHaveLength(13);
      await sql(access(), `INSERT INTO devices (device_id, region) VALUES (1, 'moon'), (50, 'mars') ON CONFLICT (device_id) DO UPDATE SET region = excluded.region`);
      await expectCopiesEqual(DEVICES, ['device_id']);
      // A statement that changes nothing changes nothing anywhere.
      await sql(access(), `UPDATE devices SET region = 'x' WHERE false`);
      await sql(access(), `TRUNCATE devices`);
      expect(await expectCopiesEqual(DEVICES, ['device_id'])).toEqual([]);
      await sql(access(), `INSERT INTO devices SELECT i, CASE WHEN i % 2 = 0 THEN 'eu' ELSE 'us' END, 'device ' || i, NULL, NULL, NULL FROM generate_series(0, 19) i`);
      expect(await expectCopiesEqual(DEVICES, ['device_id'])).toHaveLength(20);
    });

    it('a rolled-back transaction leaves every copy as it was; a rolled-back savepoint only its part', async () => {
      const before = await expectCopiesEqual(DEVICES, ['device_id']);
      await sql(access(), `BEGIN; INSERT INTO devices (device_id) VALUES (900); UPDATE devices SET region = 'gone'; DELETE FROM devices WHERE device_id < 5; ROLLBACK`);
      expect(await expectCopiesEqual(DEVICES, ['device_id'])).toEqual(before);
      await sql(access(), `BEGIN; TRUNCATE devices; ROLLBACK`);
      expect(await expectCopiesEqual(DEVICES, ['device_id'])).toEqual(before);
      await sql(access(), `BEGIN; INSERT INTO devices (device_id) VALUES (901); SAVEPOINT s; INSERT INTO devices (device_id) VALUES (902); DELETE FROM devices WHERE device_id = 0; ROLLBACK TO SAVEPOINT s; COMMIT`);
      const after = await expectCopiesEqual(DEVICES, ['device_id']);
      expect(after.map((r) => (r as { device_id: number }).device_id)).toEqual([0, ...Array.from({ length: 19 }, (_, i) => i + 1), 901]);
      // A statement that fails on the access node (duplicate key) changes no copy.
      await expect(sql(access(), `INSERT INTO devices (device_id) VALUES (903), (903)`)).rejects.toThrow(/duplicate key/);
      expect(await expectCopiesEqual(DEVICES, ['device_id'])).toEqual(after);
    });

    it('works with quotes, spaces, non-ASCII letters and reserved words in every name, and a composite key', async () => {
      const table = quoteQualified(HOSTILE.schema, HOSTILE.name);
      await sql(access(), `INSERT INTO ${table} ("select", "na""me", "ünï code", "group") SELECT i % 3, 'n' || i, 'ü' || i, jsonb_build_object('g', i) FROM generate_series(1, 12) i`);
      expect(await expectCopiesEqual(HOSTILE, HOSTILE_KEY)).toHaveLength(12);
      await sql(access(), `UPDATE ${table} SET "ünï code" = 'changed', "na""me" = "na""me" || '!' WHERE "select" = 1`);
      await expectCopiesEqual(HOSTILE, HOSTILE_KEY);
      await sql(access(), `DELETE FROM ${table} WHERE "select" = 2`);
      expect(await expectCopiesEqual(HOSTILE, HOSTILE_KEY)).toHaveLength(8);
      await sql(access(), `TRUNCATE ${table}`);
      expect(await expectCopiesEqual(HOSTILE, HOSTILE_KEY)).toEqual([]);
      await sql(access(), `INSERT INTO ${table} ("select", "na""me") VALUES (1, 'a'), (1, 'b')`);
      await expectCopiesEqual(HOSTILE, HOSTILE_KEY);
    });

    it('maintain finds every copy equal and analyzes the copies, so a join of a shard with the copy on its server runs whole on the data node', async () => {
      const { spec, file } = await loadSpec(specFile);
      const layout = planLayout(spec);
      const maintained = await maintain(spec, file);
      expect(maintained.ok, JSON.stringify(maintained.nodes)).toBe(true);
      expect(maintained.reference?.nodes.map((n) => [n.node, n.status, n.tables.map((t) => [t.table, t.copied])])).toEqual(
        dataNodes.map((n) => [n.name, 'in-sync', [['public.devices', false], [`${HOSTILE.schema}.${HOSTILE.name}`, false]]]),
      );
      expect(maintained.nodes.find((n) => n.role === 'access')?.analyzed).toEqual([
        'public.metrics',
        ...layout.referenceTables.flatMap((r) => r.copies.map((c) => `_hypershard.${c.table.name}`)),
      ]);
      const shard = layout.hypertables[0]!.shards[0]!;
      const copy = layout.referenceTables.find((r) => r.table.name === 'devices')!.copies.find((c) => c.server === shard.server)!;
      const query = `SELECT d.region, count(*) AS n FROM ${quoteQualified(shard.table.schema, shard.table.name)} m JOIN ${quoteQualified(copy.table.schema, copy.table.name)} d ON d.device_id = m.device_id GROUP BY d.region`;
      type PlanNode = { 'Node Type': string; 'Relations'?: string; 'Remote SQL'?: string; Plans?: PlanNode[] };
      const scans = (node: PlanNode): PlanNode[] => [...(node['Node Type'] === 'Foreign Scan' ? [node] : []), ...(node.Plans ?? []).flatMap(scans)];
      const [plan] = await sql<{ 'QUERY PLAN': [{ Plan: PlanNode }] }>(access(), `EXPLAIN (VERBOSE, FORMAT JSON) ${query}`);
      const [scan, ...others] = scans(plan!['QUERY PLAN'][0].Plan);
      // One foreign scan, of the join: both tables are read on the data node and only joined rows come back.
      expect(others).toEqual([]);
      expect(scan?.Relations).toMatch(/INNER JOIN/);
      expect(scan?.['Remote SQL']).toMatch(/JOIN public\.devices/);
      const local = await sql(access(), `SELECT d.region, count(*) AS n FROM ${quoteQualified(shard.table.schema, shard.table.name)} m JOIN devices d ON d.device_id = m.device_id GROUP BY d.region ORDER BY 1`);
      expect(await sql(access(), `${query} ORDER BY 1`)).toEqual(local);
      expect(local.length).toBeGreaterThan(0);

      // IN (SELECT … FROM copy): a semi-join, shipped whole from PostgreSQL 17 on.
      const semi = `SELECT count(*) FROM ${quoteQualified(shard.table.schema, shard.table.name)} m WHERE m.device_id IN (SELECT device_id FROM ${quoteQualified(copy.table.schema, copy.table.name)} WHERE region = 'eu')`;
      const [semiPlan] = await sql<{ 'QUERY PLAN': [{ Plan: PlanNode }] }>(access(), `EXPLAIN (VERBOSE, FORMAT JSON) ${semi}`);
      const semiScans = scans(semiPlan!['QUERY PLAN'][0].Plan);
      if (cluster.major >= 17) {
        expect(semiScans).toHaveLength(1);
        expect(semiScans[0]?.Relations).toMatch(/SEMI JOIN/);
      }
      expect(await sql(access(), semi)).toEqual(await sql(access(), semi.replace(quoteQualified(copy.table.schema, copy.table.name), 'devices')));
    });

    it('a role granted SELECT and INSERT reads the table and its copies and writes through the triggers, never a copy', async () => {
      const reader = { url: withDatabase(access(), new URL(access()).pathname.slice(1), 'metrics_reader'), password: readerPassword };
      await sql(reader, `INSERT INTO devices (device_id, region) VALUES (700, 'reader')`);
      expect(await sql(reader, `SELECT region FROM _hypershard.devices_hypershard_dn2_1 WHERE device_id = 700`)).toEqual([{ region: 'reader' }]);
      await expectCopiesEqual(DEVICES, ['device_id']);
      await expect(sql(reader, `DELETE FROM _hypershard.devices_hypershard_dn1_0`)).rejects.toThrow(/permission denied/);
      await expect(sql(reader, `DELETE FROM devices`)).rejects.toThrow(/permission denied/);
      const dn1 = { url: withDatabase(dataNodes[0]!.url, new URL(dataNodes[0]!.url).pathname.slice(1), 'metrics_reader'), password: readerPassword };
      expect(await sql(dn1, `SELECT region FROM devices WHERE device_id = 700`)).toEqual([{ region: 'reader' }]);
      await expect(sql(dn1, `DELETE FROM devices`)).rejects.toThrow(/permission denied/);
      await sql(access(), `DELETE FROM devices WHERE device_id = 700`);
    });

    it('resync repairs copies changed behind the access node\'s back, from the library, the CLI and maintain', async () => {
      const { spec, file } = await loadSpec(specFile);
      const [dn1, dn2] = dataNodes as [{ name: string; url: string }, { name: string; url: string }];
      await sql(dn1.url, `DELETE FROM devices WHERE device_id < 3; UPDATE devices SET region = 'tampered' WHERE device_id = 10; INSERT INTO devices (device_id) VALUES (5000)`);
      await expect(expectCopiesEqual(DEVICES, ['device_id'])).rejects.toThrow(/dn1's copy of devices/);

      const repaired = await syncReferenceTables(spec, file, { onlyIfDifferent: true });
      expect(repaired.ok).toBe(true);
      const count = (await expectCopiesEqual(DEVICES, ['device_id'])).length;
      const hostileCount = (await expectCopiesEqual(HOSTILE, HOSTILE_KEY)).length;
      expect(repaired.nodes.map((n) => [n.node, n.status, n.rowsCopied, n.tables.map((t) => [t.table, t.rows, t.copied])])).toEqual([
        [dn1.name, 'synced', count, [['public.devices', count, true], [`${HOSTILE.schema}.${HOSTILE.name}`, hostileCount, false]]],
        [dn2.name, 'in-sync', 0, [['public.devices', count, false], [`${HOSTILE.schema}.${HOSTILE.name}`, hostileCount, false]]],
      ]);

      await sql(dn2.url, `TRUNCATE ${quoteQualified(HOSTILE.schema, HOSTILE.name)}`);
      const run = await hypershard(['reference', 'sync', '-c', specFile, '--json']);
      expect(run.stderr).toBe('');
      expect(run.code).toBe(0);
      const cli = JSON.parse(run.stdout) as { ok: boolean; nodes: { node: string; status: string; rowsCopied: number }[] };
      expect(cli.nodes.map((n) => [n.node, n.status, n.rowsCopied])).toEqual(dataNodes.map((n) => [n.name, 'synced', count + hostileCount]));
      await expectCopiesEqual(HOSTILE, HOSTILE_KEY);

      await sql(dn2.url, `UPDATE devices SET label = 'tampered'`);
      const maintained = await maintain(spec, file);
      expect(maintained.reference?.nodes.map((n) => [n.node, n.status, n.rowsCopied])).toEqual([[dn1.name, 'in-sync', 0], [dn2.name, 'synced', count]]);
      await expectCopiesEqual(DEVICES, ['device_id']);
      expect((await hypershard(['reference', 'sync', '-c', specFile, '--node', 'nowhere'])).code).toBe(2);
    });

    it('check finds nothing after apply, then a disabled sync trigger and a copy the spec does not have', async () => {
      const { spec, file } = await loadSpec(specFile);
      const clean = await check(spec, file);
      expect(clean.nodes.flatMap((n) => n.items.map((i) => `${i.node} ${i.kind} ${i.object}: ${i.message}`))).toEqual([]);
      expect(clean.clean).toBe(true);

      await sql(access(), `ALTER TABLE devices DISABLE TRIGGER hypershard_sync_delete`);
      await sql(access(), `CREATE FOREIGN TABLE public.devices_elsewhere (device_id integer) SERVER hypershard_dn1_0 OPTIONS (schema_name 'public', table_name 'devices')`);
      try {
        const drifted = await check(spec, file);
        expect(drifted.nodes.flatMap((n) => n.items.map((i) => [i.node, i.kind, i.object]))).toEqual([
          ['access', 'extra', 'copy public.devices_elsewhere of public.devices'],
          ['access', 'different', 'sync trigger hypershard_sync_delete on public.devices'],
        ]);
      } finally {
        await sql(access(), `ALTER TABLE devices ENABLE TRIGGER hypershard_sync_delete; DROP FOREIGN TABLE public.devices_elsewhere`);
      }
    });

    it('spec changes become migrations: a column added and renamed, a table added, and dropped only when destruction is allowed', async () => {
      await edit((y) => y.replace('{"name":"weight","type":"numeric(12,2)"}', '{"name":"weight","type":"numeric(12,2)"},{"name":"firmware","type":"text"}'));
      expect((await generateAndApply()).changes).toEqual(['column public.devices.firmware text added']);
      await sql(access(), `UPDATE devices SET firmware = 'v' || device_id WHERE device_id % 2 = 0`);
      expect((await expectCopiesEqual(DEVICES, ['device_id'])).some((r) => (r as { firmware: string | null }).firmware === 'v2')).toBe(true);

      await edit((y) => y.replace('{"name":"label","type":"varchar(64)"}', '{"name":"display name","type":"text","renamedFrom":"label"}'));
      expect((await generateAndApply()).changes).toEqual(['column public.devices.label renamed to display name', 'column public.devices.display name retyped from varchar(64) to text']);
      await sql(access(), `INSERT INTO devices (device_id, "display name") VALUES (6000, 'a name longer than sixty-four characters, which varchar(64) would have refused')`);
      await expectCopiesEqual(DEVICES, ['device_id']);

      const regions = { name: 'regions', columns: [{ name: 'region', type: 'text', notNull: true }, { name: 'country', type: 'text' }], primaryKey: ['region'] };
      await edit((y) => y.replace('referenceTables: [', `referenceTables: [${JSON.stringify(regions)},`));
      const added = await generateAndApply();
      expect(added.changes).toEqual(['reference table public.regions added']);
      await sql(access(), `INSERT INTO regions VALUES ('eu', 'many'), ('us', 'one')`);
      expect(await expectCopiesEqual({ schema: 'public', name: 'regions' }, ['region'])).toHaveLength(2);

      await edit((y) => y.replace(`${JSON.stringify(regions)},`, ''));
      const { spec, file } = await loadSpec(specFile);
      const refused = await generateMigrations(spec, file).catch((e: unknown) => e);
      expect(refused).toBeInstanceOf(MigrationStateError);
      expect((refused as Error).message).toContain('reference table public.regions dropped, with its rows on the access node and every data node');
      expect((await generateAndApply({ allowDestructive: true })).changes).toEqual(['reference table public.regions dropped, with its rows on the access node and every data node']);
      for (const node of [cluster.accessNode, ...dataNodes]) expect(await sql(node.url, `SELECT to_regclass('public.regions') AS t`)).toEqual([{ t: null }]);
    });

    it('a data node that joins gets its copies filled after apply, and every change after it', async () => {
      const dn3 = specNode(cluster.dataNodes[2]!);
      const joined = await addDataNode(specFile, { name: dn3.name, url: dn3.url });
      expect(joined.changes).toEqual([
        'data node dn3 added',
        'FDW server hypershard_dn3_0 added',
        'copies of reference table public.devices follow the FDW servers: +hypershard_dn3_0',
        `copies of reference table ${HOSTILE.schema}.${HOSTILE.name} follow the FDW servers: +hypershard_dn3_0`,
      ]);
      expect(joined.apply?.nodes.map((n) => [n.node, n.status])).toEqual([
        ['dn1', 'up-to-date'],
        ['dn2', 'up-to-date'],
        ['dn3', 'applied'],
        ['access', 'applied'],
      ]);
      const devices = Number((await sql<{ n: string }>(access(), 'SELECT count(*) AS n FROM devices'))[0]!.n);
      expect(joined.reference?.node).toBe('dn3');
      expect(joined.reference?.status).toBe('synced');
      expect(joined.reference?.tables.find((t) => t.table === 'public.devices')).toEqual({ table: 'public.devices', rows: devices, copied: true });
      dataNodes.push({ name: 'dn3', url: cluster.dataNodes[2]!.url });
      expect((await expectCopiesEqual(DEVICES, ['device_id'])).length).toBeGreaterThan(20);
      expect((await expectCopiesEqual(HOSTILE, HOSTILE_KEY)).length).toBeGreaterThan(0);
      await sql(access(), `UPDATE devices SET region = 'after dn3' WHERE device_id < 10; DELETE FROM ${quoteQualified(HOSTILE.schema, HOSTILE.name)} WHERE "select" = 1`);
      await expectCopiesEqual(DEVICES, ['device_id']);
      await expectCopiesEqual(HOSTILE, HOSTILE_KEY);

      const { spec, file } = await loadSpec(specFile);
      const clean = await check(spec, file);
      expect(clean.nodes.flatMap((n) => n.items.map((i) => `${i.node} ${i.kind} ${i.object}: ${i.message}`))).toEqual([]);
    });
  });
}
