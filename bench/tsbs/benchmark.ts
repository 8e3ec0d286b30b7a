/**
 * The TSBS devops benchmark (issue 4), as a function: `main.ts` is its command line, and the
 * integration test runs the quick scale through it so the benchmark cannot rot.
 *
 * One run: a fresh dev cluster (1 access + N data nodes), the distributed `cpu` hypertable applied
 * by hypershard, a plain single-node copy beside it, the same generated rows streamed into both,
 * then the 15 TSBS query types in their forms, timed on both, answers compared, plans audited.
 * Optionally the access node reaches the data nodes through latency proxies. The cluster and the
 * proxies are always stopped.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import type pg from 'pg';
import type { PostgresSource } from '../../src/dev/binaries.js';
import type { DevCluster } from '../../src/dev/cluster.js';
import { startGateway } from '../../src/gateway/gateway.js';
import { IngestCluster } from '../../src/ingest/cluster.js';
import { Pool as HypershardPool, type PoolClient } from '../../src/pg/pool.js';
import { metadataFromLayout } from '../../src/rewrite/metadata.js';
import { rewriteSql } from '../../src/rewrite/rewrite.js';
import { quoteIdent, quoteLiteral } from '../../src/sql/quote.js';
import { pythonDrivers } from '../../test/support/clients.js';
import { withBenchCluster } from '../lib/cluster.js';
import { proxyTotals, startLatencyProxy, type LatencyProxy, type ProxyStats } from '../lib/latencyProxy.js';
import { machineInfo } from '../lib/machine.js';
import { closeQuietly, connect } from '../lib/pg.js';
import { cpuCsv, cpuRows, totalRows, type DataShape } from './generate.js';
import { asyncpgExecutemany, cliLoad, GATEWAY, psqlCopy, psqlScript, psqlScriptsAtOnce, ROUTED, routedCopy, sameShardsAsCpu, writeCsv, writeInserts, writeInsertScripts } from './ingest.js';
import { copyRows, insertRows, memoryProbe, timed, type IngestResult } from './load.js';
import { measureQueries } from './measure.js';
import { productCases, rewrittenCases, tsbsQueries, type Form, type QueryType } from './queries.js';
import { summarize, type BenchmarkReport } from './report.js';
import { createDistributedHypertable, createSingleNodeTable, createTags, DISTRIBUTED, SINGLE, type Topology } from './setup.js';

export interface BenchmarkOptions {
  /** `custom` when hosts, hours or data nodes differ from QUICK / FULL: named apart in results. */
  readonly scale: 'quick' | 'full' | 'custom';
  readonly hosts: number;
  readonly hours: number;
  readonly dataNodes: number;
  /** Shards of `cpu`; default 2 × data nodes. */
  readonly shards?: number;
  /** Chunks each shard's data spans (the chunk interval is the data's hours / chunks); default 1-day chunks. */
  readonly chunks?: number;
  /** Only these query types / forms (default all). */
  readonly types?: readonly QueryType[];
  readonly forms?: readonly Form[];
  /** Load by COPY into the two measured tables only: no routed, gateway or INSERT paths, no twin hypertables. */
  readonly queriesOnly?: boolean;
  /** Per-shard lastpoint views on the hypertables (`lastpoint: true`). @default false */
  readonly lastpoint?: boolean;
  /** Node views on the hypertables (`nodeViews: true`): one remote query per data node. @default false */
  readonly nodeViews?: boolean;
  /** `tags` as a hypershard reference table on every data node. @default false */
  readonly referenceTags?: boolean;
  /** The product (hypershard/pg) with `ingest`, so single-shard SELECTs are router reads. @default false */
  readonly routerReads?: boolean;
  /**
   * Settings of the service role on every data node after apply (`ALTER ROLE … IN DATABASE … SET`;
   * `default` resets): to measure a setting against what hypershard generates.
   */
  readonly dataRoleSettings?: readonly (readonly [string, string])[];
  /** Appended to the result name, for runs that differ only in such settings. */
  readonly label?: string;
  /** Timed runs per query and target (the median is reported); at least 5. */
  readonly runs: number;
  /** Time each statement right after an untimed run of itself on the same session (steady state). */
  readonly backToBack?: boolean;
  /** One-way latency added between the access node and each data node; 0 = plain loopback. */
  readonly latencyMs: number;
  /** Hours at the end of the data loaded by batched INSERT instead of COPY. */
  readonly insertHours: number;
  readonly insertBatchRows: number;
  readonly intervalSeconds: number;
  readonly seed: number;
  readonly postgres?: PostgresSource;
  /** Stop the cluster and exit on SIGINT/SIGTERM (the command line); tests leave signals alone. */
  readonly handleSignals?: boolean;
  /** Measure ingest only (every path, same rows), no queries. @default false */
  readonly ingestOnly?: boolean;
  /** Also load through `hypershard gateway` with psql (`\copy`, multi-row INSERT). @default true */
  readonly gateway?: boolean;
  /** Also asyncpg's executemany (one-row INSERTs: a data-node round trip per row through the access node, minutes with added latency). @default true */
  readonly executemany?: boolean;
  readonly onProgress?: (message: string) => void;
}

/** psql processes running the INSERT statements at once in the INSERT clients rows. */
const INSERT_CLIENTS = 4;

/** Small enough for CI and the integration test: 10 hosts × 6 h = 21,600 rows. */
export const QUICK: Omit<BenchmarkOptions, 'latencyMs'> = {
  scale: 'quick',
  hosts: 10,
  hours: 6,
  dataNodes: 2,
  runs: 5,
  insertHours: 1,
  insertBatchRows: 1000,
  intervalSeconds: 10,
  seed: 1,
};

/** TSBS-like scale: 100 hosts × 3 days = 2,592,000 rows. */
export const FULL: Omit<BenchmarkOptions, 'latencyMs'> = { ...QUICK, scale: 'full', hosts: 100, hours: 72, insertHours: 2 };

export function resultName(
  options: Pick<BenchmarkOptions, 'scale' | 'latencyMs' | 'hosts' | 'hours' | 'dataNodes' | 'shards' | 'chunks' | 'label'> & { readonly ingestOnly?: boolean; readonly routerReads?: boolean },
  postgres?: PostgresSource,
): string {
  const scale = options.scale === 'custom' ? `custom-${options.hosts}hosts-${options.hours}h-${options.dataNodes}dn` : options.scale;
  const kind = (options as { ingestOnly?: boolean }).ingestOnly === true ? `ingest-${options.dataNodes}dn` : 'tsbs';
  const layout = `${options.shards === undefined ? '' : `-${options.shards}shards`}${options.chunks === undefined ? '' : `-${options.chunks}chunks`}`;
  return `${kind}-${scale}${layout}${options.latencyMs > 0 ? `-latency${options.latencyMs}ms` : ''}${postgres?.kind === 'system' ? '-system' : ''}${options.routerReads === true ? '-router-reads' : ''}${options.label === undefined ? '' : `-${options.label}`}`;
}

export async function runBenchmark(options: BenchmarkOptions): Promise<BenchmarkReport> {
  if (options.runs < 5) throw new RangeError('runs must be at least 5');
  if (options.insertHours <= 0 || options.insertHours >= options.hours) throw new RangeError('insertHours must be within the data');
  const step = (m: string): void => options.onProgress?.(m);
  const machine = machineInfo();
  // Other work on a 2-core machine skews timings: keep the worst load seen, for the report.
  let loadAverageMax = machine.loadAverage1m;
  const loadProbe = setInterval(() => (loadAverageMax = Math.max(loadAverageMax, machineInfo().loadAverage1m)), 5_000);
  loadProbe.unref();
  const wall: Record<string, number> = {};
  const t0 = performance.now();
  const phase = async <T>(name: string, fn: () => Promise<T>): Promise<T> => {
    const start = performance.now();
    try {
      return await fn();
    } finally {
      wall[name] = (performance.now() - start) / 1000;
    }
  };

  try {
    return await withBenchCluster(
      { dataNodes: options.dataNodes, ...(options.postgres === undefined ? {} : { postgres: options.postgres }), handleSignals: options.handleSignals === true, onStep: step },
      async (cluster, workDir) => {
        wall['cluster start'] = (performance.now() - t0) / 1000;
        const proxies: LatencyProxy[] = [];
        const clients: pg.Client[] = [];
        let productPool: HypershardPool | undefined;
        let productIngest: IngestCluster | undefined;
        let productClient: PoolClient | undefined;
        try {
          if (options.latencyMs > 0) {
            step(`starting latency proxies (+${options.latencyMs} ms each way)`);
            for (const n of cluster.dataNodes) proxies.push(await startLatencyProxy({ targetHost: n.host, targetPort: n.port, latencyMs: options.latencyMs }));
          }
          step('generating and applying the distributed hypertable');
          const topology = await phase('apply', () =>
            createDistributedHypertable(cluster, workDir, {
              hours: options.hours,
              ...(options.shards === undefined ? {} : { shards: options.shards }),
              ...(options.chunks === undefined ? {} : { chunks: options.chunks }),
              twins: options.queriesOnly === true ? [] : [ROUTED, GATEWAY],
              lastpoint: options.lastpoint === true,
              nodeViews: options.nodeViews === true,
              referenceTags: options.referenceTags === true,
              ...(proxies.length === 0 ? {} : { fdwEndpoints: proxies, loaderThroughEndpoints: true }),
            }),
          );

          if (options.dataRoleSettings !== undefined && options.dataRoleSettings.length > 0) {
            step(`service role settings on the data nodes: ${options.dataRoleSettings.map(([k, v]) => `${k}=${v}`).join(', ')}`);
            await setDataRoleSettings(cluster, topology.layout.serviceRole, options.dataRoleSettings);
          }
          const access = await connect(cluster.accessNode.url);
          clients.push(access);
          // date_trunc buckets by the session time zone; UTC makes results independent of the machine.
          await access.query(`SET TimeZone = 'UTC'`);
          await access.query(`SET statement_timeout = '15min'`);
          await createSingleNodeTable(access);
          await createTags(access, options.hosts, options.seed, { referenceTags: options.referenceTags === true });

          // The data ends now (on the interval grid), so users' now() windows cover it.
          const stepMs = options.intervalSeconds * 1000;
          const endMs = Math.floor(Date.now() / stepMs) * stepMs;
          const shape: DataShape = { hosts: options.hosts, startMs: endMs - options.hours * 3_600_000, endMs, intervalSeconds: options.intervalSeconds, seed: options.seed };
          const ingest = await phase('load', () => load({ access, cluster, topology, workDir }, shape, options, step, proxies.length === 0 ? undefined : () => proxyTotals(proxies)));
          if (options.ingestOnly === true) {
            wall.total = (performance.now() - t0) / 1000;
            return await ingestReport(options, machine, loadAverageMax, access, cluster, topology, shape, ingest, proxies, wall);
          }
          await phase('analyze', () => analyze(access, cluster, shape));

          const written = tsbsQueries({ hosts: options.hosts, endMs, seed: options.seed }).filter((c) => options.types === undefined || options.types.includes(c.type));
          const timeZone = (await access.query<{ tz: string }>(`SELECT current_setting('TimeZone') AS tz`)).rows[0]?.tz;
          const metadata = metadataFromLayout(topology.layout);
          const cases = [...written, ...rewrittenCases(written, (sql) => rewriteSql(sql, metadata, { timeZone }).sql, DISTRIBUTED), ...productCases(written)].filter(
            (c) => options.forms === undefined || options.forms.includes(c.form),
          );
          // The product: hypershard/pg as an application uses it, a Pool (metadata read from the access
          // node's catalogs, and read again ahead of time on the pool's other connection) and a client
          // checked out of it.
          // With --router-reads, as an application that routes its writes has it: single-shard reads from the data node.
          productIngest = options.routerReads === true ? await IngestCluster.open(topology.spec, topology.specFile) : undefined;
          productPool = new HypershardPool({ connectionString: cluster.accessNode.url, max: 2, ...(productIngest === undefined ? {} : { hypershard: { ingest: productIngest } }) });
          const product = (productClient = await productPool.connect());
          await product.query(`SET TimeZone = 'UTC'`);
          await product.query(`SET statement_timeout = '15min'`);
          step(`measuring ${cases.length} queries (${options.runs} runs each, on both targets)`);
          const backToBack = options.backToBack === true;
          const network = proxies.length === 0 ? undefined : () => proxyTotals(proxies);
          const queries = await phase('queries', () =>
            measureQueries(access, cases, {
              runs: options.runs,
              backToBack,
              product,
              layout: topology.layout,
              ...(network === undefined ? {} : { network }),
              onProgress: step,
            }),
          );

          const { rows: info } = await access.query<{ version: string; jit: string }>(
            `SELECT current_setting('server_version') AS version, format('jit=%s, available=%s', current_setting('jit'), pg_jit_available()) AS jit`,
          );
          const server = topology.layout.servers[0];
          wall.total = (performance.now() - t0) / 1000;
          return {
            name: resultName(options, options.postgres),
            generatedAt: new Date().toISOString(),
            machine,
            loadAverageAtEnd: machineInfo().loadAverage1m,
            loadAverageMax,
            postgres: { source: cluster.postgres.source, version: info[0]?.version ?? '?', jit: info[0]?.jit ?? '?' },
            topology: {
              dataNodes: cluster.dataNodes.length,
              shards: topology.shards,
              latencyMs: options.latencyMs,
              lastpoint: options.lastpoint === true,
              nodeViews: options.nodeViews === true,
              referenceTags: options.referenceTags === true,
              routerReads: options.routerReads === true,
              fdw: Object.fromEntries((server?.options ?? []).filter(([k]) => k !== 'host' && k !== 'port' && k !== 'dbname')),
            },
            data: {
              hosts: options.hosts,
              hours: options.hours,
              intervalSeconds: options.intervalSeconds,
              rows: totalRows(shape),
              from: new Date(shape.startMs).toISOString(),
              to: new Date(shape.endMs).toISOString(),
              seed: options.seed,
            },
            ingest,
            runs: options.runs,
            backToBack,
            queries,
            summary: summarize(queries),
            mismatches: queries.filter((q) => !q.answersEqual).length,
            ...(proxies.length === 0 ? {} : { proxy: proxyTotals(proxies) }),
            wallSeconds: wall,
          };
        } finally {
          await closeQuietly(clients);
          productClient?.release(true);
          await productPool?.end().catch(() => undefined);
          await productIngest?.close().catch(() => undefined);
          await Promise.all(proxies.map((p) => p.close()));
        }
      },
    );
  } finally {
    clearInterval(loadProbe);
  }
}

/**
 * COPY the data up to the last `insertHours` into each target, then batched INSERT the rest:
 * the loaded data is the same everywhere, and both ingest paths are measured on it. Targets load
 * one after another so they do not compete for the machine's two cores.
 */
async function load(
  target: { access: pg.Client; cluster: DevCluster; topology: Topology; workDir: string },
  shape: DataShape,
  options: BenchmarkOptions,
  step: (m: string) => void,
  network: (() => ProxyStats) | undefined,
): Promise<BenchmarkReport['ingest']> {
  const { access, cluster, topology, workDir } = target;
  const cut = { fromMs: shape.startMs, toMs: shape.endMs - options.insertHours * 3_600_000 };
  const tail = { fromMs: cut.toMs, toMs: shape.endMs };
  const copyCount = totalRows(shape, cut);
  const insertCount = totalRows(shape, tail);

  // What the generator alone can produce: the ceiling for the COPY rates below, and its CPU, not counted as the loaders'.
  step(`generator alone: ${copyCount.toLocaleString('en-US')} rows`);
  const g0 = performance.now();
  const gcpu = process.cpuUsage();
  let csvBytes = 0;
  for (const chunk of cpuCsv(cpuRows(shape, cut))) csvBytes += chunk.length;
  const generatorRowsPerSecond = copyCount / ((performance.now() - g0) / 1000);
  const g = process.cpuUsage(gcpu);
  const generatorCpuPerRow = (g.user + g.system) / 1e6 / copyCount;
  if (csvBytes === 0) throw new Error('the generator produced no rows');

  const probe = memoryProbe();
  const results: IngestResult[] = [];
  const batchRows = options.insertBatchRows;
  const checked = async (result: IngestResult, twin: string, where?: string): Promise<IngestResult> => {
    const same = await sameShardsAsCpu(cluster, topology.layout, twin, where);
    if (!same) throw new Error(`${result.method} ${result.target}: ${twin} does not hold per shard the rows the access node put in cpu`);
    await access.query(`TRUNCATE ${twin}`);
    return { ...result, sameShardsAsAccessNode: same };
  };
  step(`COPY ${copyCount.toLocaleString('en-US')} rows into the single-node table`);
  results.push(await timed('COPY', 'single', copyCount, () => copyRows(access, SINGLE.cpu, cpuRows(shape, cut)), { generatorCpuPerRow }));
  step(`COPY ${copyCount.toLocaleString('en-US')} rows through the access node`);
  results.push(await timed('COPY', 'distributed', copyCount, () => copyRows(access, DISTRIBUTED.cpu, cpuRows(shape, cut)), { network, generatorCpuPerRow }));
  if (options.queriesOnly === true) {
    // The tail by COPY too: the same rows, without the other paths' tables.
    await copyRows(access, SINGLE.cpu, cpuRows(shape, tail));
    await copyRows(access, DISTRIBUTED.cpu, cpuRows(shape, tail));
    return { generatorRowsPerSecond, results, memoryPeak: probe.stop() };
  }
  step(`COPY ${copyCount.toLocaleString('en-US')} rows routed straight to the data nodes (hypershard's loader)`);
  results.push(await checked(await timed('COPY', 'routed', copyCount, () => routedCopy(topology, ROUTED, cpuRows(shape, cut)), { network, generatorCpuPerRow }), ROUTED));

  // The same rows from one CSV file, each read by a client process as users load files: psql's
  // \\copy into a twin of the single-node table, `hypershard load`, psql's \\copy through the gateway.
  // (The streamed rows above share this process's one thread with the generator.)
  const csv = path.join(workDir, 'copy.csv');
  await writeCsv(csv, cpuRows(shape, cut));
  const gateway = options.gateway === false ? undefined : await startGateway(topology.spec, topology.specFile, { host: '127.0.0.1', port: 0 });
  try {
    const fileTwin = `${SINGLE.cpu}_file`;
    await access.query(`CREATE TABLE ${fileTwin} (LIKE ${SINGLE.cpu} INCLUDING ALL)`);
    step(`COPY ${copyCount.toLocaleString('en-US')} rows from a CSV file with psql \\copy into a plain table`);
    results.push(await timed('COPY file', 'single', copyCount, async () => (await psqlCopy(cluster.accessNode.url, fileTwin, csv), copyCount), { childProcess: true }));
    await access.query(`DROP TABLE ${fileTwin}`);
    step(`COPY ${copyCount.toLocaleString('en-US')} rows from a CSV file with hypershard load`);
    results.push(await checked(await timed('COPY file', 'routed', copyCount, () => cliLoad(topology.specFile, `public.${ROUTED}`, csv), { network, childProcess: true }), ROUTED));
    const gatewayUrl = gateway === undefined ? undefined : `postgres://postgres@${gateway.address}/postgres`;
    if (gatewayUrl !== undefined) {
      step(`COPY ${copyCount.toLocaleString('en-US')} rows from a CSV file with psql \\copy through the gateway`);
      results.push(await checked(await timed('COPY file', 'gateway', copyCount, async () => (await psqlCopy(gatewayUrl, `public.${GATEWAY}`, csv), copyCount), { network }), GATEWAY));
    }
    await fs.rm(csv, { force: true });
    step(`INSERT ${insertCount.toLocaleString('en-US')} rows into the single-node table`);
    results.push(await timed('INSERT', 'single', insertCount, () => insertRows(access, SINGLE.cpu, cpuRows(shape, tail), batchRows), { batchRows, generatorCpuPerRow }));
    step(`INSERT ${insertCount.toLocaleString('en-US')} rows through the access node`);
    results.push(
      await timed('INSERT', 'distributed', insertCount, () => insertRows(access, DISTRIBUTED.cpu, cpuRows(shape, tail), batchRows), { batchRows, network, generatorCpuPerRow }),
    );
    if (gatewayUrl !== undefined) {
      const script = path.join(workDir, 'insert.sql');
      await writeInserts(script, `public.${GATEWAY}`, cpuRows(shape, tail), batchRows);
      step(`INSERT ${insertCount.toLocaleString('en-US')} rows with psql through the gateway (${batchRows} rows a statement)`);
      const tailFrom = new Date(tail.fromMs).toISOString();
      results.push(
        await checked(await timed('INSERT', 'gateway', insertCount, async () => (await psqlScript(gatewayUrl, script), insertCount), { batchRows, network }), GATEWAY, `time >= '${tailFrom}'`),
      );
      await fs.rm(script, { force: true });
      // Writers at once, as ingest runs in production: a routed write waits for its data nodes'
      // round trips (COPY, PREPARE, COMMIT PREPARED), and other clients' writes fill that time.
      const clients = INSERT_CLIENTS;
      const scripts = Array.from({ length: clients }, (_, i) => path.join(workDir, `insert-${i}.sql`));
      await writeInsertScripts(scripts, cpuRows(shape, tail), batchRows);
      const insertTwin = `${SINGLE.cpu}_clients`;
      await access.query(`CREATE TABLE ${insertTwin} (LIKE ${SINGLE.cpu} INCLUDING ALL)`);
      step(`INSERT ${insertCount.toLocaleString('en-US')} rows with ${clients} psql clients at once: a plain table, the gateway`);
      results.push({ ...(await timed('INSERT clients', 'single', insertCount, async () => (await psqlScriptsAtOnce(cluster.accessNode.url, insertTwin, scripts), insertCount), { batchRows, childProcess: true })), clients });
      await access.query(`DROP TABLE ${insertTwin}`);
      results.push({
        ...(await checked(await timed('INSERT clients', 'gateway', insertCount, async () => (await psqlScriptsAtOnce(gatewayUrl, `public.${GATEWAY}`, scripts), insertCount), { batchRows, network }), GATEWAY, `time >= '${tailFrom}'`)),
        clients,
      });
      await Promise.all(scripts.map((f) => fs.rm(f, { force: true })));
      // The same statements as the access node's INSERT rows above ($n, a named statement), through the gateway's extended-protocol routing.
      step(`INSERT ${insertCount.toLocaleString('en-US')} rows with node-postgres through the gateway (${batchRows} rows a statement, $n parameters)`);
      const client = await connect(gatewayUrl);
      try {
        results.push(
          await checked(await timed('INSERT', 'gateway-params', insertCount, () => insertRows(client, `public.${GATEWAY}`, cpuRows(shape, tail), batchRows), { batchRows, network }), GATEWAY, `time >= '${tailFrom}'`),
        );
      } finally {
        await closeQuietly([client]);
      }
      // Python services batch one-row INSERTs (asyncpg executemany): into a plain table, through the access node, through the gateway.
      const python = options.executemany === false ? { skip: '--no-executemany' } : await pythonDrivers();
      if ('skip' in python) step(`asyncpg executemany left out: ${python.skip}`);
      else {
        const tailCsv = path.join(workDir, 'tail.csv');
        await writeCsv(tailCsv, cpuRows(shape, tail));
        const plain = 'single.cpu_executemany';
        await access.query(`CREATE TABLE ${plain} (LIKE ${SINGLE.cpu})`);
        const accessUrl = cluster.accessNode.url;
        step(`asyncpg executemany of ${insertCount.toLocaleString('en-US')} rows: a plain table, the access node, the gateway`);
        results.push(await timed('executemany', 'single', insertCount, () => asyncpgExecutemany(python.python, accessUrl, plain, tailCsv, batchRows), { batchRows }));
        await access.query(`DROP TABLE ${plain}`);
        results.push(await checked(await timed('executemany', 'distributed', insertCount, () => asyncpgExecutemany(python.python, accessUrl, `public.${GATEWAY}`, tailCsv, batchRows), { batchRows, network }), GATEWAY, `time >= '${tailFrom}'`));
        results.push(await checked(await timed('executemany', 'gateway', insertCount, () => asyncpgExecutemany(python.python, gatewayUrl, `public.${GATEWAY}`, tailCsv, batchRows), { batchRows, network }), GATEWAY, `time >= '${tailFrom}'`));
        await fs.rm(tailCsv, { force: true });
      }
    }
  } finally {
    await gateway?.close();
  }
  return { generatorRowsPerSecond, results, memoryPeak: probe.stop() };
}

/** The report of an ingest-only run: no queries. */
async function ingestReport(
  options: BenchmarkOptions,
  machine: ReturnType<typeof machineInfo>,
  loadAverageMax: number,
  access: pg.Client,
  cluster: DevCluster,
  topology: Topology,
  shape: DataShape,
  ingest: BenchmarkReport['ingest'],
  proxies: readonly LatencyProxy[],
  wall: Record<string, number>,
): Promise<BenchmarkReport> {
  // The gateway's stop may have ended this connection: the version is then left unknown.
  const info = await access
    .query<{ version: string; jit: string }>(`SELECT current_setting('server_version') AS version, format('jit=%s, available=%s', current_setting('jit'), pg_jit_available()) AS jit`)
    .then((r) => r.rows)
    .catch(() => [] as { version: string; jit: string }[]);
  const server = topology.layout.servers[0];
  return {
    name: resultName(options, options.postgres),
    generatedAt: new Date().toISOString(),
    machine,
    loadAverageAtEnd: machineInfo().loadAverage1m,
    loadAverageMax,
    postgres: { source: cluster.postgres.source, version: info[0]?.version ?? '?', jit: info[0]?.jit ?? '?' },
    topology: {
      dataNodes: cluster.dataNodes.length,
      shards: topology.shards,
      latencyMs: options.latencyMs,
      lastpoint: options.lastpoint === true,
      nodeViews: options.nodeViews === true,
      referenceTags: options.referenceTags === true,
      fdw: Object.fromEntries((server?.options ?? []).filter(([k]) => k !== 'host' && k !== 'port' && k !== 'dbname')),
    },
    data: { hosts: options.hosts, hours: options.hours, intervalSeconds: options.intervalSeconds, rows: totalRows(shape), from: new Date(shape.startMs).toISOString(), to: new Date(shape.endMs).toISOString(), seed: options.seed },
    ingest,
    runs: 0,
    queries: [],
    summary: [],
    mismatches: 0,
    ...(proxies.length === 0 ? {} : { proxy: proxyTotals(proxies) }),
    wallSeconds: wall,
  };
}

/**
 * Statistics everywhere, and hint bits set now rather than by autovacuum in the middle of the
 * measurements: the single node's tables and each data node's shards get VACUUM ANALYZE, and the
 * access node's foreign partitions ANALYZE (autovacuum never analyzes foreign tables, and
 * pushdown decisions depend on their statistics). Then both targets must hold every row.
 */
async function analyze(access: pg.Client, cluster: DevCluster, shape: DataShape): Promise<void> {
  for (const sql of [`VACUUM ANALYZE ${SINGLE.cpu}`, `VACUUM ANALYZE ${SINGLE.tags}`, `VACUUM ANALYZE ${DISTRIBUTED.tags}`]) await access.query(sql);
  const dataClients = await Promise.all(cluster.dataNodes.map((n) => connect(n.url)));
  try {
    await Promise.all(dataClients.map((c) => c.query('VACUUM ANALYZE')));
  } finally {
    await closeQuietly(dataClients);
  }
  await access.query(`ANALYZE ${DISTRIBUTED.cpu}`);
  const expected = totalRows(shape);
  for (const t of [SINGLE, DISTRIBUTED]) {
    const { rows } = await access.query<{ n: string }>(`SELECT count(*) AS n FROM ${t.cpu}`);
    if (Number(rows[0]?.n) !== expected) throw new Error(`${t.cpu} holds ${rows[0]?.n ?? '?'} rows, expected ${expected}`);
  }
}

/**
 * The service role's settings in each data node's database, set (or reset, for `default`) after
 * apply: what a benchmark compares with the settings hypershard generates.
 */
async function setDataRoleSettings(cluster: DevCluster, role: string, settings: readonly (readonly [string, string])[]): Promise<void> {
  const clients = await Promise.all(cluster.dataNodes.map((n) => connect(n.url)));
  try {
    for (const client of clients) {
      const database = (await client.query<{ db: string }>('SELECT current_database() AS db')).rows[0]?.db ?? '';
      for (const [name, value] of settings) {
        const action = value === 'default' ? `RESET ${quoteIdent(name)}` : `SET ${quoteIdent(name)} = ${quoteLiteral(value)}`;
        await client.query(`ALTER ROLE ${quoteIdent(role)} IN DATABASE ${quoteIdent(database)} ${action}`);
      }
    }
  } finally {
    await closeQuietly(clients);
  }
}
