/**
 * `npm run bench:router-reads`: TSBS's single-host query types as users write them (`tags` a
 * reference table, hosts by sub-select, now() windows) through the gateway with router reads off
 * (the access node asks the one shard through postgres_fdw) and on (the gateway asks the shard's
 * data node straight, src/route/reads.ts), against the same text on a single-node table.
 * pgbench, one client, the simple query protocol (or `--protocol extended`: Parse, Bind, Describe,
 * Execute, Sync, as libpq's PQexecParams and most drivers send a statement); the three alternate
 * per round, medians of rounds. `--bound` (with `--protocol extended`) sends the host names as
 * bound values (pgbench variables, `$n` on the wire) instead of literals, as a driver with
 * parameters does.
 * `--client hypershard-pg` measures hypershard/pg instead, in this process: a Pool without
 * `ingest` (off: the access node asks the shard) and one with it (on: router reads), each
 * statement run back to back `--transactions` times per round, against a plain pg Client on
 * the single-node table (`--bound`: the host names passed as values, `query(text, values)`).
 * Every answer through each gateway (or Pool) is compared with the single node's just before or
 * just after it (a now() window moves on between statements), before the timed rounds and again
 * after them, when reads go to the data node with their check (as a multiset where the query
 * has no ORDER BY).
 *
 * `--client asyncpg` measures asyncpg (Python) through the gateways instead of pgbench: named prepared
 * statements, every result and value in binary (as asyncpg sends them, and pgx and JDBC for some
 * types); `transactions` timed runs per round in one connection, after one that prepares; its
 * answers through the gateway with router reads on are compared with its answers from the single
 * node as well. Needs python3 with asyncpg (installed into the test venv, test/support/clients.ts).
 *
 * `--windows literal` writes the now() windows as literal instants, as Grafana sends a dashboard's
 * time range (the statement then reads no clock: hypershard/pg sends it to the data node with its check).
 *
 *   npm run bench:router-reads -- [--system] [--client pgbench|hypershard-pg|asyncpg] [--protocol simple|extended] [--bound] [--windows now|literal] [--hosts N] [--hours N] [--transactions N] [--rounds N]
 *
 * Writes bench/results/router-reads[-pg][-extended][-bound][-literal][-system].json and .md.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { startGateway, type Gateway } from '../src/gateway/gateway.js';
import { pythonDrivers } from '../test/support/clients.js';
import { run as runCommand } from '../test/support/gateway.js';
import { IngestCluster } from '../src/ingest/cluster.js';
import { Pool as HypershardPool, type PoolClient } from '../src/pg/pool.js';
import { SYSTEM_BIN_DIR, withBenchCluster } from './lib/cluster.js';
import { describeMachine, machineInfo } from './lib/machine.js';
import { closeQuietly, connect } from './lib/pg.js';
import { latencyMs, pgbench } from './lib/pgbench.js';
import { writeResults } from './lib/results.js';
import { geometricMean, median } from './lib/stats.js';
import { cpuRows, totalRows } from './tsbs/generate.js';
import { copyRows } from './tsbs/load.js';
import { tsbsQueries, type QueryType } from './tsbs/queries.js';
import { createDistributedHypertable, createSingleNodeTable, createTags, DISTRIBUTED, SINGLE } from './tsbs/setup.js';

const { values } = parseArgs({
  options: {
    system: { type: 'boolean', default: false },
    hosts: { type: 'string', default: '100' },
    hours: { type: 'string', default: '24' },
    transactions: { type: 'string', default: '200' },
    rounds: { type: 'string', default: '3' },
    protocol: { type: 'string', default: 'simple' },
    bound: { type: 'boolean', default: false },
    client: { type: 'string', default: 'pgbench' },
    windows: { type: 'string', default: 'now' },
  },
});
if (values.windows !== 'now' && values.windows !== 'literal') throw new Error(`--windows: now or literal, not ${values.windows}`);
const literalWindows = values.windows === 'literal';
if (values.client !== 'pgbench' && values.client !== 'hypershard-pg' && values.client !== 'asyncpg') throw new Error(`--client: pgbench, hypershard-pg or asyncpg, not ${values.client}`);
const library = values.client === 'hypershard-pg';
const python = values.client === 'asyncpg' ? await pythonDrivers() : undefined;
if (python !== undefined && 'skip' in python) throw new Error(`--client asyncpg: ${python.skip}`);
const asyncpg = python?.python;
if (library && values.protocol !== 'simple') throw new Error('--client hypershard-pg sends each statement as the application writes it (no --protocol; --bound passes values)');
if (values.protocol !== 'simple' && values.protocol !== 'extended') throw new Error(`--protocol: simple or extended, not ${values.protocol}`);
const protocol = values.protocol;
if (asyncpg !== undefined && protocol !== 'simple') throw new Error('--client asyncpg sends what asyncpg sends (no --protocol; --bound passes values)');
if (values.bound && !library && values.client !== 'asyncpg' && protocol !== 'extended') throw new Error('--bound needs --protocol extended (pgbench sends variables as literals otherwise)');
const bound = values.bound;

/** The users-bucket cases, their now() windows as literal instants with `--windows literal` (as Grafana sends a dashboard's range). */
function cases(endMs: number): ReturnType<typeof tsbsQueries> {
  const all = tsbsQueries({ hosts, endMs, seed: 1 }).filter((c) => c.form === 'users-bucket' && TYPES.has(c.type));
  if (!literalWindows) return all;
  const at = (hours: string): string => `'${new Date(endMs - Number(hours) * 3_600_000).toISOString()}'::timestamptz`;
  return all.map((c) => ({ ...c, sql: (t) => c.sql(t).replace(/now\(\) - interval '(\d+) hours?'/g, (_, h: string) => at(h)).replace(/now\(\)/g, at('0')) }));
}

/**
 * A statement as the bench sends it: with `--bound`, its host-name literals as pgbench variables
 * (`:v0`, set with -D) and as `$n` with values; else as written.
 */
function asSent(sql: string): { script: string; defines: string[]; text: string; values: string[] } {
  if (!bound) return { script: sql, defines: [], text: sql, values: [] };
  const hostNames: string[] = [];
  const text = sql.replace(/'(host_[0-9]+)'/g, (_, host: string) => `$${hostNames.push(host)}`);
  return { script: text.replace(/\$([0-9]+)/g, (_, n: string) => `:v${Number(n) - 1}`), defines: hostNames.flatMap((v, i) => ['-D', `v${i}=${v}`]), text, values: hostNames };
}
const hosts = Number(values.hosts);
const hours = Number(values.hours);
const transactions = Number(values.transactions);
const rounds = Number(values.rounds);
const TYPES: ReadonlySet<QueryType> = new Set<QueryType>(['single-groupby-1-1-1', 'single-groupby-1-1-12', 'single-groupby-5-1-1', 'high-cpu-1', 'cpu-max-all-1']);
const TARGETS = ['single', 'off', 'on'] as const;
type Target = (typeof TARGETS)[number];
const step = (m: string): void => void process.stderr.write(`[${new Date().toISOString().slice(11, 19)}] ${m}\n`);

interface Row {
  readonly type: QueryType;
  readonly singleMs: number;
  readonly offMs: number;
  readonly onMs: number;
  readonly equal: boolean;
}

const report = await withBenchCluster(
  { dataNodes: 2, handleSignals: true, onStep: step, ...(values.system ? { postgres: { kind: 'system' as const, binDir: SYSTEM_BIN_DIR } } : {}) },
  async (cluster, workDir) => {
    const topology = await createDistributedHypertable(cluster, workDir, { hours, referenceTags: true });
    const access = await connect(cluster.accessNode.url);
    const scratch = await mkdtemp(join(tmpdir(), 'hs-bench-router-'));
    const gateways: Gateway[] = [];
    const clients: pg.Client[] = [];
    try {
      await createSingleNodeTable(access);
      await createTags(access, hosts, 1, { referenceTags: true });
      const endMs = Math.floor(Date.now() / 10_000) * 10_000;
      const shape = { hosts, startMs: endMs - hours * 3_600_000, endMs, intervalSeconds: 10, seed: 1 };
      step(`loading ${totalRows(shape).toLocaleString('en-US')} rows into each target`);
      await copyRows(access, SINGLE.cpu, cpuRows(shape));
      await copyRows(access, DISTRIBUTED.cpu, cpuRows(shape));
      const data = await Promise.all(cluster.dataNodes.map((n) => connect(n.url)));
      await Promise.all(data.map((c) => c.query('VACUUM ANALYZE')));
      await closeQuietly(data);
      await access.query(`VACUUM ANALYZE ${SINGLE.cpu}, ${SINGLE.tags}, ${DISTRIBUTED.tags}`);
      await access.query(`ANALYZE ${DISTRIBUTED.cpu}`);

      if (library) return { ...(await measureLibrary(cluster.accessNode.url, topology.spec, topology.specFile, endMs)), generatedAt: new Date().toISOString(), machine: machineInfo(), postgres: await serverVersion(access), protocol, bound, hosts, hours, rows: totalRows(shape), shards: topology.shards, transactions, rounds };
      const off = await startGateway(topology.spec, topology.specFile, { port: 0, routerReads: false });
      gateways.push(off);
      const on = await startGateway(topology.spec, topology.specFile, { port: 0, routerReads: true });
      gateways.push(on);
      const a = new URL(cluster.accessNode.url);
      const user = decodeURIComponent(a.username);
      const database = a.pathname.slice(1);
      const hostPort = (address: string): [string, string] => [address.slice(0, address.lastIndexOf(':')), address.slice(address.lastIndexOf(':') + 1)];
      const [offHost, offPort] = hostPort(off.address);
      const [onHost, onPort] = hostPort(on.address);
      const urls: Record<Target, string> = {
        single: cluster.accessNode.url,
        off: `postgres://${encodeURIComponent(user)}@${off.address}/${database}`,
        on: `postgres://${encodeURIComponent(user)}@${on.address}/${database}`,
      };
      const target: Record<Target, string[]> = {
        single: ['-h', a.hostname, '-p', a.port, '-U', user, database],
        off: ['-h', offHost, '-p', offPort, '-U', user, database],
        on: ['-h', onHost, '-p', onPort, '-U', user, database],
      };
      for (const [host, port] of [[offHost, offPort], [onHost, onPort]] as const) {
        const c = new pg.Client({ host, port: Number(port), user, database });
        await c.connect();
        clients.push(c);
      }

      const rows: Row[] = [];
      for (const c of cases(endMs)) {
        const single = c.sql(SINGLE);
        const written = c.sql(DISTRIBUTED);
        const answer = answerOf(written);
        const sent = asSent(written);
        const singleSent = asSent(single);
        const viaAsyncpg = async (which: Target, runs: number): Promise<{ ms: number[]; rows: unknown[] }> => {
          const job = which === 'single' ? singleSent : sent;
          return asyncpgRuns(asyncpg as string, { url: urls[which], sql: job.text, values: job.values, runs });
        };
        const agree = async (): Promise<boolean> =>
          (await sameAsSingle(
            async () => answer((await access.query(single)).rows),
            clients.map((client) => async () => answer((await client.query({ text: sent.text, values: sent.values, queryMode: protocol } as pg.QueryConfig)).rows)),
          )) &&
          // asyncpg's binary answers relayed from the data node, against its answers from the single node.
          (asyncpg === undefined || (await sameAsSingle(async () => answer((await viaAsyncpg('single', 1)).rows), [async () => answer((await viaAsyncpg('on', 1)).rows)])));
        let equal = await agree();
        const files: Record<Target, string> = { single: join(scratch, `${c.type}-single.sql`), off: join(scratch, `${c.type}-off.sql`), on: join(scratch, `${c.type}-on.sql`) };
        await writeFile(files.single, `${singleSent.script};\n`);
        await writeFile(files.off, `${sent.script};\n`);
        await writeFile(files.on, `${sent.script};\n`);
        const t: Record<Target, number[]> = { single: [], off: [], on: [] };
        for (let round = 0; round < rounds; round += 1) {
          for (const [k] of TARGETS.entries()) {
            const which = TARGETS[(k + round) % TARGETS.length] as Target;
            if (asyncpg !== undefined) t[which].push(median((await viaAsyncpg(which, transactions)).ms));
            else t[which].push(latencyMs(await pgbench(['-M', protocol, ...(which === 'single' ? singleSent : sent).defines, '-c', '1', '-t', String(transactions), '-f', files[which], ...target[which]])));
          }
        }
        // Again once the session has read it: now with its check (sent ahead) where it may be.
        equal = (await agree()) && equal;
        const row = { type: c.type, singleMs: median(t.single), offMs: median(t.off), onMs: median(t.on), equal };
        rows.push(row);
        step(`${c.type}: single ${row.singleMs.toFixed(2)} ms, off ${row.offMs.toFixed(2)} ms, on ${row.onMs.toFixed(2)} ms${row.equal ? '' : ' — ANSWERS DIFFER'}`);
      }
      return { generatedAt: new Date().toISOString(), machine: machineInfo(), postgres: await serverVersion(access), protocol, bound, hosts, hours, rows: totalRows(shape), shards: topology.shards, transactions, rounds, results: rows, metrics: on.metrics() };
    } finally {
      await closeQuietly(clients);
      for (const g of gateways) await g.close();
      await closeQuietly([access]);
      await rm(scratch, { recursive: true, force: true });
    }
  },
);

const f = (x: number): string => x.toFixed(2);
const through = library ? 'hypershard/pg' : asyncpg !== undefined ? 'asyncpg via the gateway' : 'gateway';
const lines = [
  `# Router reads through ${library ? 'hypershard/pg' : 'the gateway'} (PostgreSQL ${report.postgres})`,
  '',
  `${report.hosts} hosts × ${report.hours} h (${report.rows.toLocaleString('en-US')} rows), ${report.shards} shards on 2 data nodes, \`tags\` a reference table${literalWindows ? ', the now() windows written as literal instants' : ''}, loopback; ` +
    (library
      ? `hypershard/pg Pools (without and with \`ingest\`) and a pg Client on the single-node table in one process${report.bound ? ', host names passed as values' : ''}, each statement ${report.transactions} times back to back per round, the three alternating, median of all runs over ${report.rounds} rounds`
      : asyncpg !== undefined
        ? `asyncpg (prepared statements, binary results and values)${report.bound ? ', host names as bound values' : ''}, one connection, ${report.transactions} timed runs per round, median of the rounds' medians over ${report.rounds} rounds`
        : `pgbench -M ${report.protocol}${report.bound ? ', host names as bound values' : ''}, one client, ${report.transactions} transactions, median of ${report.rounds} rounds`) +
    `; ${describeMachine(report.machine)}; written by bench/routerReads.ts at ${report.generatedAt}.`,
  '',
  `| query type | single ms | ${through}, router reads off ms (×) | ${through}, router reads on ms (×) | answers = single node |`,
  '|---|---:|---:|---:|---|',
  ...report.results.map((r) => `| ${r.type} | ${f(r.singleMs)} | ${f(r.offMs)} (${f(r.offMs / r.singleMs)}) | ${f(r.onMs)} (${f(r.onMs / r.singleMs)}) | ${r.equal ? 'yes' : 'NO'} |`),
  `| geomean | | (${f(geometricMean(report.results.map((r) => r.offMs / r.singleMs)))}) | (${f(geometricMean(report.results.map((r) => r.onMs / r.singleMs)))}) | |`,
  '',
  `Router reads ${report.metrics.routerReads} (${report.metrics.routerSentAhead} sent to the data node with their check), fallbacks ${JSON.stringify(report.metrics.routerFallbacks)}.`,
  '',
];
process.stdout.write(lines.join('\n'));
await writeResults(`router-reads${library ? '-pg' : ''}${asyncpg !== undefined ? '-asyncpg' : ''}${protocol === 'extended' ? '-extended' : ''}${bound ? '-bound' : ''}${literalWindows ? '-literal' : ''}${values.system ? '-system' : ''}`, report, lines.join('\n'));

/** One statement timed through asyncpg (bench/clients/asyncpg_runs.py). */
async function asyncpgRuns(pythonBin: string, job: { url: string; sql: string; values: readonly string[]; runs: number }): Promise<{ ms: number[]; rows: unknown[] }> {
  const result = await runCommand(pythonBin, [join('bench', 'clients', 'asyncpg_runs.py')], { input: JSON.stringify(job), timeoutMs: 120_000 });
  if (result.code !== 0) throw new Error(`asyncpg against ${new URL(job.url).host}: ${result.stderr.trim().split('\n').at(-1) ?? ''}`);
  return JSON.parse(result.stdout) as { ms: number[]; rows: unknown[] };
}

async function serverVersion(access: pg.Client): Promise<string> {
  const { rows } = await access.query<{ v: string }>(`SELECT current_setting('server_version') AS v`);
  return rows[0]?.v ?? '?';
}

/**
 * hypershard/pg without and with router reads against a pg Client on the single node, in this
 * process: per round, each target runs each statement `transactions` times back to back (the
 * targets take turns first), every run timed.
 */
async function measureLibrary(accessUrl: string, spec: Parameters<typeof IngestCluster.open>[0], specFile: string, endMs: number): Promise<{ results: Row[]; metrics: { routerReads: number; routerSentAhead: number; routerFallbacks: Record<string, number> } }> {
  const ingest = await IngestCluster.open(spec, specFile);
  const pools = [new HypershardPool({ connectionString: accessUrl, max: 2 }), new HypershardPool({ connectionString: accessUrl, max: 2, hypershard: { ingest } })];
  const sessions: PoolClient[] = [];
  const single = await connect(accessUrl);
  let answered = 0;
  let sentAhead = 0;
  const fallbacks: Record<string, number> = {};
  try {
    for (const p of pools) sessions.push(await p.connect());
    const [off, on] = sessions as [PoolClient, PoolClient];
    on.on('rewrite', (e) => {
      if (e.dataNode === undefined) fallbacks['access-node'] = (fallbacks['access-node'] ?? 0) + 1;
      else answered += 1;
      if (e.sentAhead === true) sentAhead += 1;
    });
    for (const c of [single, off, on]) await c.query(`SET TimeZone = 'UTC'`);
    // With --bound, host names as values (`pool.query(text, values)`), as an application passes them.
    const send = (client: pg.ClientBase, sql: string): Promise<pg.QueryResult> => {
      const { text, values: params } = asSent(sql);
      return params.length === 0 ? client.query(text) : client.query(text, params);
    };
    const run: Record<Target, (sql: string) => Promise<pg.QueryResult>> = { single: (sql) => send(single, sql), off: (sql) => send(off, sql), on: (sql) => send(on, sql) };
    const results: Row[] = [];
    for (const c of cases(endMs)) {
      const answer = answerOf(c.sql(DISTRIBUTED));
      const agree = (): Promise<boolean> =>
        sameAsSingle(
          async () => answer((await run.single(c.sql(SINGLE))).rows),
          [run.off, run.on].map((read) => async () => answer((await read(c.sql(DISTRIBUTED))).rows)),
        );
      let equal = await agree();
      const t: Record<Target, number[]> = { single: [], off: [], on: [] };
      for (let round = 0; round < rounds; round += 1) {
        for (const [k] of TARGETS.entries()) {
          const which = TARGETS[(k + round) % TARGETS.length] as Target;
          const sql = which === 'single' ? c.sql(SINGLE) : c.sql(DISTRIBUTED);
          for (let i = 0; i < transactions; i += 1) {
            const t0 = performance.now();
            await run[which](sql);
            t[which].push(performance.now() - t0);
          }
        }
      }
      // Again once the session has read it: now with its check (sent ahead) where it may be.
      equal = (await agree()) && equal;
      const row = { type: c.type, singleMs: median(t.single), offMs: median(t.off), onMs: median(t.on), equal };
      results.push(row);
      step(`${c.type}: single ${row.singleMs.toFixed(2)} ms, off ${row.offMs.toFixed(2)} ms, on ${row.onMs.toFixed(2)} ms${row.equal ? '' : ' — ANSWERS DIFFER'}`);
    }
    return { results, metrics: { routerReads: answered, routerSentAhead: sentAhead, routerFallbacks: fallbacks } };
  } finally {
    for (const s of sessions) s.release();
    await Promise.all(pools.map((p) => p.end()));
    await ingest.close();
    await closeQuietly([single]);
  }
}

/**
 * Whether each distributed answer is the single node's, read just before or just after it: a
 * now() window moves on between two statements (a host's row leaves it every 10 s), so the
 * answer must be one the single node gave at an instant around it.
 */
async function sameAsSingle(single: () => Promise<string>, distributed: readonly (() => Promise<string>)[]): Promise<boolean> {
  for (const read of distributed) {
    const before = await single();
    const got = await read();
    if (got !== before && got !== (await single())) return false;
  }
  return true;
}

/** An answer to `sql` as comparable text: without ORDER BY (high-cpu-1) the order is the plan's, so compared as a multiset. */
function answerOf(sql: string): (rows: unknown[]) => string {
  const ordered = /\bORDER\s+BY\b/i.test(sql);
  return (rows) => (ordered ? JSON.stringify(rows) : JSON.stringify(rows.map((r) => JSON.stringify(r)).sort()));
}
