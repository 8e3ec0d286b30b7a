/**
 * The demo end to end on a small embedded cluster: it is the README's first command, so it must
 * not rot. Its last query is written as people write it; the rewriter must give the same answer
 * with the work on the data nodes. Kept running, it says how to connect, and that works.
 */
import { execFile, spawn } from 'node:child_process';
import { chmod, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { runDemo } from '../../src/demo/runDemo.js';
import { readDevCluster } from '../../src/dev/cluster.js';
import { clusterSources } from '../support/clusters.js';
import { sql } from '../support/db.js';

const BIN = fileURLToPath(new URL('../../bin/hypershard.js', import.meta.url));
const embedded = clusterSources().find((s) => s.label.includes('embedded'));
const skip = embedded === undefined ? 'embedded PostgreSQL is not among HYPERSHARD_TEST_SOURCES' : await embedded.unavailable();

describe.skipIf(skip !== undefined)(`demo on embedded PostgreSQL${skip === undefined ? '' : ` — skipped: ${skip}`}`, () => {
  it('loads, queries, audits, rewrites the users’ query into one that ships, and kept running says how to connect', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hs-demo-'));
    await chmod(dir, 0o755);
    try {
      const report = await runDemo({ devices: 50, hours: 2, dir, keep: true });
      expect(report.apply.ok).toBe(true);
      expect(report.load.rows).toBe(50 * 2 * 360);
      for (const q of report.queries) expect(q.rows.length, q.title).toBeGreaterThan(0);
      const users = report.queries[report.queries.length - 1];
      expect(users?.audit.complete).toBe(false);
      expect(users?.rewritten?.sameAnswer).toBe(true);
      expect(users?.rewritten?.audit.complete).toBe(true);
      expect(users?.rewritten?.rewrites.map((r) => r.kind).sort()).toEqual(['partial-aggregate', 'stable-expression', 'time-bucket']);
      for (const q of report.queries) if (q.rewritten !== undefined) expect(q.rewritten.sameAnswer, q.title).toBe(true);

      // The latest reading: the Limit stays on the access node, and the rows shipped say what that
      // costs (postgres_fdw fetched the device's rows in a batch, the Limit used one), not "1 row".
      const latest = report.queries.find((q) => q.title.startsWith('Latest reading'))!;
      expect(latest.audit.findings.map((f) => f.code)).toContain('LIMIT_NOT_PUSHED');
      expect(latest.audit.foreignScans.map((s) => s.rowsUsed)).toEqual([1]);
      expect(latest.audit.rowsShipped).toBeGreaterThan(100); // device 42 has 720 rows, all in one fetch
      expect(latest.audit.rowsShippedEstimated).toBe(true);
      expect(latest.rewritten?.audit.findings.map((f) => f.code)).not.toContain('LIMIT_NOT_PUSHED');
      expect([latest.rewritten?.audit.rowsShipped, latest.rewritten?.audit.rowsShippedEstimated]).toEqual([1, false]);

      // How to connect, and it works: the nodes as the superuser, a login role with its password file.
      const connect = report.cluster.connect!;
      expect(connect.nodes.map((n) => [n.name, n.role])).toEqual([['access', 'access'], ['dn1', 'data'], ['dn2', 'data']]);
      for (const n of connect.nodes) expect(await sql(n.url, 'SELECT 1 AS ok')).toEqual([{ ok: 1 }]);
      const reader = connect.roles.find((r) => r.name === 'metrics_reader')!;
      expect(reader.login).toBe(true);
      const password = (await readFile(reader.passwordFile!, 'utf8')).trim();
      expect(((await stat(reader.passwordFile!)).mode & 0o777).toString(8)).toBe('600');
      expect(await sql({ url: reader.url!, password }, 'SELECT count(*)::int AS n FROM metrics')).toEqual([{ n: 50 * 2 * 360 }]);
      expect(connect.secrets.map((s) => s.of)).toEqual([expect.stringContaining('FDW service role hypershard_fdw'), 'role metrics_reader']);
      expect(connect.stop).toBe(`hypershard dev down --dir ${join(dir, 'cluster')}`);

      // The gateway line it prints, on a free port: the reader's query through it is rewritten to run on the shards.
      expect(connect.gateway.command).toBe(`hypershard gateway -c ${connect.specFile} --port 6432`);
      expect(connect.gateway.passwordFile).toBe(reader.passwordFile);
      const args = connect.gateway.command.split(' ').slice(1);
      const gateway = spawn(process.execPath, [BIN, ...args, '--port', '0', '--json'], { stdio: ['ignore', 'pipe', 'inherit'] });
      try {
        const listening = await new Promise<string>((resolve, reject) => {
          gateway.stdout.once('data', (d: Buffer) => resolve((JSON.parse(d.toString().split('\n')[0]!) as { listening: string }).listening));
          gateway.once('exit', (code) => reject(new Error(`the gateway exited (${code})`)));
        });
        const url = new URL(connect.gateway.url);
        expect([url.username, url.port]).toEqual(['metrics_reader', '6432']);
        url.port = listening.slice(listening.lastIndexOf(':') + 1);
        const dashboard = `SELECT max(cpu) AS peak FROM metrics WHERE time > now() - interval '1 hour'`;
        const plan = async (target: string): Promise<string> => (await sql<{ 'QUERY PLAN': string }>({ url: target, password }, `EXPLAIN (VERBOSE, COSTS OFF) ${dashboard}`)).map((r) => r['QUERY PLAN']).join('\n');
        expect(await plan(url.toString())).toMatch(/Relations: Aggregate on/);
        expect(await plan(reader.url!)).not.toMatch(/Relations: Aggregate on/);
        expect(await sql({ url: url.toString(), password }, dashboard)).toEqual(await sql({ url: reader.url!, password }, dashboard));
      } finally {
        gateway.kill('SIGTERM');
      }

      // The command it prints stops it.
      const down = await new Promise<number>((resolve) => execFile(process.execPath, [BIN, 'dev', 'down', '--dir', join(dir, 'cluster')], (error) => resolve(error === null ? 0 : 1)));
      expect(down).toBe(0);
      expect(await readDevCluster(join(dir, 'cluster'))).toBeUndefined();
    } finally {
      await execFileQuiet([BIN, 'dev', 'down', '--dir', join(dir, 'cluster')]);
      await rm(dir, { recursive: true, force: true });
    }
  }, 180_000);
});

function execFileQuiet(args: string[]): Promise<void> {
  return new Promise((resolve) => execFile(process.execPath, args, () => resolve()));
}
