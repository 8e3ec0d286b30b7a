/**
 * `npm run bench:gateway`: what the gateway gives a client that is not Node, measured with one
 * (pgbench), side by side in one run on one cluster:
 *
 *   1. TSBS as users write it (the `users-bucket` form: date_trunc, now() windows, hosts by
 *      sub-select) through the gateway, against the same text on a plain single-node table and
 *      against the rewritten form hypershard/pg would send, straight to the access node. Target:
 *      gateway geomean within 1.1× of the rewritten form's.
 *   2. Pass-through cost on a statement the gateway does not rewrite (a primary-key lookup): p50
 *      added latency with one client, and throughput lost at 8 clients. Targets ≤ 0.1 ms, ≤ 10%.
 *   3. The cost of a cached rewrite per statement, in process (target ≤ 50 µs).
 *
 *   npm run bench:gateway -- --quick     10 hosts × 6 h, a couple of minutes
 *   npm run bench:gateway                100 hosts × 3 days (2.59 M rows)
 *
 * Writes bench/results/gateway-<quick|full>.json and .md.
 */
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { startGateway } from '../src/gateway/gateway.js';
import { RewriteContext } from '../src/pg/context.js';
import { metadataFromLayout } from '../src/rewrite/metadata.js';
import { rewriteSql } from '../src/rewrite/rewrite.js';
import { sessionSettings } from '../src/rewrite/session.js';
import { SYSTEM_BIN_DIR, withBenchCluster } from './lib/cluster.js';
import { describeMachine, machineInfo, type MachineInfo } from './lib/machine.js';
import { closeQuietly, connect } from './lib/pg.js';
import { latencyMs, pgbench } from './lib/pgbench.js';
import { writeResults } from './lib/results.js';
import { geometricMean, median } from './lib/stats.js';
import { cpuRows, totalRows, type DataShape } from './tsbs/generate.js';
import { loadBoth } from './tsbs/load.js';
import { tsbsQueries, type QueryType } from './tsbs/queries.js';
import { createDistributedHypertable, createSingleNodeTable, createTags, DISTRIBUTED, SINGLE } from './tsbs/setup.js';

interface Options {
  readonly scale: 'quick' | 'full';
  readonly hosts: number;
  readonly hours: number;
  /** pgbench transactions per query and target in each round. */
  readonly transactions: number;
  readonly rounds: number;
  readonly seconds: number;
  readonly system: boolean;
}

interface QueryTiming {
  readonly type: QueryType;
  readonly singleMs: number;
  readonly rewrittenMs: number;
  readonly gatewayMs: number;
  /** rewritten / single: what hypershard/pg gives. */
  readonly rewrittenRatio: number;
  /** gateway / single: what every other client gets through the gateway. */
  readonly gatewayRatio: number;
}

interface Report {
  readonly name: string;
  readonly generatedAt: string;
  readonly machine: MachineInfo;
  readonly postgres: string;
  readonly data: { readonly hosts: number; readonly hours: number; readonly rows: number };
  readonly queries: readonly QueryTiming[];
  readonly geomean: { readonly rewritten: number; readonly gateway: number; readonly gatewayOverRewritten: number };
  readonly passThrough: {
    readonly p50DirectMs: number;
    readonly p50GatewayMs: number;
    readonly p50AddedMs: number;
    readonly tpsDirect8: number;
    readonly tpsGateway8: number;
    readonly throughputLoss8: number;
  };
  readonly cachedRewriteMicros: number;
  readonly gatewayMetrics: unknown;
}

function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({ args: argv, strict: true, options: { quick: { type: 'boolean', default: false }, system: { type: 'boolean', default: false }, rounds: { type: 'string' } } });
  const quick = values.quick;
  return {
    scale: quick ? 'quick' : 'full',
    hosts: quick ? 10 : 100,
    hours: quick ? 6 : 72,
    transactions: quick ? 20 : 10,
    rounds: Number(values.rounds ?? 3),
    seconds: quick ? 5 : 10,
    system: values.system,
  };
}

const step = (m: string): void => void process.stderr.write(`[${new Date().toISOString().slice(11, 19)}] ${m}\n`);

function tps(output: string): number {
  const m = /tps = ([\d.]+)/.exec(output);
  if (m === null) throw new Error(`no tps in pgbench output: ${output}`);
  return Number(m[1]);
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  const machine = machineInfo();
  const report = await withBenchCluster(
    { dataNodes: 2, handleSignals: true, onStep: step, ...(options.system ? { postgres: { kind: 'system' as const, binDir: SYSTEM_BIN_DIR } } : {}) },
    async (cluster, workDir): Promise<Report> => {
      step('applying the distributed hypertable');
      const topology = await createDistributedHypertable(cluster, workDir, { hours: options.hours });
      const access = await connect(cluster.accessNode.url);
      const scratch = await mkdtemp(join(tmpdir(), 'hs-bench-gateway-'));
      try {
        await createSingleNodeTable(access);
        await createTags(access, options.hosts, 1);
        const stepMs = 10_000;
        const endMs = Math.floor(Date.now() / stepMs) * stepMs;
        const shape: DataShape = { hosts: options.hosts, startMs: endMs - options.hours * 3_600_000, endMs, intervalSeconds: 10, seed: 1 };
        step(`loading ${totalRows(shape).toLocaleString('en-US')} rows into both tables`);
        await loadBoth(access, cluster.dataNodes.map((n) => n.url), () => cpuRows(shape), { single: SINGLE.cpu, distributed: DISTRIBUTED.cpu, also: [`VACUUM ANALYZE ${SINGLE.tags}`, `VACUUM ANALYZE ${DISTRIBUTED.tags}`] });

        const gateway = await startGateway(topology.spec, topology.specFile, { port: 0 });
        try {
          const [gwHost, gwPort] = [gateway.address.slice(0, gateway.address.lastIndexOf(':')), gateway.address.slice(gateway.address.lastIndexOf(':') + 1)];
          const a = new URL(cluster.accessNode.url);
          const target = { direct: ['-h', a.hostname, '-p', a.port, '-U', decodeURIComponent(a.username), a.pathname.slice(1)], gateway: ['-h', gwHost, '-p', gwPort, '-U', decodeURIComponent(a.username), a.pathname.slice(1)] };

          // 1. TSBS users' forms.
          const settings = await sessionSettings(access);
          const metadata = metadataFromLayout(topology.layout);
          const written = tsbsQueries({ hosts: options.hosts, endMs, seed: 1 }).filter((c) => c.form === 'users-bucket');
          const samples = new Map<QueryType, { single: number[]; rewritten: number[]; gateway: number[] }>();
          for (let round = 1; round <= options.rounds; round += 1) {
            for (const [i, c] of written.entries()) {
              step(`round ${round}/${options.rounds}: ${c.type}`);
              const files = {
                single: join(scratch, `${c.type}-single.sql`),
                rewritten: join(scratch, `${c.type}-rewritten.sql`),
                gateway: join(scratch, `${c.type}-gateway.sql`),
              };
              await writeFile(files.single, `${c.sql(SINGLE)};\n`);
              await writeFile(files.rewritten, `${rewriteSql(c.sql(DISTRIBUTED), metadata, settings).sql};\n`);
              await writeFile(files.gateway, `${c.sql(DISTRIBUTED)};\n`);
              const s = samples.get(c.type) ?? { single: [], rewritten: [], gateway: [] };
              samples.set(c.type, s);
              // The order of the three alternates, so drift on the machine spreads over all.
              const order = (['single', 'rewritten', 'gateway'] as const).map((_, k, all) => all[(k + round + i) % 3]!);
              for (const which of order) {
                const out = await pgbench(['-M', 'extended', '-c', '1', '-t', String(options.transactions), '-f', files[which], ...(which === 'gateway' ? target.gateway : target.direct)]);
                s[which].push(latencyMs(out));
              }
            }
          }
          const queries: QueryTiming[] = written.map((c) => {
            const s = samples.get(c.type)!;
            const [single, rewritten, gw] = [median(s.single), median(s.rewritten), median(s.gateway)];
            return { type: c.type, singleMs: single, rewrittenMs: rewritten, gatewayMs: gw, rewrittenRatio: rewritten / single, gatewayRatio: gw / single };
          });

          // 2. Pass-through: a primary-key lookup the gateway does not rewrite.
          step('pass-through: p50 latency with 1 client, throughput with 8');
          const pk = join(scratch, 'pk.sql');
          await writeFile(pk, `\\set id random(1, ${options.hosts})\nSELECT hostname FROM ${DISTRIBUTED.tags} WHERE id = :id;\n`);
          const p50 = async (where: 'direct' | 'gateway'): Promise<number> => {
            const prefix = join(scratch, `pk-${where}`);
            await pgbench(['-M', 'prepared', '-c', '1', '-T', String(options.seconds), '-l', `--log-prefix=${prefix}`, '-f', pk, ...target[where]]);
            const logs = (await readdir(scratch)).filter((f) => f.startsWith(`pk-${where}`));
            const latencies: number[] = [];
            for (const f of logs) {
              for (const line of (await readFile(join(scratch, f), 'utf8')).split('\n')) {
                const us = Number(line.split(' ')[2]);
                if (Number.isFinite(us) && line !== '') latencies.push(us / 1000);
              }
              await rm(join(scratch, f));
            }
            return median(latencies);
          };
          const direct1: number[] = [];
          const gateway1: number[] = [];
          const direct8: number[] = [];
          const gateway8: number[] = [];
          for (let round = 0; round < options.rounds; round += 1) {
            const first = round % 2 === 0 ? 'direct' : 'gateway';
            for (const where of [first, first === 'direct' ? 'gateway' : 'direct'] as const) {
              (where === 'direct' ? direct1 : gateway1).push(await p50(where));
              const out = await pgbench(['-M', 'prepared', '-c', '8', '-j', '2', '-T', String(options.seconds), '-f', pk, ...target[where]]);
              (where === 'direct' ? direct8 : gateway8).push(tps(out));
            }
          }
          const passThrough = {
            p50DirectMs: median(direct1),
            p50GatewayMs: median(gateway1),
            p50AddedMs: median(gateway1) - median(direct1),
            tpsDirect8: median(direct8),
            tpsGateway8: median(gateway8),
            throughputLoss8: 1 - median(gateway8) / median(direct8),
          };

          // 3. A cached rewrite, in process: the lookup a repeated statement costs.
          step('cached rewrite cost');
          const context = new RewriteContext({ metadata });
          await context.prepare(access, settings.role);
          const text = written.find((c) => c.type === 'double-groupby-all')!.sql(DISTRIBUTED);
          context.rewrite(text, settings);
          const n = 100_000;
          const t0 = process.hrtime.bigint();
          for (let k = 0; k < n; k += 1) context.rewrite(text, settings);
          const cachedRewriteMicros = Number(process.hrtime.bigint() - t0) / 1000 / n;

          const { rows } = await access.query<{ v: string }>(`SELECT current_setting('server_version') AS v`);
          const rewrittenGeo = geometricMean(queries.map((q) => q.rewrittenRatio));
          const gatewayGeo = geometricMean(queries.map((q) => q.gatewayRatio));
          return {
            name: `gateway-${options.scale}${options.system ? '-system' : ''}`,
            generatedAt: new Date().toISOString(),
            machine,
            postgres: rows[0]?.v ?? '?',
            data: { hosts: options.hosts, hours: options.hours, rows: totalRows(shape) },
            queries,
            geomean: { rewritten: rewrittenGeo, gateway: gatewayGeo, gatewayOverRewritten: gatewayGeo / rewrittenGeo },
            passThrough,
            cachedRewriteMicros,
            gatewayMetrics: gateway.metrics(),
          };
        } finally {
          await gateway.close();
        }
      } finally {
        await closeQuietly([access]);
        await rm(scratch, { recursive: true, force: true });
      }
    },
  );
  const markdown = toMarkdown(report);
  const base = await writeResults(report.name, report, markdown);
  process.stdout.write(`${markdown}\nwrote ${base}.json and .md\n`);
}

function toMarkdown(r: Report): string {
  const f = (x: number, d = 2): string => x.toFixed(d);
  return [
    `# Gateway benchmark (${r.name})`,
    '',
    `${describeMachine(r.machine)}; PostgreSQL ${r.postgres}; ${r.data.rows.toLocaleString('en-US')} rows (${r.data.hosts} hosts × ${r.data.hours} h), 1 access + 2 data nodes, 4 shards. Client: pgbench (extended protocol), one connection; median of rounds.`,
    '',
    '## TSBS as users write it',
    '',
    'single = the users\' SQL on a plain table; rewritten = the SQL hypershard/pg sends, straight to the access node; gateway = the users\' SQL sent to the gateway. Ratios to single.',
    '',
    '| query | single ms | rewritten ms | gateway ms | rewritten | gateway |',
    '|---|---:|---:|---:|---:|---:|',
    ...r.queries.map((q) => `| ${q.type} | ${f(q.singleMs)} | ${f(q.rewrittenMs)} | ${f(q.gatewayMs)} | ${f(q.rewrittenRatio)}× | ${f(q.gatewayRatio)}× |`),
    `| **geomean** | | | | **${f(r.geomean.rewritten)}×** | **${f(r.geomean.gateway)}×** |`,
    '',
    `Gateway over rewritten (geomean): **${f(r.geomean.gatewayOverRewritten, 3)}×** (target ≤ 1.1).`,
    '',
    '## Pass-through (a primary-key lookup, not rewritten)',
    '',
    `| | direct | gateway | |`,
    `|---|---:|---:|---:|`,
    `| p50 latency, 1 client (ms) | ${f(r.passThrough.p50DirectMs, 3)} | ${f(r.passThrough.p50GatewayMs, 3)} | +${f(r.passThrough.p50AddedMs, 3)} ms (target ≤ 0.1) |`,
    `| throughput, 8 clients (tps) | ${f(r.passThrough.tpsDirect8, 0)} | ${f(r.passThrough.tpsGateway8, 0)} | −${f(r.passThrough.throughputLoss8 * 100, 1)}% (target ≤ 10%) |`,
    '',
    `Cached rewrite, per statement: **${f(r.cachedRewriteMicros, 1)} µs** (target ≤ 50).`,
    '',
  ].join('\n');
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exitCode = 1;
});
