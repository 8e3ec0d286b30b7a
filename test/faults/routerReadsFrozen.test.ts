/**
 * A router read sent to its data node with its check (RouterPredictions), when that data node
 * freezes (SIGSTOP: it accepts TCP and never answers): through hypershard/pg and through the
 * gateway with psql (one session each, warmed so the read goes ahead), the statement settles
 * within the bound (an answer, or an error naming the node or the client's statement_timeout),
 * and after the node thaws the same sessions answer as the access node does. Measured 35 s on
 * PostgreSQL 15 and 18: the read sent ahead is declared unresponsive by the data-node connection's
 * supervision (probed after 5 s, 10 s to answer), then the access node, asked instead, waits on the
 * same node until the client's statement_timeout (10 s here) and its postgres_fdw cancel.
 */
import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type Gateway } from '../../src/gateway/gateway.js';
import { IngestCluster } from '../../src/ingest/cluster.js';
import { Pool } from '../../src/pg/pool.js';
import { connect, faultSources, seedMetrics, startFaultCluster, summarize, type FaultCluster } from '../support/faults.js';
import { splitAddress } from '../support/gateway.js';

const BOUND_S = 60;

/** psql on one session, fed statements one at a time; each answer is what it printed until its marker. */
function psqlSession(url: string): { ask(sql: string, timeoutMs: number): Promise<string>; close(): void } {
  const child = spawn('psql', ['-X', '-A', '-t', '-v', 'ON_ERROR_STOP=0', url], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  let n = 0;
  return {
    async ask(sql, timeoutMs) {
      const marker = `done-${(n += 1)}`;
      const from = out.length;
      child.stdin.write(`${sql};\n\\echo ${marker}\n`);
      const deadline = Date.now() + timeoutMs;
      while (!out.slice(from).includes(marker)) {
        if (Date.now() > deadline) return `no answer within ${timeoutMs} ms`;
        await new Promise((r) => setTimeout(r, 50));
      }
      return out.slice(from, out.indexOf(marker, from)).trim();
    },
    close: () => child.kill(),
  };
}

describe.each(faultSources())('$label', (source) => {
  let cluster: FaultCluster;
  let ingest: IngestCluster;
  let gateway: Gateway;

  beforeAll(async () => {
    if (source.skip !== undefined) return;
    cluster = await startFaultCluster(source);
    await seedMetrics(cluster);
    ingest = await IngestCluster.open(cluster.spec, cluster.specFile);
    gateway = await startGateway(cluster.spec, cluster.specFile, { port: 0 });
  });
  afterAll(async () => {
    await gateway?.close();
    await ingest?.close();
    await cluster?.close();
  });

  it.skipIf(source.skip !== undefined)('a data node frozen under router reads sent with their check: hypershard/pg and psql through the gateway settle within 60 s, then answer again', async () => {
    const plain = await connect(cluster.dev.accessNode.url);
    // A device whose shard is on dn2.
    let device: number | undefined;
    for (let d = 0; d < 20 && device === undefined; d += 1) {
      const { rows } = await plain.query<{ server: string }>(
        `SELECT s.srvname AS server FROM pg_catalog.pg_foreign_table ft JOIN pg_catalog.pg_foreign_server s ON s.oid = ft.ftserver WHERE ft.ftrelid = (SELECT tableoid FROM metrics WHERE device_id = $1 LIMIT 1)`,
        [d],
      );
      if (rows[0]?.server.includes('dn2') === true) device = d;
    }
    expect(device).toBeDefined();
    const sql = `SELECT count(*) AS n, max(cpu) AS m FROM metrics WHERE device_id = ${device} AND time >= '2000-01-01 00:00:00+00'`;
    const want = (await plain.query<{ n: string; m: number }>(sql)).rows[0]!;

    const pool = new Pool({ connectionString: cluster.dev.accessNode.url, max: 1, hypershard: { ingest } });
    const session = await pool.connect();
    const [host, port] = splitAddress(gateway.address);
    const access = new URL(cluster.dev.accessNode.url);
    const psql = psqlSession(`postgres://${access.username}@${host}:${port}${access.pathname}`);
    try {
      await session.query(`SET statement_timeout = '10s'`);
      expect(await psql.ask(`SET statement_timeout = '10s'`, 10_000)).toBe('SET');
      // Warmed: the second read of each goes to dn2 with its check.
      for (let i = 0; i < 2; i += 1) {
        expect((await session.query(sql)).rows[0]).toEqual(want);
        expect(await psql.ask(sql, 10_000)).toBe(`${want.n}|${want.m}`);
      }
      expect(session.lastRewrite).toMatchObject({ dataNode: 'dn2', sentAhead: true });
      const aheadBefore = gateway.metrics().routerSentAhead;
      expect(aheadBefore).toBeGreaterThan(0);

      await cluster.freeze('dn2');
      const faultAt = performance.now();
      let library: string;
      let throughGateway: string;
      try {
        [library, throughGateway] = await Promise.all([
          session.query(sql).then((r) => `rows ${JSON.stringify(r.rows)}`, (error: unknown) => `error ${(error as Error).message}`),
          psql.ask(sql, (BOUND_S + 10) * 1000),
        ]);
      } finally {
        await cluster.thaw('dn2');
      }
      const seconds = (performance.now() - faultAt) / 1000;
      process.stdout.write(`hypershard/pg: ${library}\npsql through the gateway: ${throughGateway}\n`);
      expect(seconds).toBeLessThan(BOUND_S);
      expect(library).toMatch(/dn2|statement timeout/);
      expect(throughGateway).toMatch(/dn2|statement timeout/);

      // Thawed: the same sessions answer as the access node does.
      const settle = Date.now() + 30_000;
      let again = await session.query(sql).then((r) => r.rows[0] as unknown, (e: unknown) => String(e));
      while (JSON.stringify(again) !== JSON.stringify(want) && Date.now() < settle) {
        await new Promise((r) => setTimeout(r, 500));
        again = await session.query(sql).then((r) => r.rows[0] as unknown, (e: unknown) => String(e));
      }
      expect(again).toEqual(want);
      let viaGateway = await psql.ask(sql, 30_000);
      while (viaGateway !== `${want.n}|${want.m}` && Date.now() < settle) {
        await new Promise((r) => setTimeout(r, 500));
        viaGateway = await psql.ask(sql, 30_000);
      }
      expect(viaGateway).toBe(`${want.n}|${want.m}`);
      summarize({ case: 'data node frozen under router reads sent with their check (hypershard/pg, psql through the gateway)', source: source.label, runs: 1, secondsToError: seconds });
    } finally {
      psql.close();
      session.release();
      await pool.end();
      await plain.end();
    }
  });
});
