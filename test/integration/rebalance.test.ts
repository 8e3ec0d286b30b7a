/**
 * rebalance on a real cluster: shards move to an empty data node while readers keep reading, rows
 * and their checksum are the same before and after, an interrupted move is rolled back by the next
 * run, and generate / apply / check afterwards have nothing to do.
 */
import { execFile, execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addDataNodeToSpec } from '../../src/cluster/addDataNode.js';
import { check } from '../../src/drift/check.js';
import { generateMigrations } from '../../src/migrations/files.js';
import { apply } from '../../src/nodes/apply.js';
import { planLayout } from '../../src/plan/layout.js';
import { rebalance } from '../../src/rebalance/rebalance.js';
import type { RebalanceProgress } from '../../src/rebalance/result.js';
import { status } from '../../src/ops/status.js';
import { loadSpec } from '../../src/spec/load.js';
import { clusterSources, type TestCluster } from '../support/clusters.js';
import { sql } from '../support/db.js';
import { specNode, writeExampleSpec, writeSecrets } from '../support/spec.js';

const BIN = fileURLToPath(new URL('../../bin/hypershard.js', import.meta.url));
const ROWS = 100_000;
const SOURCES = clusterSources().filter((s) => s.label.includes('embedded') || s.label.includes('system'));

const fingerprint = async (url: string): Promise<{ n: number; sum: string }> =>
  ((await sql<{ n: number; sum: string }>(url, `SELECT count(*)::int AS n, coalesce(sum(hashtextextended(ROW(m.*)::text, 0)::numeric), 0)::text AS sum FROM metrics m`))[0]) as { n: number; sum: string };

/** SELECT count(*) every 20 ms until stopped: errors and the longest latency. */
function readerLoop(url: string): { stop: () => Promise<{ reads: number; errors: string[]; maxMs: number; medianMs: number }> } {
  let running = true;
  const errors: string[] = [];
  let maxMs = 0;
  let reads = 0;
  const latencies: number[] = [];
  const done = (async () => {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    await client.query('SELECT count(*) FROM metrics'); // opens the FDW connections before timing
    try {
      while (running) {
        const t0 = performance.now();
        try {
          await client.query('SELECT count(*) FROM metrics');
          reads += 1;
        } catch (error) {
          errors.push(String(error));
        }
        maxMs = Math.max(maxMs, performance.now() - t0);
        latencies.push(performance.now() - t0);
        await new Promise((r) => setTimeout(r, 20));
      }
    } finally {
      await client.end();
    }
  })();
  return {
    stop: async () => {
      running = false;
      await done;
      const sorted = [...latencies].sort((a, b) => a - b);
      return { reads, errors, maxMs: Math.round(maxMs), medianMs: Math.round(sorted[Math.floor(sorted.length / 2)] ?? 0) };
    },
  };
}

for (const source of SOURCES) {
  describe(`rebalance (${source.label})`, () => {
    let cluster: TestCluster | undefined;
    let skip: string | undefined;
    let specFile: string;

    beforeAll(async () => {
      skip = await source.unavailable();
      if (skip !== undefined) return;
      cluster = await source.start(3);
      const dir = join(cluster.workDir, 'rebalance');
      specFile = await writeExampleSpec({ ...cluster, dataNodes: cluster.dataNodes.slice(0, 2) }, dir);
      await writeSecrets(dir);
      let { spec, file } = await loadSpec(specFile);
      await generateMigrations(spec, file);
      expect((await apply(spec, file)).ok).toBe(true);
      await addDataNodeToSpec(specFile, specNode(cluster.dataNodes[2]!));
      ({ spec, file } = await loadSpec(specFile));
      await generateMigrations(spec, file);
      expect((await apply(spec, file)).ok).toBe(true);
      // Five days back: older rows than chunks.behind (3) sit in the default chunks.
      await sql(cluster.accessNode.url, `INSERT INTO metrics SELECT now() - (i % 7200) * interval '1 minute', i % 50, i, i / 3.0, NULL FROM generate_series(1, ${ROWS}) i`);
    }, 240_000);
    afterAll(async () => {
      await cluster?.stop();
    });

    it('plans moves to the empty node in a dry run, changing nothing', async (ctx) => {
      if (skip !== undefined || cluster === undefined) return ctx.skip();
      const { spec, file } = await loadSpec(specFile);
      const result = await rebalance(spec, file, { dryRun: true });
      expect(result.ok).toBe(true);
      expect(result.moves.length).toBeGreaterThan(0);
      expect(result.moves.every((m) => m.status === 'would-move' && m.target === 'dn3')).toBe(true);
      expect((await loadSpec(specFile)).spec).toEqual(spec);

      const run = await new Promise<{ code: number; stdout: string }>((resolve) =>
        execFile(process.execPath, [BIN, 'rebalance', '-c', specFile, '--dry-run'], (error, stdout) => resolve({ code: error === null ? 0 : Number(error.code), stdout })),
      );
      expect(run.code).toBe(0);
      expect(run.stdout).toContain('Dry run: nothing was changed. A run would make these moves:');
      expect(run.stdout).toMatch(/public\.metrics\s+\d+\s+dn[12]\s+dn3\s+.+\s+dn[12] 2 shards → 1 shard, dn3 0 shards → 1 shard; max\/min a node empty → 2\.00/);
    });

    it('rolls back a move interrupted mid-copy, then moves shards to dn3 while readers keep reading', async (ctx) => {
      if (skip !== undefined || cluster === undefined) return ctx.skip();
      const access = cluster.accessNode.url;
      const before = await fingerprint(access);
      expect(before.n).toBe(ROWS);

      // The copy fails after its first range: the transaction rolls back, the journal says `copying`.
      let { spec, file } = await loadSpec(specFile);
      const interrupted = await rebalance(spec, file, {
        onProgress: (e) => {
          if (e.phase === 'copy' && e.rowsCopied > 0) throw new Error('killed mid-copy');
        },
      });
      expect(interrupted.ok).toBe(false);
      expect(interrupted.moves[0]).toMatchObject({ status: 'failed', phase: 'copy', error: 'killed mid-copy' });
      expect(interrupted.specWritten).toBe(false);
      expect(await sql(access, `SELECT phase FROM _hypershard.moves`)).toEqual([{ phase: 'copying' }]);
      expect(await fingerprint(access)).toEqual(before);

      // The next run rolls it back; its own copy then loses its access-node backend
      // (pg_terminate_backend from another session, synchronously, between two ranges).
      ({ spec, file } = await loadSpec(specFile));
      let terminated = 0;
      const killed = await rebalance(spec, file, {
        onProgress: (e) => {
          if (e.phase !== 'copy' || e.rowsCopied === 0 || terminated > 0) return;
          const script = `import pg from 'pg'; const c = new pg.Client(${JSON.stringify(access)}); await c.connect();
            const r = await c.query("SELECT count(*) FILTER (WHERE pg_terminate_backend(pid))::int AS n FROM (SELECT pid FROM pg_stat_activity WHERE application_name = 'hypershard' AND state = 'idle in transaction' OFFSET 0) s");
            process.stdout.write(String(r.rows[0].n)); await c.end();`;
          terminated = Number(execFileSync(process.execPath, ['--input-type=module', '-e', script], { cwd: process.cwd(), encoding: 'utf8' }));
        },
      });
      expect(terminated).toBe(1);
      expect(killed.recovered.map((r) => [r.phase, r.action])).toEqual([['copying', 'rolled-back']]);
      expect(killed.ok).toBe(false);
      expect(killed.moves[0]).toMatchObject({ status: 'failed', phase: 'copy' });
      expect(await sql(access, `SELECT phase FROM _hypershard.moves`)).toEqual([{ phase: 'copying' }]);
      expect(await fingerprint(access)).toEqual(before);

      // The next run rolls that back too and moves, while a reader queries every 20 ms.
      ({ spec, file } = await loadSpec(specFile));
      const reader = readerLoop(access);
      const progress: RebalanceProgress[] = [];
      const result = await rebalance(spec, file, { onProgress: (e) => progress.push(e) });
      const reads = await reader.stop();
      expect(result.recovered.map((r) => [r.phase, r.action])).toEqual([['copying', 'rolled-back']]);
      expect(result.ok).toBe(true);
      expect(result.moves.length).toBeGreaterThan(0);
      expect(result.moves.every((m) => m.status === 'moved' && m.target === 'dn3')).toBe(true);
      expect(progress.some((p) => p.phase === 'copy' && p.rowsCopied > 0)).toBe(true);
      expect(reads.errors).toEqual([]);
      expect(reads.reads).toBeGreaterThan(0);
      expect(await fingerprint(access)).toEqual(before);
      expect(await sql(access, `SELECT phase, count(*)::int AS n FROM _hypershard.moves GROUP BY phase`)).toEqual([{ phase: 'cleaned', n: result.moves.length }]);
      const totalRows = result.moves.reduce((a, m) => a + m.rows, 0);
      const totalMs = result.moves.reduce((a, m) => a + m.durationMs, 0);
      console.log(
        `[${source.label}] rebalance: ${result.moves.length} move(s), ${totalRows} rows, copy ${result.moves.map((m) => `${m.rowsPerSecond} rows/s`).join(', ')}, ` +
          `overall ${Math.round(totalRows / Math.max(totalMs / 1000, 0.001))} rows/s; switch ${result.moves.map((m) => `${m.switchMs} ms`).join(', ')}; ` +
          `${reads.reads} reads, median ${reads.medianMs} ms, longest ${reads.maxMs} ms`,
      );

      // The spec records the placement; every row sits on the node that owns its shard.
      ({ spec, file } = await loadSpec(specFile));
      const metrics = spec.hypertables[0]!;
      expect(metrics.placement).toEqual(Object.fromEntries(result.moves.map((m) => [String(m.shard), 'dn3'])));
      // Moved shards have statistics right away, on dn3 and on the access node, without an ANALYZE by hand.
      const seen = await status(spec, file);
      const dn3 = seen.nodes.find((n) => n.node === 'dn3');
      expect(dn3 !== undefined && 'rows' in dn3 ? dn3.rows : undefined).toBeGreaterThan(0);
      for (const m of result.moves) {
        const table = planLayout(spec).hypertables[0]!.shards[m.shard]!.table.name;
        const [foreign] = await sql<{ reltuples: number }>(access, `SELECT reltuples FROM pg_class WHERE oid = '_hypershard.${table}'::regclass`);
        expect(foreign!.reltuples, `access node's ${table}`).toBeGreaterThan(0);
        const [leaves] = await sql<{ unknown: number }>(cluster.dataNodes[2]!.url, `SELECT count(*) FILTER (WHERE c.reltuples < 0 AND c.relpages > 0)::int AS unknown FROM pg_partition_tree('_hypershard.${table}') t JOIN pg_class c ON c.oid = t.relid WHERE t.isleaf`);
        expect(leaves!.unknown, `chunks of ${table} on dn3 without statistics`).toBe(0);
      }

      const layout = planLayout(spec);
      let sum = 0;
      for (const shard of layout.hypertables[0]!.shards) {
        const [{ n }] = (await sql<{ n: number }>(access, `SELECT count(*)::int AS n FROM _hypershard.${shard.table.name}`)) as [{ n: number }];
        for (const node of cluster.dataNodes) {
          const [{ exists }] = (await sql<{ exists: boolean }>(node.url, `SELECT to_regclass('_hypershard.${shard.table.name}') IS NOT NULL AS exists`)) as [{ exists: boolean }];
          expect(exists, `${shard.table.name} on ${node.name}`).toBe(node.name === shard.dataNode);
        }
        const owner = cluster.dataNodes.find((d) => d.name === shard.dataNode)!;
        const [{ m }] = (await sql<{ m: number }>(owner.url, `SELECT count(*)::int AS m FROM _hypershard.${shard.table.name}`)) as [{ m: number }];
        expect(m).toBe(n);
        sum += m;
      }
      expect(sum).toBe(ROWS);

      // generate, apply and check agree with the cluster as it is now.
      expect((await generateMigrations(spec, file)).changes).toEqual([]);
      const applied = await apply(spec, file);
      expect(applied.ok).toBe(true);
      expect(applied.nodes.every((n) => n.status === 'up-to-date')).toBe(true);
      const drift = await check(spec, file);
      expect(drift.nodes.flatMap((n) => n.items.filter((i) => i.kind !== 'warning').map((i) => `${n.node}: ${i.message}`))).toEqual([]);

      // A second run has nothing to do.
      const again = await rebalance(spec, file);
      expect(again.ok).toBe(true);
      expect(again.moves).toEqual([]);
    }, 240_000);

    it('refuses a hand edit of the spec that moves a shard, pointing to rebalance', async (ctx) => {
      if (skip !== undefined || cluster === undefined) return ctx.skip();
      const { spec, file } = await loadSpec(specFile);
      const metrics = spec.hypertables[0]!;
      const edited = { ...spec, hypertables: [{ ...metrics, placement: { ...metrics.placement, '0': 'dn2' } }] };
      await expect(generateMigrations(edited, file)).rejects.toThrow(/rebalance/);
    });
  });
}
