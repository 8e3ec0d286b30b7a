/**
 * Loading the generated rows and measuring ingest: streamed COPY and batched multi-row INSERT,
 * into the single-node table and through the access node into the distributed hypertable (where
 * postgres_fdw routes each row to its shard's data node).
 *
 * Nothing here holds more than one chunk or one batch of rows: COPY is a Readable of CSV chunks
 * piped into the COPY stream with backpressure, INSERT pulls one batch at a time from the
 * generator. A memory probe samples the process during loading to show it stays flat.
 */
import { readFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { proxyDelta, type ProxyStats } from '../lib/latencyProxy.js';
import { closeQuietly, connect } from '../lib/pg.js';
import { batches, CPU_COLUMNS, cpuCsv, type CpuRow } from './generate.js';

export interface IngestResult {
  /** COPY: streamed from this process's generator; COPY file: one CSV file, read by a client process (psql, `hypershard load`). */
  readonly method: 'COPY' | 'COPY file' | 'INSERT' | 'INSERT clients' | 'executemany';
  /** INSERT clients: how many psql processes ran their share of the statements at once. */
  readonly clients?: number;
  /**
   * single: a plain table, one node; distributed: through the access node (postgres_fdw);
   * routed: hypershard's loader straight to the data nodes; gateway: a real client through `hypershard gateway`.
   */
  readonly target: 'single' | 'distributed' | 'routed' | 'gateway' | 'gateway-params';
  readonly rows: number;
  readonly seconds: number;
  readonly rowsPerSecond: number;
  /** Rows per INSERT statement (INSERT only). */
  readonly batchRows?: number;
  /** Traffic to the data nodes, when latency proxies count it (distributed only). */
  readonly network?: { readonly bytesToDataNodes: number; readonly roundTrips: number };
  /**
   * CPU seconds per million rows of the loading process (the benchmark's, less what its row
   * generator used; for gateway rows, the gateway's, the client being another process; for a
   * client process of its own, psql or `hypershard load`, that process's).
   */
  readonly cpuSecondsPerMillionRows?: number;
  /** Per shard, the rows equal those the access node routed into `cpu` (count and checksum). */
  readonly sameShardsAsAccessNode?: boolean;
}

export async function copyRows(client: pg.Client, table: string, rows: Iterable<CpuRow>): Promise<number> {
  const copy = client.query(copyFrom(`COPY ${table} (${CPU_COLUMNS.join(', ')}) FROM STDIN WITH (FORMAT csv)`));
  // pipeline() waits for the server to acknowledge the COPY, and pulls chunks only as fast as
  // the connection takes them.
  await pipeline(Readable.from(cpuCsv(rows)), copy);
  return copy.rowCount;
}

/** Multi-row `INSERT … VALUES (…), (…)`, prepared once per batch size, as an application would. */
export async function insertRows(client: pg.Client, table: string, rows: Iterable<CpuRow>, batchRows: number): Promise<number> {
  const width = CPU_COLUMNS.length;
  const statement = (n: number): string =>
    `INSERT INTO ${table} (${CPU_COLUMNS.join(', ')}) VALUES ` +
    Array.from({ length: n }, (_, r) => `(${Array.from({ length: width }, (__, c) => `$${r * width + c + 1}${c === 0 ? '::timestamptz' : ''}`).join(', ')})`).join(', ');
  const fullText = statement(batchRows);
  const name = `bench_insert_${table.replace(/\W/g, '_')}_${batchRows}`;
  let inserted = 0;
  for (const batch of batches(rows, batchRows)) {
    const params: unknown[] = [];
    for (const row of batch) params.push(new Date(row.time).toISOString(), row.tagsId, ...row.values);
    const full = batch.length === batchRows;
    await client.query({ ...(full ? { name } : {}), text: full ? fullText : statement(batch.length), values: params });
    inserted += batch.length;
  }
  return inserted;
}

export async function timed(
  method: IngestResult['method'],
  target: IngestResult['target'],
  expectedRows: number,
  load: () => Promise<number>,
  options: { batchRows?: number; network?: (() => ProxyStats) | undefined; generatorCpuPerRow?: number; childProcess?: boolean } = {},
): Promise<IngestResult> {
  const before = options.network?.();
  const t0 = performance.now();
  const cpu = options.childProcess === true ? childCpuSeconds : ownCpuSeconds;
  const cpu0 = cpu();
  const rows = await load();
  const seconds = (performance.now() - t0) / 1000;
  const cpuSeconds = cpu() - cpu0;
  const after = options.network?.();
  if (rows !== expectedRows) throw new Error(`${method} into ${target} loaded ${rows} rows, expected ${expectedRows}`);
  const d = before === undefined || after === undefined ? undefined : proxyDelta(before, after);
  return {
    method,
    target,
    rows,
    seconds,
    rowsPerSecond: rows / seconds,
    ...(options.batchRows === undefined ? {} : { batchRows: options.batchRows }),
    ...(d === undefined ? {} : { network: { bytesToDataNodes: d.bytesUp, roundTrips: d.roundTrips } }),
    cpuSecondsPerMillionRows: Math.max(0, cpuSeconds - (options.generatorCpuPerRow ?? 0) * rows) / (rows / 1e6),
  };
}

/** CPU seconds of this process so far. */
function ownCpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

/**
 * CPU seconds of this process's ended and waited-for children (cutime + cstime of /proc/self/stat):
 * a client process's own, read around the one run that spawns it.
 */
function childCpuSeconds(): number {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  // Fields after the command's closing parenthesis: state is field 3, cutime and cstime fields 16 and 17.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[13]) + Number(fields[14])) / CLOCK_TICKS;
}

/** USER_HZ: 100 on Linux for every architecture Node runs on. */
const CLOCK_TICKS = 100;

export interface MemoryPeak {
  readonly rssMiB: number;
  readonly heapUsedMiB: number;
}

/** Samples RSS and heap while loading; stop() returns the peaks. */
export function memoryProbe(intervalMs = 200): { stop(): MemoryPeak } {
  let rss = 0;
  let heap = 0;
  const sample = (): void => {
    const m = process.memoryUsage();
    rss = Math.max(rss, m.rss);
    heap = Math.max(heap, m.heapUsed);
  };
  sample();
  const timer = setInterval(sample, intervalMs);
  timer.unref();
  return {
    stop: () => {
      clearInterval(timer);
      sample();
      return { rssMiB: Math.round(rss / 2 ** 20), heapUsedMiB: Math.round(heap / 2 ** 20) };
    },
  };
}

/**
 * The same rows into the single-node table and the distributed hypertable, then each made ready
 * to query: the data nodes vacuumed and analyzed, the single-node table vacuumed, the
 * hypertable analyzed on the access node (its foreign tables have no autovacuum), and `also`.
 */
export async function loadBoth(access: pg.Client, dataNodeUrls: readonly string[], rows: () => Iterable<CpuRow>, tables: { readonly single: string; readonly distributed: string; readonly also?: readonly string[] }): Promise<void> {
  await copyRows(access, tables.single, rows());
  await copyRows(access, tables.distributed, rows());
  const dataClients = await Promise.all(dataNodeUrls.map((url) => connect(url)));
  await Promise.all(dataClients.map((c) => c.query('VACUUM ANALYZE')));
  await closeQuietly(dataClients);
  for (const sql of [`VACUUM ANALYZE ${tables.single}`, ...(tables.also ?? []), `ANALYZE ${tables.distributed}`]) await access.query(sql);
}
