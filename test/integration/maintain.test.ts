/**
 * `maintain` and `chunks` on real clusters (access node + 2 data nodes): chunks kept ahead, rows
 * outside every chunk moved out of default chunks, retention dropping exactly the expired chunks,
 * one run at a time per node, statistics on the access node, a node failing alone, and the CLI.
 */
import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseDocument } from 'yaml';
import { listChunks } from '../../src/maintain/chunks.js';
import { maintain, SKIPPED_REASON } from '../../src/maintain/maintain.js';
import type { MaintainProgress, MaintainResult } from '../../src/maintain/result.js';
import { generateMigrations } from '../../src/migrations/files.js';
import { apply } from '../../src/nodes/apply.js';
import { clientConfig } from '../../src/nodes/connect.js';
import { planLayout, type ClusterLayout } from '../../src/plan/layout.js';
import { loadSpec } from '../../src/spec/load.js';
import { quoteQualified } from '../../src/sql/quote.js';
import { clusterSources, type TestCluster } from '../support/clusters.js';
import { catalogFingerprint, sql } from '../support/db.js';
import { writeExampleSpec, writeSecrets } from '../support/spec.js';

const sources = await Promise.all(clusterSources().map(async (s) => ({ source: s, skip: await s.unavailable() })));
/** The built CLI (`npm test` builds first): transpiling the sources on every call took minutes on a loaded machine. */
const BIN = fileURLToPath(new URL('../../bin/hypershard.js', import.meta.url));

/** Edits the first hypertable of a spec file in place. */
async function editHypertable(file: string, changes: Record<string, unknown>): Promise<void> {
  const doc = parseDocument(await readFile(file, 'utf8'));
  for (const [path, value] of Object.entries(changes)) doc.setIn(['hypertables', 0, ...path.split('.')], value);
  await writeFile(file, doc.toString());
}

/** Names (`schema.name`) of every leaf partition of the node's shards, default chunks included. */
async function chunkNames(url: string): Promise<string[]> {
  const rows = await sql<{ name: string }>(
    url,
    `SELECT n.nspname || '.' || c.relname AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_namespace n ON n.oid = c.relnamespace
     JOIN pg_inherits s ON s.inhrelid = i.inhparent WHERE s.inhparent = 'public.metrics'::regclass ORDER BY 1`,
  );
  return rows.map((r) => r.name);
}

const names = (result: MaintainResult, node: string, pick: 'created' | 'dropped'): string[] =>
  result.nodes.find((n) => n.node === node)![pick].map((c) => c.chunk).sort();

for (const { source, skip } of sources) {
  describe.skipIf(skip !== undefined)(`maintain on ${source.label}${skip === undefined ? '' : ` — skipped: ${skip}`}`, () => {
    let cluster: TestCluster;
    let specFile: string;
    let layout: ClusterLayout;
    const timings: string[] = [];
    const access = (): string => cluster.accessNode.url;
    const run = async (options: Parameters<typeof maintain>[2] = {}): Promise<MaintainResult> => {
      const { spec, file } = await loadSpec(specFile);
      const result = await maintain(spec, file, options);
      timings.push(`${options.dryRun === true ? 'dry run' : 'run'} ${result.durationMs} ms (${result.nodes.map((n) => `${n.node} ${n.status} ${n.durationMs} ms`).join(', ')})`);
      return result;
    };
    /** The data node and shard table of every shard holding a row that matches `where`. */
    const shardsOf = async (where: string): Promise<{ node: string; shard: string }[]> => {
      const rows = await sql<{ shard: string }>(access(), `SELECT DISTINCT tableoid::regclass::text AS shard FROM metrics WHERE ${where} ORDER BY 1`);
      return rows.map((r) => {
        const name = r.shard.split('.')[1]!;
        const shard = layout.hypertables[0]!.shards.find((s) => s.table.name === name)!;
        return { node: shard.dataNode, shard: name };
      });
    };
    const expectedChunks = async (where: string, suffixes: readonly string[]): Promise<Record<string, string[]>> => {
      const byNode: Record<string, string[]> = { dn1: [], dn2: [] };
      for (const { node, shard } of await shardsOf(where)) byNode[node]!.push(...suffixes.map((s) => `_hypershard.${shard}_${s}`));
      for (const list of Object.values(byNode)) list.sort();
      return byNode;
    };
    /** Rows in the default chunks of the node's shards. */
    const rowsInDefaults = async (node: string): Promise<number> => {
      const shards = layout.hypertables[0]!.shards.filter((s) => s.dataNode === node);
      const url = cluster.dataNodes.find((n) => n.name === node)!.url;
      const counts = shards.map((s) => `(SELECT count(*) FROM ONLY _hypershard.${s.table.name}_default)`).join(' + ');
      return Number((await sql<{ n: string }>(url, `SELECT ${counts} AS n`))[0]!.n);
    };
    const defaultRows = async (): Promise<number> => (await rowsInDefaults('dn1')) + (await rowsInDefaults('dn2'));
    /** One open transaction per data node holding its default chunks in ROW EXCLUSIVE mode, as an INSERT into them does. */
    const holdDefaults = (): Promise<pg.Client[]> =>
      Promise.all(
        cluster.dataNodes.map(async (node) => {
          const client = new pg.Client(clientConfig(node.url, process.env.HYPERSHARD_TEST_CONTAINER_PASSWORD));
          await client.connect();
          await client.query('BEGIN');
          const { rows } = await client.query<{ sql: string }>(
            `SELECT format('LOCK TABLE %s IN ROW EXCLUSIVE MODE', string_agg(pt.partdefid::regclass::text, ', ')) AS sql
             FROM pg_partitioned_table pt JOIN pg_inherits i ON i.inhrelid = pt.partrelid WHERE i.inhparent = 'public.metrics'::regclass`,
          );
          await client.query(rows[0]!.sql);
          return client;
        }),
      );
    /** `YYYYMMDD"T"000000` of today (UTC, on the server) plus `days`. */
    const day = async (days: number): Promise<string> =>
      (await sql<{ s: string }>(access(), `SELECT to_char(date_trunc('day', now() AT TIME ZONE 'UTC') + $1 * interval '1 day', 'YYYYMMDD"T"HH24MISS') AS s`, [days]))[0]!.s;

    beforeAll(async () => {
      cluster = await source.start(2);
      const dir = join(cluster.workDir, 'maintain');
      specFile = await writeExampleSpec(cluster, dir);
      await writeSecrets(dir);
      // Few chunks: the one holding now, one behind and one ahead.
      await editHypertable(specFile, { 'chunks.behind': 1, 'chunks.ahead': 1 });
      const { spec, file } = await loadSpec(specFile);
      layout = planLayout(spec);
      await generateMigrations(spec, file);
      const applied = await apply(spec, file);
      if (!applied.ok) throw new Error(`apply failed: ${JSON.stringify(applied.nodes)}`);
    });
    afterAll(async () => {
      if (timings.length > 0) console.info(`${source.label}:\n  ${timings.join('\n  ')}`);
      await cluster?.stop();
    });

    it('keeps chunks ahead up to now + ahead × interval, analyzes the foreign tables, and a second run only analyzes', async () => {
      const foreign = `SELECT relname, reltuples FROM pg_class WHERE relkind = 'f' AND relnamespace = '_hypershard'::regnamespace ORDER BY 1`;
      expect((await sql<{ reltuples: number }>(access(), foreign)).map((r) => r.reltuples)).toEqual([-1, -1, -1, -1]);
      for (const node of cluster.dataNodes) expect(await chunkNames(node.url)).toHaveLength(2 * 4); // 3 chunks + default, 2 shards

      await editHypertable(specFile, { 'chunks.ahead': 3 });
      const first = await run();
      expect(first.ok).toBe(true);
      expect(first.nodes.map((n) => [n.node, n.status])).toEqual([['dn1', 'ok'], ['dn2', 'ok'], ['access', 'ok']]);
      const [plus2, plus3] = [await day(2), await day(3)];
      expect(names(first, 'dn1', 'created')).toEqual(['metrics_s0', 'metrics_s2'].flatMap((s) => [`_hypershard.${s}_${plus2}`, `_hypershard.${s}_${plus3}`]));
      expect(names(first, 'dn2', 'created')).toEqual(['metrics_s1', 'metrics_s3'].flatMap((s) => [`_hypershard.${s}_${plus2}`, `_hypershard.${s}_${plus3}`]));
      expect(first.nodes.flatMap((n) => n.created.map((c) => c.reason))).toEqual(Array(8).fill('ahead'));
      expect(first.nodes.find((n) => n.node === 'access')!.analyzed).toEqual(['public.metrics']);

      // The newest chunk of every shard ends at least `ahead` intervals after now…
      const now = Date.parse((await sql<{ now: Date }>(access(), 'SELECT now()'))[0]!.now.toISOString());
      const listed = await listChunks((await loadSpec(specFile)).spec, specFile);
      expect(listed.ok).toBe(true);
      for (const shard of [0, 1, 2, 3]) {
        const newest = Math.max(...listed.nodes.flatMap((n) => n.chunks).filter((c) => c.shard === shard && !c.default).map((c) => Date.parse(c.to!)));
        expect(newest).toBeGreaterThanOrEqual(now + 3 * 86_400_000);
      }
      // …so a row there lands in a chunk, not in a default chunk.
      await sql(access(), `INSERT INTO metrics SELECT now() + interval '3 days', d, 1, 1, 1 FROM generate_series(1, 8) d`);
      expect(await defaultRows()).toBe(0);

      // ANALYZE through postgres_fdw gave the foreign tables statistics.
      for (const row of await sql<{ reltuples: number }>(access(), foreign)) expect(row.reltuples).toBeGreaterThanOrEqual(0);

      const before = await Promise.all(cluster.dataNodes.map((n) => catalogFingerprint(n.url)));
      const second = await run();
      expect(second.nodes.map((n) => [n.node, n.status, n.created.length, n.dropped.length, n.rowsMoved])).toEqual([
        ['dn1', 'ok', 0, 0, 0],
        ['dn2', 'ok', 0, 0, 0],
        ['access', 'ok', 0, 0, 0],
      ]);
      expect(second.nodes.map((n) => n.analyzed)).toEqual([[], [], ['public.metrics']]);
      expect(await Promise.all(cluster.dataNodes.map((n) => catalogFingerprint(n.url)))).toEqual(before);
    });

    it('takes rows far in the past and future into default chunks, lists them, and moves them into proper chunks', async () => {
      await sql(
        access(),
        `INSERT INTO metrics SELECT t, d, d, d * 2, d * 3
         FROM unnest(ARRAY['1990-05-05 10:00+00', '1990-05-06 01:00+00', '2150-06-01 12:00+00']::timestamptz[]) t, generate_series(1, 8) d`,
      );
      const all = 'SELECT time, device_id, cpu, memory, temperature FROM metrics ORDER BY time, device_id';
      const rowsBefore = await sql(access(), all);
      expect(await defaultRows()).toBe(24);

      const listed = await listChunks((await loadSpec(specFile)).spec, specFile, { hypertable: 'metrics' });
      const defaults = listed.nodes.flatMap((n) => n.chunks).filter((c) => c.default);
      expect(defaults.map((c) => c.chunk).sort()).toEqual([0, 1, 2, 3].map((s) => `_hypershard.metrics_s${s}_default`));
      expect(defaults.reduce((a, c) => a + c.rows!, 0)).toBe(24);
      expect(defaults.every((c) => c.range === 'DEFAULT' && c.from === null)).toBe(true);

      const expected = await expectedChunks(`time < '2000-01-01' OR time > '2100-01-01'`, ['19900505T000000', '19900506T000000', '21500601T000000']);
      const dry = await run({ dryRun: true });
      expect(names(dry, 'dn1', 'created')).toEqual(expected.dn1);
      expect(await defaultRows()).toBe(24);

      const result = await run();
      expect(result.ok).toBe(true);
      expect(names(result, 'dn1', 'created')).toEqual(expected.dn1);
      expect(names(result, 'dn2', 'created')).toEqual(expected.dn2);
      expect(result.nodes.flatMap((n) => n.created.map((c) => c.reason))).toEqual(Array(expected.dn1!.length + expected.dn2!.length).fill('default-rows'));
      expect(result.nodes.reduce((a, n) => a + n.rowsMoved, 0)).toBe(24);
      for (const node of cluster.dataNodes) {
        expect(await rowsInDefaults(node.name)).toBe(0);
        for (const chunk of expected[node.name]!) {
          // A proper partition, with the shard's indexes (one per index of the spec) attached to it.
          const [info] = await sql<{ bound: string; indexes: string; rows: string }>(
            node.url,
            `SELECT pg_get_expr(c.relpartbound, c.oid, true) AS bound, (SELECT count(*) FROM pg_index x WHERE x.indrelid = c.oid) AS indexes,
                    (SELECT count(*) FROM ${quoteQualified(...(chunk.split('.') as [string, string]))}) AS rows
             FROM pg_class c WHERE c.oid = $1::regclass`,
            [quoteQualified(...(chunk.split('.') as [string, string]))],
          );
          expect(info!.bound).toMatch(/^FOR VALUES FROM \('(1990-05-0[56]|2150-06-01) 00:00:00\+00'\) TO \('(1990-05-0[67]|2150-06-02) 00:00:00\+00'\)$/);
          expect(Number(info!.indexes)).toBe(layout.hypertables[0]!.indexes.length);
          expect(Number(info!.rows)).toBeGreaterThan(0);
        }
      }
      // The same rows, still read through the access node, now also by a time-pruned query.
      expect(await sql(access(), all)).toEqual(rowsBefore);
      expect((await sql<{ n: string }>(access(), `SELECT count(*) AS n FROM metrics WHERE time < '2000-01-01'`))[0]!.n).toBe('16');

      const listedAfter = await listChunks((await loadSpec(specFile)).spec, specFile);
      const moved = listedAfter.nodes.flatMap((n) => n.chunks).filter((c) => c.chunk.endsWith('_21500601T000000'));
      expect(moved.map((c) => [c.from, c.to])).toEqual(moved.map(() => ['2150-06-01T00:00:00Z', '2150-06-02T00:00:00Z']));
      expect(listedAfter.nodes.flatMap((n) => n.chunks).filter((c) => c.default).every((c) => c.rows === 0)).toBe(true);

      const again = await run();
      expect(again.nodes.map((n) => [n.created.length, n.rowsMoved])).toEqual([[0, 0], [0, 0], [0, 0]]);
    });

    it('retention drops exactly the expired chunks on every node and keeps the newer ones', async () => {
      const old = `date_trunc('day', now()) - interval '40 days' + interval '12 hours'`;
      const recent = `date_trunc('day', now()) - interval '20 days' + interval '12 hours'`;
      await sql(access(), `INSERT INTO metrics SELECT t, d, 1, 1, 1 FROM unnest(ARRAY[${old}, ${recent}]) t, generate_series(1, 8) d`);
      const made = await run();
      expect(made.nodes.reduce((a, n) => a + n.rowsMoved, 0)).toBe(16);

      const minus40 = await day(-40);
      const minus20 = await day(-20);
      const expired = await expectedChunks(`time < now() - interval '30 days'`, ['19900505T000000', '19900506T000000', minus40]);
      const kept = await expectedChunks(`time > now() - interval '30 days'`, [minus20]);
      const countBefore = Number((await sql<{ n: string }>(access(), 'SELECT count(*) AS n FROM metrics'))[0]!.n);

      await editHypertable(specFile, { retention: '30 days' });
      const fingerprints = await Promise.all(cluster.dataNodes.map((n) => catalogFingerprint(n.url)));
      const dry = await run({ dryRun: true });
      expect(dry.dryRun).toBe(true);
      expect(names(dry, 'dn1', 'dropped')).toEqual(expired.dn1);
      expect(names(dry, 'dn2', 'dropped')).toEqual(expired.dn2);
      expect(await Promise.all(cluster.dataNodes.map((n) => catalogFingerprint(n.url)))).toEqual(fingerprints);

      const result = await run();
      expect(result.ok).toBe(true);
      expect(names(result, 'dn1', 'dropped')).toEqual(expired.dn1);
      expect(names(result, 'dn2', 'dropped')).toEqual(expired.dn2);
      const [today, plus3] = [await day(0), await day(3)];
      for (const node of cluster.dataNodes) {
        const left = await chunkNames(node.url);
        for (const chunk of expired[node.name]!) expect(left).not.toContain(chunk);
        for (const chunk of kept[node.name]!) expect(left).toContain(chunk);
        // The default chunks, the chunks around now and far in the future all remain.
        expect(left.filter((c) => c.endsWith('_default'))).toHaveLength(2);
        expect(left.filter((c) => c.endsWith(`_${today}`) || c.endsWith(`_${plus3}`))).toHaveLength(4);
      }
      // 1990 (16 rows) and 40 days ago (8 rows) are gone, nothing else.
      expect(Number((await sql<{ n: string }>(access(), 'SELECT count(*) AS n FROM metrics'))[0]!.n)).toBe(countBefore - 24);

      const again = await run();
      expect(again.nodes.map((n) => n.dropped.length)).toEqual([0, 0, 0]);
    });

    it('runs one maintain at a time per node: a run that finds the lock taken reports the node skipped', async () => {
      // Rows in every default chunk, held the way an INSERT holds them: the first run then waits
      // to lock one (to move its rows) while it holds the maintain lock on every node.
      await sql(access(), `INSERT INTO metrics SELECT '1970-01-01 12:00+00', d, 1, 1, 1 FROM generate_series(1, 40) d`);
      const blockers = await holdDefaults();
      const events: MaintainProgress[] = [];
      let firstDone = false;
      const first = run({ lockTimeoutMs: 60_000, onProgress: (e) => events.push(e) }).finally(() => {
        firstDone = true;
      });
      try {
        for (let i = 0; i < 300 && new Set(events.filter((e) => e.step === 'lock').map((e) => e.node)).size < 3; i += 1) await new Promise((r) => setTimeout(r, 50));
        expect(new Set(events.filter((e) => e.step === 'lock').map((e) => e.node))).toEqual(new Set(['dn1', 'dn2', 'access']));

        const second = await run();
        expect(second.ok).toBe(true);
        expect(second.nodes.map((n) => [n.node, n.status, n.reason])).toEqual([
          ['dn1', 'skipped', SKIPPED_REASON],
          ['dn2', 'skipped', SKIPPED_REASON],
          ['access', 'skipped', SKIPPED_REASON],
        ]);
        expect(firstDone).toBe(false);
      } finally {
        await Promise.all(blockers.map((c) => c.query('COMMIT').then(() => c.end())));
      }
      const done = await first;
      expect(done.nodes.map((n) => [n.node, n.status])).toEqual([['dn1', 'ok'], ['dn2', 'ok'], ['access', 'ok']]);
      expect(done.nodes.reduce((a, n) => a + n.rowsMoved, 0)).toBe(40);
      expect(await defaultRows()).toBe(0);

      // Started together without a blocker, each node is maintained by one run or by both in turn.
      const both = await Promise.all([run(), run()]);
      for (const result of both) expect(result.nodes.every((n) => n.status === 'ok' || (n.status === 'skipped' && n.reason === SKIPPED_REASON))).toBe(true);
      for (const node of ['dn1', 'dn2', 'access']) {
        expect(both.some((r) => r.nodes.find((n) => n.node === node)!.status === 'ok')).toBe(true);
      }
      // Every lock was released: a run now gets every node. With nothing to move or create it
      // locks no table, so a writer holding a default chunk does not make it wait (1 s would fail it).
      const writers = await holdDefaults();
      try {
        expect((await run({ lockTimeoutMs: 1000 })).nodes.map((n) => n.status)).toEqual(['ok', 'ok', 'ok']);
      } finally {
        await Promise.all(writers.map((c) => c.query('COMMIT').then(() => c.end())));
      }
    });

    it('reports a node that cannot be reached and maintains the others', async () => {
      const doc = parseDocument(await readFile(specFile, 'utf8'));
      const url = new URL(String(doc.getIn(['dataNodes', 1, 'url'])));
      url.port = '1';
      doc.setIn(['dataNodes', 1, 'url'], url.toString());
      const broken = join(cluster.workDir, 'maintain', 'broken.yaml');
      await writeFile(broken, doc.toString());
      const { spec, file } = await loadSpec(broken);
      const result = await maintain(spec, file, { timeoutMs: 5000 });
      expect(result.ok).toBe(false);
      expect(result.nodes.map((n) => [n.node, n.status])).toEqual([['dn1', 'ok'], ['dn2', 'failed'], ['access', 'ok']]);
      expect(result.nodes[1]!.errors).toEqual([{ step: 'connect', message: expect.stringMatching(/^node dn2: connection refused/) }]);
      const chunks = await listChunks(spec, file, { timeoutMs: 5000 });
      expect(chunks.nodes.map((n) => [n.node, n.status])).toEqual([['dn1', 'ok'], ['dn2', 'failed']]);
    });

    it('the CLI: chunks and maintain print tables, --json documents and exit codes', async () => {
      const cli = (args: string[]): Promise<{ code: number; stdout: string; stderr: string }> =>
        new Promise((resolve) => {
          execFile(process.execPath, [BIN, ...args], { timeout: 120_000 }, (error, stdout, stderr) => {
            resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : 1, stdout, stderr });
          });
        });
      await sql(access(), `INSERT INTO metrics VALUES ('1999-01-01 00:00+00', 1, 1, 1, 1)`);

      const chunks = await cli(['chunks', '-c', specFile, '--hypertable', 'public.metrics']);
      expect(chunks.code).toBe(0);
      expect(chunks.stdout.split('\n')[0]).toMatch(/^node +hypertable +shard +chunk +range +size +rows \(estimate\)$/);
      expect(chunks.stdout).toMatch(/_hypershard\.metrics_s\d_default +DEFAULT +\S+ \S+ +default, 1 row\n/);
      expect(chunks.stdout).toContain('1 row in default chunks');

      const unknown = await cli(['chunks', '-c', specFile, '--hypertable', 'nope']);
      expect(unknown.code).toBe(2);
      expect(unknown.stderr).toContain('unknown hypertable nope; the spec has public.metrics');

      const dry = await cli(['maintain', '-c', specFile, '--dry-run']);
      expect(dry.code).toBe(0);
      expect(dry.stdout).toMatch(/^Dry run: nothing was changed/);
      expect(dry.stdout).toMatch(/would create _hypershard\.metrics_s\d_19990101T000000 \[1999-01-01T00:00:00Z, 1999-01-02T00:00:00Z\), moving 1 row from the default chunk/);

      const real = await cli(['maintain', '-c', specFile, '--json']);
      expect(real.code).toBe(0);
      const doc = JSON.parse(real.stdout) as MaintainResult;
      expect(doc.nodes.map((n) => n.status)).toEqual(['ok', 'ok', 'ok']);
      expect(doc.nodes.reduce((a, n) => a + n.rowsMoved, 0)).toBe(1);
      // Retention (30 days) drops the chunk it just made for a row from 1999.
      expect(doc.nodes.flatMap((n) => n.dropped.map((c) => c.chunk))).toEqual([expect.stringMatching(/_19990101T000000$/)]);

      // The README's cron line (`maintain --json > log || cat log`): nothing on stderr when all is
      // well, so cron mails nothing; exit 1 with the report on stdout when a node failed.
      expect(real.stderr).toBe('');
      const unreachable = parseDocument(await readFile(specFile, 'utf8'));
      const url = new URL(String(unreachable.getIn(['dataNodes', 1, 'url'])));
      url.port = '1';
      unreachable.setIn(['dataNodes', 1, 'url'], url.toString());
      const cronSpec = join(cluster.workDir, 'maintain', 'cron.yaml');
      await writeFile(cronSpec, unreachable.toString());
      const failed = await cli(['maintain', '-c', cronSpec, '--json']);
      expect([failed.code, failed.stderr]).toEqual([1, '']);
      const report = JSON.parse(failed.stdout) as MaintainResult;
      expect([report.ok, report.nodes.map((n) => n.status)]).toEqual([false, ['ok', 'failed', 'ok']]);

      const text = await cli(['maintain', '-c', specFile]);
      expect(text.code).toBe(0);
      expect(text.stdout).toMatch(/^node +role +status +chunks created +chunks dropped +rows moved +analyzed +ms\n/);
      expect(text.stdout).toContain('access: analyzed public.metrics');
    });

    it('moves and drops chunks of a hypertable with hostile names and a timestamp (without time zone) time column', async () => {
      const doc = parseDocument(await readFile(specFile, 'utf8'));
      const table = `odd "name"; DROP TABLE metrics; --`;
      const schema = `sch 'q' $hs$`;
      doc.addIn(['hypertables'], {
        name: table,
        schema,
        columns: [
          { name: 'ti"me', type: 'timestamp', notNull: true },
          { name: 'dev ice', type: 'integer', notNull: true },
          { name: "v'al", type: 'text' },
        ],
        timeColumn: 'ti"me',
        chunkInterval: '6 hours',
        chunks: { behind: 0, ahead: 1 },
        retention: '7 days',
        spaceColumn: 'dev ice',
        shards: 2,
      });
      await writeFile(specFile, doc.toString());
      const { spec, file } = await loadSpec(specFile);
      await generateMigrations(spec, file);
      expect((await apply(spec, file)).ok).toBe(true);
      const target = quoteQualified(schema, table);
      await sql(
        access(),
        `INSERT INTO ${target} SELECT t, d, $$v'$$ || d
         FROM unnest(ARRAY['1990-05-05 10:00', (now() AT TIME ZONE 'UTC') - interval '8 days', '2150-06-01 23:00']::timestamp[]) t, generate_series(1, 4) d`,
      );
      const all = `SELECT * FROM ${target} ORDER BY 1, 2`;
      const before = await sql(access(), all);

      const result = await maintain(spec, file);
      expect(result.ok).toBe(true);
      const created = result.nodes.flatMap((n) => n.created.filter((c) => c.reason === 'default-rows'));
      // Bounds of timestamp chunks are UTC wall-clock times; 6-hour chunks start at 00, 06, 12 and 18.
      expect(new Set(created.filter((c) => c.chunk.endsWith('_19900505T060000')).map((c) => `${c.from} ${c.to}`))).toEqual(new Set(['1990-05-05T06:00:00Z 1990-05-05T12:00:00Z']));
      expect(created.filter((c) => c.chunk.endsWith('_21500601T180000'))).toHaveLength(2);
      expect(result.nodes.reduce((a, n) => a + n.rowsMoved, 0)).toBe(12);
      // The 1990 chunks and those 8 days back are past the 7-day retention: made, then dropped.
      const dropped = result.nodes.flatMap((n) => n.dropped.map((c) => c.chunk.split('_').at(-1)!)).sort();
      expect(dropped.filter((d) => d === '19900505T060000')).toHaveLength(2);
      expect(dropped).toHaveLength(4);
      expect(await sql(access(), all)).toEqual(before.filter((r) => (r['ti"me'] as Date).getUTCFullYear() === 2150));
    });
  });
}
