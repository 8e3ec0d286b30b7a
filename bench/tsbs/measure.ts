/**
 * Timing the query cases on both targets, checking their answers, and auditing where the
 * distributed plan did its work.
 *
 * Round 0 warms up (caches, the access node's connections to the shards) and collects both
 * answers inside one transaction, so that `now()` is the same instant for both and the users'
 * `now()` windows cover the same rows. Then `runs` timed rounds; in each round every case runs on
 * both targets back to back, and which target goes first alternates, so drift on the machine
 * (other load, caches, autovacuum) spreads over both instead of favouring one.
 */
import type pg from 'pg';
import { auditQuery } from '../../src/audit/audit.js';
import type { ClusterLayout } from '../../src/plan/layout.js';
import { proxyDelta, type ProxyStats } from '../lib/latencyProxy.js';
import { rowsReceived } from '../lib/plan.js';
import { median } from '../lib/stats.js';
import { compareAnswers } from './answers.js';
import type { Form, QueryCase, QueryType } from './queries.js';
import { DISTRIBUTED, SINGLE, type Tables } from './setup.js';

export interface AuditSummary {
  /** `complete`: no row-level work left on the access node; `n/a` if the audit failed. */
  readonly verdict: 'complete' | 'incomplete' | 'n/a';
  /**
   * Rows the data nodes sent: what the foreign scans returned plus what their access-node
   * filters dropped, × loops (bench/lib/plan.ts), from the audit's EXPLAIN ANALYZE plan.
   */
  readonly rowsShipped: number | null;
  /** The audit's own count (actual rows × loops of the foreign scans, after their local filters). */
  readonly auditRowsShipped: number | null;
  readonly findings: readonly { readonly code: string; readonly severity: string; readonly message: string }[];
  /** Remote SQL of each foreign scan, deduplicated across shards. */
  readonly remoteSql: readonly string[];
  readonly accessNodeWork: readonly string[];
  readonly error?: string;
}

export interface QueryMeasurement {
  readonly type: QueryType;
  readonly form: Form;
  /** The distributed statement; the single-node one names `single.cpu` / `single.tags`. */
  readonly sql: string;
  readonly params: readonly unknown[];
  readonly resultRows: number;
  readonly singleMs: number;
  readonly distributedMs: number;
  /** distributed / single: below 1 the distributed hypertable is faster. */
  readonly ratio: number;
  readonly samplesMs: { readonly single: readonly number[]; readonly distributed: readonly number[] };
  readonly answersEqual: boolean;
  readonly difference?: string;
  /** Per distributed run (medians), when latency proxies count the traffic. */
  readonly network?: { readonly bytesFromDataNodes: number; readonly roundTrips: number };
  readonly audit: AuditSummary;
}

export interface MeasureOptions {
  readonly runs: number;
  /**
   * Time each statement right after an untimed run of itself on the same session. By default the
   * forms interleave, so a session and its data-node backends sit idle for most of a round, and
   * on a shared host a process's memory goes cold within seconds: that measures a statement
   * arriving after a pause; this, a session in steady use.
   */
  readonly backToBack?: boolean;
  /** hypershard/pg's Client on the access node, for the `product` cases' distributed side. */
  readonly product?: ProductClient;
  readonly layout: ClusterLayout;
  /** The latency proxies' counters so far, when the access node reaches the data nodes through them. */
  readonly network?: () => ProxyStats;
  readonly onProgress?: (message: string) => void;
}

/** hypershard/pg's Client, as the bench uses it. */
export type ProductClient = pg.Client & { readonly lastRewrite: { readonly sql: string } | undefined };

async function run(client: pg.Client, c: QueryCase, tables: Tables): Promise<{ ms: number; rows: pg.QueryResultRow[] }> {
  const t0 = performance.now();
  const { rows } = await client.query<pg.QueryResultRow>({ text: c.sql(tables), values: [...c.params] });
  return { ms: performance.now() - t0, rows };
}

export async function measureQueries(access: pg.Client, cases: readonly QueryCase[], options: MeasureOptions): Promise<QueryMeasurement[]> {
  const label = (c: QueryCase): string => `${c.type} (${c.form})`;
  const product = options.product;
  if (cases.some((c) => c.throughProduct === true) && product === undefined) throw new Error('product cases need a hypershard/pg client');
  /**
   * Where a case runs. A product case runs both sides on the product's session: its session sits
   * idle while the other forms run, and on a shared host a process's memory goes cold in seconds
   * (a first statement after 20 s idle measured 2-3x its warm time, on either side), so timing its
   * single side on the always-busy plain session would charge that to the distributed side alone.
   * The single-node statement names no hypertable and passes through the Client unchanged.
   */
  const on = (c: QueryCase): pg.Client => (c.throughProduct === true ? (product as pg.Client) : access);
  /** What the product sent for each case, the last time it ran (audited as sent). */
  const sent = new Map<QueryCase, string>();

  // Round 0: warm-up and answers, both targets in one transaction (one now()).
  const answers: { equal: boolean; difference?: string; rows: number }[] = [];
  for (const c of cases) {
    options.onProgress?.(`warm-up and answers: ${label(c)}`);
    // One transaction, one now(): on the product's client for its cases (the single-node
    // statement names no hypertable and passes through unchanged; inside a block no keys are read).
    const client = on(c);
    await client.query('BEGIN READ ONLY');
    try {
      const single = await run(client, c, SINGLE);
      const distributed = await run(client, c, DISTRIBUTED);
      const cmp = compareAnswers(single.rows, distributed.rows);
      answers.push({ equal: cmp.equal, rows: single.rows.length, ...(cmp.difference === undefined ? {} : { difference: cmp.difference }) });
      if (!cmp.equal) process.stderr.write(`\n!!! ANSWERS DIFFER for ${label(c)}: ${cmp.difference ?? ''}\n\n`);
    } finally {
      await client.query('COMMIT');
    }
  }

  const samples = cases.map(() => ({ single: [] as number[], distributed: [] as number[], bytes: [] as number[], roundTrips: [] as number[] }));
  for (let round = 1; round <= options.runs; round++) {
    options.onProgress?.(`timed round ${round} of ${options.runs}`);
    for (const [i, c] of cases.entries()) {
      const s = samples[i]!;
      const distributedFirst = (round + i) % 2 === 0;
      for (const target of distributedFirst ? (['distributed', 'single'] as const) : (['single', 'distributed'] as const)) {
        const tables = target === 'single' ? SINGLE : DISTRIBUTED;
        if (options.backToBack === true) await run(on(c), c, tables);
        const before = target === 'distributed' ? options.network?.() : undefined;
        const { ms } = await run(on(c), c, tables);
        s[target].push(ms);
        if (target === 'distributed' && c.throughProduct === true && product?.lastRewrite !== undefined) sent.set(c, product.lastRewrite.sql);
        const after = options.network?.();
        if (before !== undefined && after !== undefined) {
          const d = proxyDelta(before, after);
          s.bytes.push(d.bytesDown);
          s.roundTrips.push(d.roundTrips);
        }
      }
    }
  }

  const results: QueryMeasurement[] = [];
  for (const [i, c] of cases.entries()) {
    options.onProgress?.(`audit: ${label(c)}`);
    const s = samples[i]!;
    const a = answers[i]!;
    const singleMs = median(s.single);
    const distributedMs = median(s.distributed);
    // The product's statement as it sent it outside a transaction (keys written in).
    const asSent = sent.get(c);
    const audited: QueryCase = asSent === undefined ? c : { ...c, sql: (t) => (t === DISTRIBUTED ? asSent : c.sql(t)) };
    results.push({
      type: c.type,
      form: c.form,
      sql: audited.sql(DISTRIBUTED),
      params: c.params,
      resultRows: a.rows,
      singleMs,
      distributedMs,
      ratio: distributedMs / singleMs,
      samplesMs: { single: s.single, distributed: s.distributed },
      answersEqual: a.equal,
      ...(a.difference === undefined ? {} : { difference: a.difference }),
      ...(s.bytes.length === 0 ? {} : { network: { bytesFromDataNodes: median(s.bytes), roundTrips: median(s.roundTrips) } }),
      audit: await audit(access, audited, options.layout),
    });
  }
  return results;
}

/** hypershard's own audit, with EXPLAIN ANALYZE for actual rows shipped. */
async function audit(access: pg.Client, c: QueryCase, layout: ClusterLayout): Promise<AuditSummary> {
  try {
    const a = await auditQuery(access, c.sql(DISTRIBUTED), { params: [...c.params], analyze: true, layout });
    return {
      verdict: a.complete ? 'complete' : 'incomplete',
      rowsShipped: rowsReceived(a.plan),
      // PostgreSQL 18 reports actual rows per loop with decimals; × loops is then not whole.
      auditRowsShipped: Math.round(a.rowsShipped),
      findings: a.findings.map((f) => ({ code: f.code, severity: f.severity, message: f.message })),
      remoteSql: [...new Set(a.foreignScans.map((s) => s.remoteSql.replace(/\b_hypershard\.cpu_s\d+\b/g, '_hypershard.cpu_s<N>')))],
      accessNodeWork: a.accessNodeWork,
    };
  } catch (error) {
    // A failing audit must not lose the timings; the report says why the verdict is missing.
    await access.query('ROLLBACK').catch(() => undefined);
    return { verdict: 'n/a', rowsShipped: null, auditRowsShipped: null, findings: [], remoteSql: [], accessNodeWork: [], error: error instanceof Error ? error.message : String(error) };
  }
}
