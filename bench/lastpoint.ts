/**
 * `npm run bench:lastpoint`: the candidates for TSBS `lastpoint` (DISTINCT ON the space key, the
 * newest row each; issue 13), measured on one cluster against the single-node table:
 *
 *   users          TSBS's SQL as written (a LATERAL probe per host through the partitioned table)
 *   rewritten      the same through hypershard's rewriter (today: the LATERAL's ORDER BY … LIMIT 1
 *                  per shard, each probe pinned to its key's shard: one remote query per host)
 *   per-shard      the bench's hand-written form: max(time) per host per shard, then a probe per host
 *   skip-scan      a view on each data node over its shard, a loose index scan by recursive CTE
 *                  (next key, then that key's newest row: two index probes per key), imported on the
 *                  access node as one foreign table per shard; the access node joins the tags
 *   skip-scan-row  the same view carrying the whole row through the recursion (one probe per key,
 *                  `ORDER BY key, time DESC LIMIT 1` for the next key's newest row)
 *   product        the rewriter's output with the lastpoint views `apply` made (`lastpoint: true`:
 *                  skip-scan-row inside a PL/pgSQL function, so each data-node session plans it
 *                  once; generated from templates/), each shard's; `rewritten` is the rewrite
 *                  without them
 *   product, node views  the same from each data node's lastpoint view (`nodeViews: true` too: the
 *                  UNION ALL of the node's shards' views, one remote query a node)
 *
 * And the plain form `SELECT DISTINCT ON (tags_id) * FROM cpu ORDER BY tags_id, time DESC`
 * (`plain …`, against `plain single`): as written, rewritten without the views, and the product.
 *
 * The skip-scan views are made here by hand (quoted with src/sql/quote.ts), the product's by
 * `apply`. Every candidate's answer is compared with the single node's.
 *
 *   npm run bench:lastpoint -- [--system] [--hosts N] [--hours N] [--runs N]
 */
import { parseArgs } from 'node:util';
import type pg from 'pg';
import { metadataFromLayout } from '../src/rewrite/metadata.js';
import { rewriteSql } from '../src/rewrite/rewrite.js';
import { quoteIdent, quoteQualified } from '../src/sql/quote.js';
import { SYSTEM_BIN_DIR, withBenchCluster } from './lib/cluster.js';
import { describeMachine, machineInfo } from './lib/machine.js';
import { closeQuietly, connect } from './lib/pg.js';
import { writeResults } from './lib/results.js';
import { median } from './lib/stats.js';
import { cpuRows, totalRows } from './tsbs/generate.js';
import { copyRows } from './tsbs/load.js';
import { createDistributedHypertable, createSingleNodeTable, createTags, DISTRIBUTED, SINGLE } from './tsbs/setup.js';

const { values } = parseArgs({
  options: { system: { type: 'boolean', default: false }, hosts: { type: 'string', default: '100' }, hours: { type: 'string', default: '72' }, runs: { type: 'string', default: '9' } },
});
const hosts = Number(values.hosts);
const hours = Number(values.hours);
const runs = Number(values.runs);
const postgres = values.system ? { kind: 'system' as const, binDir: SYSTEM_BIN_DIR } : undefined;
const step = (m: string): void => void process.stderr.write(`[${new Date().toISOString().slice(11, 19)}] ${m}\n`);

const users = (cpu: string, tags: string): string =>
  `SELECT DISTINCT ON (t.hostname) * FROM ${tags} t INNER JOIN LATERAL (SELECT * FROM ${cpu} c WHERE c.tags_id = t.id ORDER BY time DESC LIMIT 1) AS b ON true ORDER BY t.hostname, b.time DESC`;

interface Row {
  readonly candidate: string;
  readonly ms: number;
  readonly ratio: number;
  readonly rows: number;
  readonly equal: boolean;
}

const report = await withBenchCluster({ dataNodes: 2, ...(postgres === undefined ? {} : { postgres }), handleSignals: true, onStep: step }, async (cluster, workDir) => {
  const topology = await createDistributedHypertable(cluster, workDir, { hours, lastpoint: true, nodeViews: true });
  const access = await connect(cluster.accessNode.url);
  const dataClients = new Map<string, pg.Client>();
  try {
    await access.query(`SET TimeZone = 'UTC'`);
    await createSingleNodeTable(access);
    await createTags(access, hosts, 1);
    const endMs = Math.floor(Date.now() / 10_000) * 10_000;
    const shape = { hosts, startMs: endMs - hours * 3_600_000, endMs, intervalSeconds: 10, seed: 1 };
    step(`loading ${totalRows(shape).toLocaleString('en-US')} rows into each target`);
    await copyRows(access, SINGLE.cpu, cpuRows(shape));
    await copyRows(access, DISTRIBUTED.cpu, cpuRows(shape));
    for (const n of cluster.dataNodes) dataClients.set(n.name, await connect(n.url));
    await Promise.all([...dataClients.values()].map((c) => c.query('VACUUM ANALYZE')));
    await access.query(`VACUUM ANALYZE ${SINGLE.cpu}, ${SINGLE.tags}, ${DISTRIBUTED.tags}`);
    await access.query(`ANALYZE ${DISTRIBUTED.cpu}`);

    // The candidate views, one per shard and kind, on the shard's data node; imported per shard.
    const table = topology.layout.hypertables[0];
    if (table === undefined) throw new Error('no hypertable in the layout');
    const key = quoteIdent(table.spaceColumn);
    const time = quoteIdent(table.timeColumn);
    const views = {
      'skip-scan': (shard: string): string =>
        `WITH RECURSIVE keys(k) AS ((SELECT ${key} FROM ${shard} ORDER BY ${key} LIMIT 1) UNION ALL ` +
        `SELECT (SELECT c.${key} FROM ${shard} c WHERE c.${key} > keys.k ORDER BY c.${key} LIMIT 1) FROM keys WHERE keys.k IS NOT NULL) ` +
        `SELECT r.* FROM keys CROSS JOIN LATERAL (SELECT * FROM ${shard} c WHERE c.${key} = keys.k ORDER BY c.${time} DESC LIMIT 1) r WHERE keys.k IS NOT NULL`,
      'skip-scan-row': (shard: string): string =>
        `WITH RECURSIVE r(c) AS ((SELECT c FROM ${shard} c ORDER BY c.${key}, c.${time} DESC LIMIT 1) UNION ALL ` +
        `SELECT (SELECT n FROM ${shard} n WHERE n.${key} > (r.c).${key} ORDER BY n.${key}, n.${time} DESC LIMIT 1) FROM r WHERE (r.c).${key} IS NOT NULL) ` +
        `SELECT (r.c).* FROM r WHERE (r.c).${key} IS NOT NULL`,
    };
    const imported: Record<string, string[]> = {};
    for (const [kind, body] of Object.entries(views)) {
      for (const shard of table.shards) {
        const name = `${shard.table.name}_${kind.replace(/-/g, '_')}`;
        const data = dataClients.get(shard.dataNode);
        if (data === undefined) throw new Error(`no data node ${shard.dataNode}`);
        await data.query(`CREATE VIEW ${quoteQualified(shard.table.schema, name)} AS ${body(quoteQualified(shard.table.schema, shard.table.name))}`);
        await data.query(`GRANT SELECT ON ${quoteQualified(shard.table.schema, name)} TO ${quoteIdent(topology.layout.serviceRole)}`);
        await access.query(`IMPORT FOREIGN SCHEMA ${quoteIdent(shard.table.schema)} LIMIT TO (${quoteIdent(name)}) FROM SERVER ${quoteIdent(shard.server)} INTO ${quoteIdent(shard.table.schema)}`);
        (imported[kind] ??= []).push(quoteQualified(shard.table.schema, name));
      }
    }
    const overViews = (kind: string): string =>
      `SELECT DISTINCT ON (t.hostname) * FROM ${DISTRIBUTED.tags} t INNER JOIN (${(imported[kind] ?? []).map((v) => `SELECT * FROM ${v}`).join(' UNION ALL ')}) AS b ON b.tags_id = t.id ORDER BY t.hostname, b.time DESC`;
    const written = users(DISTRIBUTED.cpu, DISTRIBUTED.tags);
    const withNodeViews = metadataFromLayout(topology.layout);
    // Each shard's lastpoint view: the same cluster as the rewriter saw it before node lastpoint views.
    const withViews = { ...withNodeViews, hypertables: withNodeViews.hypertables.map((h) => ({ ...h, nodes: h.nodes?.map((n) => ({ ...n, lastpoint: undefined })) })) };
    // The rewrite without lastpoint views at all.
    const withoutViews = { ...withViews, hypertables: withViews.hypertables.map((h) => ({ ...h, shards: h.shards.map((s) => ({ ...s, lastpoint: undefined })) })) };
    const rewrite = (sql: string, metadata: typeof withNodeViews): string => {
      const r = rewriteSql(sql, metadata, { timeZone: 'UTC' });
      step(`${r.rewrites.map((x) => x.kind).join(', ') || 'not rewritten'}: ${sql.slice(0, 60)}…`);
      return r.sql;
    };
    const plain = (cpu: string): string => `SELECT DISTINCT ON (tags_id) * FROM ${cpu} ORDER BY tags_id, time DESC`;
    const candidates: Record<string, string> = {
      single: users(SINGLE.cpu, SINGLE.tags),
      users: written,
      rewritten: rewrite(written, withoutViews),
      'per-shard':
        `SELECT t.*, b.* FROM (SELECT tags_id, max(time) AS time FROM ${DISTRIBUTED.cpu} GROUP BY tags_id) l JOIN ${DISTRIBUTED.tags} t ON t.id = l.tags_id ` +
        `JOIN LATERAL (SELECT * FROM ${DISTRIBUTED.cpu} c WHERE c.tags_id = l.tags_id AND c.time = l.time LIMIT 1) b ON true ORDER BY t.hostname`,
      'skip-scan': overViews('skip-scan'),
      'skip-scan-row': overViews('skip-scan-row'),
      product: rewrite(written, withViews),
      'product, node views': rewrite(written, withNodeViews),
      'plain single': plain(SINGLE.cpu),
      'plain users': plain(DISTRIBUTED.cpu),
      'plain rewritten': rewrite(plain(DISTRIBUTED.cpu), withoutViews),
      'plain product': rewrite(plain(DISTRIBUTED.cpu), withViews),
      'plain product, node views': rewrite(plain(DISTRIBUTED.cpu), withNodeViews),
    };
    /** The single-node query each candidate is measured and checked against. */
    const baseline = (name: string): string => (name.startsWith('plain ') ? 'plain single' : 'single');
    const answers = new Map<string, string>();
    for (const [name, sql] of Object.entries(candidates)) {
      step(`warm-up: ${name}`);
      const { rows } = await access.query({ text: sql, rowMode: 'array' });
      answers.set(name, JSON.stringify(rows));
    }
    const samples = new Map<string, number[]>(Object.keys(candidates).map((n) => [n, []]));
    for (let i = 0; i < runs; i++) {
      // `users` asks the partitioned table row by row: a few runs are enough.
      for (const [name, sql] of Object.entries(candidates)) {
        if ((name === 'users' || name === 'plain users') && i >= 3) continue;
        const t0 = performance.now();
        await access.query(sql);
        samples.get(name)?.push(performance.now() - t0);
      }
    }
    const rows: Row[] = Object.keys(candidates).map((name) => {
      const ms = median(samples.get(name) ?? []);
      const answer = answers.get(name) ?? '';
      return { candidate: name, ms, ratio: ms / median(samples.get(baseline(name)) ?? []), rows: (JSON.parse(answer) as unknown[]).length, equal: answer === answers.get(baseline(name)) };
    });
    const { rows: version } = await access.query<{ v: string }>(`SELECT current_setting('server_version') AS v`);
    return { generatedAt: new Date().toISOString(), machine: machineInfo(), postgres: version[0]?.v ?? '?', hosts, hours, rows: totalRows(shape), shards: table.shards.length, runs, results: rows };
  } finally {
    await closeQuietly([access, ...dataClients.values()]);
  }
});

const lines = [
  `# lastpoint candidates (PostgreSQL ${report.postgres})`,
  '',
  `${report.hosts} hosts × ${report.hours} h (${report.rows.toLocaleString('en-US')} rows), ${report.shards} shards on 2 data nodes, loopback; median of ${report.runs} runs; ${describeMachine(report.machine)}; written by bench/lastpoint.ts at ${report.generatedAt}.`,
  '',
  '| candidate | ms | × single node (`plain …`: × `plain single`) | rows | answer = single node |',
  '|---|---:|---:|---:|---|',
  ...report.results.map((r) => `| ${r.candidate} | ${r.ms.toFixed(2)} | ${r.ratio.toFixed(2)} | ${r.rows} | ${r.equal ? 'yes' : 'NO'} |`),
  '',
];
process.stdout.write(lines.join('\n'));
await writeResults(`lastpoint${values.system ? '-system' : ''}`, report, lines.join('\n'));
