/**
 * Audits queries on the access node: EXPLAIN (VERBOSE, FORMAT JSON), with ANALYZE and BUFFERS on
 * request, inside a READ ONLY transaction that is always rolled back, so an audited statement
 * can never change data unless the caller forces it (then it runs and is rolled back).
 */
import type pg from 'pg';
import { HypershardError } from '../errors.js';
import { connectNode, type ConnectOptions } from '../nodes/connect.js';
import { nodeTargets } from '../nodes/targets.js';
import { planLayout, type ClusterLayout } from '../plan/layout.js';
import type { ClusterSpec } from '../spec/schema.js';
import { analyzePlan, planFunctionNames, type QueryAudit } from './analyze.js';
import { readCatalog } from './catalog.js';
import type { ExplainResult } from './plan.js';

export interface AuditOptions {
  readonly params?: readonly unknown[];
  /** Run the query (EXPLAIN ANALYZE, BUFFERS) for actual rows shipped. */
  readonly analyze?: boolean;
  /** Allow ANALYZE of a statement that writes (it is rolled back). */
  readonly force?: boolean;
  readonly layout?: ClusterLayout;
}

export interface AuditedQuery extends QueryAudit {
  readonly sql: string;
  readonly analyzed: boolean;
  readonly executionMs: number | undefined;
  readonly plan: ExplainResult;
}

export async function auditQuery(client: pg.Client, sql: string, options: AuditOptions = {}): Promise<AuditedQuery> {
  const analyze = options.analyze === true;
  const explain = `EXPLAIN (VERBOSE, FORMAT JSON${analyze ? ', ANALYZE, BUFFERS' : ''}) ${sql}`;
  await client.query(options.force === true ? 'BEGIN' : 'BEGIN READ ONLY');
  let plan: ExplainResult;
  try {
    const { rows } = await client.query<{ 'QUERY PLAN': ExplainResult[] }>(explain, options.params === undefined ? [] : [...options.params]);
    const first = rows[0]?.['QUERY PLAN'][0];
    if (first === undefined) throw new HypershardError('AUDIT', `EXPLAIN returned no plan for: ${sql}`);
    plan = first;
  } catch (error) {
    const e = error as { code?: string; message?: string };
    if (e.code === '25006') {
      throw new HypershardError('AUDIT_WRITE', `the statement writes; --analyze runs it, so it needs --force (it is rolled back): ${sql}`, { cause: error });
    }
    throw new HypershardError('AUDIT', `cannot explain the statement: ${e.message ?? String(error)}\n  ${sql}`, { cause: error });
  } finally {
    await client.query('ROLLBACK');
  }
  const catalog = await readCatalog(client, options.layout, planFunctionNames(plan));
  return { sql, analyzed: analyze, executionMs: plan['Execution Time'], plan, ...analyzePlan(plan, catalog) };
}

/** Audits each statement on the spec's access node, one after another (plans depend on load). */
export async function audit(
  spec: ClusterSpec,
  specFile: string,
  statements: readonly string[],
  options: Omit<AuditOptions, 'layout' | 'params'> & ConnectOptions = {},
): Promise<AuditedQuery[]> {
  const access = (await nodeTargets(spec, specFile)).find((t) => t.role === 'access');
  if (access === undefined) throw new TypeError('spec without access node');
  const { client } = await connectNode(access, { ...options, readOnly: true });
  try {
    const layout = planLayout(spec);
    const results: AuditedQuery[] = [];
    for (const sql of statements) results.push(await auditQuery(client, sql, { ...options, layout }));
    return results;
  } finally {
    await client.end();
  }
}
