/**
 * `npm run bench`: the TSBS devops benchmark (issue 4) from the command line.
 *
 *   npm run bench -- --quick                 10 hosts × 6 h, a minute or so (CI runs it through a test)
 *   npm run bench                            100 hosts × 3 days (2.59 M rows), many minutes
 *   npm run bench -- --latency-ms 2          the same through proxies adding 2 ms each way
 *
 * Prints the tables and writes bench/results/tsbs-<quick|full>[-latency<N>ms].json and .md.
 */
import { parseArgs } from 'node:util';
import { SYSTEM_BIN_DIR } from '../lib/cluster.js';
import { writeResults } from '../lib/results.js';
import { FULL, QUICK, resultName, runBenchmark, type BenchmarkOptions } from './benchmark.js';
import { FORMS, QUERY_TYPES } from './queries.js';
import { toMarkdown, toText } from './report.js';

const optional = <K extends string, V>(key: K, value: V | undefined): Partial<Record<K, V>> => (value === undefined ? {} : ({ [key]: value } as Record<K, V>));

const USAGE = `usage: npm run bench -- [--quick] [--latency-ms N] [--data-nodes N] [--hosts N] [--hours N] [--runs N] [--system]
  --quick         10 hosts × 6 h instead of 100 hosts × 72 h
  --latency-ms N  one-way latency added between the access node and each data node (default 0: plain loopback)
  --data-nodes N  data nodes (default 2; shards = 2 × data nodes)
  --ingest        ingest only (every path on the same rows, no queries): npm run bench:ingest
  --no-gateway    leave out the rows through hypershard gateway
  --no-executemany  leave out asyncpg's executemany (one data-node round trip per row through the access node)
  --hosts N       hosts (default 10 quick, 100 full; at least 8)
  --hours N       hours of data, ending now (default 6 quick, 72 full; at least 2)
  --runs N        timed runs per query and target, median reported (default 5, at least 5)
  --back-to-back  time each statement right after an untimed run of itself on the same session
                  (steady state; by default a session sits idle while the other forms run)
  --system        Debian's PostgreSQL in ${SYSTEM_BIN_DIR} instead of the embedded one
  --shards N      shards of the hypertable (default 2 × data nodes)
  --chunks N      about N chunks span the data in each shard (whole-minute intervals; default: 1-day chunks)
  --types a,b     only these query types;  --forms a,b  only these forms (e.g. rewritten)
  --queries-only  load by COPY into the measured tables only (no routed, gateway or INSERT paths)
  --data-setting name=value   the FDW service role's setting on every data node after apply
                  (repeatable; value 'default' resets it): compares a setting with what hypershard generates
  --no-lastpoint  without per-shard lastpoint views (lastpoint: true in the spec is how hypershard serves TSBS lastpoint)
  --no-node-views without node views (nodeViews: true in the spec: the rewriter asks each data node once, not each shard)
  --reference-tags  tags as a hypershard reference table (copied to every data node) instead of a plain table on the access node
  --router-reads  the product (hypershard/pg) with ingest: single-shard SELECTs answered by their data node
  --label L       appended to the result file name
`;

function listOption<T extends string>(name: string, raw: string | undefined, allowed: readonly T[]): T[] | undefined {
  if (raw === undefined) return undefined;
  const items = raw.split(',').map((s) => s.trim()).filter((s) => s !== '');
  const wrong = items.filter((s) => !(allowed as readonly string[]).includes(s));
  if (wrong.length > 0 || items.length === 0) throw new Error(`--${name}: unknown ${wrong.join(', ') || '(empty)'}; one of ${allowed.join(', ')}`);
  return items as T[];
}

function intOption(name: string, raw: string | undefined, fallback: number, min: number): number {
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min) throw new Error(`--${name} must be an integer >= ${min}, got '${raw}'`);
  return n;
}

function parseOptions(argv: string[]): BenchmarkOptions | undefined {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      quick: { type: 'boolean', default: false },
      'latency-ms': { type: 'string' },
      'data-nodes': { type: 'string' },
      hosts: { type: 'string' },
      hours: { type: 'string' },
      runs: { type: 'string' },
      'back-to-back': { type: 'boolean', default: false },
      system: { type: 'boolean', default: false },
      ingest: { type: 'boolean', default: false },
      'no-gateway': { type: 'boolean', default: false },
      'no-executemany': { type: 'boolean', default: false },
      shards: { type: 'string' },
      chunks: { type: 'string' },
      types: { type: 'string' },
      forms: { type: 'string' },
      'queries-only': { type: 'boolean', default: false },
      'data-setting': { type: 'string', multiple: true },
      'no-lastpoint': { type: 'boolean', default: false },
      'no-node-views': { type: 'boolean', default: false },
      'reference-tags': { type: 'boolean', default: false },
      'router-reads': { type: 'boolean', default: false },
      label: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return undefined;
  }
  const base = values.quick ? QUICK : FULL;
  const hours = intOption('hours', values.hours, base.hours, 2);
  const dataNodes = intOption('data-nodes', values['data-nodes'], base.dataNodes, 1);
  // 8 hosts: the most any TSBS query here picks (single-groupby-*-8-*, cpu-max-all-8).
  const hosts = intOption('hosts', values.hosts, base.hosts, 8);
  const custom = hours !== base.hours || dataNodes !== base.dataNodes || hosts !== base.hosts;
  return {
    ...base,
    // Another shape must not overwrite the quick or full results.
    scale: custom ? 'custom' : base.scale,
    latencyMs: intOption('latency-ms', values['latency-ms'], 0, 0),
    dataNodes,
    hosts,
    hours,
    insertHours: Math.min(base.insertHours, hours - 1),
    runs: intOption('runs', values.runs, base.runs, 5),
    backToBack: values['back-to-back'],
    ...(values.system ? { postgres: { kind: 'system' as const, binDir: SYSTEM_BIN_DIR } } : {}),
    handleSignals: true,
    ingestOnly: values.ingest,
    gateway: !values['no-gateway'],
    executemany: !values['no-executemany'],
    ...(values.shards === undefined ? {} : { shards: intOption('shards', values.shards, 0, 1) }),
    ...(values.chunks === undefined ? {} : { chunks: intOption('chunks', values.chunks, 0, 1) }),
    ...optional('types', listOption('types', values.types, QUERY_TYPES)),
    ...optional('forms', listOption('forms', values.forms, FORMS)),
    queriesOnly: values['queries-only'],
    lastpoint: !values['no-lastpoint'],
    nodeViews: !values['no-node-views'],
    referenceTags: values['reference-tags'],
    routerReads: values['router-reads'],
    dataRoleSettings: (values['data-setting'] ?? []).map((s) => {
      const at = s.indexOf('=');
      if (at <= 0 || !/^[a-z_][a-z0-9_.]*$/.test(s.slice(0, at))) throw new Error(`--data-setting takes name=value, got '${s}'`);
      return [s.slice(0, at), s.slice(at + 1)] as const;
    }),
    ...(values.label === undefined ? {} : { label: values.label }),
    onProgress: (m) => process.stderr.write(`[${new Date().toISOString().slice(11, 19)}] ${m}\n`),
  };
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  if (options === undefined) return;
  const report = await runBenchmark(options);
  const base = await writeResults(resultName(options, options.postgres), report, toMarkdown(report));
  process.stdout.write(`${toText(report)}\n\nwrote ${base}.json and .md; total ${report.wallSeconds.total?.toFixed(0) ?? '?'} s\n`);
  if (report.mismatches > 0) process.exitCode = 1;
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exitCode = 1;
});
