/**
 * The ingest paths beside COPY and INSERT through the access node, on the same generated rows:
 * hypershard's routed load (the library, straight to the data nodes) and a real non-Node client
 * (psql) through `hypershard gateway`, with `\copy` and with multi-row INSERT statements. Each
 * loads a twin of `cpu`, which must then hold per shard the very rows the access node put in
 * `cpu` (count and checksum on the data nodes), and is emptied again so the queries see one copy.
 */
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { pipeline } from 'node:stream/promises';
import type pg from 'pg';
import type { DevCluster } from '../../src/dev/cluster.js';
import { IngestCluster } from '../../src/ingest/cluster.js';
import { copyFrom } from '../../src/ingest/copyFrom.js';
import type { ClusterLayout } from '../../src/plan/layout.js';
import { closeQuietly, connect } from '../lib/pg.js';
import { batches, CPU_COLUMNS, cpuCsv, type CpuRow } from './generate.js';
import type { Topology } from './setup.js';

export const ROUTED = 'cpu_routed';
export const GATEWAY = 'cpu_gateway';

/** Routed COPY into `table` from this process, through the library's copyFrom(). */
export async function routedCopy(topology: Topology, table: string, rows: Iterable<CpuRow>): Promise<number> {
  const cluster = await IngestCluster.open(topology.spec, topology.specFile, { applicationName: 'hypershard-bench' });
  try {
    const stream = copyFrom(cluster, { table, format: 'csv', columns: CPU_COLUMNS, settings: { timeZone: 'UTC' } });
    await pipeline(Readable.from(cpuCsv(rows)), stream);
    return (await stream.result).rows;
  } finally {
    await cluster.close();
  }
}

export async function writeCsv(path: string, rows: Iterable<CpuRow>): Promise<void> {
  await pipeline(Readable.from(cpuCsv(rows)), createWriteStream(path));
}

/** Multi-row INSERT statements, `batchRows` rows each, as a script psql runs. */
export async function writeInserts(path: string, table: string, rows: Iterable<CpuRow>, batchRows: number): Promise<void> {
  function* statements(): Generator<string> {
    for (const batch of batches(rows, batchRows)) yield insertStatement(table, batch);
  }
  await pipeline(Readable.from(statements()), createWriteStream(path));
}

/** One multi-row INSERT of `rows` into `table` (a name, or psql's `:target`), a line of a script. */
function insertStatement(table: string, rows: readonly CpuRow[]): string {
  return `INSERT INTO ${table} (${CPU_COLUMNS.join(', ')}) VALUES ${rows.map((r) => `('${new Date(r.time).toISOString()}', ${r.tagsId}, ${r.values.join(', ')})`).join(', ')};\n`;
}

/**
 * The same statements as writeInserts, dealt round-robin into one script per client, each naming
 * its table as psql's `:target` (set per run), so one set of scripts loads any table.
 */
export async function writeInsertScripts(paths: readonly string[], rows: Iterable<CpuRow>, batchRows: number): Promise<void> {
  const streams = paths.map((p) => createWriteStream(p));
  try {
    let i = 0;
    for (const batch of batches(rows, batchRows)) {
      const stream = streams[i % streams.length] as ReturnType<typeof createWriteStream>;
      i += 1;
      if (!stream.write(insertStatement(':target', batch))) await once(stream, 'drain');
    }
  } finally {
    await Promise.all(streams.map((s) => new Promise<void>((resolve, reject) => s.end((error?: Error | null) => (error ? reject(error) : resolve())))));
  }
}

/** One psql per script, all at once, each running its statements one at a time in autocommit into `table`. */
export async function psqlScriptsAtOnce(url: string, table: string, files: readonly string[]): Promise<void> {
  await Promise.all(files.map((file) => psql(url, ['-v', `target=${table}`, '-f', file])));
}

function psql(url: string, args: readonly string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('psql', [url, '-X', '-q', '-v', 'ON_ERROR_STOP=1', ...args], { timeout: 60 * 60_000, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) =>
      error === null ? resolve(stdout) : reject(new Error(`psql ${args.join(' ')}: ${stderr || error.message}`)),
    );
  });
}

/** psql's `\copy` of a CSV file through `url` (the gateway, or a node). */
export async function psqlCopy(url: string, table: string, file: string): Promise<void> {
  await psql(url, ['-c', `\\copy ${table} (${CPU_COLUMNS.join(', ')}) FROM '${file}' WITH (FORMAT csv)`]);
}

/** The built CLI (dist: `npm run build`), as users run it. */
const CLI = fileURLToPath(new URL('../../bin/hypershard.js', import.meta.url));

/**
 * `hypershard load` of a CSV file into `table`, a process of its own as users run it.
 * @returns rows loaded, from its --json
 */
export async function cliLoad(specFile: string, table: string, file: string): Promise<number> {
  const args = [CLI, 'load', '-c', specFile, '--table', table, '--format', 'csv', '--columns', CPU_COLUMNS.join(','), '--time-zone', 'UTC', '--json', file];
  const out = await new Promise<string>((resolve, reject) => {
    execFile(process.execPath, args, { timeout: 60 * 60_000, maxBuffer: 1024 * 1024 }, (error, stdout, stderr) =>
      error === null ? resolve(stdout) : reject(new Error(`hypershard load into ${table}: ${stderr || error.message}`)),
    );
  });
  return (JSON.parse(out) as { rows: number }).rows;
}

/** psql running a script of INSERT statements through `url`, one statement at a time in autocommit. */
export async function psqlScript(url: string, file: string): Promise<void> {
  await psql(url, ['-f', file]);
}

/**
 * asyncpg's `executemany` of a one-row INSERT into `table` (Parse once, then Bind/Execute per row in
 * binary, one Sync per call: what Python services send), `batchRows` rows a call, the rows read from
 * a CSV file as cpuCsv writes it (doubles in their shortest form, so the same values).
 * @returns rows inserted
 */
export async function asyncpgExecutemany(python: string, url: string, table: string, file: string, batchRows: number): Promise<number> {
  const script = `
import sys, csv, asyncio, datetime, asyncpg
url, table, path, batch = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
rows = []
with open(path) as f:
    for r in csv.reader(f):
        rows.append((datetime.datetime.fromisoformat(r[0].replace('Z', '+00:00')), int(r[1]), *map(float, r[2:])))
async def main():
    c = await asyncpg.connect(url)
    sql = f"INSERT INTO {table} (${CPU_COLUMNS.join(', ')}) VALUES ({', '.join(f'\${i + 1}' for i in range(${CPU_COLUMNS.length}))})"
    for i in range(0, len(rows), batch):
        await c.executemany(sql, rows[i:i + batch])
    await c.close()
    print(len(rows))
asyncio.run(main())
`;
  const out = await new Promise<string>((resolve, reject) => {
    execFile(python, ['-c', script, url, table, file, String(batchRows)], { timeout: 60 * 60_000, maxBuffer: 1024 * 1024 }, (error, stdout, stderr) =>
      error === null ? resolve(stdout) : reject(new Error(`asyncpg executemany into ${table}: ${stderr || error.message}`)),
    );
  });
  return Number(out.trim());
}

/**
 * Whether every shard of `twin` holds the rows the same shard of `cpu` holds (rows of `cpu` in
 * `where` only), compared on each data node by count and an order-independent checksum.
 */
export async function sameShardsAsCpu(cluster: DevCluster, layout: ClusterLayout, twin: string, where = 'true'): Promise<boolean> {
  const h = layout.hypertables.find((x) => x.table.name === 'cpu');
  const t = layout.hypertables.find((x) => x.table.name === twin);
  if (h === undefined || t === undefined) throw new Error(`no hypertable cpu or ${twin} in the layout`);
  const clients = new Map<string, pg.Client>();
  try {
    for (const n of cluster.dataNodes) clients.set(n.name, await connect(n.url));
    const fingerprint = async (node: string, table: string, filter: string): Promise<string> => {
      const { rows } = await (clients.get(node) as pg.Client).query<{ n: string; sum: string }>(
        `SELECT count(*)::text AS n, coalesce(sum(hashtextextended(r::text, 0)::numeric), 0)::text AS sum FROM ${table} r WHERE ${filter}`,
      );
      return `${rows[0]?.n}:${rows[0]?.sum}`;
    };
    for (const [i, shard] of h.shards.entries()) {
      const twinShard = t.shards[i];
      if (twinShard === undefined || twinShard.dataNode !== shard.dataNode) return false;
      const a = await fingerprint(shard.dataNode, `"_hypershard"."${shard.table.name}"`, where);
      const b = await fingerprint(shard.dataNode, `"_hypershard"."${twinShard.table.name}"`, 'true');
      if (a !== b) return false;
    }
    return true;
  } finally {
    await closeQuietly([...clients.values()]);
  }
}
