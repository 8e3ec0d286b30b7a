/**
 * `npm run bench:reference-keys`: TSBS's host lookups (`tags_id IN (SELECT id FROM tags WHERE
 * hostname IN (…))`) with `tags` a reference table, measured three ways against the single node:
 *
 *   rewritten   the users' SQL through rewriteSql, on a plain connection: the host list is an
 *               InitPlan, so every shard's arm is planned and started (the keys reach them at run time)
 *   keys        the users' SQL through hypershard/pg: the keys are read first on the session and put
 *               in as literals (src/rewrite/referenceKeys.ts), only the shards holding them are asked;
 *               the time includes reading the keys
 *
 * Every answer is compared with the single node's.
 *
 *   npm run bench:reference-keys -- [--system] [--hosts N] [--hours N] [--runs N]
 */
import { parseArgs } from 'node:util';
import type pg from 'pg';
import { Client } from '../src/pg/index.js';
import { metadataFromLayout } from '../src/rewrite/metadata.js';
import { rewriteSql } from '../src/rewrite/rewrite.js';
import { SYSTEM_BIN_DIR, withBenchCluster } from './lib/cluster.js';
import { describeMachine, machineInfo } from './lib/machine.js';
import { closeQuietly, connect } from './lib/pg.js';
import { writeResults } from './lib/results.js';
import { median } from './lib/stats.js';
import { cpuRows, totalRows } from './tsbs/generate.js';
import { copyRows } from './tsbs/load.js';
import { tsbsQueries } from './tsbs/queries.js';
import { createDistributedHypertable, createSingleNodeTable, createTags, DISTRIBUTED, SINGLE } from './tsbs/setup.js';

const { values } = parseArgs({
  options: { system: { type: 'boolean', default: false }, hosts: { type: 'string', default: '100' }, hours: { type: 'string', default: '72' }, runs: { type: 'string', default: '15' } },
});
const hosts = Number(values.hosts);
const hours = Number(values.hours);
const runs = Number(values.runs);
const postgres = values.system ? { kind: 'system' as const, binDir: SYSTEM_BIN_DIR } : undefined;
const step = (m: string): void => void process.stderr.write(`[${new Date().toISOString().slice(11, 19)}] ${m}\n`);

interface Row {
  readonly type: string;
  readonly singleMs: number;
  readonly rewrittenMs: number;
  readonly keysMs: number;
  readonly equal: boolean;
  readonly keysMade: boolean;
}

const report = await withBenchCluster({ dataNodes: 2, ...(postgres === undefined ? {} : { postgres }), handleSignals: true, onStep: step }, async (cluster, workDir) => {
  const topology = await createDistributedHypertable(cluster, workDir, { hours, referenceTags: true });
  const access = await connect(cluster.accessNode.url);
  const wrapped = new Client({ connectionString: cluster.accessNode.url });
  const clients: pg.Client[] = [access];
  try {
    await wrapped.connect();
    for (const c of [access, wrapped]) await c.query(`SET TimeZone = 'UTC'`);
    await createSingleNodeTable(access);
    await createTags(access, hosts, 1, { referenceTags: true });
    const endMs = Math.floor(Date.now() / 10_000) * 10_000;
    const shape = { hosts, startMs: endMs - hours * 3_600_000, endMs, intervalSeconds: 10, seed: 1 };
    step(`loading ${totalRows(shape).toLocaleString('en-US')} rows into each target`);
    await copyRows(access, SINGLE.cpu, cpuRows(shape));
    await copyRows(access, DISTRIBUTED.cpu, cpuRows(shape));
    for (const n of cluster.dataNodes) clients.push(await connect(n.url));
    await Promise.all(clients.slice(1).map((c) => c.query('VACUUM ANALYZE')));
    await access.query(`VACUUM ANALYZE ${SINGLE.cpu}, ${SINGLE.tags}, ${DISTRIBUTED.tags}`);
    await access.query(`ANALYZE ${DISTRIBUTED.cpu}`);

    const metadata = metadataFromLayout(topology.layout);
    // The types whose users' SQL looks hosts up by a sub-select on tags, their now() windows in the data.
    const cases = tsbsQueries({ hosts, endMs, seed: 1 }).filter((c) => c.form === 'users-bucket' && c.sql(DISTRIBUTED).includes(`IN (SELECT id FROM ${DISTRIBUTED.tags}`));
    const rows: Row[] = [];
    for (const c of cases) {
      const written = c.sql(DISTRIBUTED);
      const rewritten = rewriteSql(written, metadata, { timeZone: 'UTC' }).sql;
      const single = c.sql(SINGLE);
      const answers = [JSON.stringify((await access.query(single)).rows), JSON.stringify((await access.query(rewritten)).rows), JSON.stringify((await wrapped.query(written)).rows)];
      const keysMade = wrapped.lastRewrite?.rewrites.some((r) => r.detail.includes('read first')) === true;
      const t = { single: [] as number[], rewritten: [] as number[], keys: [] as number[] };
      for (let i = 0; i < runs; i++) {
        for (const [k, run] of [
          ['single', () => access.query(single)],
          ['rewritten', () => access.query(rewritten)],
          ['keys', () => wrapped.query(written)],
        ] as const) {
          const t0 = performance.now();
          await run();
          t[k].push(performance.now() - t0);
        }
      }
      rows.push({ type: c.type, singleMs: median(t.single), rewrittenMs: median(t.rewritten), keysMs: median(t.keys), equal: answers[1] === answers[0] && answers[2] === answers[0], keysMade });
      step(`${c.type}: ${median(t.single).toFixed(2)} / ${median(t.rewritten).toFixed(2)} / ${median(t.keys).toFixed(2)} ms`);
    }
    const { rows: version } = await access.query<{ v: string }>(`SELECT current_setting('server_version') AS v`);
    return { generatedAt: new Date().toISOString(), machine: machineInfo(), postgres: version[0]?.v ?? '?', hosts, hours, rows: totalRows(shape), shards: topology.shards, runs, results: rows };
  } finally {
    await wrapped.end().catch(() => undefined);
    await closeQuietly(clients);
  }
});

const lines = [
  `# Reference keys read before planning (PostgreSQL ${report.postgres})`,
  '',
  `${report.hosts} hosts × ${report.hours} h (${report.rows.toLocaleString('en-US')} rows), ${report.shards} shards on 2 data nodes, \`tags\` a reference table, loopback; median of ${report.runs} runs; ${describeMachine(report.machine)}; written by bench/referenceKeys.ts at ${report.generatedAt}.`,
  '',
  '| query type | single ms | rewritten ms (×) | keys read first ms (×) | keys substituted | answers = single node |',
  '|---|---:|---:|---:|---|---|',
  ...report.results.map(
    (r) => `| ${r.type} | ${r.singleMs.toFixed(2)} | ${r.rewrittenMs.toFixed(2)} (${(r.rewrittenMs / r.singleMs).toFixed(2)}) | ${r.keysMs.toFixed(2)} (${(r.keysMs / r.singleMs).toFixed(2)}) | ${r.keysMade ? 'yes' : 'no'} | ${r.equal ? 'yes' : 'NO'} |`,
  ),
  '',
];
process.stdout.write(lines.join('\n'));
await writeResults(`reference-keys${values.system ? '-system' : ''}`, report, lines.join('\n'));
