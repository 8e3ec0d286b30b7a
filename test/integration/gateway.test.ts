/**
 * The gateway on real clusters (access node + 2 data nodes, the example spec applied, rows in
 * `metrics`), through node-postgres, psql and raw protocol bytes: answers equal the access node's,
 * the rewrites are the ones rewriteSql makes for the session's settings (which the gateway follows
 * through SET, SET LOCAL, transaction ends and prepared statements), errors are the server's own,
 * and the protocol's corners work: cancel, COPY both ways, notices and notifications, every
 * authentication method, TLS on both sides, limits, and a fuzzer that must not break anything.
 */
import { execFileSync, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { chownSync, statSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
// @ts-expect-error pg ships no declarations for lib/utils
import pgUtils from 'pg/lib/utils.js';
import { serialize } from 'pg-protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freezeDevNode } from '../../src/dev/cluster.js';
import { startGateway } from '../../src/gateway/gateway.js';
import { cancelRequest } from '../../src/gateway/protocol/messages.js';
import { discoverMetadata } from '../../src/rewrite/discover.js';
import type { ClusterMetadata } from '../../src/rewrite/model.js';
import { rewriteSql } from '../../src/rewrite/rewrite.js';
import { inlineParameters } from '../../src/route/boundValues.js';
import { readZoneGrid } from '../../src/rewrite/zoneGrid.js';
import { sessionSettings, type SessionSettings } from '../../src/rewrite/session.js';
import { appliedExampleCluster, METRICS_ROWS, type AppliedCluster } from '../support/appliedCluster.js';
import { clusterSources, type TestCluster } from '../support/clusters.js';
import { expectSameRows } from '../support/compare.js';
import { directUrl, psql, rawConnection, startTestGateway, type TestGateway } from '../support/gateway.js';

const BIN = fileURLToPath(new URL('../../bin/hypershard.js', import.meta.url));
const sources = await Promise.all(clusterSources().map(async (s) => ({ source: s, skip: await s.unavailable() })));

const SINCE = new Date(Date.now() - 6 * 3600_000);
/** Statements over the hypertable with fixed bounds (their answers do not move with the clock). */
const QUERIES: readonly { sql: string; values?: unknown[]; ordered: boolean }[] = [
  { sql: 'SELECT device_id, count(*) AS n, avg(cpu) AS avg_cpu, max(temperature) AS peak FROM metrics GROUP BY device_id ORDER BY device_id', ordered: true },
  { sql: "SELECT date_trunc('hour', time) AS hour, count(*) AS n, max(cpu) AS peak FROM metrics GROUP BY 1 ORDER BY 1", ordered: true },
  { sql: 'SELECT time, cpu FROM metrics WHERE device_id = $1 AND time > $2 ORDER BY time DESC LIMIT 5', values: [7, SINCE], ordered: true },
  { sql: 'SELECT device_id, max(cpu) AS peak FROM metrics WHERE device_id = ANY ($1::int[]) GROUP BY device_id ORDER BY peak DESC, device_id LIMIT 3', values: [[1, 2, 3, 4, 5]], ordered: true },
  { sql: 'SELECT DISTINCT ON (device_id) device_id, time, cpu FROM metrics ORDER BY device_id, time DESC', ordered: true },
  { sql: 'SELECT count(*) AS n, min(time) AS first, max(time) AS last FROM metrics WHERE time >= $1', values: [SINCE], ordered: true },
];
/** Statements whose answers depend on now(): compared with rewriting off in the same snapshot. */
const NOW_QUERIES: readonly string[] = [
  "SELECT date_trunc('minute', time) AS b, max(cpu) AS m, count(*) AS n FROM metrics WHERE time > now() - interval '2 hours' GROUP BY b ORDER BY b",
  "SELECT device_id, max(cpu) AS m FROM metrics WHERE time > now() - interval '3 hours' GROUP BY device_id ORDER BY m DESC, device_id LIMIT 4",
  "SELECT count(*) AS n FROM metrics WHERE time > now() - interval '90 minutes'",
];

for (const { source, skip } of sources) {
  describe.skipIf(skip !== undefined)(`gateway on ${source.label}${skip === undefined ? '' : ` — skipped: ${skip}`}`, () => {
    let cluster: TestCluster;
    let applied: AppliedCluster;
    let gw: TestGateway;
    let metadata: ClusterMetadata;
    let readerPassword: string;
    /** The access node's defaults for a new session (TimeZone, search_path). */
    let defaults: SessionSettings;

    const connect = async (config: pg.ClientConfig): Promise<pg.Client> => {
      const client = new pg.Client(config);
      client.on('error', () => undefined);
      await client.connect();
      return client;
    };
    /** Runs `fn` with a client through the gateway and one to the access node itself. */
    const both = async <T>(fn: (through: pg.Client, direct: pg.Client) => Promise<T>, config: pg.ClientConfig = applied.access): Promise<T> => {
      const [through, direct] = await Promise.all([connect(gw.through(config)), connect(config)]);
      try {
        return await fn(through, direct);
      } finally {
        await Promise.all([through.end(), direct.end()]);
      }
    };
    const eventsOf = (sql: string) => gw.events.filter((e) => e.original === sql);

    beforeAll(async () => {
      cluster = await source.start(2);
      applied = await appliedExampleCluster(cluster, 'gateway');
      readerPassword = String(applied.reader.password);
      gw = await startTestGateway(applied);
      const client = await connect(applied.access);
      metadata = await discoverMetadata(client);
      defaults = await sessionSettings(client);
      await client.end();
    });
    afterAll(async () => {
      await gw?.close();
      await cluster?.stop();
    });

    it('answers every statement as the access node does, rewriting the ones rewriteSql rewrites (simple and extended protocol)', async () => {
      await both(async (through, direct) => {
        for (const q of QUERIES) {
          for (const simple of [true, false]) {
            if (simple && q.values !== undefined) continue;
            const config = simple ? q.sql : { text: q.sql, values: q.values ?? [] };
            const [a, b] = await Promise.all([through.query(config as string), direct.query(config as string)]);
            expectSameRows(a.rows, b.rows, { ordered: q.ordered, label: q.sql });
          }
          const expected = rewriteSql(q.sql, metadata, defaults);
          // A router read with values ran the rewrite of the statement with them written in (as pg sent them: untyped text).
          const inlined = q.values === undefined ? undefined : inlineParameters(q.sql, [], q.values.map((v) => (pgUtils as { prepareValue: (v: unknown) => string }).prepareValue(v)));
          const routed = inlined === undefined ? undefined : rewriteSql(inlined, metadata, defaults);
          const seen = eventsOf(q.sql);
          expect(seen.length, q.sql).toBeGreaterThan(0);
          for (const e of seen) {
            const want = routed !== undefined && e.sql === routed.sql ? routed : expected;
            expect({ sql: e.sql, changed: e.changed, rewrites: e.rewrites }, q.sql).toEqual({ sql: want.sql, changed: want.changed, rewrites: want.rewrites });
          }
        }
      });
      expect(gw.gateway.metrics().rewritten).toBeGreaterThan(0);
    });

    it("statements with now() give the access node's answer in the same snapshot (hypershard.rewrite = off compares)", async () => {
      const client = await connect(gw.through(applied.access));
      try {
        await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
        for (const sql of NOW_QUERIES) {
          const rewritten = await client.query(sql);
          await client.query('SET hypershard.rewrite = off');
          const asWritten = await client.query(sql);
          await client.query('SET hypershard.rewrite = on');
          expect(rewritten.rows.length, sql).toBeGreaterThan(0);
          expectSameRows(rewritten.rows, asWritten.rows, { ordered: true, label: sql });
          const seen = eventsOf(sql);
          expect(seen.filter((e) => e.changed).length, sql).toBe(1);
        }
        await client.query('COMMIT');
      } finally {
        await client.end();
      }
    });

    it("follows the session's TimeZone and search_path through SET, SET LOCAL, RESET and transaction ends", async () => {
      const sql = "SELECT date_trunc('day', time) AS d, count(*) AS n FROM metrics GROUP BY 1 ORDER BY 1";
      await both(async (through, direct) => {
        const compare = async (label: string): Promise<void> => {
          const [a, b] = await Promise.all([through.query(sql), direct.query(sql)]);
          expectSameRows(a.rows, b.rows, { ordered: true, label });
        };
        for (const c of [through, direct]) await c.query("SET TimeZone = 'Asia/Kolkata'");
        await compare('Asia/Kolkata');
        const last = eventsOf(sql).at(-1);
        expect(last?.sql).toBe(rewriteSql(sql, metadata, { ...defaults, timeZone: 'Asia/Kolkata', zoneGrid: await readZoneGrid(direct, 'Asia/Kolkata') }).sql);
        for (const c of [through, direct]) await c.query("BEGIN; SET LOCAL TimeZone = 'UTC'");
        await compare('SET LOCAL UTC');
        for (const c of [through, direct]) await c.query('COMMIT');
        await compare('after COMMIT, Asia/Kolkata again');
        for (const c of [through, direct]) await c.query('RESET TimeZone');
        await compare('RESET');
        // A plain table named like the hypertable, first in the path: nothing to rewrite. (Created
        // through the gateway, which then reads the names again; DDL elsewhere is seen at the
        // next catalog refresh.)
        await through.query('CREATE SCHEMA IF NOT EXISTS shadow; CREATE TABLE IF NOT EXISTS shadow.metrics (LIKE public.metrics); TRUNCATE shadow.metrics; INSERT INTO shadow.metrics SELECT * FROM public.metrics LIMIT 10');
        for (const c of [through, direct]) await c.query('SET search_path = shadow, public');
        const before = eventsOf(sql).filter((e) => e.changed).length;
        await compare('search_path shadow');
        expect(eventsOf(sql).filter((e) => e.changed).length).toBe(before);
        for (const c of [through, direct]) await c.query('RESET search_path');
        await compare('search_path reset');
      });
    });

    it('rewrites nothing it would read otherwise than the server: literals under standard_conforming_strings = off, names a statement of the session just defined', async () => {
      await both(async (through, direct) => {
        const count = async (c: pg.Client, sql: string): Promise<number> => Number((await c.query<{ n: string }>(sql)).rows[0]?.n);
        expect(await count(direct, 'SELECT count(*) AS n FROM metrics WHERE device_id = 6')).toBeGreaterThan(0);
        // With backslash escapes the server reads one literal, x' OR device_id = 6 --, where a standard reading finds a condition.
        for (const c of [through, direct]) await c.query('SET standard_conforming_strings = off');
        const tricky = "SELECT count(*) AS n FROM metrics WHERE 'x' = 'x\\' OR device_id = 6 --'";
        expect(await count(direct, tricky)).toBe(0);
        expect(await count(through, tricky)).toBe(0);
        for (const c of [through, direct]) await c.query('RESET standard_conforming_strings');

        // A table named like the hypertable, first on the path: seen by the very next statement (it
        // was read too early, as the CREATE went by, and kept for a minute), and in a block at once.
        await through.query('CREATE SCHEMA shadow2');
        await through.query('CREATE TABLE shadow2.metrics (device_id int)');
        await through.query('SET search_path = shadow2, public');
        expect(await count(through, 'SELECT count(*) AS n FROM metrics')).toBe(0);
        expect(await count(through, 'SELECT count(*) AS n FROM metrics WHERE device_id = 6')).toBe(0);
        await through.query('DROP TABLE shadow2.metrics');
        expect(await count(through, 'SELECT count(*) AS n FROM metrics WHERE device_id = 6')).toBe(await count(direct, 'SELECT count(*) AS n FROM metrics WHERE device_id = 6'));
        await through.query('BEGIN');
        await through.query('CREATE TABLE shadow2.metrics (device_id int)');
        expect(await count(through, 'SELECT count(*) AS n FROM metrics WHERE device_id = 6')).toBe(0);
        await through.query('COMMIT');
        expect(await count(through, 'SELECT count(*) AS n FROM metrics')).toBe(0);
        await through.query('RESET search_path');
        await through.query('DROP SCHEMA shadow2 CASCADE');
        expect(await count(through, 'SELECT count(*) AS n FROM metrics')).toBe(await count(direct, 'SELECT count(*) AS n FROM metrics'));
      });
    });

    it('prepares a named statement again when the settings it was rewritten for change', async () => {
      const text = "SELECT date_trunc('day', time) AS d, count(*) AS n FROM metrics WHERE device_id = $1 GROUP BY 1 ORDER BY 1";
      await both(async (through, direct) => {
        for (const zone of ['UTC', 'America/Los_Angeles', 'UTC']) {
          for (const c of [through, direct]) await c.query(`SET TimeZone = '${zone}'`);
          const [a, b] = await Promise.all([through.query({ name: 'per_day', text, values: [3] }), direct.query({ name: 'per_day', text, values: [3] })]);
          expectSameRows(a.rows, b.rows, { ordered: true, label: zone });
        }
      });
    });

    it("reports the server's own errors: positions point into the statement the client sent", async () => {
      const bad = "SELECT date_trunc('hour', time) AS h, max(nosuch) FROM metrics WHERE time > now() - interval '1 hour' GROUP BY 1";
      await both(async (through, direct) => {
        for (const config of [bad, { text: `${bad} HAVING count(*) > $1`, values: [0] }]) {
          const [a, b] = await Promise.all([through.query(config as string).catch((e: unknown) => e), direct.query(config as string).catch((e: unknown) => e)]);
          expect(a).toBeInstanceOf(pg.DatabaseError);
          expect({ code: (a as pg.DatabaseError).code, message: (a as pg.DatabaseError).message, position: (a as pg.DatabaseError).position }).toEqual({
            code: (b as pg.DatabaseError).code,
            message: (b as pg.DatabaseError).message,
            position: (b as pg.DatabaseError).position,
          });
        }
        // Inside a transaction the failed statement cannot run again: the position is moved or dropped, never wrong.
        await through.query('BEGIN');
        const inTx = (await through.query(bad).catch((e: unknown) => e)) as pg.DatabaseError;
        await through.query('ROLLBACK');
        expect(inTx.code).toBe('42703');
        if (inTx.position !== undefined) expect(bad.slice(Number(inTx.position) - 1)).toMatch(/^nosuch/);
      });
      expect(gw.gateway.metrics().retried).toBeGreaterThanOrEqual(2);
    });

    it('psql: the dashboard query, \\copy both ways, notices; same output as the access node', async () => {
      const dashboard = "SELECT date_trunc('minute', time) AS b, max(cpu) FROM metrics WHERE time > TIMESTAMPTZ '2000-01-01' GROUP BY b ORDER BY b DESC LIMIT 5;";
      const viaGateway = await psql(gw.url(applied.access), undefined, ['-c', dashboard]);
      const direct = await psql(directUrl(applied.access), undefined, ['-c', dashboard]);
      expect(viaGateway.stderr).toBe('');
      expect(viaGateway.stdout).toBe(direct.stdout);
      const dir = await mkdtemp(join(tmpdir(), 'hs-gw-copy-'));
      try {
        const out = join(dir, 'out.csv');
        const copied = await psql(gw.url(applied.access), undefined, ['-c', `\\copy (SELECT * FROM metrics ORDER BY time, device_id) TO '${out}' CSV`]);
        expect(copied.stderr).toBe('');
        const input = await psql(gw.url(applied.access), undefined, ['-t'], `CREATE TEMP TABLE copy_in (LIKE metrics);\n\\copy copy_in FROM '${out}' CSV\nSELECT count(*) FROM copy_in;\nDO $$ BEGIN RAISE NOTICE 'copied %', (SELECT count(*) FROM copy_in); END $$;\n`);
        expect(input.stderr).toContain(`NOTICE:  copied ${METRICS_ROWS}`);
        expect(input.stdout.trim()).toBe(String(METRICS_ROWS));
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });

    it("psql: TimescaleDB's dashboard query (time_bucket, now() window) answers as the access node does, and EXPLAIN through the gateway shows the aggregate on every shard", async () => {
      const query = "SELECT time_bucket('5 minutes', time) AS b, max(cpu) FROM metrics WHERE time > now() - interval '1 hour' GROUP BY b";
      // One transaction, one now(): as written (rewriting off) and rewritten, through the gateway; then the access node itself.
      const script = `BEGIN ISOLATION LEVEL REPEATABLE READ;\nSET hypershard.rewrite = off;\n${query} ORDER BY b;\nSET hypershard.rewrite = on;\n\\echo ---\nSELECT * FROM (${query}) AS q ORDER BY b;\nCOMMIT;\n`;
      const result = await psql(gw.url(applied.access), undefined, ['-t'], script);
      expect(result.stderr).toBe('');
      const [asWritten, rewritten] = result.stdout.split('---\n').map((part) => part.trim());
      expect(rewritten).toBe(asWritten);
      expect((asWritten ?? '').split('\n').length).toBeGreaterThan(5);
      const explain = await psql(gw.url(applied.access), undefined, ['-t', '-c', `EXPLAIN (VERBOSE) ${query}`]);
      expect(explain.stderr).toBe('');
      const aggregates = explain.stdout.match(/Relations: Aggregate on/g) ?? [];
      expect(aggregates.length, explain.stdout).toBe(applied.layout.hypertables[0]!.shards.length);
      const direct = await psql(directUrl(applied.access), undefined, ['-t', '-c', `EXPLAIN (VERBOSE) ${query}`]);
      expect(direct.stdout).not.toMatch(/Relations: Aggregate on/);
    });

    it('relays notifications and routes a cancel to the backend it was meant for', async () => {
      const listener = await connect(gw.through(applied.access));
      const talker = await connect(gw.through(applied.access));
      try {
        const got = new Promise<pg.Notification>((resolve) => listener.on('notification', resolve));
        await listener.query('LISTEN hs_gateway');
        await talker.query("NOTIFY hs_gateway, 'hello'");
        expect((await got).payload).toBe('hello');

        const { processID, secretKey } = listener as unknown as { processID: number; secretKey: number };
        const sleeping = listener.query('SELECT pg_sleep(30)').catch((e: unknown) => e);
        await new Promise((r) => setTimeout(r, 300));
        // A wrong key is ignored; the key the gateway gave out cancels.
        const key = Buffer.alloc(4);
        key.writeInt32BE(secretKey);
        for (const k of [Buffer.from([1, 2, 3, 4]), key]) {
          const socket = net.connect({ host: gw.host, port: gw.port }, () => socket.end(cancelRequest(processID, k)));
          socket.on('error', () => undefined);
          await new Promise((r) => setTimeout(r, 300));
        }
        const started = Date.now();
        const error = (await sleeping) as pg.DatabaseError;
        expect(error.code).toBe('57014');
        expect(Date.now() - started).toBeLessThan(10_000);
        expect((await talker.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
      } finally {
        await Promise.all([listener.end(), talker.end()]);
      }
    });

    it('authenticates end to end with SCRAM, md5, password and trust, keeping no password', async () => {
      const admin = await connect(applied.access);
      const { rows } = await admin.query<{ hba_file: string }>('SHOW hba_file');
      const hbaFile = rows[0]!.hba_file;
      const md5Password = `m'd"5\\${randomBytes(4).toString('hex')}`;
      const plainPassword = `p ${randomBytes(4).toString('hex')}`;
      await admin.query("SET password_encryption = 'md5'");
      await admin.query(`DROP ROLE IF EXISTS gw_md5; CREATE ROLE gw_md5 LOGIN PASSWORD ${pg.escapeLiteral(md5Password)}`);
      await admin.query("SET password_encryption = 'scram-sha-256'");
      await admin.query(`DROP ROLE IF EXISTS gw_plain; CREATE ROLE gw_plain LOGIN PASSWORD ${pg.escapeLiteral(plainPassword)}`);
      const original = execFileSync('cat', [hbaFile], { encoding: 'utf8' });
      writeFileSync(hbaFile, `host all gw_md5 127.0.0.1/32 md5\nhost all gw_plain 127.0.0.1/32 password\n${original}`);
      await admin.query('SELECT pg_reload_conf()');
      try {
        const as = (user: string, password: string | undefined): pg.ClientConfig => ({ ...applied.access, user, password: password as string });
        for (const [user, password] of [['metrics_reader', readerPassword], ['gw_md5', md5Password], ['gw_plain', plainPassword], [String(applied.access.user), undefined]] as const) {
          const client = await connect(gw.through(as(user, password)));
          const { rows: who } = await client.query<{ u: string }>('SELECT current_user AS u');
          expect(who[0]?.u).toBe(user);
          await client.end();
          if (password !== undefined) {
            const wrong = await connect(gw.through(as(user, `${password}x`))).catch((e: unknown) => e);
            expect((wrong as pg.DatabaseError).code, user).toBe('28P01');
          }
        }
        // psql with SCRAM through the gateway, the password in PGPASSWORD.
        const viaPsql = await psql(gw.url({ ...applied.access, user: 'metrics_reader' }), readerPassword, ['-t', '-c', 'SELECT count(*) FROM metrics']);
        expect(viaPsql.stdout.trim()).toBe(String(METRICS_ROWS));
      } finally {
        writeFileSync(hbaFile, original);
        await admin.query('SELECT pg_reload_conf()');
        await admin.end();
      }
    });

    it('speaks TLS to clients that ask (with a certificate in the spec) and to an access node whose URL asks for it', async () => {
      const dir = await mkdtemp(join(tmpdir(), 'hs-gw-tls-'));
      const admin = await connect(applied.access);
      let dataDir = '';
      try {
        execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=localhost', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')], { stdio: 'ignore' });
        // The access node serves TLS with the same pair (files owned by the server's OS user).
        dataDir = (await admin.query<{ data_directory: string }>('SHOW data_directory')).rows[0]!.data_directory;
        const owner = statSync(dataDir);
        for (const f of ['cert.pem', 'key.pem']) {
          const target = join(dataDir, `hs-${f}`);
          writeFileSync(target, execFileSync('cat', [join(dir, f)]), { mode: 0o600 });
          chownSync(target, owner.uid, owner.gid);
        }
        await admin.query(`ALTER SYSTEM SET ssl_cert_file = ${pg.escapeLiteral(join(dataDir, 'hs-cert.pem'))}`);
        await admin.query(`ALTER SYSTEM SET ssl_key_file = ${pg.escapeLiteral(join(dataDir, 'hs-key.pem'))}`);
        await admin.query('ALTER SYSTEM SET ssl = on');
        await admin.query('SELECT pg_reload_conf()');
        await new Promise((r) => setTimeout(r, 500));

        const spec = structuredClone(applied.spec);
        const url = new URL(spec.accessNode.url);
        url.searchParams.set('sslmode', 'require');
        spec.accessNode.url = url.toString();
        const specFile = join(applied.specFile);
        const tlsSpec = { ...spec, gateway: { tls: { cert: join(dir, 'cert.pem'), key: join(dir, 'key.pem') } } };
        const secure = await startGateway(tlsSpec, specFile, { port: 0 });
        try {
          const [host, port] = [secure.address.slice(0, secure.address.lastIndexOf(':')), Number(secure.address.slice(secure.address.lastIndexOf(':') + 1))];
          const target = `postgres://${applied.access.user}@${host}:${port}/${applied.access.database}`;
          const result = await psql(`${target}?sslmode=require`, undefined, ['-t', '-c', 'SELECT count(*) FROM metrics']);
          expect(result.stderr).toBe('');
          expect(result.stdout.trim()).toBe(String(METRICS_ROWS));
          // The gateway's own connection to the access node is encrypted too.
          const ssl = await psql(`${target}?sslmode=require`, undefined, ['-t', '-c', 'SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()']);
          expect(ssl.stdout.trim()).toBe('t');
          // SCRAM with TLS on both sides: channel binding cannot pass through; without it, it works,
          // and a client that would bind is told why it cannot.
          const reader = `postgres://metrics_reader@${host}:${port}/${applied.access.database}?sslmode=require`;
          const scram = await psql(`${reader}&channel_binding=disable`, readerPassword, ['-t', '-c', 'SELECT 1']);
          expect(scram.stderr).toBe('');
          const binding = await psql(reader, readerPassword, ['-t', '-c', 'SELECT 1']);
          expect(binding.stderr).toMatch(/channel binding cannot pass through the gateway/);
        } finally {
          await secure.close();
        }
        // Without a certificate the gateway declines TLS, as a server without ssl does.
        const refused = await psql(`${gw.url(applied.access)}?sslmode=require`, undefined, ['-c', 'SELECT 1']);
        expect(refused.code).not.toBe(0);
        expect(refused.stderr).toMatch(/does not support SSL/);
      } finally {
        await admin.query('ALTER SYSTEM RESET ssl; ALTER SYSTEM RESET ssl_cert_file; ALTER SYSTEM RESET ssl_key_file').catch(() => undefined);
        await admin.query('SELECT pg_reload_conf()').catch(() => undefined);
        await admin.end();
        await rm(dir, { recursive: true, force: true });
      }
    });

    it('reads the settings inside a pipelined batch without disturbing it', async () => {
      const raw = await rawConnection(gw.host, gw.port);
      try {
        raw.write(serialize.startup({ user: String(applied.access.user), database: String(applied.access.database) }));
        await raw.until((m) => m.some((x) => x.type === 'Z'));
        const query = 'SELECT count(*) AS n FROM metrics WHERE device_id = $1';
        // SET search_path, then the hypertable query, in one batch: the gateway must read the new
        // path between them, inside the batch, with a Flush.
        raw.write(
          Buffer.concat([
            serialize.parse({ text: 'SET search_path = public' }),
            serialize.bind({}),
            serialize.execute({}),
            serialize.parse({ name: 'q', text: query }),
            serialize.bind({ statement: 'q', values: ['3'] }),
            serialize.execute({}),
            serialize.sync(),
          ]),
        );
        const messages = await raw.until((m) => m.filter((x) => x.type === 'Z').length >= 2);
        // ParameterStatus (PostgreSQL 18 reports search_path) may come anywhere; the answers in order:
        const after = messages.slice(messages.findIndex((x) => x.type === 'Z') + 1).map((x) => x.type).filter((t) => t !== 'S');
        expect(after).toEqual(['1', '2', 'C', '1', '2', 'D', 'C', 'Z']);
        expect(eventsOf(query).at(-1)?.changed).toBe(true);
      } finally {
        raw.close();
      }
    });

    it('closes a connection that breaks the protocol or a limit with an error, and every other session goes on', async () => {
      const bystander = await connect(gw.through(applied.access));
      const limited = await startGateway(applied.spec, applied.specFile, { port: 0, maxConnections: 2, maxMessageBytes: 4096, messageTimeoutMs: 500 });
      try {
        const [host, port] = [limited.address.slice(0, limited.address.lastIndexOf(':')), Number(limited.address.slice(limited.address.lastIndexOf(':') + 1))];
        const ready = async (): Promise<Awaited<ReturnType<typeof rawConnection>>> => {
          const raw = await rawConnection(host, port);
          raw.write(serialize.startup({ user: String(applied.access.user), database: String(applied.access.database) }));
          await raw.until((m) => m.some((x) => x.type === 'Z'));
          return raw;
        };
        const errorOf = (messages: { type: string; body: Buffer }[]): string => {
          const e = messages.find((x) => x.type === 'E');
          return e === undefined ? '(no error)' : e.body.toString('latin1');
        };
        const cases: [string, Buffer, RegExp][] = [
          ['unknown message type', Buffer.from([0x7a, 0, 0, 0, 4]), /invalid frontend message type/],
          ['message over the size limit', Buffer.concat([Buffer.from([0x51]), Buffer.from([0, 1, 0, 0])]), /invalid message length/],
          ['length below the minimum', Buffer.from([0x51, 0, 0, 0, 2]), /invalid message length/],
          ['stalled mid-message', Buffer.from([0x51, 0, 0, 0, 40, 0x53]), /part of a message/],
        ];
        for (const [label, bytes, expected] of cases) {
          const raw = await ready();
          raw.write(bytes);
          const messages = await raw.until(() => raw.closed, 5000);
          expect(raw.closed, label).toBe(true);
          expect(errorOf(messages), label).toMatch(expected);
        }
        // At the connection limit, one more is refused with PostgreSQL's code; the others are served.
        const a = await ready();
        const b = await ready();
        const c = await rawConnection(host, port);
        const refused = await c.until(() => c.closed, 5000);
        expect(errorOf(refused)).toMatch(/53300.*too many clients/s);
        a.close();
        b.close();
        expect((await bystander.query('SELECT count(*)::int AS n FROM metrics')).rows).toEqual([{ n: METRICS_ROWS }]);
        expect(limited.metrics().protocolErrors).toMatchObject({ 'invalid-message': 1, 'invalid-length': 2, 'stalled-message': 1 });
      } finally {
        await limited.close();
        await bystander.end();
      }
    });

    it('survives a fuzzer: random and mutated frames before and after authentication', async () => {
      const bystander = await connect(gw.through(applied.access));
      const seed = Number(process.env.HYPERSHARD_FUZZ_SEED ?? Date.now() % 100_000);
      let state = seed;
      const rand = (n: number): number => {
        state = (state * 1_103_515_245 + 12_345) % 2 ** 31;
        return state % n;
      };
      const valid = [
        serialize.query('SELECT count(*) FROM metrics'),
        serialize.parse({ name: 'f', text: 'SELECT max(cpu) FROM metrics WHERE device_id = $1' }),
        serialize.bind({ statement: 'f', values: ['1'] }),
        serialize.describe({ type: 'P' }),
        serialize.execute({}),
        serialize.sync(),
        serialize.flush(),
        serialize.copyData(Buffer.from('x')),
      ];
      const mutate = (bytes: Buffer): Buffer => {
        const copy = Buffer.from(bytes);
        for (let i = rand(4); i >= 0; i -= 1) copy[rand(copy.length)] = rand(256);
        return rand(5) === 0 ? copy.subarray(0, rand(copy.length) + 1) : copy;
      };
      const runs = process.env.HYPERSHARD_FAULTS === 'full' ? 1000 : 120;
      try {
        for (let i = 0; i < runs; i += 1) {
          const raw = await rawConnection(gw.host, gw.port);
          const authenticated = rand(3) !== 0;
          if (authenticated) {
            raw.write(serialize.startup({ user: String(applied.access.user), database: String(applied.access.database) }));
            await raw.until((m) => m.some((x) => x.type === 'Z' || x.type === 'E'));
          }
          const frames: Buffer[] = [];
          for (let n = rand(6) + 1; n > 0; n -= 1) {
            const kind = rand(3);
            frames.push(kind === 0 ? randomBytes(rand(64) + 1) : kind === 1 ? mutate(valid[rand(valid.length)]!) : valid[rand(valid.length)]!);
          }
          raw.write(Buffer.concat(frames));
          await raw.until(() => raw.closed, 150);
          raw.close();
        }
        expect((await bystander.query('SELECT count(*)::int AS n FROM metrics')).rows, `fuzz seed ${seed}`).toEqual([{ n: METRICS_ROWS }]);
        const fresh = await connect(gw.through(applied.access));
        expect((await fresh.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
        await fresh.end();
      } finally {
        await bystander.end();
      }
      console.log(`[${source.label}] gateway fuzz: ${runs} connections, seed ${seed}, ${JSON.stringify(gw.gateway.metrics().protocolErrors)}`);
    });

    it('never returns a row a policy hides: under row-level security a role gets what the access node gives it', async () => {
      const admin = await connect(applied.access);
      const sql = "SELECT date_trunc('hour', time) AS h, count(*) AS n FROM metrics WHERE time > now() - interval '30 hours' GROUP BY 1 ORDER BY 1";
      try {
        await admin.query('ALTER TABLE metrics ENABLE ROW LEVEL SECURITY');
        await admin.query('CREATE POLICY gw_device_one ON metrics FOR SELECT TO metrics_reader USING (device_id = 1)');
        await gw.gateway.refresh();
        const reader = { ...applied.access, user: 'metrics_reader', password: readerPassword };
        await both(async (through, direct) => {
          for (const c of [through, direct]) await c.query('BEGIN ISOLATION LEVEL REPEATABLE READ');
          const [a, b] = await Promise.all([through.query(sql), direct.query(sql)]);
          for (const c of [through, direct]) await c.query('COMMIT');
          expectSameRows(a.rows, b.rows, { ordered: true, label: 'metrics_reader under a policy' });
          const total = a.rows.reduce((n: number, r: { n: string }) => n + Number(r.n), 0);
          expect(total).toBeLessThan(METRICS_ROWS / 10);
        }, reader);
        // What was sent reads the hypertable, where the policy applies, never its shards.
        expect(eventsOf(sql).at(-1)?.sql).not.toMatch(/_hypershard\.metrics_s/);
      } finally {
        await admin.query('DROP POLICY IF EXISTS gw_device_one ON metrics');
        await admin.query('ALTER TABLE metrics DISABLE ROW LEVEL SECURITY');
        await admin.end();
        await gw.gateway.refresh();
      }
    });

    it('hypershard gateway --json prints where it listens; SIGTERM lets an open transaction finish, then stops', async () => {
      const child = spawn(process.execPath, [BIN, 'gateway', '-c', applied.specFile, '--port', '0', '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
      try {
        for (let i = 0; i < 200 && !stdout.includes('\n'); i += 1) await new Promise((r) => setTimeout(r, 50));
        const { listening } = JSON.parse(stdout.split('\n')[0] ?? '') as { listening: string };
        const [host, port] = [listening.slice(0, listening.lastIndexOf(':')), Number(listening.slice(listening.lastIndexOf(':') + 1))];
        const busy = await connect({ ...applied.access, host, port });
        const idle = await connect({ ...applied.access, host, port });
        const idleClosed = new Promise<void>((resolve) => idle.on('end', () => resolve()));
        await busy.query('BEGIN');
        await busy.query('SELECT count(*) FROM metrics');
        child.kill('SIGTERM');
        await idleClosed; // at rest: closed at once
        // The open transaction still works, and its session ends once it is over.
        expect((await busy.query('SELECT count(*)::int AS n FROM metrics')).rows).toEqual([{ n: METRICS_ROWS }]);
        const busyClosed = new Promise<void>((resolve) => busy.on('end', () => resolve()));
        await busy.query('COMMIT');
        await busyClosed;
        expect(await exited).toBe(0);
        expect(stderr).toMatch(/SIGTERM/);
      } finally {
        child.kill('SIGKILL');
      }
    });

    it('hypershard gateway on a port in use says so and exits, leaving nothing running (it kept the process alive)', async () => {
      const taken = net.createServer();
      await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
      const port = (taken.address() as net.AddressInfo).port;
      const child = spawn(process.execPath, [BIN, 'gateway', '-c', applied.specFile, '--port', String(port)], { stdio: ['ignore', 'pipe', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      try {
        const code = await new Promise<number | null>((resolve) => {
          child.on('exit', (c) => resolve(c));
          setTimeout(() => resolve(-1), 30_000).unref();
        });
        expect([code, stderr.trim()]).toEqual([1, `hypershard: cannot listen on 127.0.0.1:${port}: the address is in use`]);
      } finally {
        child.kill('SIGKILL');
        taken.close();
      }
    });

    it('ends every session with an error naming the access node when it stops answering (frozen), and serves again once it answers', async () => {
      const watchful = await startGateway(applied.spec, applied.specFile, { port: 0, healthCheckMs: 300, statementTimeoutMs: 300 });
      const clusterDir = join(cluster.workDir, 'cluster');
      const [host, port] = [watchful.address.slice(0, watchful.address.lastIndexOf(':')), Number(watchful.address.slice(watchful.address.lastIndexOf(':') + 1))];
      const client = await connect({ ...applied.access, host, port });
      try {
        await freezeDevNode(clusterDir, 'access', true);
        const started = Date.now();
        const error = (await client.query('SELECT count(*) FROM metrics').catch((e: unknown) => e)) as Error;
        const seconds = (Date.now() - started) / 1000;
        expect(error.message).toMatch(/access node at .* has not answered/);
        expect(seconds).toBeLessThan(5);
        const refused = (await connect({ ...applied.access, host, port }).catch((e: unknown) => e)) as pg.DatabaseError;
        expect(refused.code).toBe('08006');
        await freezeDevNode(clusterDir, 'access', false);
        await new Promise((r) => setTimeout(r, 1000));
        const again = await connect({ ...applied.access, host, port });
        expect((await again.query('SELECT count(*)::int AS n FROM metrics')).rows).toEqual([{ n: METRICS_ROWS }]);
        await again.end();
        console.log(`[${source.label}] gateway: access node frozen → session ended with a named error after ${seconds.toFixed(1)} s`);
      } finally {
        await freezeDevNode(clusterDir, 'access', false);
        (client as unknown as { connection: { stream: net.Socket } }).connection.stream.destroy(); // ended by the gateway: nothing to end()
        await watchful.close();
      }
    });

    it('serves Prometheus metrics', async () => {
      const withMetrics = await startGateway(applied.spec, applied.specFile, { port: 0, metricsPort: 0 });
      try {
        const client = await connect({ ...applied.access, host: withMetrics.address.split(':')[0], port: Number(withMetrics.address.split(':')[1]) });
        await client.query("SELECT date_trunc('hour', time), max(cpu) FROM metrics GROUP BY 1");
        await client.end();
        const text = await (await fetch(`http://${withMetrics.metricsAddress}/metrics`)).text();
        expect(text).toMatch(/^hypershard_gateway_statements_rewritten_total 1$/m);
        expect(text).toMatch(/^hypershard_gateway_sessions_total 1$/m);
        expect(text).toMatch(/# TYPE hypershard_gateway_sessions_active gauge/);
      } finally {
        await withMetrics.close();
      }
    });
  });
}
