/**
 * Router reads through the gateway (src/route/reads.ts, src/gateway/routerReads.ts), on PostgreSQL 15 and 18: a
 * SELECT whose rewrite reads one shard is answered by that shard's data node straight. Answers
 * equal a single-node copy's (TSBS single-host shapes, a reference join, a key sub-select);
 * each refusal goes through the access node (the metric says why, the answer is the same);
 * the session's TimeZone, DateStyle and extra_float_digits give the access node's text; after a
 * rebalance moves the shard the read goes to its new node; hostile identifiers survive. The same
 * through hypershard/pg with `ingest` (one router: planRouterRead, its check, routerTarget; bind
 * values written in by the gateway's boundValues): the data node answers what it may, the access
 * node the rest, every answer the single node's.
 */
import { readFile, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { join } from 'node:path';
import pg from 'pg';
import { from as copyFromStream } from 'pg-copy-streams';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml, stringify } from 'yaml';
import { cancelRequest } from '../../src/gateway/protocol/messages.js';
import { IngestCluster } from '../../src/ingest/cluster.js';
import { generateMigrations } from '../../src/migrations/files.js';
import { Pool, type RewriteEvent } from '../../src/pg/index.js';
import { apply } from '../../src/nodes/apply.js';
import { clientConfig } from '../../src/nodes/connect.js';
import { planLayout } from '../../src/plan/layout.js';
import { rebalance } from '../../src/rebalance/rebalance.js';
import { loadSpec } from '../../src/spec/load.js';
import type { AppliedCluster } from '../support/appliedCluster.js';
import { clusterSources, type TestCluster } from '../support/clusters.js';
import { expectSameRows } from '../support/compare.js';
import { withDatabase } from '../support/db.js';
import { startTestGateway, type TestGateway } from '../support/gateway.js';
import { writeExampleSpec, writeSecrets } from '../support/spec.js';

const sources = await Promise.all(clusterSources().map(async (s) => ({ source: s, skip: await s.unavailable() })));

/** Statements a router read answers (`routed`), or the access node (`reason`: the fallback the metric counts, if any is reached). */
const ROUTED: readonly { id: string; sql: string }[] = [
  { id: 'single-groupby-1-1-1 (key sub-select)', sql: `SELECT date_trunc('minute', time) AS minute, max(cpu) AS max_cpu FROM metrics WHERE device_id IN (SELECT id FROM devices WHERE name = 'dev 7') AND time >= '2024-01-01 00:00:00+00' AND time < '2024-01-01 01:00:00+00' GROUP BY minute ORDER BY minute` },
  { id: 'single-groupby-5-1-1 (literal key)', sql: `SELECT date_trunc('minute', time) AS minute, max(cpu) AS cpu, max(memory) AS memory, max(temperature) AS t FROM metrics WHERE device_id = 3 AND time >= '2024-01-01 00:00:00+00' AND time < '2024-01-01 01:00:00+00' GROUP BY minute ORDER BY minute` },
  { id: 'high-cpu-1 (no aggregate, no LIMIT)', sql: `SELECT * FROM metrics WHERE cpu > 90.0 AND device_id IN (SELECT id FROM devices WHERE name = 'dev 7') AND time >= '2024-01-01 00:00:00+00' AND time < '2024-01-01 12:00:00+00' ORDER BY time` },
  { id: 'high-cpu, limited', sql: `SELECT * FROM metrics WHERE cpu > 90.0 AND device_id = 7 AND time >= '2024-01-01 00:00:00+00' AND time < '2024-01-01 12:00:00+00' ORDER BY time, cpu LIMIT 1000` },
  { id: 'cpu-max-all-1', sql: `SELECT date_trunc('hour', time) AS hour, max(cpu) AS cpu, max(memory) AS memory, max(temperature) AS t FROM metrics WHERE device_id IN (SELECT id FROM devices WHERE name IN ('dev 5')) AND time >= '2024-01-01 00:00:00+00' AND time < '2024-01-01 08:00:00+00' GROUP BY hour ORDER BY hour` },
  { id: 'a now() window', sql: `SELECT date_trunc('hour', time) AS hour, count(*) AS n FROM metrics WHERE device_id = 5 AND time > now() - interval '100 years' AND time <= CURRENT_TIMESTAMP AND time::date < CURRENT_DATE GROUP BY 1 ORDER BY 1` },
  { id: 'newest rows', sql: `SELECT time, cpu, memory FROM metrics WHERE device_id = 11 ORDER BY time DESC LIMIT 7` },
  // postgres_fdw ships no window function: the data node computes them whole for the one shard.
  { id: 'window functions over one host', sql: `SELECT time, cpu, avg(cpu) OVER (ORDER BY time ROWS 3 PRECEDING) AS moving, lag(cpu) OVER w AS prev, rank() OVER (PARTITION BY device_id ORDER BY cpu DESC, time) AS r FROM metrics WHERE device_id = 6 AND time < '2024-01-01 06:00:00+00' WINDOW w AS (ORDER BY time) ORDER BY time LIMIT 50` },
  { id: 'reference join on the shard', sql: `SELECT d.name, d.region, count(*) AS n, avg(m.cpu) AS cpu FROM metrics m JOIN devices d ON d.id = m.device_id WHERE m.device_id = 4 GROUP BY d.name, d.region ORDER BY 1` },
  { id: 'hostile alias and literal', sql: `SELECT count(*) AS "we""ird; DROP TABLE x; --", max(cpu) AS "ÄÖ ü", 'it''s \\ fine' AS lit FROM metrics WHERE device_id = 9` },
  // Each relayed field's length is its UTF-8 bytes: multi-byte text, empty, NULL and a long value side by side.
  { id: 'multi-byte, empty, NULL and long fields', sql: `SELECT 'Zürich ✓ 東京 🌍' AS city, '' AS empty, NULL::text AS nothing, '${'é'.repeat(5000)}' AS long, count(*) AS n FROM metrics WHERE device_id = 9` },
];

const REFUSED: readonly { id: string; sql: string }[] = [
  { id: 'clock_timestamp()', sql: `SELECT count(*) AS n FROM metrics WHERE device_id = 3 AND time < clock_timestamp()` },
  { id: 'current_user', sql: `SELECT current_user = 'nobody' AS x, count(*) AS n FROM metrics WHERE device_id = 3` },
  { id: 'system column', sql: `SELECT count(tableoid) AS n FROM metrics WHERE device_id = 3` },
  { id: 'two shards', sql: `SELECT device_id, count(*) AS n FROM metrics WHERE device_id IN (3, 4, 5, 6) GROUP BY 1 ORDER BY 1` },
  { id: 'user-defined function', sql: `SELECT count(*) AS n FROM metrics WHERE device_id = 3 AND twice(cpu) > 50` },
  { id: 'user-defined operator name', sql: `SELECT count(*) AS n FROM metrics WHERE device_id = 3 AND cpu <<~>> 1` },
];

/** One extended-protocol message of `exchange`: its variants say how it differs from the plain form. */
type Step = 'P' | 'Pnamed' | 'B' | 'Bbinary' | 'Bnamed' | 'DS' | 'DP' | 'E' | 'E2' | 'F' | 'S';

/**
 * Sends `steps` for `text` and a Sync on a node-postgres connection, as a driver would (all at
 * once: a Sync among them pipelines the next batch behind it), and reads
 * every message the server answers: their names in order, the row descriptions' names and types,
 * the rows' values as sent.
 */
async function exchange(client: pg.Client, text: string, steps: readonly Step[], bound: { values?: readonly (string | null)[]; types?: readonly number[] } = {}): Promise<{ messages: string[]; fields: [string, number][]; rows: string[] }> {
  type Send = (message?: Record<string, unknown>) => void;
  const connection = (client as unknown as { connection: NodeJS.EventEmitter & Record<'parse' | 'bind' | 'describe' | 'execute' | 'flush' | 'sync', Send> }).connection;
  const messages: string[] = [];
  const fields: [string, number][] = [];
  const rows: string[] = [];
  const { values = [], types = [] } = bound;
  const listen = (msg: { name: string; fields?: ({ name: string; dataTypeID: number } | Buffer | string | null)[] }): void => {
    messages.push(msg.name);
    if (msg.name === 'rowDescription') for (const f of msg.fields as { name: string; dataTypeID: number }[]) fields.push([f.name, f.dataTypeID]);
    if (msg.name === 'dataRow') rows.push(JSON.stringify((msg.fields ?? []).map((v) => (Buffer.isBuffer(v) ? v.toString('hex') : v))));
  };
  await new Promise<void>((resolve, reject) => {
    const submittable = {
      submit(): void {
        connection.on('message', listen);
        for (const step of steps) {
          if (step === 'P' || step === 'Pnamed') connection.parse({ name: step === 'P' ? '' : 'named', text, types });
          if (step === 'B' || step === 'Bbinary' || step === 'Bnamed') connection.bind({ statement: step === 'Bnamed' ? 'named' : '', portal: '', values, binary: step === 'Bbinary' });
          if (step === 'DS') connection.describe({ type: 'S', name: '' });
          if (step === 'DP') connection.describe({ type: 'P', name: '' });
          if (step === 'E' || step === 'E2') connection.execute({ portal: '', rows: step === 'E2' ? 2 : 0 });
          if (step === 'F') connection.flush();
          if (step === 'S') connection.sync();
        }
        connection.sync();
      },
      handleRowDescription: () => undefined,
      handleDataRow: () => undefined,
      handleCommandComplete: () => undefined,
      handleEmptyQuery: () => undefined,
      handlePortalSuspended: () => undefined,
      handleCopyInResponse: () => undefined,
      handleCopyData: () => undefined,
      handleError: (error: Error) => reject(error),
      handleReadyForQuery: () => {
        if (messages.filter((m) => m === 'readyForQuery').length <= steps.filter((st) => st === 'S').length) {
          // node-postgres ends a query at its first ReadyForQuery: this one goes on to the next.
          Object.assign(client, { readyForQuery: false, _activeQuery: submittable });
          return;
        }
        connection.removeListener('message', listen);
        resolve();
      },
    };
    void client.query(submittable as unknown as pg.QueryConfig);
  });
  return { messages, fields, rows };
}

const single = (sql: string): string => sql.replace(/\bmetrics\b/g, 'single.metrics').replace(/\bdevices\b/g, 'single.devices');

/** Rows as the server's text, as a client that parses nothing sees them. */
const RAW = { getTypeParser: () => (value: string) => value } as unknown as pg.CustomTypesConfig;

for (const { source, skip } of sources) {
  describe.skipIf(skip !== undefined)(`router reads through the gateway on ${source.label}${skip === undefined ? '' : ` — skipped: ${skip}`}`, () => {
    let cluster: TestCluster;
    let applied: AppliedCluster;
    let plain: pg.Pool;
    let gateway: TestGateway;
    let client: pg.Client;
    let ingest: IngestCluster;
    let pool: Pool;
    const events: RewriteEvent[] = [];

    const routed = (): number => gateway.gateway.metrics().routerReads;
    const repeats = (): number => gateway.gateway.metrics().routerRepeats;
    const fallbacks = (): Record<string, number> => ({ ...gateway.gateway.metrics().routerFallbacks });

    beforeAll(async () => {
      cluster = await source.start(2);
      const dir = join(cluster.workDir, 'router');
      const file = await writeExampleSpec(cluster, dir, { shards: 4 });
      await writeSecrets(dir);
      const doc = parseYaml(await readFile(file, 'utf8')) as Record<string, unknown>;
      doc.referenceTables = [{ name: 'devices', columns: [{ name: 'id', type: 'integer', notNull: true }, { name: 'name', type: 'text', notNull: true }, { name: 'region', type: 'text' }], primaryKey: ['id'] }];
      await writeFile(file, stringify(doc));
      const { spec, file: specFile } = await loadSpec(file);
      await generateMigrations(spec, specFile);
      const result = await apply(spec, specFile);
      if (!result.ok) throw new Error(`apply failed: ${JSON.stringify(result.nodes)}`);
      const access = clientConfig(cluster.accessNode.url, process.env.HYPERSHARD_TEST_CONTAINER_PASSWORD);
      plain = new pg.Pool(access);
      const { rows } = await plain.query<{ db: string }>('SELECT current_database() AS db');
      applied = { spec, specFile, layout: planLayout(spec), access, reader: clientConfig(withDatabase(cluster.accessNode.url, rows[0]!.db, 'metrics_reader'), undefined) };
      await plain.query(`INSERT INTO devices SELECT i, 'dev ' || i, (ARRAY['eu', 'us', NULL])[i % 3 + 1] FROM generate_series(1, 20) AS i`);
      await plain.query(
        `INSERT INTO metrics (time, device_id, cpu, memory, temperature)
         SELECT '2024-01-01 00:00:00+00'::timestamptz + i * interval '37 seconds', i % 20 + 1, (i * 7 % 100) + 0.1 * (i % 10), i % 13, 20 + i % 17 FROM generate_series(1, 3000) AS i`,
      );
      await plain.query(`CREATE SCHEMA single`);
      await plain.query(`CREATE TABLE single.metrics AS SELECT * FROM metrics`);
      await plain.query(`CREATE TABLE single.devices AS SELECT * FROM devices`);
      await plain.query(`CREATE FUNCTION twice(double precision) RETURNS double precision LANGUAGE sql IMMUTABLE AS 'SELECT $1 * 2'`);
      await plain.query(`CREATE OPERATOR <<~>> (LEFTARG = double precision, RIGHTARG = double precision, FUNCTION = float8gt)`);
      await plain.query('ANALYZE');
      gateway = await startTestGateway(applied, { routerReads: true });
      client = new pg.Client(gateway.through(applied.access));
      await client.connect();
      ingest = await IngestCluster.open(applied.spec, applied.specFile);
      pool = new Pool({ ...applied.access, max: 2, hypershard: { ingest } });
      pool.on('rewrite', (e) => events.push(e));
    });
    afterAll(async () => {
      await pool?.end();
      await ingest?.close();
      await client?.end();
      await gateway?.close();
      await plain?.end();
      await cluster?.stop();
    });

    it('answers single-shard reads from the data node, as a single node does', async () => {
      for (const q of ROUTED) {
        const before = routed();
        const got = await client.query(q.sql);
        expectSameRows(got.rows, (await plain.query(single(q.sql))).rows, { ordered: true, label: q.id });
        expect(routed() - before, `${q.id}: ${JSON.stringify(fallbacks())}`).toBe(1);
        // Again: the session's last rewrite of the text and its prepared check, the same answer.
        const again = repeats();
        expectSameRows((await client.query(q.sql)).rows, (await plain.query(single(q.sql))).rows, { ordered: true, label: `${q.id}, again` });
        expect(repeats() - again, `${q.id}: ${JSON.stringify(fallbacks())}`).toBe(1);
      }
      // A result column's table is not the data node's.
      const described = await client.query(`SELECT time, cpu FROM metrics WHERE device_id = 3 LIMIT 1`);
      expect(described.fields.map((f) => [f.tableID, f.columnID])).toEqual([[0, 0], [0, 0]]);
    });

    it('sends a read over tables an earlier check covered with its own check, holding the answer until the check names that target', async () => {
      const ahead = (): number => gateway.gateway.metrics().routerSentAhead;
      const reference = await plain.connect();
      const same = async (sql: string, label: string, sentAhead?: boolean): Promise<void> => {
        const before = ahead();
        expectSameRows((await client.query(sql)).rows, (await reference.query(single(sql))).rows, { ordered: true, label });
        if (sentAhead !== undefined) expect(ahead() - before, `${label}: ${JSON.stringify(fallbacks())}`).toBe(sentAhead ? 1 : 0);
      };
      try {
        const sql = ROUTED[1]!.sql;
        await same(sql, 'first');
        await same(sql, 'again', true);
        await same(sql.replace("'2024-01-01 00:00:00+00'", "'2024-01-01 00:10:00+00'"), 'other literals', true);
        // One that reads the clock is given the access node's clock as it stood while the client waited:
        // after the now() of a statement answered before it, before that of one sent after it.
        const utc = `pg_catalog.to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US')`;
        const seen = `SELECT ${utc} AS t, count(*) AS n FROM metrics WHERE device_id = 3 AND time < now() - interval '1 day'`;
        const count = (await reference.query<{ n: string }>(`SELECT count(*) AS n FROM single.metrics WHERE device_id = 3`)).rows[0]!.n;
        let clockAhead = 0;
        for (let i = 0; i < 20; i++) {
          const sent = ahead();
          const before = (await reference.query<{ t: string }>(`SELECT ${utc} AS t`)).rows[0]!.t;
          const got = (await client.query<{ t: string; n: string }>(seen)).rows[0]!;
          const after = (await reference.query<{ t: string }>(`SELECT ${utc} AS t`)).rows[0]!.t;
          clockAhead += ahead() - sent;
          expect(got.t >= before && got.t <= after, `${before} <= ${got.t} <= ${after}`).toBe(true);
          expect(got.n).toBe(count);
        }
        expect(clockAhead).toBeGreaterThanOrEqual(15);
        // An answer larger than what a relay holds before the client sees it: the data node waits for the check.
        const big = `SELECT time, repeat('x', 100000) AS pad FROM metrics WHERE device_id = 3 ORDER BY time LIMIT 12`;
        await same(big, 'large answer');
        await same(big, 'large answer, again', true);
        // Sent in the session's old settings: dropped unseen, asked again in the new ones.
        const zoned = `SELECT time::text AS t FROM metrics WHERE device_id = 3 ORDER BY time LIMIT 3`;
        for (const [zone, sent] of [['UTC', undefined], ['UTC', true], ['Asia/Kolkata', false], ['Asia/Kolkata', true]] as const) {
          await client.query(`SET TimeZone = '${zone}'`);
          await reference.query(`SET TimeZone = '${zone}'`);
          await same(zoned, zone, sent);
        }
      } finally {
        await client.query('RESET TimeZone');
        await reference.query('RESET TimeZone');
        reference.release();
      }
    });

    it('leaves what it cannot prove to the access node, with the reason counted, and the same answer', async () => {
      for (const q of REFUSED) {
        const before = routed();
        const got = await client.query(q.sql).then((r) => r.rows, (error: unknown) => String(error));
        const direct = await plain.query(q.sql).then((r) => r.rows, (error: unknown) => String(error));
        if (typeof direct === 'string') expect(got, q.id).toBe(direct);
        else expectSameRows(got as Record<string, unknown>[], direct, { ordered: true, label: q.id });
        expect(routed() - before, q.id).toBe(0);
      }
      const reasons = Object.keys(fallbacks());
      // The user-defined function and operator: the rewriter leaves them to the access node, or the check does.
      expect(reasons).toEqual(expect.arrayContaining(['keyword:SVFOP_CURRENT_USER', 'system-column', 'several-shards', 'user-defined-name']));
      // Inside a transaction block: not even considered.
      const before = routed();
      await client.query('BEGIN');
      await client.query(ROUTED[1]!.sql);
      await client.query('COMMIT');
      expect(routed()).toBe(before);
      // Turned off for the gateway.
      const off = await startTestGateway(applied, { routerReads: false });
      const c = new pg.Client(off.through(applied.access));
      await c.connect();
      try {
        const got = await c.query(ROUTED[1]!.sql);
        expectSameRows(got.rows, (await plain.query(single(ROUTED[1]!.sql))).rows, { ordered: true, label: 'off' });
        expect(off.gateway.metrics().routerReads).toBe(0);
      } finally {
        await c.end();
        await off.close();
      }
    });

    it("gives the access node's text under the session's TimeZone, DateStyle, IntervalStyle and extra_float_digits", async () => {
      const sql = `SELECT time, cpu, time - '2024-01-01'::timestamptz AS since, cpu / 3 AS third FROM metrics WHERE device_id = 3 ORDER BY time LIMIT 5`;
      const settings = `SET TimeZone = 'America/St_Johns'; SET DateStyle = 'SQL, DMY'; SET IntervalStyle = 'postgres_verbose'; SET extra_float_digits = 0`;
      const viaGateway = new pg.Client({ ...gateway.through(applied.access), types: RAW });
      const direct = new pg.Client({ ...applied.access, types: RAW });
      await viaGateway.connect();
      await direct.connect();
      try {
        await viaGateway.query(settings);
        await direct.query(settings);
        const before = routed();
        const got = await viaGateway.query({ text: sql, rowMode: 'array' });
        expect(routed() - before).toBe(1);
        const want = await direct.query({ text: sql, rowMode: 'array' });
        expect(got.rows).toEqual(want.rows);
        expect(String((got.rows[0] as string[])[0])).toMatch(/^\d\d\/\d\d\/2024 .*-0[23]:?30$|NDT|NST/);
        // Back to the defaults: the data node's connection follows.
        await viaGateway.query('RESET ALL');
        await direct.query('RESET ALL');
        expect((await viaGateway.query({ text: sql, rowMode: 'array' })).rows).toEqual((await direct.query({ text: sql, rowMode: 'array' })).rows);
      } finally {
        await viaGateway.end();
        await direct.end();
      }
    });

    it("a routed write in another zone, on the same data node, leaves a router read in its own session's zone", async () => {
      // Routed writes SET their session's TimeZone on their data-node connections; a read that
      // took such a connection while remembering its own settings answered in the writer's zone.
      const sql = `SELECT time, cpu FROM metrics WHERE device_id = 3 AND time >= '2024-01-01' ORDER BY time LIMIT 3`;
      const reader = new pg.Client({ ...gateway.through(applied.access), types: RAW });
      const writer = new pg.Client(gateway.through(applied.access));
      const direct = new pg.Client({ ...applied.access, types: RAW });
      await Promise.all([reader.connect(), writer.connect(), direct.connect()]);
      try {
        await writer.query(`SET TimeZone = 'Asia/Kathmandu'`);
        const want = (await direct.query({ text: sql, rowMode: 'array' })).rows;
        const before = routed();
        expect((await reader.query({ text: sql, rowMode: 'array' })).rows).toEqual(want);
        const routedCopies = gateway.gateway.metrics().routedCopies;
        for (let round = 0; round < 3; round += 1) {
          // Rows of every device, so each data node's connection takes the writer's zone.
          const stream = writer.query(copyFromStream('COPY metrics (time, device_id, cpu) FROM STDIN (FORMAT csv)'));
          const done = new Promise<void>((resolve, reject) => {
            stream.on('finish', resolve);
            stream.on('error', reject);
          });
          stream.end(Array.from({ length: 20 }, (_, i) => `1999-01-01 00:00:0${round}+00,${i + 1},1\n`).join(''));
          await done;
          expect((await reader.query({ text: sql, rowMode: 'array' })).rows, `after routed COPY ${round}`).toEqual(want);
        }
        expect(gateway.gateway.metrics().routedCopies - routedCopies).toBe(3);
        expect(routed() - before).toBe(4);
      } finally {
        await plain.query(`DELETE FROM metrics WHERE time < '2000-01-01'`);
        await Promise.all([reader.end(), writer.end(), direct.end()]);
      }
    });

    it('a repeat whose keys changed, or whose prepared check the client discarded, takes the whole path with the right answer', async () => {
      const sql = ROUTED[0]!.sql;
      const want = async (): Promise<Record<string, unknown>[]> => (await plain.query(single(sql))).rows;
      expectSameRows((await client.query(sql)).rows, await want(), { ordered: true, label: 'first' });
      // 'dev 7' is now device 8: the repeat's keys guard refuses, the keys are read again.
      for (const table of ['devices', 'single.devices']) {
        await plain.query(`UPDATE ${table} SET name = CASE id WHEN 7 THEN 'dev 7 old' ELSE 'dev 7' END WHERE id IN (7, 8)`);
      }
      const refusedBefore = fallbacks()['repeat:check-failed'] ?? 0;
      const before = routed();
      const got = await client.query(sql);
      expect(got.rows.length).toBeGreaterThan(0);
      expectSameRows(got.rows, await want(), { ordered: true, label: 'keys changed' });
      expect(fallbacks()['repeat:check-failed'] ?? 0).toBe(refusedBefore + 1);
      expect(routed() - before).toBe(1);
      // The client drops every prepared statement, the gateway's check too: answered all the same, then prepared again.
      for (const drop of ['DISCARD ALL', 'DEALLOCATE ALL']) {
        await client.query(drop);
        expectSameRows((await client.query(sql)).rows, await want(), { ordered: true, label: `after ${drop}` });
        const count = routed();
        expectSameRows((await client.query(sql)).rows, await want(), { ordered: true, label: `after ${drop}, again` });
        expect(routed() - count, `${drop}: ${JSON.stringify(fallbacks())}`).toBe(1);
      }
      for (const table of ['devices', 'single.devices']) {
        await plain.query(`UPDATE ${table} SET name = 'dev ' || id WHERE id IN (7, 8)`);
      }
    });

    it("a client's cancel stops its router read on the data node", async () => {
      const c = new pg.Client(gateway.through(applied.access));
      await c.connect();
      try {
        const sql = `SELECT count(*) AS n, max(cpu) AS cpu FROM metrics WHERE device_id = 3 AND cpu < (SELECT count(*) FROM generate_series(1, 2000000000))`;
        const before = routed();
        const { processID, secretKey } = c as unknown as { processID: number; secretKey: number };
        const running = c.query(sql).then(() => undefined, (error: unknown) => error as pg.DatabaseError);
        await new Promise((r) => setTimeout(r, 500));
        const key = Buffer.alloc(4);
        key.writeInt32BE(secretKey);
        const [host, port] = [gateway.gateway.address.slice(0, gateway.gateway.address.lastIndexOf(':')), Number(gateway.gateway.address.slice(gateway.gateway.address.lastIndexOf(':') + 1))];
        const started = Date.now();
        const socket = net.connect({ host, port }, () => socket.end(cancelRequest(processID, key)));
        socket.on('error', () => undefined);
        const error = await running;
        expect(error?.code, String(error)).toBe('57014');
        expect(Date.now() - started).toBeLessThan(10_000);
        expect(routed() - before, JSON.stringify(fallbacks())).toBe(1);
        // Nothing of it runs on any data node, and the session goes on.
        for (const node of cluster.dataNodes) {
          const d = new pg.Client(clientConfig(node.url, process.env.HYPERSHARD_TEST_CONTAINER_PASSWORD));
          await d.connect();
          try {
            const { rows } = await d.query<{ n: number }>(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE state = 'active' AND query LIKE '%generate_series(1, 2000000000)%' AND pid <> pg_backend_pid()`);
            expect(rows[0]!.n).toBe(0);
          } finally {
            await d.end();
          }
        }
        expect((await c.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
      } finally {
        await c.end();
      }
    });

    it("a local date in a zone with daylight saving: the date's span guard is checked on the access node and the read routed; a date outside the zone data runs as written", async () => {
      const viaGateway = new pg.Client(gateway.through(applied.access));
      const direct = new pg.Client(applied.access);
      await viaGateway.connect();
      await direct.connect();
      try {
        for (const c of [viaGateway, direct]) await c.query(`SET TimeZone = 'America/New_York'`);
        for (const [day, routedReads] of [['2023-12-31', 1], ['1800-01-01', 0]] as const) {
          const sql = `SELECT count(*) AS n, max(cpu) AS peak FROM metrics WHERE device_id = 3 AND time::date >= '${day}'::date + 1 AND time::date < current_date`;
          const before = routed();
          const got = await viaGateway.query(sql);
          expectSameRows(got.rows, (await direct.query(single(sql))).rows, { ordered: true, label: day });
          expect(Number((got.rows[0] as { n: string }).n), day).toBeGreaterThan(0);
          expect(routed() - before, `${day}: ${JSON.stringify(fallbacks())}`).toBe(routedReads);
        }
        expect(fallbacks().guard).toBeGreaterThan(0);
      } finally {
        await viaGateway.end();
        await direct.end();
      }
    });

    it('an error of the data node before any row goes through the access node, which says it', async () => {
      const sql = `SELECT cpu / (device_id - 3) AS x FROM metrics WHERE device_id = 3 ORDER BY time LIMIT 5`;
      const got = await client.query(sql).then(() => 'no error', (error: unknown) => (error as Error).message);
      expect(got).toBe('division by zero');
      expect(fallbacks()['data-node-error']).toBeGreaterThan(0);
    });

    it('a named statement, prepared once and run with other values (as drivers run what they run often), is a router read each time; what it cannot be goes through the access node', async () => {
      const viaGateway = new pg.Client({ ...gateway.through(applied.access), types: RAW });
      const direct = new pg.Client({ ...applied.access, types: RAW });
      await Promise.all([viaGateway.connect(), direct.connect()]);
      const text = `SELECT date_trunc('minute', time) AS minute, max(cpu) AS cpu, count(*) AS n FROM metrics WHERE device_id = $1::int AND time >= $2::timestamptz AND time < $2::timestamptz + interval '1 hour' GROUP BY minute ORDER BY minute`;
      try {
        const run = (on: pg.Client, name: string, sql: string, values: unknown[]): Promise<pg.QueryResult> => on.query({ name, text: sql, values, rowMode: 'array' });
        // The first execution prepares it on the access node (its Parse answered there first) and, as every later one, is read from the shard's data node.
        const before = routed();
        for (const [device, hour] of [[3, '2024-01-01 00:00:00+00'], [3, '2024-01-01 01:00:00+00'], [7, '2024-01-01 02:00:00+00'], [12, '2024-01-01 00:30:00+00']] as const) {
          const got = await run(viaGateway, 'minutes', text, [device, hour]);
          const want = await run(direct, 'minutes', single(text), [device, hour]);
          expect(got.rows, `device ${device} at ${hour}`).toEqual(want.rows);
          expect(got.rows.length).toBeGreaterThan(0);
          expect(got.fields.map((f) => [f.name, f.dataTypeID])).toEqual(want.fields.map((f) => [f.name, f.dataTypeID]));
        }
        expect(routed() - before, JSON.stringify(fallbacks())).toBe(4);
        // Under another TimeZone, the data node answers in it.
        await viaGateway.query(`SET TimeZone = 'Asia/Kathmandu'`);
        await direct.query(`SET TimeZone = 'Asia/Kathmandu'`);
        expect((await run(viaGateway, 'minutes', text, [5, '2024-01-01 03:00:00+00'])).rows).toEqual((await run(direct, 'minutes', single(text), [5, '2024-01-01 03:00:00+00'])).rows);
        // Keys on two shards: through the access node, the same answer.
        const both = `SELECT device_id, count(*) AS n FROM metrics WHERE device_id = ANY($1::int[]) GROUP BY 1 ORDER BY 1`;
        const many = routed();
        for (let i = 0; i < 3; i += 1) expect((await run(viaGateway, 'both', both, ['{1,2,3,4}'])).rows).toEqual((await run(direct, 'both', single(both), ['{1,2,3,4}'])).rows);
        expect(routed() - many).toBe(0);
        // Deallocated by the client: a Bind of it is refused as the access node refuses it, not answered by a data node.
        await viaGateway.query('DEALLOCATE ALL');
        await direct.query('DEALLOCATE ALL');
        const refused = (on: pg.Client, sql: string): Promise<string> => run(on, 'minutes', sql, [9, '2024-01-01 00:00:00+00']).then(() => 'answered', (e: Error) => e.message);
        const reads = routed();
        const [throughGateway, straight] = [await refused(viaGateway, text), await refused(direct, single(text))];
        expect(throughGateway).toBe('prepared statement "minutes" does not exist');
        expect(throughGateway).toBe(straight);
        expect(routed() - reads).toBe(0);
      } finally {
        await Promise.all([viaGateway.end(), direct.end()]);
      }
    });

    it('answers the extended protocol as the access node does: every order of Parse, Bind, Describe and Execute; falls back where it must', async () => {
      const viaGateway = new pg.Client({ ...gateway.through(applied.access), types: RAW });
      const direct = new pg.Client({ ...applied.access, types: RAW });
      await viaGateway.connect();
      await direct.connect();
      const sql = ROUTED[1]!.sql;
      try {
        // Binary results too: the data node is asked for them and its rows relayed as it sent them.
        const orders: readonly (readonly Step[])[] = [['P', 'B', 'DP', 'E'], ['P', 'DS', 'B', 'E'], ['P', 'B', 'E'], ['P', 'B', 'DS', 'E'], ['P', 'B', 'DP', 'E', 'S', 'P', 'B', 'DP', 'E'], ['P', 'Bbinary', 'DP', 'E'], ['P', 'DS', 'Bbinary', 'E']];
        for (const steps of orders) {
          const before = routed();
          const got = await exchange(viaGateway, sql, steps);
          const want = await exchange(direct, single(sql), steps);
          expect(got, steps.join(' ')).toEqual(want);
          expect(got.messages.filter((m) => m === 'dataRow').length, steps.join(' ')).toBeGreaterThan(1);
          expect(routed() - before, `${steps.join(' ')}: ${JSON.stringify(fallbacks())}`).toBe(steps.filter((st) => st === 'E').length);
        }
        // The unnamed statement a data node answered, bound or described again without a Parse: the access node's.
        for (const steps of [['B', 'DP', 'E'], ['DS'], ['DS', 'B', 'E']] as const) {
          const before = routed();
          expect(await exchange(viaGateway, sql, steps), steps.join(' ')).toEqual(await exchange(direct, single(sql), steps));
          expect(routed() - before).toBe(0);
        }
        // The unnamed statement parsed and described in one batch and bound in the next (pgx's
        // describe-exec mode): the access node holds it, and the data node answers the Bind.
        {
          const before = routed();
          const got = [await exchange(viaGateway, sql, ['P', 'DS']), await exchange(viaGateway, sql, ['B', 'E'])];
          expect(got).toEqual([await exchange(direct, single(sql), ['P', 'DS']), await exchange(direct, single(sql), ['B', 'E'])]);
          expect(got[1]?.messages).toContain('dataRow');
          expect(routed() - before, JSON.stringify(fallbacks())).toBe(1);
        }
        // What a router read does not answer goes to the access node as it came: a portal read in
        // pages, a Flush before the Sync. A named statement's first execution is read once the
        // access node has answered its Parse (the check's Sync then ends the client's messages there).
        const asCame: readonly { id: string; steps: readonly Step[]; sql?: string; routed?: number }[] = [
          { id: 'pages of 2 rows', steps: ['P', 'B', 'DP', 'E2'] },
          { id: 'Flush', steps: ['P', 'DS', 'F', 'B', 'E'] },
          { id: 'named', steps: ['Pnamed', 'Bnamed', 'DP', 'E'], routed: 1 },
        ];
        for (const q of asCame) {
          const before = routed();
          const text = q.sql ?? sql;
          const got = await exchange(viaGateway, text, q.steps);
          expect(got, q.id).toEqual(await exchange(direct, single(text), q.steps));
          expect(got.messages, q.id).toContain('dataRow');
          expect(routed() - before, q.id).toBe(q.routed ?? 0);
          if (q.steps[0] === 'Pnamed') for (const c of [viaGateway, direct]) await c.query('DEALLOCATE named');
        }
        // Values bound: written into the text as literals of their declared types, or untyped where
        // one resolves as the parameter would (beside a column); elsewhere the access node answers.
        const hostile = "dev 7' OR 'x' = 'x'; DROP TABLE metrics; --\\";
        const bound: readonly { id: string; sql: string; values: (string | null)[]; types?: number[]; steps?: readonly Step[]; routed: boolean }[] = [
          { id: 'int4 key', sql: sql.replace('device_id = 3', 'device_id = $1'), values: ['3'], types: [23], routed: true },
          { id: 'negative int8 key', sql: sql.replace('device_id = 3', 'device_id = $1'), values: ['-3'], types: [20], routed: true },
          // node-postgres and pgbench declare no types: an untyped key is a string the column reads as its number, which pins its shard.
          { id: 'untyped key', sql: sql.replace('device_id = 3', 'device_id = $1'), values: ['3'], routed: true },
          { id: 'untyped key array with ANY', sql: sql.replace('device_id = 3', 'device_id = ANY ($1)'), values: ['{"3"}'], routed: true },
          { id: 'untyped key, cast', sql: sql.replace('device_id = 3', 'device_id = $1::int'), values: ['3'], routed: true },
          { id: 'int8 key against an int4 column, described', sql: sql.replace('device_id = 3', 'device_id = $1'), values: ['3'], types: [20], steps: ['P', 'DS', 'B', 'E'], routed: true },
          { id: 'int8 key and an untyped time range', sql: `SELECT time, cpu FROM metrics WHERE device_id = $1 AND time BETWEEN $2 AND $3 ORDER BY time`, values: ['5', '2024-01-01 01:00:00+00', '2024-01-01 02:00:00+00'], types: [20], routed: true },
          { id: 'a timestamptz bound declared', sql: `SELECT count(*) AS n FROM metrics WHERE device_id = 5 AND time < $1`, values: ['2024-01-01 01:00:00+00'], types: [1184], routed: true },
          { id: 'hostile text in a key sub-select', sql: `SELECT count(*) AS n FROM metrics WHERE device_id IN (SELECT id FROM devices WHERE name = $1)`, values: [hostile], routed: true },
          { id: 'hostile text no device has', sql: `SELECT count(*) AS n FROM metrics WHERE device_id IN (SELECT id FROM devices WHERE name = $1)`, values: ["x'); DROP TABLE metrics; --"], routed: false },
          { id: 'a key sub-select', sql: `SELECT count(*) AS n, max(cpu) AS cpu FROM metrics WHERE device_id IN (SELECT id FROM devices WHERE name = $1)`, values: ['dev 7'], routed: true },
          { id: 'NULL key', sql: sql.replace('device_id = 3', 'device_id = $1'), values: [null], types: [23], routed: false },
          { id: 'untyped in the select list', sql: `SELECT $1 AS label, count(*) AS n FROM metrics WHERE device_id = 3`, values: ['x'], routed: false },
          { id: 'untyped, described', sql: sql.replace('device_id = 3', 'device_id = $1'), values: ['3'], steps: ['P', 'DS', 'B', 'E'], routed: false },
          { id: 'a type not written as a literal (point)', sql: `SELECT count(*) AS n FROM metrics WHERE device_id = 3 AND $1::text <> ''`, values: ['(1,2)'], types: [600], routed: false },
        ];
        for (const table of ['devices', 'single.devices']) await plain.query(`INSERT INTO ${table} VALUES (7007, $1, 'eu')`, [hostile]);
        for (const q of bound) {
          const before = routed();
          const steps = q.steps ?? ['P', 'B', 'DP', 'E'];
          const got = await exchange(viaGateway, q.sql, steps, q);
          expect(got, q.id).toEqual(await exchange(direct, single(q.sql), steps, q));
          expect(routed() - before, `${q.id}: ${JSON.stringify(fallbacks())}`).toBe(q.routed ? 1 : 0);
        }
        for (const table of ['devices', 'single.devices']) await plain.query(`DELETE FROM ${table} WHERE id = 7007`);
        expect(Number((await viaGateway.query<{ n: string }>(`SELECT count(*) AS n FROM metrics`)).rows[0]?.n)).toBeGreaterThan(0);
        const values = await viaGateway.query(`SELECT max(cpu) AS cpu FROM metrics WHERE device_id = $1 AND time >= $2`, [4, '2024-01-01T00:00:00Z']);
        expect(values.rows).toEqual((await direct.query(`SELECT max(cpu) AS cpu FROM single.metrics WHERE device_id = $1 AND time >= $2`, [4, '2024-01-01T00:00:00Z'])).rows);
        // node-postgres's extended mode, and its error (the access node's) for a statement the data node refuses.
        const before = routed();
        const extended = await viaGateway.query({ text: ROUTED[0]!.sql, queryMode: 'extended', rowMode: 'array' } as pg.QueryConfig);
        expect(extended.rows).toEqual((await direct.query({ text: single(ROUTED[0]!.sql), queryMode: 'extended', rowMode: 'array' } as pg.QueryConfig)).rows);
        expect(routed() - before).toBe(1);
        const failing = `SELECT cpu / (device_id - 3) AS x FROM metrics WHERE device_id = 3 ORDER BY time LIMIT 5`;
        const error = await viaGateway.query({ text: failing, queryMode: 'extended' } as pg.QueryConfig).then(() => 'no error', (e: unknown) => (e as Error).message);
        expect(error).toBe('division by zero');
        expect((await viaGateway.query('SELECT 1 AS one')).rows).toEqual([{ one: '1' }]);
      } finally {
        await viaGateway.end();
        await direct.end();
      }
    });

    it('hypershard/pg with ingest: answers single-shard reads from the data node, the rest through the access node, each as a single node does', async () => {
      const answeredBy = async (sql: string, label: string): Promise<string | undefined> => {
        events.length = 0;
        const got = await pool.query(sql).then((r) => r.rows, (error: unknown) => String(error));
        const direct = await plain.query(single(sql)).then((r) => r.rows, (error: unknown) => String(error));
        if (typeof direct === 'string') expect(got, label).toBe(direct);
        else expectSameRows(got as Record<string, unknown>[], direct, { ordered: true, label });
        return events.at(-1)?.dataNode;
      };
      for (const q of ROUTED) {
        expect(await answeredBy(q.sql, q.id), q.id).toMatch(/^dn\d$/);
        expect(await answeredBy(q.sql, `${q.id}, again`), `${q.id}, again`).toMatch(/^dn\d$/);
      }
      for (const q of REFUSED) expect(await answeredBy(q.sql, q.id), q.id).toBeUndefined();
      // A dashboard's labels before the statement.
      expect(await answeredBy(`-- panel: cpu\n/* query 7 */ ${ROUTED[1]!.sql}`, 'leading comments')).toMatch(/^dn\d$/);
      // The data node's error: the access node is asked and says it.
      expect(await answeredBy(`SELECT cpu / (device_id - 3) AS x FROM metrics WHERE device_id = 3 ORDER BY time LIMIT 5`, 'division by zero')).toBeUndefined();
      // A result column's table is not the data node's; rows as arrays when asked.
      const described = await pool.query({ text: `SELECT time, cpu FROM metrics WHERE device_id = 3 ORDER BY time LIMIT 2`, rowMode: 'array' });
      expect(events.at(-1)?.dataNode).toBeDefined();
      expect(described.fields.map((f) => [f.tableID, f.columnID])).toEqual([[0, 0], [0, 0]]);
      expect(described.rows).toEqual((await plain.query({ text: `SELECT time, cpu FROM single.metrics WHERE device_id = 3 ORDER BY time LIMIT 2`, rowMode: 'array' })).rows);
      const session = await pool.connect();
      try {
        // Inside a transaction block, with bind values too: the access node.
        await session.query('BEGIN');
        await session.query(ROUTED[1]!.sql);
        expect(session.lastRewrite?.dataNode).toBeUndefined();
        await session.query('SELECT count(*) FROM metrics WHERE device_id = $1', [3]);
        expect(session.lastRewrite?.dataNode).toBeUndefined();
        await session.query('COMMIT');
        // A statement over the tables an earlier one read goes to the data node with its check, not after it (other literals too, and the clock).
        await session.query(ROUTED[1]!.sql);
        expectSameRows((await session.query(ROUTED[1]!.sql)).rows, (await plain.query(single(ROUTED[1]!.sql))).rows, { ordered: true, label: 'sent ahead' });
        expect(session.lastRewrite).toMatchObject({ dataNode: expect.stringMatching(/^dn\d$/) as unknown, sentAhead: true });
        const other = ROUTED[1]!.sql.replace("'2024-01-01 00:00:00+00'", "'2024-01-01 00:10:00+00'");
        expect(other).not.toBe(ROUTED[1]!.sql);
        expectSameRows((await session.query(other)).rows, (await plain.query(single(other))).rows, { ordered: true, label: 'sent ahead, other literals' });
        expect(session.lastRewrite?.sentAhead).toBe(true);
        const clock = ROUTED.find((q) => /now\(\)/.test(q.sql));
        expect(clock).toBeDefined();
        // Its bounds: an instant a century back (which moves with the clock) and today's midnight (which
        // holds still): the second read learns which, the third is sent ahead.
        await session.query(clock!.sql);
        await session.query(clock!.sql);
        expectSameRows((await session.query(clock!.sql)).rows, (await plain.query(single(clock!.sql))).rows, { ordered: true, label: 'clock, sent ahead' });
        expect(session.lastRewrite).toMatchObject({ dataNode: expect.stringMatching(/^dn\d$/) as unknown, sentAhead: true });
        // The clock a read sent ahead is given is one the access node's clock showed while the client waited:
        // after the access node's now() of a statement answered before it, before that of one sent after it.
        const utc = `pg_catalog.to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US')`;
        const seen = `SELECT ${utc} AS t, count(*) AS n FROM metrics WHERE device_id = 3 AND time < now() - interval '1 day'`;
        let clockAhead = 0;
        for (let i = 0; i < 20; i++) {
          const before = (await plain.query<{ t: string }>(`SELECT ${utc} AS t`)).rows[0]!.t;
          const got = (await session.query<{ t: string; n: string }>(seen)).rows[0]!;
          const after = (await plain.query<{ t: string }>(`SELECT ${utc} AS t`)).rows[0]!.t;
          expect(session.lastRewrite?.dataNode).toMatch(/^dn\d$/);
          if (session.lastRewrite?.sentAhead === true) clockAhead += 1;
          expect(got.t >= before && got.t <= after, `${before} <= ${got.t} <= ${after}`).toBe(true);
          expect(got.n).toBe((await plain.query<{ n: string }>(`SELECT count(*) AS n FROM single.metrics WHERE device_id = 3`)).rows[0]!.n);
        }
        expect(clockAhead).toBeGreaterThanOrEqual(15);
        // Sent ahead in the settings of its last run: dropped unseen when the check names others, asked again in these.
        const zoned = `SELECT time::text AS t FROM metrics WHERE device_id = 3 ORDER BY time LIMIT 3`;
        const reference = await plain.connect();
        const inZone = async (zone: string, ahead?: boolean): Promise<void> => {
          await session.query(`SET TimeZone = '${zone}'`);
          await reference.query(`SET TimeZone = '${zone}'`);
          expectSameRows((await session.query(zoned)).rows, (await reference.query(single(zoned))).rows, { ordered: true, label: zone });
          expect(session.lastRewrite, zone).toMatchObject({ dataNode: expect.stringMatching(/^dn\d$/) as unknown, ...(ahead === undefined ? {} : { sentAhead: ahead }) });
        };
        try {
          await inZone('UTC');
          await inZone('UTC', true);
          await inZone('Asia/Kolkata', false);
          await inZone('Asia/Kolkata', true);
        } finally {
          await session.query('RESET TimeZone');
          await reference.query('RESET TimeZone');
          reference.release();
        }
        // The client drops its prepared statements, the checks too: each prepared again under a new name, and a router read still.
        const want = (await plain.query(single(ROUTED[1]!.sql))).rows;
        for (const drop of ['DISCARD ALL', 'DEALLOCATE ALL']) {
          await session.query(drop);
          expectSameRows((await session.query(ROUTED[1]!.sql)).rows, want, { ordered: true, label: `after ${drop}` });
          expect(session.lastRewrite?.dataNode, drop).toBeDefined();
          expectSameRows((await session.query(ROUTED[1]!.sql)).rows, want, { ordered: true, label: `after ${drop}, again` });
          expect(session.lastRewrite?.dataNode, `${drop}, again`).toBeDefined();
        }
      } finally {
        session.release();
      }
      // A role that may read the table is answered by the data node; one that may no longer, by the access node, with its error.
      const asReader = await pool.connect();
      try {
        await asReader.query('SET ROLE metrics_reader');
        expectSameRows((await asReader.query(ROUTED[1]!.sql)).rows, (await plain.query(single(ROUTED[1]!.sql))).rows, { ordered: true, label: 'as metrics_reader' });
        expect(asReader.lastRewrite).toMatchObject({ role: 'metrics_reader', dataNode: expect.stringMatching(/^dn\d$/) as unknown });
        // Revoked after a read: the repeat is sent ahead, and its answer dropped unseen when the check refuses.
        await plain.query('REVOKE SELECT ON metrics FROM metrics_reader');
        const denied = await asReader.query(ROUTED[1]!.sql).then(() => 'no error', (error: unknown) => (error as Error).message);
        expect(denied).toMatch(/permission denied/);
        expect(asReader.lastRewrite?.dataNode).toBeUndefined();
      } finally {
        await plain.query('GRANT SELECT ON metrics TO metrics_reader');
        await asReader.query('RESET ROLE');
        asReader.release();
      }
      // Turned off: the access node answers.
      const off = new Pool({ ...applied.access, max: 1, hypershard: { ingest, routerReads: false } });
      try {
        off.on('rewrite', (e) => events.push(e));
        expectSameRows((await off.query(ROUTED[1]!.sql)).rows, (await plain.query(single(ROUTED[1]!.sql))).rows, { ordered: true, label: 'off' });
        expect(events.at(-1)?.dataNode).toBeUndefined();
      } finally {
        await off.end();
      }
    });

    it('hypershard/pg with ingest: a statement with bind values (numbers, Dates, text, arrays, a named statement) is a router read, its values written in; what cannot be one goes with its values to the access node', async () => {
      const answeredBy = async (config: pg.QueryConfig, label: string): Promise<string | undefined> => {
        events.length = 0;
        const got = await pool.query(config).then((r) => r.rows, (error: unknown) => String(error));
        const { name: _name, ...unnamed } = config;
        const direct = await plain.query({ ...unnamed, text: single(config.text) }).then((r) => r.rows, (error: unknown) => String(error));
        if (typeof direct === 'string') expect(got, label).toBe(direct);
        else expectSameRows(got as Record<string, unknown>[], direct, { ordered: true, label });
        expect(events.at(-1)?.original, label).toBe(config.text);
        return events.at(-1)?.dataNode;
      };
      const hour = `SELECT date_trunc('minute', time) AS minute, max(cpu) AS max_cpu, count(*) AS n FROM metrics WHERE device_id = $1 AND time >= $2 AND time < $3 GROUP BY minute ORDER BY minute`;
      const start = new Date('2024-01-01T00:00:00Z');
      const end = new Date('2024-01-01T01:00:00Z');
      const bound: [string, pg.QueryConfig][] = [
        ['a number and two Dates', { text: hour, values: [3, start, end] }],
        ['the key as text', { text: hour, values: ['4', '2024-01-01 00:10:00+00', '2024-01-01 00:50:00+00'] }],
        ['a key sub-select on the reference table', { text: `SELECT count(*) AS n, max(cpu) AS cpu FROM metrics WHERE device_id IN (SELECT id FROM devices WHERE name = $1) AND time < $2`, values: ['dev 7', end] }],
        ['an array with ANY', { text: `SELECT time, cpu FROM metrics WHERE device_id = ANY ($1) ORDER BY time DESC LIMIT $2`, values: [[11], 5] }],
        ['a hostile text value, cast', { text: `SELECT $1::text AS said, count(*) AS n FROM metrics WHERE device_id = $2`, values: [`it's \\ "x"; DROP TABLE metrics; --`, 9] }],
        ['a NULL value, cast', { text: `SELECT count(*) AS n, $1::integer AS nothing FROM metrics WHERE device_id = $2`, values: [null, 9] }],
        ['rows as arrays', { text: `SELECT time, cpu FROM metrics WHERE device_id = $1 ORDER BY time LIMIT 3`, values: [5], rowMode: 'array' } as pg.QueryConfig],
      ];
      for (const [label, config] of bound) {
        expect(await answeredBy(config, label), label).toMatch(/^dn\d$/);
        expect(await answeredBy({ ...config, values: [...(config.values ?? [])] }, `${label}, again`), `${label}, again`).toMatch(/^dn\d$/);
      }
      // A named statement, run with other values: each a router read; then through the access node, prepared there under its name.
      const named = { name: 'hour-of-device', text: hour };
      for (const device of [3, 12, 17]) expect(await answeredBy({ ...named, values: [device, start, end] }, `named, device ${device}`)).toMatch(/^dn\d$/);
      const session = await pool.connect();
      try {
        await session.query('BEGIN');
        const inBlock = await session.query({ ...named, values: [3, start, end] });
        expect(session.lastRewrite?.dataNode).toBeUndefined();
        await session.query('COMMIT');
        expectSameRows(inBlock.rows, (await plain.query(single(hour), [3, start, end])).rows, { ordered: true, label: 'named, in a block' });
        expectSameRows((await session.query({ ...named, values: [4, start, end] })).rows, (await plain.query(single(hour), [4, start, end])).rows, { ordered: true, label: 'named, after the block' });
        expect(session.lastRewrite?.dataNode).toMatch(/^dn\d$/);
      } finally {
        session.release();
      }
      // Bytes, an untyped value whose type PostgreSQL could not tell from a literal's, two shards, values of the wrong count: the access node, with its values (or its error).
      const refused: [string, pg.QueryConfig][] = [
        ['bytes', { text: `SELECT count(*) AS n, length($1::bytea) AS len FROM metrics WHERE device_id = $2`, values: [Buffer.from([0, 1, 2]), 3] }],
        ['an untyped value out of place', { text: `SELECT count(*) AS n FROM metrics WHERE device_id = 3 AND $1 = $2`, values: ['a', 'a'] }],
        ['two shards', { text: `SELECT device_id, count(*) AS n FROM metrics WHERE device_id = ANY ($1) GROUP BY 1 ORDER BY 1`, values: [[3, 4, 5, 6]] }],
        ['too few values', { text: hour, values: [3, start] }],
      ];
      for (const [label, config] of refused) expect(await answeredBy(config, label), label).toBeUndefined();
    });

    it('after a rebalance moves the shard, reads it on its new node', async () => {
      const sql = ROUTED[1]!.sql;
      const nodeOf = async (): Promise<string> => {
        const { rows } = await plain.query<{ server: string }>(
          `SELECT s.srvname AS server FROM pg_catalog.pg_foreign_table ft JOIN pg_catalog.pg_foreign_server s ON s.oid = ft.ftserver
           WHERE ft.ftrelid = (SELECT tableoid FROM metrics WHERE device_id = 3 LIMIT 1)`,
        );
        return rows[0]!.server;
      };
      const before = await nodeOf();
      const from = applied.spec.dataNodes.find((n) => before.includes(n.name))!.name;
      const moved = await rebalance(applied.spec, applied.specFile, { drain: from });
      expect(moved.moves.filter((m) => m.status === 'moved').length).toBeGreaterThan(0);
      expect(await nodeOf()).not.toBe(before);
      // A row written after the move is on the new node only: a stale read would miss it.
      await plain.query(`INSERT INTO metrics (time, device_id, cpu, memory, temperature) VALUES ('2024-01-01 00:30:30+00', 3, 99.5, 1, 1)`);
      await plain.query(`INSERT INTO single.metrics (time, device_id, cpu, memory, temperature) VALUES ('2024-01-01 00:30:30+00', 3, 99.5, 1, 1)`);
      const count = routed();
      const got = await client.query(sql);
      expectSameRows(got.rows, (await plain.query(single(sql))).rows, { ordered: true, label: 'after the move' });
      expect(routed() - count, JSON.stringify(fallbacks())).toBe(1);
      // hypershard/pg too: its check finds the shard's new server.
      const session = await pool.connect();
      try {
        events.length = 0;
        expectSameRows((await session.query(sql)).rows, (await plain.query(single(sql))).rows, { ordered: true, label: 'hypershard/pg, after the move' });
        const server = await nodeOf();
        expect(events.at(-1)).toMatchObject({ dataNode: applied.spec.dataNodes.find((n) => server.includes(n.name))?.name, sentAhead: false });
        expectSameRows((await session.query(sql)).rows, (await plain.query(single(sql))).rows, { ordered: true, label: 'hypershard/pg, after the move, again' });
        expect(events.at(-1)?.sentAhead).toBe(true);
      } finally {
        session.release();
      }
    });
  });
}
