/**
 * PostgreSQL's own grammar (libpg_query compiled to WebAssembly), loaded once when this module
 * is imported, so the rewriter can parse and deparse synchronously on the query path.
 */
import type { Node, SelectStmt } from '@pgsql/types';
import { deparseSync, loadModule, parseSync } from 'pgsql-parser';

await loadModule();

export interface ParsedStatement {
  readonly stmt: Node;
  /** Where the statement's text starts and ends in the input (UTF-8 byte offsets, as PostgreSQL reports). */
  readonly location: number;
  readonly length: number | undefined;
}

/** @throws the parser's error (with the server's message) when the SQL is not valid. */
export function parseStatements(sql: string): ParsedStatement[] {
  const result = parseSync(sql) as { stmts?: { stmt: Node; stmt_location?: number; stmt_len?: number }[] };
  return (result.stmts ?? []).map((s) => ({ stmt: s.stmt, location: s.stmt_location ?? 0, length: s.stmt_len }));
}

export function deparse(node: Node): string {
  return deparseSync(node, { pretty: false });
}

/** A SELECT built as text from deparsed fragments and quoted names, parsed back into a tree. */
export function parseSelect(sql: string): SelectStmt {
  const [parsed] = parseStatements(sql);
  if (parsed === undefined || !('SelectStmt' in parsed.stmt)) throw new TypeError(`not a SELECT: ${sql}`);
  return parsed.stmt.SelectStmt;
}

/** One expression, built as text, as a tree. */
export function parseExpression(sql: string): Node {
  const target = parseSelect(`SELECT ${sql}`).targetList?.[0];
  if (target === undefined || !('ResTarget' in target) || target.ResTarget.val === undefined) throw new TypeError(`not an expression: ${sql}`);
  return target.ResTarget.val;
}
