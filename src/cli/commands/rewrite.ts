/** `rewrite`: what the query rewriter makes of a statement, from the spec alone (no connection). */
import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { HypershardError } from '../../errors.js';
import { planLayout } from '../../plan/layout.js';
import { metadataFromLayout } from '../../rewrite/metadata.js';
import type { RewriteResult } from '../../rewrite/model.js';
import { rewriteSql } from '../../rewrite/rewrite.js';
import { loadSpec } from '../../spec/load.js';
import { command, EXIT, json, out } from '../run.js';

interface RewriteFlags {
  config: string;
  query?: string;
  file?: string;
  format: string;
  timeZone: string;
  searchPath: string;
}

export function registerRewriteCommand(program: Command): void {
  program
    .command('rewrite')
    .description('show how hypershard rewrites a query so more of it runs on the data nodes, and why where it does not (reads only the spec)')
    .option('-c, --config <file>', 'spec file', 'hypershard.yaml')
    .option('-q, --query <sql>', 'the query')
    .option('-f, --file <file>', 'a file holding the query; without --query or --file, it is read from stdin')
    .option('--format <format>', 'text or json', 'text')
    .option('--time-zone <tz>', "the session TimeZone to rewrite for (date_trunc becomes date_bin only where they agree)", 'UTC')
    .option('--search-path <schemas>', 'comma-separated schemas unqualified names resolve in', 'public')
    .action(
      command(async (opts: RewriteFlags) => {
        if (opts.format !== 'text' && opts.format !== 'json') throw new HypershardError('USAGE', `--format must be text or json, not ${JSON.stringify(opts.format)}`);
        const sql = await readQuery(opts);
        const { spec } = await loadSpec(opts.config);
        const searchPath = opts.searchPath.split(',').map((s) => s.trim()).filter((s) => s !== '');
        const result = rewriteOrExplain(sql, () => rewriteSql(sql, metadataFromLayout(planLayout(spec)), { timeZone: opts.timeZone, searchPath }));
        if (opts.format === 'json') json({ sql: result.sql, rewrites: result.rewrites, unchanged: result.unchanged });
        else out(renderRewrite(sql, result, `TimeZone ${opts.timeZone}, search_path ${searchPath.join(', ')}`));
        return EXIT.ok;
      }),
    );
}

/** The query from --query, --file or stdin (exactly one). */
export async function readQuery(opts: { query?: string; file?: string }): Promise<string> {
  if (opts.query !== undefined && opts.file !== undefined) throw new HypershardError('USAGE', 'give --query or --file, not both');
  let sql: string;
  if (opts.query !== undefined) sql = opts.query;
  else if (opts.file !== undefined) {
    try {
      sql = await readFile(opts.file, 'utf8');
    } catch (error) {
      throw new HypershardError('USAGE', `cannot read ${opts.file}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`, { cause: error });
    }
  } else {
    if (process.stdin.isTTY) throw new HypershardError('USAGE', 'give --query, --file, or the query on stdin');
    const chunks: Buffer[] = [];
    for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
    sql = Buffer.concat(chunks).toString('utf8');
  }
  if (sql.trim() === '') throw new HypershardError('USAGE', 'the query is empty');
  return sql;
}

/**
 * Runs the rewriter; a query it cannot parse is bad input, reported with where it stops (the
 * same grammar as the server's, so the server would say the same).
 */
function rewriteOrExplain(sql: string, rewrite: () => RewriteResult): RewriteResult {
  try {
    return rewrite();
  } catch (error) {
    const details = (error as { sqlDetails?: { message?: string; cursorPosition?: number } }).sqlDetails;
    if (details === undefined) throw error;
    const at = details.cursorPosition === undefined ? '' : `\n${pointAt(sql, details.cursorPosition + 1)}`;
    throw new HypershardError('AUDIT_PARSE', `cannot parse the query: ${details.message ?? String(error)}${at}`, { cause: error });
  }
}

export function renderRewrite(original: string, result: RewriteResult, settings: string): string {
  const lines = ['Original:', indent(original.trim()), '', `Rewritten (${settings}):`, indent(result.changed ? result.sql : '(unchanged)')];
  lines.push(...renderExplanation(result));
  return lines.join('\n');
}

/** The rewrites made, then the ones considered and not made, each `kind: detail`. */
export function renderExplanation(result: Pick<RewriteResult, 'rewrites' | 'unchanged'>): string[] {
  const lines: string[] = [];
  if (result.rewrites.length > 0) lines.push('', 'Rewrites:', ...result.rewrites.map((r) => `  ${r.kind}: ${r.detail}`));
  if (result.unchanged.length > 0) lines.push('', 'Not rewritten:', ...result.unchanged.map((u) => `  ${u.kind}: ${u.reason}`));
  return lines;
}

/**
 * The line of `sql` holding a 1-based character `position` (as PostgreSQL reports it), with a
 * caret under it, like psql's `LINE 1: …`.
 */
export function pointAt(sql: string, position: number): string {
  const chars = Array.from(sql); // code points, as PostgreSQL counts positions
  const index = Math.min(Math.max(position - 1, 0), chars.length);
  const before = chars.slice(0, index).join('');
  const lineStart = before.lastIndexOf('\n') + 1;
  const lineNumber = before.split('\n').length;
  const lineEnd = sql.indexOf('\n', before.length);
  const line = sql.slice(lineStart, lineEnd === -1 ? undefined : lineEnd);
  const prefix = `LINE ${lineNumber}: `;
  return `${prefix}${line}\n${' '.repeat(prefix.length + Array.from(before.slice(lineStart)).length)}^`;
}

const indent = (text: string): string => text.split('\n').map((l) => `  ${l}`).join('\n');
