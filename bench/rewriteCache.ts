/**
 * `npm run bench:rewrite-cache`: what the rewriter costs per statement, in RewriteContext as
 * hypershard/pg and the gateway call it (`statement()` then `rewrite()`), on dashboard
 * statements whose time range changes on every refresh:
 *
 *   rewritten     every statement analysed and rewritten (no cache: the cost of a miss)
 *   exact         the same text again (the exact-text cache)
 *   new literals  a text not seen before, of a shape seen before (the shape's template)
 *
 * Each template answer is checked against the statement's own rewrite. Runs on a real (small)
 * cluster, whose catalogs and roles the context reads. Writes bench/results/rewrite-cache.{json,md}.
 */
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { clientConfig } from '../src/nodes/connect.js';
import { RewriteContext } from '../src/pg/context.js';
import { statementInfo } from '../src/pg/statements.js';
import type { RewriteResult } from '../src/rewrite/model.js';
import { rewriteSql } from '../src/rewrite/rewrite.js';
import { sessionSettings } from '../src/rewrite/session.js';
import { withBenchCluster } from './lib/cluster.js';
import { writeResults } from './lib/results.js';
import { createDistributedHypertable, createTags } from './tsbs/setup.js';

const RUNS = 3000;
const HOUR = 3_600_000;

/** Dashboard statements (Grafana-style: literal time range, bucketed), for refresh n. */
const SHAPES: readonly { name: string; sql: (from: string, to: string) => string }[] = [
  {
    name: 'bucketed max, hosts by name',
    sql: (from, to) =>
      `SELECT date_trunc('minute', time) AS minute, max(usage_user) AS max_usage_user FROM cpu WHERE tags_id IN (SELECT id FROM tags WHERE hostname IN ('host_9', 'host_3', 'host_1')) AND time >= '${from}' AND time < '${to}' GROUP BY minute ORDER BY minute`,
  },
  {
    name: 'time_bucket averages, BETWEEN',
    sql: (from, to) => `SELECT time_bucket('5 minutes', time) AS b, avg(usage_user) AS u, max(usage_system) AS s FROM cpu WHERE time BETWEEN '${from}' AND '${to}' GROUP BY b ORDER BY b`,
  },
  {
    name: 'latest rows over a threshold',
    sql: (from) => `SELECT * FROM cpu WHERE usage_user > 90.0 AND time >= '${from}' ORDER BY time DESC LIMIT 100`,
  },
  {
    name: 'per host (already ships)',
    sql: (from, to) => `SELECT tags_id, max(usage_user) AS peak FROM cpu WHERE time >= '${from}' AND time < '${to}' GROUP BY tags_id`,
  },
];

interface Row {
  readonly shape: string;
  readonly rewrittenUs: number;
  readonly exactUs: number;
  readonly templateUs: number;
  readonly templated: boolean;
}

/** Microseconds per call of `fn` over `texts`, the median of 5 passes. */
function time(texts: readonly string[], fn: (sql: string) => void): number {
  const passes: number[] = [];
  for (let p = 0; p < 5; p += 1) {
    const started = performance.now();
    for (const t of texts) fn(t);
    passes.push(((performance.now() - started) * 1000) / texts.length);
  }
  return passes.sort((a, b) => a - b)[2] as number;
}

async function main(): Promise<void> {
  const rows = await withBenchCluster({ dataNodes: 1, handleSignals: true, onStep: (m) => process.stderr.write(`${m}\n`) }, async (cluster, workDir) => {
    await createDistributedHypertable(cluster, workDir, { hours: 2 });
    const client = new pg.Client(clientConfig(cluster.accessNode.url));
    await client.connect();
    try {
      await createTags(client, 10, 1);
      const settings = await sessionSettings(client);
      const out: Row[] = [];
      for (const shape of SHAPES) {
        const texts = Array.from({ length: RUNS }, (_, n) => {
          const end = Date.UTC(2026, 0, 1) + n * 10_000;
          return shape.sql(new Date(end - HOUR).toISOString(), new Date(end).toISOString());
        });
        const context = new RewriteContext({ cacheSize: 100 });
        await context.prepare(client, settings.role);
        const metadata = context.metadata;
        const access = context.access(settings.role);
        if (metadata === undefined || access === undefined) throw new Error('context not ready');
        const both = (sql: string): RewriteResult | { error: string } => {
          const info = context.statement(sql);
          if (!context.mayTouch(info)) throw new Error(`not a hypertable statement: ${sql}`);
          return context.rewrite(sql, settings);
        };
        // Warm the shape (its first statement makes the template), then check template answers.
        both(texts[0] as string);
        for (const t of texts.slice(1, 50)) {
          const made = both(t);
          const own = rewriteSql(t, metadata, { ...settings, access });
          if (JSON.stringify(made) !== JSON.stringify(own)) throw new Error(`template answer differs from the rewrite of: ${t}`);
        }
        const before = context.stats.templated;
        const templateUs = time(texts, both);
        const templated = context.stats.templated > before;
        const exactUs = time(Array.from({ length: RUNS }, () => texts[0] as string), both);
        const sample = texts.slice(0, 300);
        const rewrittenUs = time(sample, (sql) => {
          statementInfo(sql);
          rewriteSql(sql, metadata, { ...settings, access });
        });
        out.push({ shape: shape.name, rewrittenUs, exactUs, templateUs, templated });
      }
      return out;
    } finally {
      await client.end();
    }
  });
  const lines = [
    '| statement shape | rewritten (µs) | same text (µs) | new literals, same shape (µs) | templated |',
    '|---|---:|---:|---:|---|',
    ...rows.map((r) => `| ${r.shape} | ${r.rewrittenUs.toFixed(0)} | ${r.exactUs.toFixed(1)} | ${r.templateUs.toFixed(1)} | ${r.templated ? 'yes' : 'no'} |`),
  ];
  const markdown = `# Rewrite cache: cost per statement\n\nRewriteContext.statement() + rewrite(), ${RUNS} statements per shape (median of 5 passes), Node ${process.version}, ${new Date().toISOString().slice(0, 10)}.\n\n${lines.join('\n')}\n`;
  const base = await writeResults('rewrite-cache', { runs: RUNS, node: process.version, rows }, markdown);
  process.stdout.write(`${lines.join('\n')}\n\nwrote ${base}.json and .md\n`);
}

await main();
