/**
 * `exec` and `status` on real clusters (access node + 2 data nodes, the example spec applied,
 * rows inserted through the access node): results per node, node selection, failures on one
 * node, transactional exec (one-phase, then two-phase after a restart with prepared transactions
 * allowed) that leaves nothing behind on failure, shards and sizes per data node, skew, and nodes
 * that cannot be reached. The CLI runs as built (`npm run build` first).
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile, stat, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HypershardError, UnknownNodeError } from '../../src/errors.js';
import { generateMigrations } from '../../src/migrations/files.js';
import { apply } from '../../src/nodes/apply.js';
import { exec } from '../../src/ops/exec.js';
import type { ExecResult } from '../../src/ops/execResult.js';
import { status, type DataNodeStatus, type StatusResult } from '../../src/ops/status.js';
import { loadSpec } from '../../src/spec/load.js';
import { clusterSources, type TestCluster } from '../support/clusters.js';
import { sql } from '../support/db.js';
import { specNode, writeExampleSpec, writeSecrets } from '../support/spec.js';

const BIN = fileURLToPath(new URL('../../bin/hypershard.js', import.meta.url));
const BUILT = existsSync(fileURLToPath(new URL('../../dist/cli/commands/status.js', import.meta.url)));

interface Run {
  code: number;
  stdout: string;
  stderr: string;
  ms: number;
}

function hypershard(args: string[], cwd: string): Promise<Run> {
  const started = Date.now();
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { cwd, timeout: 120_000, env: process.env }, (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : 1, stdout, stderr, ms: Date.now() - started });
    });
  });
}

/** A port nothing listens on (bound, then released). */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** A port that accepts connections and never answers: what a hung or firewalled node looks like. */
async function silentServer(): Promise<{ port: number; close: () => Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/**
 * Restarts every node of a dev cluster with prepared transactions allowed, through the state file
 * `dev up` writes (this file starts them with max_prepared_transactions = 0; ALTER SYSTEM overrides it).
 * Runs pg_ctl as the data directory's owner, as the dev cluster does when we are root.
 */
async function restartWithPreparedTransactions(cluster: TestCluster, clusterDir: string): Promise<void> {
  const state = JSON.parse(await readFile(join(clusterDir, 'cluster.json'), 'utf8')) as {
    pgCtl: string;
    nodes: { name: string; dataDir: string; logFile: string; nodeDir: string }[];
  };
  for (const url of [cluster.accessNode.url, ...cluster.dataNodes.map((n) => n.url)]) await sql(url, 'ALTER SYSTEM SET max_prepared_transactions = 10');
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('PG')) env[k] = v;
  await Promise.all(
    state.nodes.map(async (node) => {
      const owner = await stat(node.dataDir);
      const asOwner = process.getuid?.() === 0 && owner.uid !== 0 ? { uid: owner.uid, gid: owner.gid } : {};
      await new Promise<void>((resolve, reject) => {
        // -l: without a log file the server would keep pg_ctl's stdout, and execFile would wait for it.
        execFile(state.pgCtl, ['restart', '-D', node.dataDir, '-l', node.logFile, '-m', 'fast', '-w', '-t', '60'], { cwd: node.nodeDir, env: { ...env, HOME: node.nodeDir }, timeout: 90_000, ...asOwner }, (error, stdout, stderr) =>
          error === null ? resolve() : reject(new Error(`pg_ctl restart ${node.name}: ${error.message}\n${stdout}\n${stderr}`)),
        );
      });
    }),
  );
}

const statusOf = (result: ExecResult): string[][] => result.nodes.map((n) => [n.node, n.status]);
const relationExists = async (url: string, name: string): Promise<boolean> => (await sql<{ r: string | null }>(url, 'SELECT to_regclass($1)::text AS r', [name]))[0]!.r !== null;
const count = async (url: string, table: string): Promise<number> => Number((await sql<{ n: string }>(url, `SELECT count(*) AS n FROM ${table}`))[0]!.n);

const sources = await Promise.all(clusterSources().map(async (s) => ({ source: s, skip: await s.unavailable() })));

for (const { source, skip } of sources) {
  describe.skipIf(skip !== undefined)(`${source.label}${skip === undefined ? '' : ` — skipped: ${skip}`}`, () => {
    let cluster: TestCluster;
    let dir: string;
    let specFile: string;
    /** Rows per shard table, counted on the data node that holds it. */
    const shardRows = new Map<string, number>();
    const urlOf = (node: string): string => (node === 'access' ? cluster.accessNode : cluster.dataNodes.find((n) => n.name === node)!).url;
    const allUrls = (): string[] => [cluster.dataNodes[0]!.url, cluster.dataNodes[1]!.url, cluster.accessNode.url];
    const run = async (text: string, options: Parameters<typeof exec>[3] = {}): Promise<ExecResult> => {
      const { spec, file } = await loadSpec(specFile);
      return exec(spec, file, text, options);
    };
    /** The spec with dn2 at another URL, to stand for a node that is down or hung. */
    const specWithDn2At = async (port: number, name: string): Promise<string> => {
      const text = await readFile(specFile, 'utf8');
      const original = specNode(cluster.dataNodes[1]!).url;
      const moved = new URL(original);
      moved.hostname = '127.0.0.1';
      moved.port = String(port);
      expect(text).toContain(JSON.stringify(original));
      const file = join(dir, name);
      await writeFile(file, text.replace(JSON.stringify(original), JSON.stringify(moved.toString())));
      return file;
    };

    beforeAll(async () => {
      // Without prepared transactions (dev clusters allow them), for exec's one-phase path first.
      cluster = await source.start(2, { max_prepared_transactions: '0' });
      dir = join(cluster.workDir, 'project');
      specFile = await writeExampleSpec(cluster, dir);
      await writeSecrets(dir);
      const { spec, file } = await loadSpec(specFile);
      await generateMigrations(spec, file);
      expect((await apply(spec, file)).ok).toBe(true);
      // 40 devices every 5 minutes for a day, inside the chunks made at apply.
      await sql(
        cluster.accessNode.url,
        `INSERT INTO public.metrics (time, device_id, cpu, memory, temperature)
         SELECT t, d, d * 1.5, 50, 20 + d % 7
         FROM generate_series(date_trunc('hour', now()) - interval '1 day', date_trunc('hour', now()) - interval '5 minutes', interval '5 minutes') t,
              generate_series(1, 40) d`,
      );
      for (const [node, shards] of [['dn1', [0, 2]], ['dn2', [1, 3]]] as const) {
        for (const s of shards) shardRows.set(`_hypershard.metrics_s${s}`, await count(urlOf(node), `_hypershard.metrics_s${s}`));
      }
    });
    afterAll(async () => {
      await cluster?.stop();
    });

    describe('exec', () => {
      it('runs on every node concurrently and returns one result per node, values as the server writes them', async () => {
        const result = await run(`SELECT 1::int AS one, NULL::text AS nothing, '2024-01-02 03:04:05+00'::timestamptz AT TIME ZONE 'UTC' AS at, current_setting('application_name') AS app`);
        expect(result.ok).toBe(true);
        expect(result.transactional).toBe(false);
        expect(statusOf(result)).toEqual([['dn1', 'ok'], ['dn2', 'ok'], ['access', 'ok']]);
        for (const node of result.nodes) {
          expect(node.statements).toEqual([
            { sql: expect.stringContaining('SELECT 1::int'), command: 'SELECT 1', rowCount: 1, columns: ['one', 'nothing', 'at', 'app'], rows: [['1', null, '2024-01-02 03:04:05', 'hypershard']], truncated: false },
          ]);
          expect(node.error).toBeUndefined();
        }
      });

      it('runs only on the chosen nodes', async () => {
        expect(statusOf(await run('SELECT 1', { nodes: ['dn1'] }))).toEqual([['dn1', 'ok']]);
        expect(statusOf(await run('SELECT 1', { dataNodes: true }))).toEqual([['dn1', 'ok'], ['dn2', 'ok']]);
        expect(statusOf(await run('SELECT 1', { accessNode: true, nodes: ['dn2'] }))).toEqual([['dn2', 'ok'], ['access', 'ok']]);
      });

      it('keeps the first rows and counts them all, with the full command tag', async () => {
        const result = await run('SELECT g FROM generate_series(1, 7) g; CREATE TEMP TABLE t (x int); INSERT INTO t SELECT 1 FROM generate_series(1, 3)', { nodes: ['dn2'], maxRows: 2 });
        expect(result.nodes[0]!.statements.map((s) => [s.command, s.rowCount, s.rows, s.truncated])).toEqual([
          ['SELECT 7', 7, [['1'], ['2']], true],
          ['CREATE TABLE', null, [], false],
          ['INSERT 0 3', 3, [], false],
        ]);
      });

      it('reports the node a statement fails on, and the others as ok', async () => {
        // Shard 1 lives on dn2; the access node reads it through its foreign table; dn1 has no such table.
        const result = await run('SELECT count(*) AS n FROM _hypershard.metrics_s1');
        expect(result.ok).toBe(false);
        expect(statusOf(result)).toEqual([['dn1', 'failed'], ['dn2', 'ok'], ['access', 'ok']]);
        const [dn1, dn2, access] = result.nodes;
        expect(dn1!.error).toEqual({ phase: 'statement', message: 'relation "_hypershard.metrics_s1" does not exist', sqlState: '42P01' });
        expect(dn2!.statements[0]!.rows).toEqual([[String(shardRows.get('_hypershard.metrics_s1'))]]);
        expect(access!.statements[0]!.rows).toEqual(dn2!.statements[0]!.rows);
      });

      it('names the failing statement of several, and keeps what ran before it (autocommit)', async () => {
        const result = await run('CREATE TABLE public.exec_autocommit (x int); SELECT count(*) FROM _hypershard.metrics_s0; SELECT 3', { dataNodes: true });
        expect(statusOf(result)).toEqual([['dn1', 'ok'], ['dn2', 'failed']]);
        const dn2 = result.nodes[1]!;
        expect(dn2.error).toMatchObject({ phase: 'statement', statementIndex: 1, statement: 'SELECT count(*) FROM _hypershard.metrics_s0', sqlState: '42P01' });
        expect(dn2.statements.map((s) => s.command)).toEqual(['CREATE TABLE']);
        expect(await relationExists(urlOf('dn2'), 'public.exec_autocommit')).toBe(true);
      });

      it('refuses an unknown node before anything runs, naming the known nodes', async () => {
        const attempt = run('CREATE TABLE public.exec_never (x int)', { nodes: ['dn1', 'dn7'] });
        await expect(attempt).rejects.toThrow(UnknownNodeError);
        await expect(attempt).rejects.toThrow('unknown node dn7; the spec has dn1, dn2, access');
        for (const url of allUrls()) expect(await relationExists(url, 'public.exec_never')).toBe(false);
      });

      it('transactional: a statement failing on one node leaves no change on any node', async () => {
        const result = await run('CREATE TABLE public.exec_probe (x int); INSERT INTO public.exec_probe VALUES (1); SELECT count(*) FROM _hypershard.metrics_s1', { transactional: true });
        expect(result.ok).toBe(false);
        expect(result.commit).toBe('one-phase');
        expect(statusOf(result)).toEqual([['dn1', 'failed'], ['dn2', 'rolled-back'], ['access', 'rolled-back']]);
        expect(result.nodes[1]!.reason).toBe('rolled back: dn1 failed');
        expect(result.nodes[1]!.statements.map((s) => s.command)).toEqual(['CREATE TABLE', 'INSERT 0 1', 'SELECT 1']);
        for (const url of allUrls()) expect(await relationExists(url, 'public.exec_probe')).toBe(false);
      });

      it('transactional: commits on every node when all succeed, and says what one-phase commit cannot promise', async () => {
        const result = await run('CREATE TABLE public.exec_committed (x int); INSERT INTO public.exec_committed VALUES (1), (2)', { transactional: true });
        expect(result.ok).toBe(true);
        expect(statusOf(result)).toEqual([['dn1', 'ok'], ['dn2', 'ok'], ['access', 'ok']]);
        expect(result.commit).toBe('one-phase');
        expect(result.caveat).toBe(
          'without two-phase commit (max_prepared_transactions is 0 on dn1, dn2, access), the nodes commit one after another: ' +
            'a commit that fails on one node after others committed leaves the nodes different',
        );
        for (const url of allUrls()) expect(await count(url, 'public.exec_committed')).toBe(2);
      });

      it('transactional without two-phase commit: a commit failing after another node committed is reported as such', async () => {
        // A deferred unique constraint on dn2 only: every statement succeeds, dn2's COMMIT fails.
        expect((await run('CREATE TABLE public.exec_deferred (x int)', { nodes: ['dn1', 'access'] })).ok).toBe(true);
        expect((await run('CREATE TABLE public.exec_deferred (x int UNIQUE DEFERRABLE INITIALLY DEFERRED)', { nodes: ['dn2'] })).ok).toBe(true);
        const result = await run('INSERT INTO public.exec_deferred VALUES (1), (1)', { transactional: true });
        expect(result.ok).toBe(false);
        expect(statusOf(result)).toEqual([['dn1', 'ok'], ['dn2', 'failed'], ['access', 'rolled-back']]);
        expect(result.nodes[1]!.error).toMatchObject({ phase: 'commit', sqlState: '23505' });
        expect(result.nodes[2]!.reason).toBe('not committed: committing on dn2 failed');
        expect(result.caveat).toMatch(/\. That happened: dn1 committed, dn2, access did not$/);
        expect([await count(urlOf('dn1'), 'public.exec_deferred'), await count(urlOf('dn2'), 'public.exec_deferred'), await count(urlOf('access'), 'public.exec_deferred')]).toEqual([2, 0, 0]);
        await run('TRUNCATE public.exec_deferred');
      });

      it('transactional: refuses statements that control the transaction themselves', async () => {
        const attempt = run('INSERT INTO public.exec_committed VALUES (3); COMMIT', { transactional: true });
        await expect(attempt).rejects.toThrow(HypershardError);
        await expect(attempt).rejects.toThrow(/commits it itself; remove "COMMIT"/);
        for (const url of allUrls()) expect(await count(url, 'public.exec_committed')).toBe(2);
      });

      it('an unreachable node fails alone; transactional, nothing runs anywhere', async () => {
        const { spec, file } = await loadSpec(await specWithDn2At(await closedPort(), 'down.yaml'));
        const alone = await exec(spec, file, 'SELECT 1', { timeoutMs: 5_000 });
        expect(statusOf(alone)).toEqual([['dn1', 'ok'], ['dn2', 'failed'], ['access', 'ok']]);
        expect(alone.nodes[1]!.error).toMatchObject({ phase: 'connect', message: expect.stringMatching(/^node dn2: connection refused at/) });
        const together = await exec(spec, file, 'CREATE TABLE public.exec_unreached (x int)', { transactional: true, timeoutMs: 5_000 });
        expect(statusOf(together)).toEqual([['dn1', 'not-run'], ['dn2', 'failed'], ['access', 'not-run']]);
        expect(together.commit).toBeUndefined();
        for (const url of allUrls()) expect(await relationExists(url, 'public.exec_unreached')).toBe(false);
      });
    });

    describe('status', () => {
      const dataNode = (result: StatusResult, name: string): DataNodeStatus => result.nodes.find((n): n is DataNodeStatus => n.node === name && n.role === 'data')!;
      const statusNow = async (file = specFile, timeoutMs?: number): Promise<StatusResult> => {
        const { spec, file: f } = await loadSpec(file);
        return status(spec, f, timeoutMs === undefined ? {} : { timeoutMs });
      };

      it('shows the foreign partitions without statistics before ANALYZE on the access node', async () => {
        const result = await statusNow();
        const access = result.nodes.find((n) => n.role === 'access');
        expect(access).toMatchObject({ reachable: true, hypertables: [{ hypertable: 'public.metrics', shards: 4, present: true, foreignPartitions: 4, analyzedForeignPartitions: 0 }] });
      });

      it("shows each data node's shards, their size and row estimates after ANALYZE, and skew that matches them", async () => {
        expect((await run('ANALYZE', { dataNodes: true })).ok).toBe(true);
        expect((await run('ANALYZE public.metrics', { accessNode: true })).ok).toBe(true);
        const result = await statusNow();
        expect(result.ok).toBe(true);
        expect(result.nodes.map((n) => [n.node, n.role, n.reachable, n.serverVersion?.split('.')[0]])).toEqual([
          ['dn1', 'data', true, String(cluster.major)],
          ['dn2', 'data', true, String(cluster.major)],
          ['access', 'access', true, String(cluster.major)],
        ]);
        const dn1 = dataNode(result, 'dn1');
        const dn2 = dataNode(result, 'dn2');
        expect(dn1.shards.map((s) => [s.index, s.table, s.present])).toEqual([[0, '_hypershard.metrics_s0', true], [2, '_hypershard.metrics_s2', true]]);
        expect(dn2.shards.map((s) => [s.index, s.table, s.present])).toEqual([[1, '_hypershard.metrics_s1', true], [3, '_hypershard.metrics_s3', true]]);
        for (const node of [dn1, dn2]) {
          expect(node.strayShards).toEqual([]);
          for (const shard of node.shards) {
            expect(shard.bytes).toBeGreaterThan(0);
            expect(shard.partitions).toBeGreaterThan(1); // the chunks and the default chunk
            // Small tables are analyzed whole, so the estimate is the count.
            expect(shard.rows).toBe(shardRows.get(shard.table));
          }
          expect(node.bytes).toBe(node.shards.reduce((a, s) => a + s.bytes!, 0));
          expect(node.rows).toBe(node.shards.reduce((a, s) => a + s.rows!, 0));
        }
        // Bytes counted on the node itself, over the leaves.
        const onNode = await sql<{ bytes: string }>(
          cluster.dataNodes[0]!.url,
          `SELECT sum(pg_total_relation_size(relid)) AS bytes FROM pg_partition_tree('_hypershard.metrics_s0') WHERE isleaf`,
        );
        expect(dn1.shards[0]!.bytes).toBe(Number(onNode[0]!.bytes));

        const bytes = [dn1.bytes!, dn2.bytes!];
        const rows = [dn1.rows!, dn2.rows!];
        const cv = (v: number[]): number => {
          const mean = (v[0]! + v[1]!) / 2;
          return Math.abs(v[0]! - mean) / mean; // two values: the population sd is half their difference
        };
        expect(result.skew.bytes).toMatchObject({ nodes: ['dn1', 'dn2'], min: Math.min(...bytes), max: Math.max(...bytes), maxOverMin: Math.max(...bytes) / Math.min(...bytes) });
        expect(result.skew.bytes!.cv).toBeCloseTo(cv(bytes), 12);
        expect(result.skew.rows).toMatchObject({ nodes: ['dn1', 'dn2'], min: Math.min(...rows), max: Math.max(...rows), mean: (rows[0]! + rows[1]!) / 2 });
        expect(result.skew.rows!.cv).toBeCloseTo(cv(rows), 12);

        expect(result.hypertables).toEqual([
          { hypertable: 'public.metrics', shards: 4, shardsMeasured: 4, bytes: dn1.bytes! + dn2.bytes!, rows: 40 * 288 },
        ]);
        expect(result.nodes.find((n) => n.role === 'access')).toMatchObject({ hypertables: [{ foreignPartitions: 4, analyzedForeignPartitions: 4 }] });
      });

      it('notices a shard table missing from its node and one on a node the spec does not place it on', async () => {
        // A copy of shard 1 on dn1, and shard 3 renamed away on dn2; put back afterwards.
        await sql(urlOf('dn1'), 'CREATE TABLE _hypershard.metrics_s1 (x int)');
        await sql(urlOf('dn2'), 'ALTER TABLE _hypershard.metrics_s3 RENAME TO metrics_s3_away');
        try {
          const result = await statusNow();
          expect(dataNode(result, 'dn1').strayShards).toEqual([{ hypertable: 'public.metrics', index: 1, table: '_hypershard.metrics_s1', owner: 'dn2' }]);
          expect(dataNode(result, 'dn2').shards.map((s) => [s.index, s.present, s.bytes])).toEqual([[1, true, expect.any(Number)], [3, false, 0]]);
        } finally {
          await sql(urlOf('dn1'), 'DROP TABLE _hypershard.metrics_s1');
          await sql(urlOf('dn2'), 'ALTER TABLE _hypershard.metrics_s3_away RENAME TO metrics_s3');
        }
      });

      it('reports a data node that is down as unreachable and still reports the others', async () => {
        const result = await statusNow(await specWithDn2At(await closedPort(), 'down.yaml'));
        expect(result.ok).toBe(false);
        const dn2 = dataNode(result, 'dn2');
        expect(dn2).toMatchObject({ reachable: false, bytes: null, rows: null, error: expect.stringMatching(/^node dn2: connection refused at postgres@127\.0\.0\.1:\d+/) });
        expect(dn2.shards.map((s) => [s.index, s.present])).toEqual([[1, null], [3, null]]);
        expect(dataNode(result, 'dn1')).toMatchObject({ reachable: true, rows: shardRows.get('_hypershard.metrics_s0')! + shardRows.get('_hypershard.metrics_s2')! });
        expect(result.nodes.find((n) => n.role === 'access')).toMatchObject({ reachable: true, hypertables: [{ foreignPartitions: 4 }] });
        expect(result.skew.bytes?.nodes).toEqual(['dn1']);
        expect(result.hypertables[0]).toMatchObject({ shards: 4, shardsMeasured: 2 });
      });

      it('reports a node that never answers as unreachable within the timeout', async () => {
        const silent = await silentServer();
        try {
          const started = Date.now();
          const result = await statusNow(await specWithDn2At(silent.port, 'hung.yaml'), 1_000);
          expect(Date.now() - started).toBeLessThan(4_000);
          expect(dataNode(result, 'dn2')).toMatchObject({ reachable: false, error: expect.stringMatching(/no answer from .* within 1000 ms/) });
          expect(dataNode(result, 'dn1').reachable).toBe(true);
        } finally {
          await silent.close();
        }
      });
    });

    describe.skipIf(!BUILT)(`CLI${BUILT ? '' : ' — skipped: run `npm run build` first'}`, () => {
      it('exec: 0 when every node succeeds, with a table per node; --json', async () => {
        const text = await hypershard(['exec', '-c', specFile, '--sql', 'SELECT 41 + 1 AS answer'], dir);
        expect(text.stderr).toBe('');
        expect(text.code).toBe(0);
        expect(text.stdout).toMatch(/^node\s+role\s+status\s+result\n/);
        expect(text.stdout).toMatch(/^dn1\s+data\s+ok\s+SELECT 1$/m);
        expect(text.stdout).toContain('access: SELECT 1\n  answer\n  ------\n  42\n  (1 row)');
        const json = await hypershard(['exec', '-c', specFile, '--sql', 'SELECT 1', '--node', 'dn2', '--json'], dir);
        expect(json.code).toBe(0);
        expect((JSON.parse(json.stdout) as ExecResult).nodes.map((n) => [n.node, n.status])).toEqual([['dn2', 'ok']]);
      });

      it('exec: 1 when a node fails, 2 for an unknown node or bad usage', async () => {
        const failed = await hypershard(['exec', '-c', specFile, '--sql', 'SELECT count(*) FROM _hypershard.metrics_s1'], dir);
        expect(failed.code).toBe(1);
        expect(failed.stdout).toMatch(/^dn1\s+data\s+failed\s+relation "_hypershard.metrics_s1" does not exist$/m);
        const unknown = await hypershard(['exec', '-c', specFile, '--sql', 'SELECT 1', '--node', 'dn9'], dir);
        expect(unknown.code).toBe(2);
        expect(unknown.stderr).toBe('hypershard: unknown node dn9; the spec has dn1, dn2, access\n');
        const both = await hypershard(['exec', '-c', specFile], dir);
        expect(both.code).toBe(2);
        expect(both.stderr).toContain('give exactly one of --sql and --file');
        const rows = await hypershard(['exec', '-c', specFile, '--sql', 'SELECT 1', '--rows', 'many'], dir);
        expect(rows.code).toBe(2);
      });

      it('exec --file --transactional: a failure on one node changes nothing anywhere (exit 1)', async () => {
        const file = join(dir, 'change.sql');
        await writeFile(file, "-- a change that cannot run on dn1\nCREATE TABLE public.exec_cli (x text);\nINSERT INTO public.exec_cli VALUES ('a;b');\nSELECT count(*) FROM _hypershard.metrics_s3;\n");
        const result = await hypershard(['exec', '-c', specFile, '--file', file, '--transactional'], dir);
        expect(result.code).toBe(1);
        expect(result.stdout).toMatch(/^dn1\s+data\s+failed/m);
        expect(result.stdout).toMatch(/^dn2\s+data\s+rolled-back\s+rolled back: dn1 failed$/m);
        expect(result.stdout).toContain('dn1 failed at statement 3 (statement): relation "_hypershard.metrics_s3" does not exist\n  SELECT count(*) FROM _hypershard.metrics_s3');
        expect(result.stdout).toContain('Nothing was committed on any node (one-phase commit).');
        for (const url of allUrls()) expect(await relationExists(url, 'public.exec_cli')).toBe(false);
      });

      it('status: 0 with every node reachable; 1 when one is down, the others still reported', async () => {
        const ok = await hypershard(['status', '-c', specFile], dir);
        expect(ok.stderr).toBe('');
        expect(ok.code).toBe(0);
        expect(ok.stdout).toMatch(/^dn1\s+data\s+yes\s+\d.*\s+public\.metrics: 0, 2\s+\d/m);
        expect(ok.stdout).toMatch(/^dn2\s+data\s+yes\s+\d.*\s+public\.metrics: 1, 3\s+\d/m);
        expect(ok.stdout).toMatch(/^Skew of bytes: max\/min \d+\.\d\d, coefficient of variation \d\.\d{3} over dn1, dn2$/m);
        const json = JSON.parse((await hypershard(['status', '-c', specFile, '--json'], dir)).stdout) as StatusResult;
        expect(json.nodes.map((n) => n.node)).toEqual(['dn1', 'dn2', 'access']);

        const down = await hypershard(['status', '-c', await specWithDn2At(await closedPort(), 'down.yaml'), '--timeout', '2000'], dir);
        expect(down.code).toBe(1);
        expect(down.stdout).toMatch(/^dn2\s+data\s+no\s+-\s+public\.metrics: 1, 3\s+-\s+-$/m);
        expect(down.stdout).toMatch(/^dn1\s+data\s+yes/m);
        expect(down.stdout).toMatch(/^dn2: node dn2: connection refused at/m);
        const bad = await hypershard(['status', '-c', specFile, '--timeout', '0'], dir);
        expect(bad.code).toBe(2);
      });
    });

    // Last: restarts the servers.
    describe.skipIf(source.label.startsWith('testcontainers'))('exec --transactional with two-phase commit', () => {
      beforeAll(async () => {
        await restartWithPreparedTransactions(cluster, join(cluster.workDir, 'cluster'));
      });
      const prepared = async (): Promise<number[]> => Promise.all(allUrls().map(async (url) => count(url, 'pg_prepared_xacts')));

      it('commits everywhere through PREPARE TRANSACTION, leaving no prepared transaction', async () => {
        const result = await run('INSERT INTO public.exec_committed VALUES (10)', { transactional: true });
        expect(result).toMatchObject({ ok: true, commit: 'two-phase' });
        expect(result.caveat).toBeUndefined();
        for (const url of allUrls()) expect(await count(url, 'public.exec_committed')).toBe(3);
        expect(await prepared()).toEqual([0, 0, 0]);
      });

      it('a node failing to prepare rolls back every node, including those already prepared', async () => {
        const result = await run('INSERT INTO public.exec_deferred VALUES (1), (1)', { transactional: true });
        expect(result).toMatchObject({ ok: false, commit: 'two-phase' });
        expect(statusOf(result)).toEqual([['dn1', 'rolled-back'], ['dn2', 'failed'], ['access', 'rolled-back']]);
        expect(result.nodes[1]!.error).toMatchObject({ phase: 'prepare', sqlState: '23505' });
        expect(result.nodes[0]!.reason).toBe('rolled back: dn2 failed to prepare');
        for (const url of allUrls()) expect(await count(url, 'public.exec_deferred')).toBe(0);
        expect(await prepared()).toEqual([0, 0, 0]);
      });

      it('a statement failing on one node still leaves nothing anywhere', async () => {
        const result = await run('CREATE TABLE public.exec_probe2 (x int); SELECT count(*) FROM _hypershard.metrics_s1', { transactional: true });
        expect(statusOf(result)).toEqual([['dn1', 'failed'], ['dn2', 'rolled-back'], ['access', 'rolled-back']]);
        for (const url of allUrls()) expect(await relationExists(url, 'public.exec_probe2')).toBe(false);
        expect(await prepared()).toEqual([0, 0, 0]);
      });
    });
  });
}
