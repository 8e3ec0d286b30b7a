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
import { readRoleAccess } from '../rewrite/access.js';
import { metadataFromLayout } from '../rewrite/metadata.js';
import { rewriteSql } from '../rewrite/rewrite.js';
import { sessionSettings } from '../rewrite/session.js';
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
  /** The statement's leading comment (`-- …` or `/* … *\/`), which names it in reports. */
  readonly label?: string;
  readonly analyzed: boolean;
  readonly executionMs: number | undefined;
  readonly plan: ExplainResult;
  /** For an incomplete statement the rewriter changes: whether the rewritten statement is complete (audited the same way). */
  readonly rewriterCompletes?: boolean;
}

/** A statement that could not be explained; the audit goes on to the next. */
export interface FailedAudit {
  readonly sql: string;
  readonly label?: string;
  readonly error: string;
}

export type AuditEntry = AuditedQuery | FailedAudit;

export const isFailedAudit = (entry: AuditEntry): entry is FailedAudit => 'error' in entry;

/** The statement's leading comment: its first `-- line` or `/* block *\/`, trimmed. */
export function statementLabel(sql: string): string | undefined {
  const text = sql.trimStart();
  const match = /^--[ \t]*([^\n]*)/.exec(text) ?? /^\/\*\s*([\s\S]*?)\s*\*\//.exec(text);
  const label = match?.[1]?.replace(/\s+/g, ' ').trim();
  return label === undefined || label === '' ? undefined : label;
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
  const label = statementLabel(sql);
  return { sql, ...(label === undefined ? {} : { label }), analyzed: analyze, executionMs: plan['Execution Time'], plan, ...analyzePlan(plan, catalog) };
}

/** What the fix of an error finding says when the rewriter makes the statement complete. */
export const REWRITER_FIX = 'the hypershard rewriter makes this statement complete: run it through hypershard/pg or the gateway (`hypershard rewrite` shows the SQL it runs)';

/**
 * Audits each statement on the spec's access node, one after another (plans depend on load); one
 * that cannot be explained is reported as such and the audit goes on. An incomplete statement the
 * rewriter changes is audited again rewritten (for the connected role and session), and when that
 * is complete its error findings' fix says so.
 */
export async function audit(
  spec: ClusterSpec,
  specFile: string,
  statements: readonly string[],
  options: Omit<AuditOptions, 'layout' | 'params'> & ConnectOptions = {},
): Promise<AuditEntry[]> {
  const access = (await nodeTargets(spec, specFile)).find((t) => t.role === 'access');
  if (access === undefined) throw new TypeError('spec without access node');
  const { client } = await connectNode(access, { ...options, readOnly: true });
  try {
    const layout = planLayout(spec);
    const metadata = metadataFromLayout(layout);
    const settings = await sessionSettings(client);
    const roleAccess = await readRoleAccess(client, settings.role, metadata);
    const results: AuditEntry[] = [];
    for (const sql of statements) {
      let audited: AuditedQuery;
      try {
        audited = await auditQuery(client, sql, { ...options, layout });
      } catch (error) {
        const label = statementLabel(sql);
        results.push({ sql, ...(label === undefined ? {} : { label }), error: error instanceof Error ? error.message : String(error) });
        continue;
      }
      results.push(audited.complete ? audited : await withRewriter(audited, async (rewritten) => (await auditQuery(client, rewritten, { ...options, layout })).complete, () => rewriteSql(sql, metadata, { ...settings, access: roleAccess })));
    }
    return results;
  } finally {
    await client.end();
  }
}

/** The audit of an incomplete statement, told whether its rewrite is complete (and fixes naming the rewriter when so). */
async function withRewriter(audited: AuditedQuery, completes: (sql: string) => Promise<boolean>, rewrite: () => { changed: boolean; sql: string }): Promise<AuditedQuery> {
  let rewritten: { changed: boolean; sql: string };
  try {
    rewritten = rewrite();
  } catch {
    return audited;
  }
  if (!rewritten.changed) return audited;
  const complete = await completes(rewritten.sql).catch(() => false);
  if (!complete) return { ...audited, rewriterCompletes: false };
  return { ...audited, rewriterCompletes: true, findings: audited.findings.map((f) => (f.severity === 'error' ? { ...f, fix: REWRITER_FIX } : f)) };
}
