/**
 * Routed COPY through the gateway, on real clusters (PostgreSQL 18 and 15): `COPY metrics FROM
 * STDIN` from psql, node-postgres and psycopg 3 (binary, in its default transaction) goes straight
 * to the data nodes and answers as the access node's own COPY would: every row once, on the shard
 * the access node's routing chooses (per device, a pruned read equals a plain table loaded with
 * the same rows), read in the session's TimeZone; a ROLLBACK, a bad row, a client's CopyFail or a
 * dropped connection leave nothing on any node and no prepared transaction behind; a table the
 * access node must have a say on (row-level security, a role without INSERT, SET
 * hypershard.route = off, a WHERE clause) is copied through it as written. Upserts (INSERT … ON
 * CONFLICT, which postgres_fdw refuses) are routed the same way, and so are plain multi-row
 * INSERT … VALUES of constants (as COPY lines) whose values every column reads as the access node
 * would; the rest goes through it, with the same answer.
 */
import { appendFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { from as copyFromStream } from 'pg-copy-streams';
import { serialize } from 'pg-protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { startLatencyProxy } from '../../bench/lib/latencyProxy.js';
import { startGateway } from '../../src/gateway/gateway.js';
import { cancelRequest } from '../../src/gateway/protocol/messages.js';
import { generateMigrations } from '../../src/migrations/files.js';
import { apply } from '../../src/nodes/apply.js';
import { loadSpec } from '../../src/spec/load.js';
import { quoteIdent } from '../../src/sql/quote.js';
import { clientConfig } from '../../src/nodes/connect.js';
import { appliedExampleCluster, type AppliedCluster } from '../support/appliedCluster.js';
import { jdbcDriver, pythonDrivers } from '../support/clients.js';
import { clusterSources, type TestCluster } from '../support/clusters.js';
import { sql } from '../support/db.js';
import { psql, rawConnection, run, splitAddress, startTestGateway, type TestGateway } from '../support/gateway.js';

const sources = await Promise.all(clusterSources().filter((s) => !s.label.includes('testcontainers')).map(async (s) => ({ source: s, skip: await s.unavailable() })));
const python = await pythonDrivers();
const jdbc = await jdbcDriver();

/** A multi-row INSERT into metrics: `count` rows for devices [from, from + devices), one every 11 s back from now. */
function insertValues(from: number, devices: number, count: number): string {
  const now = Date.now();
  const rows = Array.from({ length: count }, (_, i) => `('${new Date(now - i * 11_000).toISOString()}', ${from + (i % devices)}, ${(i * 7) % 89}.5, ${i % 4}, ${i % 3 === 0 ? 'NULL' : 21 + (i % 5)})`);
  return `INSERT INTO metrics (time, device_id, cpu, memory, temperature) VALUES ${rows.join(', ')}`;
}

/** Rows for devices [from, from + devices), one every 7 s back from now, as CSV lines with the zone written out. */
function csvRows(from: number, devices: number, count: number): string {
  const now = Date.now();
  const lines: string[] = [];
  for (let i = 0; i < count; i += 1) {
    const t = new Date(now - i * 7000).toISOString();
    lines.push(`${t},${from + (i % devices)},${(i * 13) % 97}.25,${i % 5},${i % 3 === 0 ? '' : 20 + (i % 9)}`);
  }
  return `${lines.join('\n')}\n`;
}

for (const { source, skip } of sources) {
  describe.skipIf(skip !== undefined)(`gateway routed COPY on ${source.label}${skip === undefined ? '' : ` — skipped: ${skip}`}`, () => {
    let cluster: TestCluster;
    let applied: AppliedCluster;
    let gw: TestGateway;
    let dir: string;
    const url = (): string => gw.url(applied.access);
    /** psql through the gateway, not quiet (COPY's tag is printed), stopping at the first error. */
    const gateway = (args: readonly string[]) => run('psql', ['-X', '-A', '-v', 'ON_ERROR_STOP=1', '-d', url(), ...args], { env: { PGPASSWORD: String(applied.access.password ?? '') } });
    const routed = (): { copies: number; rows: number; failed: number } => {
      const m = gw.gateway.metrics();
      return { copies: m.routedCopies, rows: m.routedRows, failed: m.routedFailed };
    };
    const routedInserts = (): number => gw.gateway.metrics().routedInserts;
    /** A node-postgres session through the gateway (a connection the gateway or a test breaks is no crash). */
    const connectThrough = async (): Promise<pg.Client> => {
      const client = new pg.Client(gw.through(applied.access));
      client.on('error', () => undefined);
      await client.connect();
      return client;
    };
    /** Per device of [from, to): count and sum(cpu) through the access node, each read pruned to the device's shard. */
    const perDevice = async (table: string, from: number, to: number): Promise<string[]> => {
      const client = new pg.Client(applied.access);
      await client.connect();
      try {
        const out: string[] = [];
        for (let d = from; d < to; d += 1) {
          // A constant, so the plan reads only the shard the access node routes the device to.
          const { rows } = await client.query<{ n: number; s: string | null; t: string | null }>(`SELECT count(*)::int AS n, sum(cpu)::text AS s, sum(temperature)::text AS t FROM ${table} WHERE device_id = ${d}`);
          out.push(`${d}:${rows[0]?.n}:${rows[0]?.s}:${rows[0]?.t}`);
        }
        return out;
      } finally {
        await client.end();
      }
    };
    const prepared = async (): Promise<number> => {
      let n = 0;
      for (const node of cluster.dataNodes) n += Number((await sql<{ n: string }>(node.url, 'SELECT count(*) AS n FROM pg_prepared_xacts'))[0]?.n);
      return n;
    };

    beforeAll(async () => {
      cluster = await source.start(2);
      applied = await appliedExampleCluster(cluster, 'gateway-ingest');
      gw = await startTestGateway(applied);
      dir = await mkdtemp(join(tmpdir(), 'hs-gw-ingest-'));
      await sql(applied.access, 'CREATE TABLE twin (LIKE metrics)');
    });
    afterAll(async () => {
      await gw?.close();
      await cluster?.stop();
      if (dir !== undefined) await rm(dir, { recursive: true, force: true });
    });

    it('psql \\copy goes to the data nodes: every row once, on the shard the access node routes it to', async () => {
      const file = join(dir, 'a.csv');
      await writeFile(file, csvRows(100, 40, 3000));
      const before = routed();
      const r = await gateway(['-c', `\\copy metrics FROM '${file}' WITH (FORMAT csv)`]);
      expect(r.stderr).toBe('');
      expect(r.stdout.trim()).toBe('COPY 3000');
      expect(routed()).toEqual({ copies: before.copies + 1, rows: before.rows + 3000, failed: before.failed });
      await psql(`postgres://${applied.access.user}@${applied.access.host}:${applied.access.port}/${applied.access.database}`, applied.access.password as string | undefined, ['-c', `\\copy twin FROM '${file}' WITH (FORMAT csv)`]);
      expect(await perDevice('metrics', 100, 140)).toEqual(await perDevice('twin', 100, 140));
      expect(await prepared()).toBe(0);
    });

    it('a pooled data-node connection that broke while idle (its node restarted) is not used again: the next routed write connects anew', async () => {
      const file = join(dir, 'pool.csv');
      await writeFile(file, csvRows(150, 20, 400));
      expect((await gateway(['-c', `\\copy metrics FROM '${file}' WITH (FORMAT csv)`])).stdout.trim()).toBe('COPY 400');
      // What a restart does to the gateway's idle connections: their backends end.
      let ended = 0;
      for (const node of cluster.dataNodes) {
        ended += Number((await sql<{ n: string }>(node.url, `SELECT count(pg_terminate_backend(pid)) AS n FROM pg_stat_activity WHERE application_name = 'hypershard gateway' AND state = 'idle'`))[0]?.n);
      }
      expect(ended).toBeGreaterThan(0);
      await new Promise((r) => setTimeout(r, 300));
      const before = routed();
      const again = await gateway(['-c', `\\copy metrics FROM '${file}' WITH (FORMAT csv)`]);
      expect(again.stderr).toBe('');
      expect(again.stdout.trim()).toBe('COPY 400');
      expect(routed()).toEqual({ copies: before.copies + 1, rows: before.rows + 400, failed: before.failed });
      expect(Number((await sql<{ n: string }>(applied.access, 'SELECT count(*) AS n FROM metrics WHERE device_id >= 150 AND device_id < 170'))[0]?.n)).toBe(800);
      expect(await prepared()).toBe(0);
    });

    it('prepared parts a data node could not roll back (its connections broke) are finished by the gateway once it answers, not left until a restart', async () => {
      const client = await connectThrough();
      try {
        await client.query('BEGIN');
        await client.query(insertValues(2100, 16, 200));
        expect(await prepared()).toBeGreaterThanOrEqual(2);
        // The block's parts on one node lose their connections (as when that node restarts).
        const [broken] = cluster.dataNodes;
        await sql(broken!.url, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'hypershard gateway'`);
        await client.query('ROLLBACK');
        const deadline = Date.now() + 20_000;
        while ((await prepared()) > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 250));
        expect(await prepared()).toBe(0);
        expect(Number((await sql<{ n: string }>(applied.access, 'SELECT count(*) AS n FROM metrics WHERE device_id >= 2100 AND device_id < 2116'))[0]?.n)).toBe(0);
      } finally {
        await client.end();
      }
    });

    it("a block of many routed INSERTs never exhausts the data nodes' prepared transactions: past a quarter of them, its writes go through the access node", async () => {
      const client = await connectThrough();
      try {
        const max = Number((await sql<{ n: string }>(cluster.dataNodes[0]!.url, `SELECT current_setting('max_prepared_transactions') AS n`))[0]?.n);
        const before = gw.gateway.metrics().fallbacks['block-prepared-limit'] ?? 0;
        await client.query('BEGIN');
        // Each statement's rows span both data nodes: more statements than the nodes have prepared transactions.
        for (let i = 0; i < max + 4; i += 1) await client.query(insertValues(2000 + 16 * (i % 4), 16, 40));
        expect(await prepared()).toBeLessThanOrEqual(2 * Math.ceil(max / 4) + 2);
        await client.query('COMMIT');
        expect(Number((await sql<{ n: string }>(applied.access, 'SELECT count(*) AS n FROM metrics WHERE device_id >= 2000 AND device_id < 2064'))[0]?.n)).toBe(40 * (max + 4));
        expect((gw.gateway.metrics().fallbacks['block-prepared-limit'] ?? 0) - before).toBeGreaterThan(0);
        expect(await prepared()).toBe(0);
      } finally {
        await client.end();
      }
    });

    it('in a transaction block: ROLLBACK leaves nothing, COMMIT shows the rows to the next statement', async () => {
      const file = join(dir, 'b.csv');
      await writeFile(file, csvRows(200, 10, 500));
      const rolledBack = await gateway(['-c', 'BEGIN', '-c', `\\copy metrics FROM '${file}' WITH (FORMAT csv)`, '-c', 'ROLLBACK']);
      expect(rolledBack.stderr).toBe('');
      expect(Number((await sql<{ n: string }>(applied.access, 'SELECT count(*) AS n FROM metrics WHERE device_id >= 200 AND device_id < 210'))[0]?.n)).toBe(0);
      const committed = await gateway(['-q', '-t', '-c', 'BEGIN', '-c', `\\copy metrics FROM '${file}' WITH (FORMAT csv)`, '-c', 'COMMIT', '-c', 'SELECT count(*) FROM metrics WHERE device_id >= 200 AND device_id < 210']);
      expect(committed.stderr).toBe('');
      expect(committed.stdout.trim().split('\n').at(-1)).toBe('500');
      expect(await prepared()).toBe(0);
    });

    it("a bad row: the data node's error with its line, nothing committed anywhere, the block failed", async () => {
      const file = join(dir, 'bad.csv');
      const good = csvRows(300, 5, 50);
      await writeFile(file, `${good}not a time,301,1,1,1\n${good}`);
      const before = routed();
      const plain = await gateway(['-c', `\\copy metrics FROM '${file}' WITH (FORMAT csv)`]);
      expect(plain.code).not.toBe(0);
      expect(plain.stderr).toMatch(/invalid input syntax for type timestamp with time zone: "not a time"/);
      expect(plain.stderr).toMatch(/COPY metrics, line 51/);
      const inBlock = await run('psql', ['-X', '-q', '-A', '-d', url(), '-c', 'BEGIN', '-c', `\\copy metrics FROM '${file}' WITH (FORMAT csv)`, '-c', 'SELECT 1', '-c', 'COMMIT'], { env: { PGPASSWORD: String(applied.access.password ?? '') } });
      expect(inBlock.stderr).toMatch(/current transaction is aborted/);
      expect(routed().failed).toBe(before.failed + 2);
      expect(Number((await sql<{ n: string }>(applied.access, 'SELECT count(*) AS n FROM metrics WHERE device_id >= 300 AND device_id < 305'))[0]?.n)).toBe(0);
      expect(await prepared()).toBe(0);
      // A space key the router cannot read: the server's own code for the value (22P02, 22003), not COPY's 22P04.
      for (const [key, code] of [['abc', '22P02'], ['99999999999999999999', '22003']] as const) {
        await writeFile(file, `${good}${new Date().toISOString()},${key},1,1,1\n`);
        const bad = await gateway(['-v', 'VERBOSITY=verbose', '-c', `\\copy metrics FROM '${file}' WITH (FORMAT csv)`]);
        expect(bad.stderr, key).toMatch(new RegExp(`ERROR:  ${code}: `));
        expect(bad.stderr, key).toMatch(/COPY metrics, line 51, column device_id/);
      }
      // A routed INSERT's failing row: the data node's DETAIL, and which row of the VALUES.
      const failedBefore = routed().failed;
      const nulls = await gateway(['-c', `INSERT INTO metrics (time, device_id, cpu) VALUES (now(), 301, 1), (NULL, 302, 2)`.replace('now()', `'${new Date().toISOString()}'`)]);
      expect(nulls.stderr).toMatch(/null value in column "time"/);
      expect(nulls.stderr).toMatch(/DETAIL:  Failing row contains/);
      expect(routed().failed).toBe(failedBefore + 1);
      // The session goes on: the next COPY of good rows works.
      await writeFile(file, good);
      expect((await gateway(['-c', `\\copy metrics FROM '${file}' WITH (FORMAT csv)`])).stdout.trim()).toBe('COPY 50');
      await sql(applied.access, 'DELETE FROM metrics WHERE device_id >= 300 AND device_id < 305');
    });

    it('a routed write waits for few round trips: one to open it on the access node, three per data-node lane; a COPY that fails to start on a data node names it and commits nothing', async () => {
      // A second gateway whose spec reaches every node through a counting proxy.
      const accessUrl = new URL(cluster.accessNode.url);
      const proxies = [accessUrl, ...cluster.dataNodes.map((n) => new URL(n.url))].map((u) => startLatencyProxy({ targetHost: u.hostname, targetPort: Number(u.port), latencyMs: 0 }));
      const [accessProxy, ...dataProxies] = await Promise.all(proxies);
      const spec = parseYaml(await readFile(applied.specFile, 'utf8')) as { accessNode: { url: string }; dataNodes: { url: string; fdw?: { host: string; port: number } }[] };
      const through = (target: string, proxy: { host: string; port: number }): string => {
        const u = new URL(target);
        u.hostname = proxy.host;
        u.port = String(proxy.port);
        return u.toString();
      };
      spec.accessNode.url = through(spec.accessNode.url, accessProxy!);
      // The access node still reaches them directly: fdw says where its servers point.
      spec.dataNodes.forEach((n, i) => {
        const u = new URL(n.url);
        n.fdw ??= { host: u.hostname, port: Number(u.port) };
        n.url = through(n.url, dataProxies[i]!);
      });
      const file = join(dirname(applied.specFile), 'trips.yaml');
      await writeFile(file, stringifyYaml(spec));
      const counted = await startGateway((await loadSpec(file)).spec, file, { host: '127.0.0.1', port: 0 });
      const [host, port] = splitAddress(counted.address);
      const client = new pg.Client({ ...applied.access, host, port });
      await client.connect();
      try {
        const trips = (): number[] => [accessProxy!, ...dataProxies].map((p) => p!.stats.roundTrips);
        const copy = async (text: string): Promise<void> => {
          const stream = client.query(copyFromStream('COPY metrics FROM STDIN (FORMAT csv)'));
          const done = new Promise<void>((resolve, reject) => {
            stream.on('finish', resolve);
            stream.on('error', reject);
          });
          stream.end(text);
          await done;
        };
        // Warm: connections, routes and the lock guess.
        await client.query(insertValues(1100, 40, 200));
        await copy(csvRows(1100, 40, 200));
        let before = trips();
        await client.query(insertValues(1100, 40, 200));
        const insertTrips = trips().map((n, i) => n - (before[i] as number));
        before = trips();
        await copy(csvRows(1100, 40, 200));
        const copyTrips = trips().map((n, i) => n - (before[i] as number));
        // Access node: the planning check, the opening, the xid (beside the rows), the record with COMMIT.
        expect(insertTrips[0], `INSERT ${insertTrips.join(', ')}`).toBeLessThanOrEqual(4);
        expect(copyTrips[0], `COPY ${copyTrips.join(', ')}`).toBeLessThanOrEqual(3);
        // Each data node: per lane, BEGIN + COPY + rows + its end, PREPARE, COMMIT PREPARED.
        const lanes = Math.min(2, Math.ceil(applied.spec.hypertables.find((h) => h.name === 'metrics')!.shards / cluster.dataNodes.length));
        for (const n of [...insertTrips.slice(1), ...copyTrips.slice(1)]) expect(n, `INSERT ${insertTrips.join(', ')}; COPY ${copyTrips.join(', ')}`).toBeLessThanOrEqual(3 * lanes);
        expect(counted.metrics().routedLockGuesses.held).toBeGreaterThanOrEqual(2);

        // A shard table missing on dn2: its COPY fails to start (the rows sent behind it are dropped), the error names the node, nothing commits.
        const shard = applied.layout.hypertables.find((h) => h.table.name === 'metrics')!.shards.find((x) => x.dataNode === 'dn2')!;
        const dn2 = cluster.dataNodes[1]!.url;
        const moved = `${shard.table.name}_away`;
        await sql(dn2, `ALTER TABLE ${quoteIdent(shard.table.schema)}.${quoteIdent(shard.table.name)} RENAME TO ${quoteIdent(moved)}`);
        try {
          await expect(copy(csvRows(1200, 40, 400))).rejects.toThrow(/dn2.*does not exist|does not exist.*dn2/s);
          await expect(client.query(insertValues(1200, 40, 400))).rejects.toThrow(/dn2/);
        } finally {
          await sql(dn2, `ALTER TABLE ${quoteIdent(shard.table.schema)}.${quoteIdent(moved)} RENAME TO ${quoteIdent(shard.table.name)}`);
        }
        expect(Number((await sql<{ n: string }>(applied.access, 'SELECT count(*) AS n FROM metrics WHERE device_id >= 1200 AND device_id < 1240'))[0]?.n)).toBe(0);
        expect(await prepared()).toBe(0);
        // The session goes on.
        expect((await client.query(insertValues(1200, 40, 400))).rowCount).toBe(400);
        expect(Number((await sql<{ n: string }>(applied.access, 'SELECT count(*) AS n FROM metrics WHERE device_id >= 1200 AND device_id < 1240'))[0]?.n)).toBe(400);
      } finally {
        await client.end();
        await counted.close();
        for (const p of [accessProxy, ...dataProxies]) await p?.close();
        await sql(applied.access, 'DELETE FROM metrics WHERE device_id >= 1100 AND device_id < 1240');
      }
    });

    it('a lock guess that no longer holds (the table changed since its last write) goes the long way: the write commits once', async () => {
      const before = gw.gateway.metrics();
      const file = join(dir, 'guess.csv');
      await writeFile(file, csvRows(1300, 20, 100));
      const copy = ['-c', `\\copy metrics FROM '${file}' WITH (FORMAT csv)`];
      expect((await gateway(copy)).stdout.trim()).toBe('COPY 100');
      // A column default changes the route's signature: the guessed locks are not adopted.
      await sql(applied.access, 'ALTER TABLE metrics ALTER COLUMN temperature SET DEFAULT 20');
      try {
        await writeFile(file, csvRows(1320, 20, 100));
        const r = await gateway(copy);
        expect(r.stderr).toBe('');
        expect(r.stdout.trim()).toBe('COPY 100');
      } finally {
        await sql(applied.access, 'ALTER TABLE metrics ALTER COLUMN temperature DROP DEFAULT');
      }
      const after = gw.gateway.metrics();
      expect(after.routedCopies).toBe(before.routedCopies + 2);
      expect(after.routedLockGuesses.missed ?? 0).toBeGreaterThan(before.routedLockGuesses.missed ?? 0);
      expect(Number((await sql<{ n: string }>(applied.access, 'SELECT count(*) AS n FROM metrics WHERE device_id >= 1300 AND device_id < 1340'))[0]?.n)).toBe(200);
      expect(await prepared()).toBe(0);
      await sql(applied.access, 'DELETE FROM metrics WHERE device_id >= 1300 AND device_id < 1340');
    });

    it("a client's CopyFail and a client that disconnects mid-COPY or before COMMIT leave nothing and no prepared transaction", async () => {
      const client = new pg.Client(gw.through(applied.access));
      await client.connect();
      const stream = client.query(copyFromStream('COPY metrics FROM STDIN (FORMAT csv)'));
      stream.write(csvRows(400, 5, 200));
      const failed = new Promise<Error>((resolve) => stream.on('error', resolve));
      stream.destroy(new Error('the client gave up'));
      expect((await failed).message).toMatch(/gave up|COPY from stdin failed/);
      expect((await client.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
      await client.end();

      const half = await connectThrough();
      await half.query('BEGIN');
      const inBlock = half.query(copyFromStream('COPY metrics FROM STDIN (FORMAT csv)'));
      const done = new Promise<void>((resolve, reject) => {
        inBlock.on('finish', resolve);
        inBlock.on('error', reject);
      });
      inBlock.end(csvRows(400, 5, 200));
      await done;
      // Prepared on the data nodes, recorded in the open block; the client goes away without COMMIT.
      expect(await prepared()).toBeGreaterThan(0);
      (half as unknown as { connection: { stream: { destroy(): void } } }).connection.stream.destroy();
      for (let i = 0; i < 100 && (await prepared()) > 0; i += 1) await sleep(100);
      expect(await prepared()).toBe(0);
      expect(Number((await sql<{ n: string }>(applied.access, 'SELECT count(*) AS n FROM metrics WHERE device_id >= 400 AND device_id < 405'))[0]?.n)).toBe(0);
    });

    /** Sends the client's CancelRequest to the gateway with the backend key it gave the client. */
    const cancel = (client: pg.Client): void => {
      const { processID, secretKey } = client as unknown as { processID: number; secretKey: number };
      const key = Buffer.alloc(4);
      key.writeInt32BE(secretKey);
      const socket = net.connect({ host: gw.host, port: gw.port }, () => socket.end(cancelRequest(processID, key)));
      socket.on('error', () => undefined);
    };
    const rowsOf = async (from: number, to: number): Promise<number> => Number((await sql<{ n: string }>(applied.access, `SELECT count(*) AS n FROM metrics WHERE device_id >= ${from} AND device_id < ${to}`))[0]?.n);

    it("a client's cancel stops a routed COPY mid-way: 57014, nothing committed, no prepared transaction, the session goes on", async () => {
      const client = new pg.Client(gw.through(applied.access));
      await client.connect();
      try {
        const before = routed();
        const stream = client.query(copyFromStream('COPY metrics FROM STDIN (FORMAT csv)'));
        const failed = new Promise<pg.DatabaseError | undefined>((resolve) => {
          stream.on('error', (error: pg.DatabaseError) => resolve(error));
          stream.on('finish', () => resolve(undefined));
        });
        let ended = false;
        void failed.then(() => (ended = true));
        const chunk = csvRows(700, 20, 5000);
        const started = Date.now();
        let cancelled: number | undefined;
        // Rows until the COPY fails (or a minute: it was never cancelled).
        while (!ended && Date.now() - started < 60_000) {
          if (!stream.write(chunk)) await new Promise((r) => setTimeout(r, 5));
          else await new Promise((r) => setImmediate(r));
          if (cancelled === undefined && Date.now() - started > 1500) {
            expect(routed().copies).toBe(before.copies + 1);
            cancel(client);
            cancelled = Date.now();
          }
        }
        const error = await failed;
        expect(error?.code, String(error)).toBe('57014');
        expect(error?.message).toBe('canceling statement due to user request');
        expect(Date.now() - (cancelled ?? 0)).toBeLessThan(10_000);
        expect(routed().failed).toBe(before.failed + 1);
        expect(await rowsOf(700, 720)).toBe(0);
        expect(await prepared()).toBe(0);
        expect((await client.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
        // In a block: the block is failed as PostgreSQL leaves it.
        await client.query('BEGIN');
        const inBlock = client.query(copyFromStream('COPY metrics FROM STDIN (FORMAT csv)'));
        const blockFailed = new Promise<pg.DatabaseError>((resolve) => inBlock.on('error', resolve));
        inBlock.write(chunk);
        await sleep(300);
        cancel(client);
        await sleep(300);
        inBlock.end(chunk);
        expect((await blockFailed).code).toBe('57014');
        await expect(client.query('SELECT 1')).rejects.toMatchObject({ code: '25P02' });
        await client.query('ROLLBACK');
        expect(await rowsOf(700, 720)).toBe(0);
        expect(await prepared()).toBe(0);
      } finally {
        await client.end();
      }
    }, 120_000);

    it('statement_timeout, lock_timeout and a cancel stop a routed INSERT waiting for a lock on a data node: nothing committed', async () => {
      // Every shard of metrics locked on its data node, as a long transaction there would.
      const shards = await sql<{ t: string }>(
        applied.access,
        `SELECT format('%I.%I', (SELECT split_part(o, '=', 2) FROM unnest(ft.ftoptions) o WHERE o LIKE 'schema_name=%'), (SELECT split_part(o, '=', 2) FROM unnest(ft.ftoptions) o WHERE o LIKE 'table_name=%')) AS t
         FROM pg_partition_tree('metrics') p JOIN pg_foreign_table ft ON ft.ftrelid = p.relid`,
      );
      expect(shards.length).toBeGreaterThan(0);
      let locked = 0;
      const holders = await Promise.all(cluster.dataNodes.map(async (node) => {
        const holder = new pg.Client(clientConfig(node.url, process.env.HYPERSHARD_TEST_CONTAINER_PASSWORD));
        await holder.connect();
        await holder.query('BEGIN');
        for (const { t } of shards) {
          if ((await holder.query<{ present: boolean }>('SELECT pg_catalog.to_regclass($1) IS NOT NULL AS present', [t])).rows[0]?.present !== true) continue;
          await holder.query(`LOCK TABLE ${t} IN ACCESS EXCLUSIVE MODE`);
          locked += 1;
        }
        return holder;
      }));
      expect(locked).toBe(shards.length);
      const client = new pg.Client(gw.through(applied.access));
      await client.connect();
      try {
        const before = routed();
        const insert = insertValues(800, 10, 50);
        const timed = async (sqlText: string): Promise<{ error: pg.DatabaseError | undefined; ms: number }> => {
          const started = Date.now();
          const error = await client.query(sqlText).then(() => undefined, (e: unknown) => e as pg.DatabaseError);
          return { error, ms: Date.now() - started };
        };
        await client.query("SET statement_timeout = '1s'");
        const timeout = await timed(insert);
        expect(timeout.error?.code, String(timeout.error)).toBe('57014');
        expect(timeout.error?.message).toBe('canceling statement due to statement timeout');
        expect(timeout.ms).toBeLessThan(5000);
        await client.query("SET statement_timeout = 0; SET lock_timeout = '500ms'");
        const lock = await timed(insert);
        expect(lock.error?.code, String(lock.error)).toBe('55P03');
        expect(lock.ms).toBeLessThan(5000);
        await client.query('SET lock_timeout = 0');
        const started = Date.now();
        const cancelled = client.query(insert).then(() => undefined, (e: unknown) => e as pg.DatabaseError);
        await sleep(500);
        cancel(client);
        const error = await cancelled;
        expect(error?.code, String(error)).toBe('57014');
        expect(error?.message).toBe('canceling statement due to user request');
        expect(Date.now() - started).toBeLessThan(5000);
        expect(routed().failed).toBe(before.failed + 3);
        expect((await client.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
        // A client that goes away while its INSERT waits: the INSERT is cancelled on the data
        // nodes, and does not commit (nor stay prepared) once the locks are gone.
        const leaving = await connectThrough();
        const left = leaving.query(insertValues(805, 5, 50)).then(() => 'answered', () => 'failed');
        await sleep(500);
        (leaving as unknown as { connection: { stream: { destroy(): void } } }).connection.stream.destroy();
        expect(await left).toBe('failed');
        await sleep(1500);
      } finally {
        await client.end();
        await Promise.all(holders.map(async (h) => {
          await h.query('ROLLBACK');
          await h.end();
        }));
      }
      expect(await rowsOf(800, 810)).toBe(0);
      expect(await prepared()).toBe(0);
    }, 60_000);

    it("text COPY in the session's TimeZone and DateStyle reads values as the access node would", async () => {
      const lines = ['2026-11-30 08:00:00,500,1.5,1,1', '11/30/2026 23:30:00,501,2.5,2,2', '2026-03-08 02:30:00,502,3.5,3,3'].join('\n');
      const file = join(dir, 'zone.csv');
      await writeFile(file, `${lines}\n`);
      const setup = ['-c', "SET TimeZone = 'America/New_York'", '-c', "SET DateStyle = 'ISO, MDY'"];
      expect((await gateway([...setup, '-c', `\\copy metrics FROM '${file}' WITH (FORMAT csv)`])).stderr).toBe('');
      await psql(`postgres://${applied.access.user}@${applied.access.host}:${applied.access.port}/${applied.access.database}`, applied.access.password as string | undefined, [...setup, '-c', `\\copy twin FROM '${file}' WITH (FORMAT csv)`]);
      const read = (table: string) => sql(applied.access, `SELECT device_id, time FROM ${table} WHERE device_id BETWEEN 500 AND 502 ORDER BY device_id`);
      expect(await read('metrics')).toEqual(await read('twin'));
    });

    it('psycopg 3 (binary, in its default transaction), psycopg2 (copy_expert) and asyncpg (copy_records_to_table)', async (ctx) => {
      if ('skip' in python) return ctx.skip(python.skip);
      const script = `
import sys, io, asyncio, datetime, psycopg, psycopg2, asyncpg
url = sys.argv[1]
now = datetime.datetime.now(datetime.timezone.utc)
with psycopg.connect(url) as conn:
    with conn.cursor() as cur:
        with cur.copy("COPY metrics (time, device_id, cpu) FROM STDIN (FORMAT binary)") as copy:
            copy.set_types(["timestamptz", "int4", "float8"])
            for i in range(1000):
                copy.write_row((now - datetime.timedelta(seconds=i), 600 + i % 8, i * 0.5))
    conn.commit()
conn2 = psycopg2.connect(url)
with conn2.cursor() as cur:
    data = "".join(f"{(now - datetime.timedelta(seconds=i)).isoformat()}\\t{610 + i % 4}\\t{i}\\n" for i in range(500))
    cur.copy_expert("COPY metrics (time, device_id, cpu) FROM STDIN", io.StringIO(data))
conn2.commit()
conn2.close()
async def main():
    c = await asyncpg.connect(url)
    await c.copy_records_to_table("metrics", records=[(now - datetime.timedelta(seconds=i), 620 + i % 4, float(i)) for i in range(300)], columns=["time", "device_id", "cpu"])
    r = await c.fetchrow("SELECT count(*) AS n, sum(cpu) AS s FROM metrics WHERE device_id >= 600 AND device_id < 624")
    await c.close()
    print(r["n"], r["s"])
asyncio.run(main())
`;
      const before = routed();
      const r = await run(python.python, ['-c', script, url()], { env: { PGPASSWORD: String(applied.access.password ?? '') }, timeoutMs: 60_000 });
      expect(r.stderr).toBe('');
      // 1000 + 500 + 300 rows; cpu sums 249750 + 124750 + 44850.
      expect(r.stdout.trim()).toBe('1800 419350.0');
      expect(routed().copies).toBe(before.copies + 3);
    });

    it('psycopg2 execute_values (literals it renders itself, in its own transaction block) is routed, with the access node\'s answer', async (ctx) => {
      if ('skip' in python) return ctx.skip(python.skip);
      const script = `
import sys, datetime, decimal, psycopg2, psycopg2.extras
url = sys.argv[1]
now = datetime.datetime(2026, 12, 2, tzinfo=datetime.timezone.utc)
rows = [(now - datetime.timedelta(seconds=i), 630 + i % 6, i * 0.25 if i % 7 else None, i % 4, decimal.Decimal(i) / 8) for i in range(2000)]
for table in ("metrics", "twin"):
    conn = psycopg2.connect(url)
    with conn.cursor() as cur:
        psycopg2.extras.execute_values(cur, f"INSERT INTO {table} (time, device_id, cpu, memory, temperature) VALUES %s", rows, page_size=500)
    conn.commit()
    conn.close()
`;
      const before = routedInserts();
      const r = await run(python.python, ['-c', script, url()], { env: { PGPASSWORD: String(applied.access.password ?? '') }, timeoutMs: 60_000 });
      expect(r.stderr).toBe('');
      // Four pages of 500 rows into metrics; twin is a plain table.
      expect(routedInserts()).toBe(before + 4);
      expect(await perDevice('metrics', 630, 636)).toEqual(await perDevice('twin', 630, 636));
      expect(await prepared()).toBe(0);
    });

    it('extended-protocol INSERTs are routed: node-postgres multi-row $n and unnest, psycopg 3 and asyncpg executemany, JDBC executeBatch; the same rows as the access node makes, a failed batch leaves nothing', async (ctx) => {
      const before = routedInserts();
      const base = Date.parse('2026-12-03T00:00:00Z');
      // Every row, exactly (float sums depend on the order rows are read in).
      const exact = (table: string, from: number, to: number) => sql<{ r: string }>(applied.access, `SELECT concat_ws('|', device_id, time, cpu, memory, temperature) AS r FROM ${table} WHERE device_id >= ${from} AND device_id < ${to} ORDER BY 1`);
      // node-postgres: one Parse/Bind/Execute/Sync each, a multi-row VALUES of $n and an unnest of arrays.
      const rows = Array.from({ length: 60 }, (_, i) => [new Date(base - i * 17_000).toISOString(), 1100 + (i % 6), i % 9 === 0 ? null : i * 1.5, i % 4, String(20 + (i % 7))]);
      const values = `VALUES ${rows.map((_, r) => `(${[1, 2, 3, 4, 5].map((c) => `$${r * 5 + c}`).join(', ')})`).join(', ')}`;
      const unnest = 'SELECT * FROM unnest($1::timestamptz[], $2::int[], $3::float8[])';
      const unnestParams = [rows.map((r) => r[0]), rows.map((r) => Number(r[1]) + 6), rows.map((r) => r[2])];
      for (const [target, table] of [[url(), 'metrics'], [applied.access, 'twin']] as const) {
        const client = new pg.Client(target);
        await client.connect();
        try {
          const a = await client.query(`INSERT INTO ${table} (time, device_id, cpu, memory, temperature) ${values}`, rows.flat());
          const b = await client.query(`INSERT INTO ${table} (time, device_id, cpu) ${unnest}`, unnestParams);
          // One row, one execution: through the access node (cheaper).
          const c = await client.query(`INSERT INTO ${table} (time, device_id, cpu) VALUES ($1, $2, $3)`, [new Date(base).toISOString(), 1112, 1]);
          expect([a.rowCount, b.rowCount, c.rowCount]).toEqual([60, 60, 1]);
        } finally {
          await client.end();
        }
      }
      expect(routedInserts()).toBe(before + 2);
      expect(await exact('metrics', 1100, 1113)).toEqual(await exact('twin', 1100, 1113));
      expect((await exact('metrics', 1100, 1113)).length).toBe(121);

      if ('skip' in python) return ctx.skip(python.skip);
      // psycopg 3 pipelines executemany (BEGIN first, in its default transaction); asyncpg binds in binary.
      const script = `
import sys, asyncio, datetime, psycopg, asyncpg
url, table = sys.argv[1], sys.argv[2]
base = datetime.datetime(2026, 12, 3, tzinfo=datetime.timezone.utc)
rows = [(base - datetime.timedelta(seconds=i * 7), 1120 + i % 5, i * 0.5 if i % 6 else None, i % 3, 20.0 + i % 4) for i in range(400)]
sql = f"INSERT INTO {table} (time, device_id, cpu, memory, temperature) VALUES (%s, %s, %s, %s, %s)"
with psycopg.connect(url) as conn:
    with conn.cursor() as cur:
        cur.executemany(sql, rows)
    conn.commit()
    try:
        with conn.cursor() as cur:
            cur.executemany(sql, [(base, 1126, 1.0, 1, 1.0), (None, 1126, 2.0, 2, 2.0)])
        print("no error")
    except psycopg.errors.NotNullViolation:
        conn.rollback()
    # A pipeline of other statements between the rows: each goes as it came.
    with conn.pipeline():
        conn.execute(sql, (base, 1127, 1.0, 1, 1.0))
        conn.execute("SELECT 1")
        conn.cursor().executemany(sql, [(base - datetime.timedelta(seconds=i), 1127, 2.0, 2, 2.0) for i in range(1, 4)])
    conn.commit()
async def main():
    c = await asyncpg.connect(url)
    await c.executemany(f"INSERT INTO {table} (time, device_id, cpu, memory, temperature) VALUES ($1, $2, $3, $4, $5)", [(base - datetime.timedelta(seconds=i * 3), 1130 + i % 5, float(i), float(i % 7), None) for i in range(500)])
    try:
        await c.executemany(f"INSERT INTO {table} (time, device_id, cpu) VALUES ($1, $2, $3)", [(base, 1136, 1.0), (None, 1136, 2.0)])
        print("no error")
    except asyncpg.exceptions.NotNullViolationError:
        pass
    await c.close()
asyncio.run(main())
`;
      const env = { PGPASSWORD: String(applied.access.password ?? '') };
      const mid = routedInserts();
      for (const table of ['metrics', 'twin']) {
        const r = await run(python.python, ['-c', script, url(), table], { env, timeoutMs: 120_000 });
        expect(r.stderr).toBe('');
        expect(r.stdout).toBe('');
      }
      // 400 and 500 executions, each routed; the failed batches were not (nothing of them is anywhere).
      expect(routedInserts()).toBe(mid + 900);
      expect(await exact('metrics', 1120, 1137)).toEqual(await exact('twin', 1120, 1137));
      expect((await exact('metrics', 1120, 1137)).length).toBe(904);
      expect(await perDevice('metrics', 1126, 1127)).toEqual(['1126:0:null:null']);
      expect(await perDevice('metrics', 1136, 1137)).toEqual(['1136:0:null:null']);

      if ('skip' in jdbc) return ctx.skip(jdbc.skip);
      const jdbcUrl = (host: string) => `jdbc:postgresql://${host}/${applied.access.database}`;
      const gatewayRun = await run(jdbc.java, ['-cp', jdbc.jar, join('test', 'clients', 'BatchInsert.java'), jdbcUrl(`${gw.host}:${gw.port}`), String(applied.access.user), 'metrics', '1140'], { env, timeoutMs: 180_000 });
      const directRun = await run(jdbc.java, ['-cp', jdbc.jar, join('test', 'clients', 'BatchInsert.java'), jdbcUrl(`${applied.access.host}:${applied.access.port}`), String(applied.access.user), 'twin', '1140'], { env, timeoutMs: 180_000 });
      expect(gatewayRun.stderr).toBe('');
      expect(gatewayRun.stdout.trim()).toBe('600 300 error');
      expect(directRun.stdout.trim()).toBe('600 300 error');
      expect(routedInserts()).toBeGreaterThanOrEqual(mid + 900 + 800);
      expect(await exact('metrics', 1140, 1147)).toEqual(await exact('twin', 1140, 1147));
      expect((await exact('metrics', 1140, 1147)).length).toBe(900);
      expect(await prepared()).toBe(0);
    });

    it('follows the spec file (failover rewrites it): routed writes go where it says from then on', async () => {
      const changed = new Promise<string>((resolve) => gw.gateway.on('warning', (m) => m.startsWith('the spec changed') && resolve(m)));
      await appendFile(applied.specFile, '\n# touched by the test\n');
      expect(await changed).toMatch(/routed writes now go to dn1 \(.*\), dn2/);
      const file = join(dir, 'after.csv');
      await writeFile(file, csvRows(800, 4, 100));
      const before = routed().copies;
      expect((await gateway(['-c', `\\copy metrics FROM '${file}' WITH (FORMAT csv)`])).stdout.trim()).toBe('COPY 100');
      expect(routed().copies).toBe(before + 1);
    });

    it('goes through the access node when it must have a say: row-level security, no INSERT, hypershard.route = off, WHERE', async () => {
      const file = join(dir, 'say.csv');
      await writeFile(file, csvRows(700, 2, 20));
      const copy = ['-c', `\\copy metrics FROM '${file}' WITH (FORMAT csv)`];
      const before = routed().copies;
      expect((await gateway(['-c', 'SET hypershard.route = off', ...copy])).stdout.trim()).toMatch(/^SET\nCOPY 20$/);
      expect((await gateway(['-c', `\\copy metrics FROM '${file}' WITH (FORMAT csv) WHERE device_id = 700`])).stdout.trim()).toBe('COPY 10');
      const reader = await psql(gw.url(applied.reader), applied.reader.password as string | undefined, copy);
      expect(reader.stderr).toMatch(/permission denied for table metrics/);
      await sql(applied.access, 'ALTER TABLE metrics ENABLE ROW LEVEL SECURITY');
      try {
        expect((await gateway(copy)).stdout.trim()).toBe('COPY 20');
      } finally {
        await sql(applied.access, 'ALTER TABLE metrics DISABLE ROW LEVEL SECURITY');
      }
      expect(routed().copies).toBe(before);
      expect(Number((await sql<{ n: string }>(applied.access, 'SELECT count(*) AS n FROM metrics WHERE device_id IN (700, 701)'))[0]?.n)).toBe(50);
    });

    it('an INSERT … ON CONFLICT DO NOTHING goes to the data nodes (rows on their shards, once); a failed one and a rolled-back one as PostgreSQL would; a plain one through the access node', async () => {
      const routedOne = (from: number, devices: number, count: number): string => `${insertValues(from, devices, count)} ON CONFLICT DO NOTHING`;
      const before = routedInserts();
      const statement = routedOne(900, 30, 300);
      const r = await gateway(['-c', statement]);
      expect(r.stderr).toBe('');
      expect(r.stdout.trim()).toBe('INSERT 0 300');
      expect(routedInserts()).toBe(before + 1);
      await sql(applied.access, statement.replace('INSERT INTO metrics', 'INSERT INTO twin'));
      expect(await perDevice('metrics', 900, 930)).toEqual(await perDevice('twin', 900, 930));

      // A single-row INSERT: through the access node (routing costs more than one row).
      expect((await gateway(['-c', insertValues(940, 1, 1)])).stdout.trim()).toBe('INSERT 0 1');
      expect(routedInserts()).toBe(before + 1);

      // A NULL time: the data node's not-null violation, as the client would get it from the access node; nothing committed.
      const bad = routedOne(950, 5, 100).replace(/\('[^']+', 952,/, "(NULL, 952,");
      const failedBefore = routed().failed;
      const failed = await gateway(['-c', bad]);
      expect(failed.code).not.toBe(0);
      expect(failed.stderr).toMatch(/null value in column "time"/);
      expect(routed().failed).toBe(failedBefore + 1);
      expect(Number((await sql<{ n: string }>(applied.access, 'SELECT count(*) AS n FROM metrics WHERE device_id BETWEEN 950 AND 954'))[0]?.n)).toBe(0);

      const rolledBack = await gateway(['-c', 'BEGIN', '-c', routedOne(960, 5, 100), '-c', 'ROLLBACK']);
      expect(rolledBack.stderr).toBe('');
      const committed = await gateway(['-q', '-t', '-c', 'BEGIN', '-c', routedOne(970, 5, 100), '-c', 'COMMIT', '-c', 'SELECT count(*) FROM metrics WHERE device_id BETWEEN 960 AND 974']);
      expect(committed.stderr).toBe('');
      expect(committed.stdout.trim().split('\n').at(-1)).toBe('100');
      expect(routedInserts()).toBe(before + 3);
      expect(await prepared()).toBe(0);
    });

    it('an upsert (ON CONFLICT … DO UPDATE), which postgres_fdw refuses, is routed onto the unique index the spec declares', async () => {
      // A hypertable with a unique index on (device_id, time), added to the applied spec.
      const doc = parseYaml(await readFile(applied.specFile, 'utf8')) as { hypertables: Record<string, unknown>[] };
      doc.hypertables.push({
        name: 'readings',
        columns: [
          { name: 'time', type: 'timestamptz', notNull: true },
          { name: 'device_id', type: 'integer', notNull: true },
          { name: 'value', type: 'double precision' },
          { name: 'note', type: 'text' },
        ],
        timeColumn: 'time',
        chunkInterval: '1 day',
        chunks: { behind: 3, ahead: 2 },
        spaceColumn: 'device_id',
        shards: 4,
        indexes: [{ columns: ['device_id', 'time'], unique: true }],
      });
      const changed = new Promise<string>((resolve) => gw.gateway.on('warning', (m) => m.includes('routed writes now go to') && resolve(m)));
      await writeFile(applied.specFile, stringifyYaml(doc));
      const { spec, file } = await loadSpec(applied.specFile);
      await generateMigrations(spec, file);
      const result = await apply(spec, file);
      expect(result.ok, JSON.stringify(result.nodes)).toBe(true);
      await changed;
      await sql(applied.access, 'CREATE TABLE readings_twin (time timestamptz NOT NULL, device_id integer NOT NULL, value double precision, note text, UNIQUE (device_id, time))');

      const base = Date.parse('2026-11-30T00:00:00Z');
      const upsert = (from: number, count: number, note: string): string =>
        `INSERT INTO readings AS r (time, device_id, value, note) VALUES ${Array.from({ length: count }, (_, i) => `('${new Date(base + (from + i) * 60_000).toISOString()}', ${(from + i) % 7}, ${from + i}.25, '${note}')`).join(', ')}
         ON CONFLICT (device_id, time) DO UPDATE SET value = r.value + EXCLUDED.value, note = EXCLUDED.note`;
      const before = routedInserts();
      for (const [from, count, note] of [[0, 120, 'first'], [60, 120, 'second'], [100, 3, 'third']] as const) {
        const r = await gateway(['-c', upsert(from, count, note)]);
        expect(r.stderr).toBe('');
        expect(r.stdout.trim()).toBe(`INSERT 0 ${count}`);
        await sql(applied.access, upsert(from, count, note).replace('INTO readings AS r', 'INTO readings_twin AS r'));
      }
      expect(routedInserts()).toBe(before + 3);
      const digest = (table: string) => sql<{ d: string }>(applied.access, `SELECT count(*) || ':' || sum(value) || ':' || string_agg(note, ',' ORDER BY device_id, time) AS d FROM ${table}`);
      expect(await digest('readings')).toEqual(await digest('readings_twin'));

      // DO NOTHING: rows already there are skipped and not counted, as PostgreSQL counts them.
      const nothing = upsert(200, 60, 'x').replace(/DO UPDATE SET .*$/s, 'DO NOTHING');
      expect((await gateway(['-c', nothing])).stdout.trim()).toBe('INSERT 0 60');
      expect((await gateway(['-c', nothing])).stdout.trim()).toBe('INSERT 0 0');

      // The same statement straight to the access node: postgres_fdw refuses it.
      await expect(sql(applied.access, upsert(0, 2, 'direct'))).rejects.toThrow(/ON CONFLICT|not supported/i);
      expect(await prepared()).toBe(0);
    });
    it("a routed write waiting for rows its own block's earlier routed write holds prepared ends as a deadlock (40P01), not never", async () => {
      // After the upsert test: readings has a unique index on (device_id, time).
      const client = await connectThrough();
      try {
        const at = '2026-11-20T10:00:00Z';
        await client.query('BEGIN');
        await client.query(`INSERT INTO readings (time, device_id, value) VALUES ('${at}', 1, 1), ('${at}', 2, 1)`);
        const started = Date.now();
        const error = await client.query(`INSERT INTO readings (time, device_id, value) VALUES ('${at}', 1, 2), ('${at}', 3, 2)`).then(() => undefined, (e: unknown) => e as pg.DatabaseError);
        expect(error?.code).toBe('40P01');
        expect(error?.detail).toMatch(/an earlier statement of this transaction block wrote there/);
        expect(Date.now() - started).toBeLessThan(10_000);
        await client.query('ROLLBACK');
        expect((await client.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
        expect(Number((await sql<{ n: string }>(applied.access, `SELECT count(*) AS n FROM readings WHERE time = '${at}'`))[0]?.n)).toBe(0);
        expect(await prepared()).toBe(0);
      } finally {
        await client.end();
      }
    });

    it('a plain multi-row INSERT … VALUES of constants is routed as COPY lines: the same rows as the access node makes of it, and what it would convert goes through it', async () => {
      // After the upsert test: readings (time, device_id, value double precision, note text) exists, with readings_twin.
      const base = Date.parse('2026-12-01T00:00:00Z');
      const at = (i: number): string => new Date(base + i * 60_000).toISOString();
      const hostile = ["it''s", 'tab\there', 'new\nline', 'back\\slash', '\\N', '', 'é✓ 中', 'semi;colon', '\\.', 'a,b"c'];
      const rows = hostile.map((note, i) => `('${at(i)}', ${i - 3}, ${['1e3', '-2.5', '.5', '7', 'NULL', "'NaN'", "'Infinity'::float8", '3::float8', '-0.001', '12345678901234567890'][i]}, '${note}')`);
      rows.push(`('2026-12-01 03:00:00+02'::timestamptz, '5', 1.25, NULL)`, `(' 2026-12-01 04:00 ', 6, NULL, 'x')`);
      const statement = (table: string): string => `INSERT INTO ${table} (time, device_id, value, note) VALUES ${rows.join(',\n ')};`;
      const all = (table: string) => sql<{ r: string }>(applied.access, `SELECT concat_ws('|', device_id, time, value, note) AS r FROM ${table} WHERE time >= '${at(0)}'::timestamptz - interval '2 hours' AND time < '${at(0)}'::timestamptz + interval '1 day' ORDER BY device_id, time`);
      const before = routedInserts();
      // In the session's zone: the zone-less time is read in Asia/Kolkata on the data nodes too.
      const r = await gateway(['-c', "SET TimeZone = 'Asia/Kolkata'", '-c', statement('readings')]);
      expect(r.stderr).toBe('');
      expect(r.stdout.trim().split('\n').at(-1)).toBe(`INSERT 0 ${rows.length}`);
      expect(routedInserts()).toBe(before + 1);
      await sql(applied.access, `SET TimeZone = 'Asia/Kolkata'; ${statement('readings_twin')} RESET TimeZone`);
      expect(await all('readings')).toEqual(await all('readings_twin'));
      expect((await all('readings')).length).toBe(rows.length);

      // What the access node converts (1.5 into an integer rounds, -0.0 into a float is 0, now()
      // is its clock, E'' strings, a cast to another type) goes through it, with its answer.
      const converted = [
        `INSERT INTO %T (time, device_id, value, note) VALUES ('${at(100)}', 1.5, 1, 'a'), ('${at(101)}', 2, 2, 'b')`,
        `INSERT INTO %T (time, device_id, value, note) VALUES ('${at(102)}', 1, -0.0, 'a'), ('${at(103)}', 2, 2, 'b')`,
        `INSERT INTO %T (time, device_id, value, note) VALUES ('${at(104)}', 1, 1, E'e\\\\tscape'), ('${at(105)}', 2, 2, 'b')`,
        `INSERT INTO %T (time, device_id, value, note) VALUES ('${at(106)}'::timestamp, 1, 1, 'a'), ('${at(107)}', 2, 2, 'b')`,
        `INSERT INTO %T (time, device_id, value, note) VALUES ('${at(108)}', 1, 1, 1), ('${at(109)}', 2, 2, 'b')`,
      ];
      for (const c of converted) {
        const out = await gateway(['-c', c.replace('%T', 'readings')]);
        expect(out.stderr, c).toBe('');
        await sql(applied.access, c.replace('%T', 'readings_twin'));
      }
      expect(routedInserts()).toBe(before + 1);
      expect(await all('readings')).toEqual(await all('readings_twin'));

      // Errors as the access node words them, nothing written: a bad value (from a data node), more expressions than columns (from the access node).
      const badTime = await gateway(['-c', `INSERT INTO readings (time, device_id, value, note) VALUES ('${at(200)}', 1, 1, 'a'), ('not a time', 2, 2, 'b')`]);
      expect(badTime.stderr).toMatch(/invalid input syntax for type timestamp with time zone: "not a time"/);
      const tooMany = await gateway(['-c', `INSERT INTO readings (time, device_id) VALUES ('${at(201)}', 1, 1), ('${at(202)}', 2, 2)`]);
      expect(tooMany.stderr).toMatch(/INSERT has more expressions than target columns/);
      expect(Number((await sql<{ n: string }>(applied.access, `SELECT count(*) AS n FROM readings WHERE time >= '${at(200)}' AND time <= '${at(202)}'`))[0]?.n)).toBe(0);

      // In a block: rolled back with it; committed with it, readable by the block's next statement after COMMIT.
      const block = (from: number, end: string) => gateway(['-q', '-t', '-c', 'BEGIN', '-c', `INSERT INTO readings (time, device_id, value) VALUES ('${at(from)}', 1, 1), ('${at(from + 1)}', 2, 2), ('${at(from + 2)}', 3, 3)`, '-c', end, '-c', `SELECT count(*) FROM readings WHERE time >= '${at(from)}' AND time <= '${at(from + 2)}'`]);
      expect((await block(300, 'ROLLBACK')).stdout.trim().split('\n').at(-1)).toBe('0');
      expect((await block(310, 'COMMIT')).stdout.trim().split('\n').at(-1)).toBe('3');
      // All rows on one device: one data node, committed there without two-phase commit.
      expect((await gateway(['-c', `INSERT INTO readings (time, device_id, value) VALUES ('${at(320)}', 4, 1), ('${at(321)}', 4, 2)`])).stdout.trim()).toBe('INSERT 0 2');
      expect(routedInserts()).toBe(before + 4);
      expect(await prepared()).toBe(0);
    });
    it('a batch whose text parameter is not UTF-8 goes to the access node, which refuses it as PostgreSQL does; nothing is written', async () => {
      const raw = await rawConnection(gw.host, gw.port);
      try {
        raw.write(serialize.startup({ user: String(applied.access.user), database: String(applied.access.database) }));
        await raw.until((m) => m.some((x) => x.type === 'Z'));
        const insert = 'INSERT INTO metrics (time, device_id, cpu) VALUES ($1, $2, $3), ($4, $5, $6)';
        // A Bind of six text values written by hand (a driver would encode a string): the last is not UTF-8.
        const values = [Buffer.from('2031-05-05 00:00:00+00'), Buffer.from('3'), Buffer.from('1.5'), Buffer.from('2031-05-05 00:00:01+00'), Buffer.from('4'), Buffer.from([0x61, 0xc3, 0x28])];
        const bodyParts = [Buffer.from('\0\0'), Buffer.from([0, 0, 0, values.length]), ...values.flatMap((v) => [Buffer.from([0, 0, 0, v.length]), v]), Buffer.from([0, 0])];
        const bindBody = Buffer.concat(bodyParts);
        const bind = Buffer.concat([Buffer.from('B'), Buffer.alloc(4), bindBody]);
        bind.writeInt32BE(bind.length - 1, 1);
        const before = routedInserts();
        raw.write(Buffer.concat([serialize.parse({ name: '', text: insert, types: [] }), bind, serialize.execute({ portal: '' }), serialize.sync()]));
        const messages = await raw.until((m) => m.some((x) => x.type === 'Z' && m.some((y) => y.type === 'E')));
        const error = messages.find((x) => x.type === 'E')?.body.toString('latin1') ?? '';
        expect(error).toContain('C22021');
        expect(routedInserts()).toBe(before);
        expect(await sql(applied.access, `SELECT count(*)::int AS n FROM metrics WHERE time >= '2031-05-05 00:00:00+00' AND time < '2031-05-06 00:00:00+00'`)).toEqual([{ n: 0 }]);
      } finally {
        raw.close();
      }
    });

    it('parameters of an extended-protocol INSERT go as COPY lines only when the columns read them as the statement would: hostile text, NULL, -0, NaN; declared and cast types', async () => {
      // After the upsert test: readings (time, device_id, value double precision, note text), with readings_twin.
      const base = Date.parse('2026-12-04T00:00:00Z');
      const notes = ["it's", 'tab\there', 'new\nline', 'back\\slash', '\\N', '', 'é✓ 中', '\\.', 'a,b"c', 'cr\rx', null];
      const values = ['-0', 'NaN', '-Infinity', '1e-300', null, '0.1', '12345678901234567890', '3', '-2.5', '7', '8'];
      const statements = [
        // undeclared text parameters: COPY lines
        { text: (t: string) => `INSERT INTO ${t} (time, device_id, value, note) VALUES ${notes.map((_, i) => `($${i * 4 + 1}, $${i * 4 + 2}, $${i * 4 + 3}, $${i * 4 + 4})`).join(', ')}`, params: notes.flatMap((n, i) => [new Date(base + i * 1000).toISOString(), i, values[i], n]) },
        // a cast to the column's type (COPY lines) and to another (a statement: the access node converts)
        { text: (t: string) => `INSERT INTO ${t} (time, device_id, value, note) VALUES ($1::timestamptz, $2, $3::numeric, $4), ($5::timestamptz, $6, $7::numeric, $8)`, params: [new Date(base + 60_000).toISOString(), 1, '0.1', 'x', new Date(base + 61_000).toISOString(), 2, '1e-3', null] },
      ];
      const before = routedInserts();
      for (const [target, table] of [[url(), 'readings'], [applied.access, 'readings_twin']] as const) {
        const client = new pg.Client(target);
        await client.connect();
        try {
          for (const st of statements) await client.query(st.text(table), st.params);
        } finally {
          await client.end();
        }
      }
      expect(routedInserts()).toBe(before + statements.length);
      const all = (table: string) => sql<{ r: string }>(applied.access, `SELECT concat_ws('|', device_id, time, value::text, coalesce(note, '<null>')) AS r FROM ${table} WHERE time >= '${new Date(base).toISOString()}' AND time < '${new Date(base + 3_600_000).toISOString()}' ORDER BY 1`);
      expect(await all('readings')).toEqual(await all('readings_twin'));
      expect((await all('readings')).length).toBe(notes.length + 2);
    });
  });
}
