/**
 * The spec `init` and `dev up` write has the index TimescaleDB users expect (`time DESC` alone,
 * besides device + time), so `ORDER BY time DESC LIMIT n` through the access node reads the
 * newest rows by index on every data node instead of reading every chunk whole and sorting.
 * Measured on the data nodes' own statistics (pg_stat_user_tables) around one query.
 */
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateMigrations } from '../../src/migrations/files.js';
import { apply } from '../../src/nodes/apply.js';
import { planLayout } from '../../src/plan/layout.js';
import { metadataFromLayout } from '../../src/rewrite/metadata.js';
import { rewriteSql } from '../../src/rewrite/rewrite.js';
import { loadSpec } from '../../src/spec/load.js';
import { clusterSources, type TestCluster } from '../support/clusters.js';
import { sql } from '../support/db.js';
import { writeExampleSpec, writeSecrets } from '../support/spec.js';

const SOURCES = clusterSources().filter((s) => !s.label.includes('testcontainers'));
/** Rows today: more per shard than one FETCH of postgres_fdw (the spec's fetchSize, 10,000). */
const TODAY = 48_000;
const OLDER_DAYS = 3;
const PER_OLDER_DAY = 2_000;

interface ChunkScans {
  chunk: string;
  today: boolean;
  rows: number;
  seqScan: number;
  tuplesRead: number;
}

/** Per chunk of every shard on a data node: scans and index tuples read so far. */
async function chunkScans(url: string): Promise<Map<string, ChunkScans>> {
  const rows = await sql<{ chunk: string; today: boolean; rows: number; seq_scan: number; tuples: number }>(
    url,
    `SELECT c.relname AS chunk,
            pg_get_expr(c.relpartbound, c.oid) LIKE '%' || to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD') || ' 00:00:00%) TO%' AS today,
            s.n_live_tup::int AS rows, s.seq_scan::int AS seq_scan,
            (SELECT coalesce(sum(x.idx_tup_read), 0) FROM pg_stat_user_indexes x WHERE x.relid = c.oid)::int AS tuples
     FROM pg_class p JOIN pg_inherits i ON i.inhparent = p.oid JOIN pg_class c ON c.oid = i.inhrelid
     JOIN pg_stat_user_tables s ON s.relid = c.oid
     WHERE p.relnamespace = '_hypershard'::regnamespace AND p.relkind = 'p'`,
  );
  return new Map(rows.map((r) => [r.chunk, { chunk: r.chunk, today: r.today, rows: r.rows, seqScan: r.seq_scan, tuplesRead: r.tuples }]));
}

const QUERY = 'SELECT time, device_id, cpu FROM metrics ORDER BY time DESC LIMIT 10';

/**
 * Runs `query` alone in a fresh access-node session and returns its rows and, per chunk on the data
 * nodes, the sequential scans and index entries read meanwhile (the FDW sessions flush their
 * statistics when they end, with the access-node session).
 */
async function measure(cluster: TestCluster, query: string): Promise<{ rows: { time: Date; cpu: number }[]; deltas: ChunkScans[] }> {
  await sleep(1500); // statistics of earlier sessions settle
  const before = await Promise.all(cluster.dataNodes.map((n) => chunkScans(n.url)));
  const client = new pg.Client({ connectionString: cluster.accessNode.url });
  await client.connect();
  const { rows } = await client.query<{ time: Date; cpu: number }>(query);
  await client.end();
  const deltas: ChunkScans[] = [];
  for (const [i, node] of cluster.dataNodes.entries()) {
    let delta: ChunkScans[] = [];
    for (let attempt = 0; attempt < 50; attempt += 1) {
      delta = [...(await chunkScans(node.url)).values()].map((a) => {
        const b = before[i]!.get(a.chunk);
        return { ...a, seqScan: a.seqScan - (b?.seqScan ?? 0), tuplesRead: a.tuplesRead - (b?.tuplesRead ?? 0) };
      });
      if (delta.some((d) => d.tuplesRead > 0 || d.seqScan > 0)) break;
      await sleep(200);
    }
    deltas.push(...delta);
  }
  return { rows: rows.map((r) => ({ time: r.time, cpu: r.cpu })), deltas };
}

for (const source of SOURCES) {
  describe(`ORDER BY time DESC LIMIT on the example spec (${source.label})`, () => {
    let cluster: TestCluster | undefined;
    let skip: string | undefined;
    let specFile: string;

    beforeAll(async () => {
      skip = await source.unavailable();
      if (skip !== undefined) return;
      cluster = await source.start(2);
      const dir = join(cluster.workDir, 'newest');
      specFile = await writeExampleSpec(cluster, dir);
      await writeSecrets(dir);
      const { spec, file } = await loadSpec(specFile);
      await generateMigrations(spec, file);
      expect((await apply(spec, file)).ok).toBe(true);
      // Today's chunk (from 00:00 UTC on, into the chunks made ahead) and a few older days, many devices.
      await sql(
        cluster.accessNode.url,
        `INSERT INTO metrics (time, device_id, cpu)
         SELECT date_bin('1 day', now(), '2000-01-01') + i * interval '1 second', i % 4000, i FROM generate_series(0, ${TODAY - 1}) i;
         INSERT INTO metrics (time, device_id, cpu)
         SELECT date_bin('1 day', now(), '2000-01-01') - d * interval '1 day' + i * interval '40 second', i % 4000, i
         FROM generate_series(1, ${OLDER_DAYS}) d, generate_series(0, ${PER_OLDER_DAY - 1}) i;
         ANALYZE metrics`,
      );
      for (const node of cluster.dataNodes) await sql(node.url, 'ANALYZE');
    }, 240_000);
    afterAll(async () => {
      await cluster?.stop();
    });

    it('reads the newest rows by index on each data node, no chunk read whole', async (ctx) => {
      if (skip !== undefined || cluster === undefined) return ctx.skip();
      // The access node asks each shard for its rows newest first, and merges.
      const explain = await sql<{ 'QUERY PLAN': string }>(cluster.accessNode.url, `EXPLAIN (VERBOSE) ${QUERY}`);
      const plan = explain.map((r) => r['QUERY PLAN']).join('\n');
      expect(plan).toContain('Merge Append');
      expect(plan.match(/Remote SQL: SELECT .* ORDER BY "time" DESC NULLS FIRST/g)).toHaveLength(4);

      const { rows, deltas: all } = await measure(cluster, QUERY);
      expect(rows.map((r) => r.cpu)).toEqual(Array.from({ length: 10 }, (_, i) => TODAY - 1 - i));

      const older = all.filter((d) => !d.today && d.rows > 0);
      const today = all.filter((d) => d.today);
      expect(older.length).toBeGreaterThanOrEqual(4 * OLDER_DAYS);
      expect(today).toHaveLength(4);
      // No chunk was read whole: not one sequential scan.
      expect(all.filter((d) => d.seqScan > 0).map((d) => d.chunk)).toEqual([]);
      // Today's chunk of each shard gives what the access node fetches (up to one FETCH of 10,000 rows)...
      for (const t of today) expect(t.tuplesRead, t.chunk).toBeGreaterThan(0);
      // ...and an older chunk gives at most the first entry of its index (the merge of a shard's
      // chunks asks each for its newest row: a default chunk keeps PostgreSQL from an ordered Append).
      for (const o of older) expect(o.tuplesRead, `${o.chunk} (${o.rows} rows)`).toBeLessThanOrEqual(2);
      const read = all.reduce((a, d) => a + d.tuplesRead, 0);
      const stored = all.reduce((a, d) => a + d.rows, 0);
      console.log(`[${source.label}] ORDER BY time DESC LIMIT 10: ${read} index entries read on the data nodes of ${stored} rows stored, no sequential scan`);

      // Rewritten (as hypershard/pg, the gateway and \`hypershard query\` run it), each shard sends its first 10 rows.
      const { spec } = await loadSpec(specFile);
      const rewritten = rewriteSql(QUERY, metadataFromLayout(planLayout(spec)), { timeZone: 'UTC', searchPath: ['public'] });
      expect(rewritten.rewrites.map((r) => r.kind)).toContain('limit-per-shard');
      const again = await measure(cluster, rewritten.sql);
      expect(again.rows).toEqual(rows);
      expect(again.deltas.filter((d) => d.seqScan > 0)).toEqual([]);
      const readRewritten = again.deltas.reduce((a, d) => a + d.tuplesRead, 0);
      expect(readRewritten).toBeLessThanOrEqual(4 * 10 + again.deltas.filter((d) => !d.today).length);
      console.log(`[${source.label}] rewritten: ${readRewritten} index entries read`);
    });
  });
}
