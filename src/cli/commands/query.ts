/** `query`: runs a query on the access node the way hypershard/pg would: rewritten for the session. */
import { performance } from 'node:perf_hooks';
import type { Command } from 'commander';
import type pg from 'pg';
import { auditQuery } from '../../audit/audit.js';
import { auditText } from '../../audit/format.js';
import { splitStatements } from '../../audit/statements.js';
import { HypershardError } from '../../errors.js';
import { connectNode } from '../../nodes/connect.js';
import { nodeTargets } from '../../nodes/targets.js';
import { planLayout } from '../../plan/layout.js';
import { discoverMetadata } from '../../rewrite/discover.js';
import { metadataFromLayout } from '../../rewrite/metadata.js';
import { readRoleAccess } from '../../rewrite/access.js';
import type { ClusterMetadata, RewriteOptions, RewriteResult } from '../../rewrite/model.js';
import { rewriteSql } from '../../rewrite/rewrite.js';
import { sessionSettings } from '../../rewrite/session.js';
import { loadSpec } from '../../spec/load.js';
import { timeoutFlag } from '../flags.js';
import { command, EXIT, json, out } from '../run.js';
import { table } from '../table.js';
import { pointAt, readQuery, renderExplanation } from './rewrite.js';

interface QueryFlags {
  config: string;
  query?: string;
  file?: string;
  format: string;
  explain?: boolean;
  rewrite: boolean;
  metadata: string;
  timeout: string;
}

/** One statement's answer, every value as the server's text (null for NULL). */
interface Answer {
  readonly command: string | null;
  readonly rowCount: number | null;
  readonly columns: readonly string[];
  readonly rows: readonly (readonly (string | null)[])[];
}

/** Values come back as the server's text, as psql shows them. */
const TEXT_TYPES = { getTypeParser: () => (value: string) => value };

export function registerQueryCommand(program: Command): void {
  program
    .command('query')
    .description('run a query on the access node, rewritten as hypershard/pg would for the session, and show the answer, the rewrites and the time')
    .option('-c, --config <file>', 'spec file', 'hypershard.yaml')
    .option('-q, --query <sql>', 'the query')
    .option('-f, --file <file>', 'a file holding the query; without --query or --file, it is read from stdin')
    .option('--format <format>', 'table or json', 'table')
    .option('--explain', "don't run it: show EXPLAIN (VERBOSE) of the query as it would run, and the pushdown audit's findings")
    .option('--no-rewrite', 'run the query as given')
    .option('--metadata <source>', "where the hypertables' shards come from: catalog (the access node's) or spec", 'catalog')
    .option('--timeout <ms>', 'bound on reaching the access node', '10000')
    .action(
      command(async (opts: QueryFlags) => {
        if (opts.format !== 'table' && opts.format !== 'json') throw new HypershardError('USAGE', `--format must be table or json, not ${JSON.stringify(opts.format)}`);
        if (opts.metadata !== 'catalog' && opts.metadata !== 'spec') throw new HypershardError('USAGE', `--metadata must be catalog or spec, not ${JSON.stringify(opts.metadata)}`);
        const timeoutMs = timeoutFlag(opts.timeout);
        const original = await readQuery(opts);
        const { spec, file } = await loadSpec(opts.config);
        const layout = planLayout(spec);
        const access = (await nodeTargets(spec, file)).find((t) => t.role === 'access');
        if (access === undefined) throw new TypeError('spec without access node');
        const { client } = await connectNode(access, { timeoutMs, readOnly: true });
        try {
          const metadata = opts.metadata === 'spec' ? metadataFromLayout(layout) : await discoverMetadata(client);
          const settings = await sessionSettings(client);
          const roleAccess = await readRoleAccess(client, settings.role, metadata);
          const rewritten = opts.rewrite ? rewriteFor(original, metadata, { ...settings, access: roleAccess }) : asGiven(original, '--no-rewrite: run as given');
          const about = { original, sql: rewritten.sql, rewrites: rewritten.rewrites, unchanged: rewritten.unchanged, timeZone: settings.timeZone, searchPath: settings.searchPath, role: settings.role };
          if (opts.explain === true) {
            if ((await splitStatements(rewritten.sql)).length !== 1) throw new HypershardError('USAGE', '--explain takes one statement');
            const plan = await run(client, `EXPLAIN (VERBOSE) ${rewritten.sql}`, original, rewritten, 'EXPLAIN (VERBOSE) '.length);
            const audited = await auditQuery(client, rewritten.sql, { layout });
            const lines = plan.answers.flatMap((a) => a.rows.map((r) => r[0] ?? ''));
            if (opts.format === 'json') json({ ...about, plan: lines, audit: { complete: audited.complete, findings: audited.findings } });
            else out([...lines, '', auditText([audited]), ...explanation(rewritten, about, 'Explained')].join('\n'));
            return EXIT.ok;
          }
          const { answers, ms } = await run(client, rewritten.sql, original, rewritten, 0);
          if (opts.format === 'json') json({ ...about, results: answers, ms });
          else out([answers.map(renderAnswer).join('\n\n'), ...explanation(rewritten, about, 'Ran'), '', `Time: ${ms.toFixed(1)} ms`].join('\n'));
          return EXIT.ok;
        } finally {
          await client.end().catch(() => undefined);
        }
      }),
    );
}

/** The rewrite; a query the rewriter cannot parse runs as given, so the server reports its error. */
function rewriteFor(sql: string, metadata: ClusterMetadata, options: RewriteOptions): RewriteResult {
  try {
    return rewriteSql(sql, metadata, options);
  } catch (error) {
    return asGiven(sql, `the rewriter failed (${error instanceof Error ? error.message : String(error)}); run as given`);
  }
}

function asGiven(sql: string, reason: string): RewriteResult {
  return { sql, changed: false, touchesHypertable: false, rewrites: [], unchanged: [{ kind: 'statement', reason }] };
}

/**
 * Runs `text` (the query, or EXPLAIN of it: `offset` characters in front), timing it.
 * @throws HypershardError `QUERY_FAILED` with the server's message and where in the query it points.
 */
async function run(client: pg.Client, text: string, original: string, rewritten: RewriteResult, offset: number): Promise<{ answers: Answer[]; ms: number }> {
  const started = performance.now();
  let results: pg.QueryResult<unknown[]> | pg.QueryResult<unknown[]>[];
  try {
    results = (await client.query<unknown[]>({ text, rowMode: 'array', types: TEXT_TYPES })) as pg.QueryResult<unknown[]> | pg.QueryResult<unknown[]>[];
  } catch (error) {
    throw await queryFailed(client, error, original, rewritten, offset);
  }
  const ms = performance.now() - started;
  // Several statements in one text come back as one result each.
  const answers = (Array.isArray(results) ? results : [results]).map((r) => ({
    command: r.command ?? null,
    rowCount: r.fields.length > 0 ? r.rows.length : r.rowCount,
    columns: r.fields.map((f) => f.name),
    rows: r.rows as (string | null)[][],
  }));
  return { answers, ms };
}

/**
 * The server's error, pointing into the query. When the rewritten query fails before it runs
 * (class 42: a name or syntax problem), the original is planned (EXPLAIN, nothing runs) so a
 * mistake in it is reported against the text the user wrote.
 */
async function queryFailed(client: pg.Client, error: unknown, original: string, rewritten: RewriteResult, offset: number): Promise<HypershardError> {
  // Not the server's answer (a node that stopped answering): nothing in the query to point at.
  if (error instanceof HypershardError) return error;
  if (rewritten.changed && (error as { code?: string }).code?.startsWith('42') === true) {
    try {
      await client.query(`EXPLAIN ${original}`);
    } catch (inOriginal) {
      return failure(inOriginal, original, 'EXPLAIN '.length, '');
    }
  }
  return failure(error, rewritten.sql, offset, rewritten.changed ? ' (in the rewritten query; --no-rewrite runs it as given)' : '');
}

function failure(error: unknown, sql: string, offset: number, where: string): HypershardError {
  const e = error as { message?: string; code?: string; position?: string };
  const position = e.position === undefined ? undefined : Number(e.position) - offset;
  const pointer = position === undefined || position < 1 ? '' : `\n${pointAt(sql, position)}`;
  return new HypershardError('QUERY_FAILED', `query failed${where}: ${e.message ?? String(error)}${e.code === undefined ? '' : ` (SQLSTATE ${e.code})`}${pointer}`, { cause: error });
}

function renderAnswer(answer: Answer): string {
  if (answer.columns.length === 0) return `${answer.command ?? ''}${answer.rowCount === null ? '' : ` ${answer.rowCount}`}`;
  // One line per row: a multi-line value shows its newlines escaped.
  const rows = answer.rows.map((r) => r.map((v) => (v === null ? 'NULL' : v.replace(/\r?\n/g, '\\n'))));
  const n = answer.rowCount ?? rows.length;
  return `${table(answer.columns, rows)}\n(${n} row${n === 1 ? '' : 's'})`;
}

function explanation(result: RewriteResult, about: { timeZone: string; searchPath: readonly string[] }, verb: string): string[] {
  const settings = `TimeZone ${about.timeZone}, search_path ${about.searchPath.join(', ')}`;
  const head = result.changed ? `${verb} the rewritten query (${settings}):` : `${verb} the query as given (${settings}).`;
  return ['', head, ...(result.changed ? [`  ${result.sql}`] : []), ...renderExplanation(result)];
}
