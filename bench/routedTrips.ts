/**
 * `npm run bench:routed-trips`: how many round trips a routed write through the gateway waits for,
 * per link. A real cluster (an access node, two data nodes) whose every node the gateway reaches
 * through a counting proxy (bench/lib/latencyProxy.ts: a round trip is a turn of a connection's
 * traffic towards the server after the server spoke); a client writes through the gateway:
 *
 *   INSERT   a multi-row INSERT … VALUES in its own block (autocommit), rows on every data node
 *   COPY     a COPY … FROM STDIN in its own block, the same rows
 *
 * and the proxies' counts, per statement, are printed for the access node and each data node.
 * Every link costs its round trips times the network's round-trip time: these are what latency
 * between the gateway and the nodes multiplies.
 *
 *   npm run bench:routed-trips [-- --statements N] [--latency-ms N]
 */
import { parseArgs } from 'node:util';
import pg from 'pg';
import { from as copyFromStream } from 'pg-copy-streams';
import { startGateway } from '../src/gateway/gateway.js';
import { withBenchCluster } from './lib/cluster.js';
import { proxyDelta, startLatencyProxy, type LatencyProxy, type ProxyStats } from './lib/latencyProxy.js';
import { METRICS } from './tsbs/generate.js';
import { createDistributedHypertable } from './tsbs/setup.js';

const { values } = parseArgs({ options: { statements: { type: 'string' }, 'latency-ms': { type: 'string' }, rows: { type: 'string' } } });
const statements = Math.max(1, Number(values.statements ?? 10));
const latencyMs = Math.max(0, Number(values['latency-ms'] ?? 0));
const rowsPerWrite = Math.max(2, Number(values.rows ?? 100));

/** `rows` rows of `cpu`, one per host, hosts spread over every shard. */
function rowsOf(round: number): string[][] {
  const at = new Date(Date.now() - 3_600_000 + round * 1000).toISOString();
  return Array.from({ length: rowsPerWrite }, (_, i) => [at, String(i + 1), ...METRICS.map((_metric, m) => String((i * 7 + m + round) % 100))]);
}

interface Trips {
  readonly link: string;
  readonly insert: number;
  readonly copy: number;
}

async function main(): Promise<void> {
  const trips = await withBenchCluster({ dataNodes: 2, handleSignals: true, onStep: (m) => process.stderr.write(`${m}\n`) }, async (cluster, workDir) => {
    const proxies: LatencyProxy[] = [];
    try {
      const accessProxy = await startLatencyProxy({ targetHost: cluster.accessNode.host, targetPort: cluster.accessNode.port, latencyMs });
      for (const n of cluster.dataNodes) proxies.push(await startLatencyProxy({ targetHost: n.host, targetPort: n.port, latencyMs }));
      const a = cluster.accessNode;
      // The spec's access node is the proxy: the gateway's sessions and its own pool go through it.
      const throughProxy = { ...cluster, accessNode: { ...a, host: accessProxy.host, port: accessProxy.port, url: `postgres://${a.user}@${accessProxy.host}:${accessProxy.port}/${a.database}` } };
      const topology = await createDistributedHypertable(throughProxy, workDir, { hours: 2, fdwEndpoints: proxies, loaderThroughEndpoints: true });
      const gateway = await startGateway(topology.spec, topology.specFile, { host: '127.0.0.1', port: 0 });
      const [host, port] = [gateway.address.slice(0, gateway.address.lastIndexOf(':')), Number(gateway.address.slice(gateway.address.lastIndexOf(':') + 1))];
      const client = new pg.Client({ host, port, user: a.user, database: a.database });
      await client.connect();
      try {
        const insert = async (round: number): Promise<void> => {
          const rows = rowsOf(round).map((r) => `('${r[0]}', ${r.slice(1).join(', ')})`);
          await client.query(`INSERT INTO public.cpu (time, tags_id, ${METRICS.join(', ')}) VALUES ${rows.join(', ')}`);
        };
        const copy = async (round: number): Promise<void> => {
          const stream = client.query(copyFromStream(`COPY public.cpu (time, tags_id, ${METRICS.join(', ')}) FROM STDIN (FORMAT csv)`));
          const done = new Promise<void>((resolve, reject) => {
            stream.on('finish', resolve);
            stream.on('error', reject);
          });
          stream.end(rowsOf(round).map((r) => r.join(',')).join('\n') + '\n');
          await done;
        };
        const links = [{ link: 'access node', proxy: accessProxy }, ...cluster.dataNodes.map((n, i) => ({ link: `data node ${n.name}`, proxy: proxies[i] as LatencyProxy }))];
        const measure = async (write: (round: number) => Promise<void>, from: number): Promise<number[]> => {
          // Warm: pooled connections, cached routes and facts, as in a steady load.
          for (let i = 0; i < 3; i += 1) await write(from + i);
          const before: ProxyStats[] = links.map((l) => ({ ...l.proxy.stats }));
          for (let i = 0; i < statements; i += 1) await write(from + 10 + i);
          return links.map((l, i) => proxyDelta(before[i] as ProxyStats, l.proxy.stats).roundTrips / statements);
        };
        const routedBefore = gateway.metrics();
        const inserts = await measure(insert, 0);
        const copies = await measure(copy, 1000);
        const routed = gateway.metrics();
        if (routed.routedInserts - routedBefore.routedInserts < statements + 3 || routed.routedCopies - routedBefore.routedCopies < statements + 3) {
          throw new Error(`the writes were not routed (${JSON.stringify(routed)})`);
        }
        return links.map((l, i): Trips => ({ link: l.link, insert: inserts[i] as number, copy: copies[i] as number }));
      } finally {
        await client.end().catch(() => undefined);
        await gateway.close();
        await accessProxy.close();
      }
    } finally {
      for (const p of proxies) await p.close();
    }
  });
  process.stdout.write(`Round trips per routed write through the gateway (own block, ${rowsPerWrite} rows on every data node, mean of ${statements}):\n\n`);
  process.stdout.write(`| link | INSERT | COPY |\n|---|---|---|\n`);
  for (const t of trips) process.stdout.write(`| ${t.link} | ${t.insert.toFixed(1)} | ${t.copy.toFixed(1)} |\n`);
}

await main();
