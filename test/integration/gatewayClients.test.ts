/**
 * The client matrix: real PostgreSQL clients other than node-postgres, each speaking its own
 * dialect of the protocol, through the gateway on real clusters (PG 18 and 15):
 *   psql (simple protocol), pgbench (-M simple, extended, prepared, with a TSBS-style script),
 *   psycopg 3 (server-side binding, named prepared statements, binary results, pipeline mode),
 *   psycopg2 (client-side interpolation), asyncpg (binary everything, prepared statements),
 *   JDBC (extended protocol; named server-side statements after five executions).
 * For each, every statement's answer through the gateway equals the access node's: rewritten and
 * as written in one REPEATABLE READ transaction (`SET hypershard.rewrite = off`), and for
 * statements with fixed bounds also against a direct connection; and the rewrites happened.
 */
import { writeFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appliedExampleCluster, type AppliedCluster } from '../support/appliedCluster.js';
import { jdbcDriver, pythonDrivers } from '../support/clients.js';
import { clusterSources, type TestCluster } from '../support/clusters.js';
import { directUrl, psql, run, startTestGateway, type TestGateway } from '../support/gateway.js';

const sources = await Promise.all(clusterSources().map(async (s) => ({ source: s, skip: await s.unavailable() })));
const python = await pythonDrivers();
const jdbc = await jdbcDriver();

interface ClientCase {
  readonly id: string;
  /** With $1 … placeholders. */
  readonly sql: string;
  readonly params: readonly (number | number[])[];
  /** Answers do not move with the clock: compared with a direct connection too. */
  readonly stable: boolean;
}

const CASES: readonly ClientCase[] = [
  { id: 'time-bucket', sql: "SELECT time_bucket('5 minutes', time) AS b, max(cpu) AS m, last(cpu, time) AS latest FROM metrics WHERE time > now() - interval '1 hour' GROUP BY b ORDER BY b", params: [], stable: false },
  { id: 'minute-max', sql: "SELECT date_trunc('minute', time) AS b, max(cpu) AS m FROM metrics WHERE time > now() - interval '2 hours' GROUP BY b ORDER BY b", params: [], stable: false },
  { id: 'devices-avg', sql: "SELECT device_id, round(avg(temperature)::numeric, 6) AS t, count(*) AS n FROM metrics WHERE device_id = ANY($1) AND time > now() - interval '12 hours' GROUP BY device_id ORDER BY device_id", params: [[1, 2, 3, 4, 5]], stable: false },
  { id: 'one-device', sql: "SELECT max(cpu) AS m, min(time) AS first FROM metrics WHERE device_id = $1 AND time > now() - interval '6 hours'", params: [7], stable: false },
  { id: 'per-device', sql: 'SELECT device_id, max(cpu) AS m FROM metrics GROUP BY device_id ORDER BY device_id', params: [], stable: true },
  { id: 'lastpoint', sql: 'SELECT DISTINCT ON (device_id) device_id, time, cpu FROM metrics ORDER BY device_id, time DESC', params: [], stable: true },
  { id: 'last-hour', sql: "SELECT count(*) AS n FROM metrics WHERE time > now() - interval '1 hour'", params: [], stable: false },
  { id: 'hourly', sql: "SELECT date_trunc('hour', time) AS h, count(*) AS n, max(temperature) AS t FROM metrics GROUP BY 1 ORDER BY 1", params: [], stable: true },
  { id: 'no-hypertable', sql: 'SELECT 1 AS one, 2 + $1 AS three', params: [1], stable: true },
];

/**
 * Statements one device's shard answers (router reads), with values of many types in binary both
 * ways: asyncpg and psycopg's binary cursors ask for binary results and send binary values (of
 * types the access node resolved, asyncpg; or declared, psycopg). Fixed answers, one of a megabyte.
 */
const ROUTER_CASES: readonly { readonly id: string; readonly sql: string; readonly params: readonly unknown[] }[] = [
  {
    id: 'types',
    sql: `SELECT time, device_id, cpu, memory, cpu::numeric(12,4) AS n, cpu::real AS r, time::date AS d, time::timestamp AS ts,
            'héllo ☃ ' || device_id AS t, ARRAY[device_id, 2] AS a, interval '1 day 2 hours 3.5 seconds' * device_id AS iv,
            ('{"k": ' || device_id || ', "s": "ü"}')::jsonb AS j, '\\x00ff10'::bytea AS b, 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid AS u,
            NULL::int AS nothing, 'NaN'::numeric AS nan, 'infinity'::float8 AS inf, -0.000001234::numeric AS small, true AS yes,
            '0001-01-01 00:00:00+00'::timestamptz AS early, time - interval '999 years 11 months' AS past
       FROM metrics WHERE device_id = $1 ORDER BY time LIMIT 5`,
    params: [7],
  },
  // About a megabyte: read from the data node in many chunks, relayed past the bytes held.
  // Many small rows: the data node's answer comes in chunks of every size.
  { id: 'many-rows', sql: 'SELECT time, cpu, generate_series(1, 20) AS g FROM metrics WHERE device_id = $1 ORDER BY time, g', params: [7] },
  { id: 'large-answer', sql: "SELECT time, cpu, memory, repeat('é' || device_id, 5000) AS pad FROM metrics WHERE device_id = $1 ORDER BY time", params: [7] },
  // Errors (compared by SQLSTATE): before any row (the access node then answers), and after more rows than are held.
  { id: 'error-before-rows', sql: 'SELECT cpu / (device_id - 7) AS x FROM metrics WHERE device_id = $1 ORDER BY time', params: [7] },
  { id: 'error-after-rows', sql: "SELECT time, repeat('x', 20000) AS pad, 1 / (count(*) OVER (ORDER BY time) - 80) AS boom FROM metrics WHERE device_id = $1 ORDER BY time", params: [7] },
  { id: 'time-bounds', sql: 'SELECT count(*) AS n, max(cpu) AS m, avg(temperature) AS t FROM metrics WHERE device_id = $1 AND time >= $2 AND time < $3', params: [7, { timestamptz: '2000-01-01T00:00:00+00:00' }, { timestamptz: '2100-01-01T00:00:00+00:00' }] },
  { id: 'key-array', sql: 'SELECT device_id, count(*) AS n FROM metrics WHERE device_id = ANY($1) GROUP BY device_id ORDER BY device_id', params: [[7]] },
  { id: 'text-value', sql: "SELECT $1::text || device_id AS label, cpu FROM metrics WHERE device_id = $2 ORDER BY time DESC, cpu LIMIT 3", params: ["naïve ' \" quoted", 7] },
  { id: 'float-value', sql: 'SELECT count(*) AS n FROM metrics WHERE device_id = $1 AND cpu > $2', params: [7, 50.5] },
  { id: 'null-value', sql: 'SELECT count(*) AS n FROM metrics WHERE device_id = $1 AND memory IS NOT DISTINCT FROM $2', params: [7, null] },
];

/** The statement with its parameters written in, for clients that send text only (psql, pgbench). */
function inlined(c: ClientCase): string {
  return c.sql.replace(/\$(\d+)/g, (_, n: string) => {
    const v = c.params[Number(n) - 1];
    return Array.isArray(v) ? `ARRAY[${v.join(',')}]::int[]` : String(v);
  });
}

interface Answers {
  readonly answers: readonly { id: string; rewritten: unknown; written: unknown }[];
  readonly pipelined: readonly unknown[] | null;
}

for (const { source, skip } of sources) {
  describe.skipIf(skip !== undefined)(`gateway client matrix on ${source.label}${skip === undefined ? '' : ` — skipped: ${skip}`}`, () => {
    let cluster: TestCluster;
    let applied: AppliedCluster;
    let gw: TestGateway;
    let dir: string;

    beforeAll(async () => {
      cluster = await source.start(2);
      applied = await appliedExampleCluster(cluster, 'clients');
      gw = await startTestGateway(applied);
      dir = await mkdtemp(join(tmpdir(), 'hs-clients-'));
    });
    afterAll(async () => {
      await gw?.close();
      await cluster?.stop();
      if (dir !== undefined) await rm(dir, { recursive: true, force: true });
    });

    /** Runs a client; expects every case's rewritten answer to equal its as-written one, and rewrites to have happened. */
    const expectSameAnswers = async (label: string, runClient: (url: 'gateway' | 'direct') => Promise<Answers>): Promise<void> => {
      const before = gw.gateway.metrics().rewritten;
      const through = await runClient('gateway');
      expect(gw.gateway.metrics().rewritten - before, `${label}: statements rewritten`).toBeGreaterThanOrEqual(CASES.filter((c) => c.id !== 'no-hypertable' && c.id !== 'per-device').length);
      expect(through.answers.map((a) => a.id)).toEqual(CASES.map((c) => c.id));
      for (const a of through.answers) {
        expect(a.rewritten, `${label} ${a.id}`).toEqual(a.written);
        expect((a.written as unknown[]).length, `${label} ${a.id} answers something`).toBeGreaterThan(0);
      }
      if (through.pipelined !== null) {
        through.pipelined.forEach((rows, i) => {
          const c = CASES[i]!;
          if (c.stable) expect(rows, `${label} ${c.id} pipelined`).toEqual(through.answers[i]?.written);
        });
      }
      const direct = await runClient('direct');
      for (const [i, c] of CASES.entries()) if (c.stable) expect(through.answers[i]?.rewritten, `${label} ${c.id} vs the access node`).toEqual(direct.answers[i]?.written);
    };

    it('psql (simple protocol): rewritten and as-written answers agree, and with the access node', async () => {
      const runPsql = async (target: 'gateway' | 'direct'): Promise<Answers> => {
        const url = target === 'gateway' ? gw.url(applied.access) : directUrl(applied.access);
        const script = CASES.map((c) => `BEGIN ISOLATION LEVEL REPEATABLE READ;\n${inlined(c)};\n\\echo ---\nSET hypershard.rewrite = off;\n${inlined(c)};\nSET hypershard.rewrite = on;\nCOMMIT;\n\\echo ===`).join('\n');
        const result = await psql(url, undefined, ['-t', '-F', '|'], script);
        expect(result.stderr).toBe('');
        const blocks = result.stdout.split('===\n').filter((b) => b.trim() !== '');
        return {
          answers: blocks.map((b, i) => {
            const [rewritten, written] = b.split('---\n');
            return { id: CASES[i]!.id, rewritten: rewritten?.trim().split('\n'), written: written?.trim().split('\n') };
          }),
          pipelined: null,
        };
      };
      await expectSameAnswers('psql', runPsql);
    });

    it('pgbench -M simple, extended and prepared with a TSBS-style script: no failed transaction, statements rewritten', async () => {
      const script = join(dir, 'tsbs.sql');
      await writeFile(
        script,
        [
          '\\set device random(1, 20)',
          "SELECT max(cpu) FROM metrics WHERE device_id = :device AND time > now() - interval '1 hour';",
          "SELECT date_trunc('minute', time) AS b, max(cpu) FROM metrics WHERE time > now() - interval '30 minutes' GROUP BY b ORDER BY b;",
          'SELECT DISTINCT ON (device_id) device_id, time, cpu FROM metrics ORDER BY device_id, time DESC;',
          '',
        ].join('\n'),
      );
      for (const mode of ['simple', 'extended', 'prepared']) {
        const before = gw.gateway.metrics().rewritten;
        const routedBefore = gw.gateway.metrics().routerReads;
        const result = await run('pgbench', ['-n', '-M', mode, '-f', script, '-t', '15', '-c', '2', '-h', gw.host, '-p', String(gw.port), '-U', String(applied.access.user), String(applied.access.database)], { env: { PGPASSWORD: '' }, timeoutMs: 120_000 });
        expect(result.code, `${mode}: ${result.stderr}`).toBe(0);
        expect(result.stdout).toMatch(/number of transactions actually processed: 30\/30/);
        expect(result.stdout).not.toMatch(/number of failed transactions: [1-9]/);
        // Prepared mode parses each statement once per connection; the others once per execution.
        expect(gw.gateway.metrics().rewritten - before, mode).toBeGreaterThanOrEqual(mode === 'prepared' ? 4 : 60);
        // The one-device statement reads one shard: its data node answers it, its key a literal (simple) or an untyped value (extended, prepared).
        expect(gw.gateway.metrics().routerReads - routedBefore, `${mode}: ${JSON.stringify(gw.gateway.metrics().routerFallbacks)}`).toBeGreaterThanOrEqual(30);
      }
    });

    for (const driver of ['psycopg3', 'psycopg2', 'asyncpg'] as const) {
      it.skipIf('skip' in python)(`${driver}${'skip' in python ? ` — skipped: ${python.skip}` : ''}: rewritten and as-written answers agree, and with the access node`, async () => {
        if ('skip' in python) return;
        const runDriver = async (target: 'gateway' | 'direct'): Promise<Answers> => {
          const url = target === 'gateway' ? gw.url(applied.access) : directUrl(applied.access);
          const result = await run(python.python, [join('test', 'clients', 'gateway_client.py'), driver, url], { input: JSON.stringify(CASES), env: { PGPASSWORD: '' }, timeoutMs: 120_000 });
          expect(result.stderr, driver).toBe('');
          return JSON.parse(result.stdout) as Answers;
        };
        await expectSameAnswers(driver, runDriver);
      });
    }

    for (const driver of ['asyncpg', 'psycopg3'] as const) {
      it.skipIf('skip' in python)(`${driver}${'skip' in python ? ` — skipped: ${python.skip}` : ''}, binary results and values: one device's statements are router reads, their answers the access node's`, async () => {
        if ('skip' in python) return;
        const runDriver = async (target: 'gateway' | 'direct'): Promise<Answers> => {
          const url = target === 'gateway' ? gw.url(applied.access) : directUrl(applied.access);
          const result = await run(python.python, [join('test', 'clients', 'gateway_client.py'), `${driver}-router`, url], { input: JSON.stringify(ROUTER_CASES), env: { PGPASSWORD: '' }, timeoutMs: 120_000 });
          expect(result.stderr, driver).toBe('');
          return JSON.parse(result.stdout) as Answers;
        };
        const before = gw.gateway.metrics().routerReads;
        const through = await runDriver('gateway');
        // Every execution (two per case) answered by the data node, but for the error it gives before any row.
        expect(gw.gateway.metrics().routerReads - before, `${driver}: ${JSON.stringify(gw.gateway.metrics().routerFallbacks)}`).toBe((ROUTER_CASES.length - 1) * 2);
        const direct = await runDriver('direct');
        expect(through.answers.map((a) => a.id)).toEqual(ROUTER_CASES.map((c) => c.id));
        for (const [i, c] of ROUTER_CASES.entries()) {
          const want = direct.answers[i]?.rewritten;
          expect((want as unknown[]).length, `${driver} ${c.id} answers something`).toBeGreaterThan(0);
          expect(through.answers[i]?.rewritten, `${driver} ${c.id}`).toEqual(want);
          expect(through.answers[i]?.written, `${driver} ${c.id}, prepared`).toEqual(want);
          if (c.id.startsWith('error')) expect(want, c.id).toEqual([['error', '22012']]);
        }
      });
    }

    it.skipIf('skip' in jdbc)(`JDBC${'skip' in jdbc ? ` — skipped: ${jdbc.skip}` : ''}, binary transfer: one device's statements are router reads before and after the driver prepares them, their answers the access node's`, async () => {
      if ('skip' in jdbc) return;
      // The cases the Java client's parameters can carry (integers and integer arrays).
      const cases = ROUTER_CASES.filter((c) => !c.id.startsWith('error') && c.params.every((p) => Number.isInteger(p) || Array.isArray(p)));
      const input = cases.map((c) => [c.id, c.sql.replace(/\s*\n\s*/g, ' '), c.params.map((p) => (Array.isArray(p) ? `{${p.join(',')}}` : String(p))).join(';')].join('\t')).join('\n');
      const runJdbc = async (target: 'gateway' | 'direct'): Promise<Answers> => {
        const host = target === 'gateway' ? `${gw.host}:${gw.port}` : `${applied.access.host}:${applied.access.port}`;
        const result = await run(jdbc.java, ['-cp', jdbc.jar, join('test', 'clients', 'GatewayClient.java'), `jdbc:postgresql://${host}/${applied.access.database}`, String(applied.access.user), 'router'], { input, env: { PGPASSWORD: '' }, timeoutMs: 180_000 });
        expect(result.stderr, 'java').toBe('');
        return JSON.parse(result.stdout) as Answers;
      };
      const before = gw.gateway.metrics().routerReads;
      const through = await runJdbc('gateway');
      // Seven executions a case: unnamed statements first, then the driver's named one with binary results.
      expect(gw.gateway.metrics().routerReads - before, JSON.stringify(gw.gateway.metrics().routerFallbacks)).toBe(cases.length * 7);
      const direct = await runJdbc('direct');
      expect(through.answers.map((a) => a.id)).toEqual(cases.map((c) => c.id));
      for (const [i, c] of cases.entries()) {
        expect(((direct.answers[i]?.written ?? []) as unknown[]).length, `JDBC ${c.id} answers something`).toBeGreaterThan(0);
        expect(through.answers[i]?.rewritten, `JDBC ${c.id}, first execution`).toEqual(direct.answers[i]?.rewritten);
        expect(through.answers[i]?.written, `JDBC ${c.id}, seventh execution (named, binary)`).toEqual(direct.answers[i]?.written);
      }
    });

    it.skipIf('skip' in jdbc)(`JDBC${'skip' in jdbc ? ` — skipped: ${jdbc.skip}` : ''}: rewritten and as-written answers agree through named server-side statements, and with the access node`, async () => {
      if ('skip' in jdbc) return;
      const input = CASES.map((c) => [c.id, c.sql, c.params.map((p) => (Array.isArray(p) ? `{${p.join(',')}}` : String(p))).join(';')].join('\t')).join('\n');
      const runJdbc = async (target: 'gateway' | 'direct'): Promise<Answers> => {
        const host = target === 'gateway' ? `${gw.host}:${gw.port}` : `${applied.access.host}:${applied.access.port}`;
        const result = await run(jdbc.java, ['-cp', jdbc.jar, join('test', 'clients', 'GatewayClient.java'), `jdbc:postgresql://${host}/${applied.access.database}`, String(applied.access.user)], { input, env: { PGPASSWORD: '' }, timeoutMs: 180_000 });
        expect(result.stderr, 'java').toBe('');
        return JSON.parse(result.stdout) as Answers;
      };
      await expectSameAnswers('JDBC', runJdbc);
    });
  });
}
