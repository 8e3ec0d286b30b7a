/**
 * Statements that hold a SELECT: `EXPLAIN [ANALYZE] [(options)] …`, `DECLARE c … CURSOR FOR …`,
 * `COPY (…) TO …`, `CREATE TABLE … AS …` and `SELECT … INTO t`. The SELECT inside is rewritten
 * like any other; the statement around it is kept as the user wrote it, byte for byte (found
 * with PostgreSQL's own scanner), since the deparser drops some of it (`UNLOGGED`, `TEMP` …).
 *
 * Left alone: materialized views (their stored definition would name shards and outlive the
 * session's settings), `PREPARE` (its plan would run later under other settings), INSERT …
 * SELECT (the write is routed elsewhere), and statements whose query is not a SELECT.
 */
import type { IntoClause, Node, SelectStmt } from '@pgsql/types';
import { scanSync } from 'libpg-query';
import { quoteIdent, quoteQualified } from '../sql/quote.js';

export interface Wrapped {
  /** What holds it, for explanations: `EXPLAIN`, `DECLARE CURSOR`, … (undefined for a plain SELECT). */
  readonly wrapper: string | undefined;
  /** The SELECT to rewrite (a node of the statement's tree: rewriting edits it in place). */
  readonly select: SelectStmt;
  /** The statement's text around `selectText`, the rewritten SELECT. */
  write(selectText: string): string;
}

interface Token {
  readonly start: number;
  readonly end: number;
  readonly word: string | undefined;
  readonly text: string;
}

/**
 * The SELECT in `stmt` (whose text is `text`) and how to write the statement around it; why
 * not, for a statement holding a query the rewriter leaves alone; undefined for the others.
 */
export function wrappedSelect(stmt: Node, text: string): Wrapped | string | undefined {
  if ('SelectStmt' in stmt) {
    const into = stmt.SelectStmt.intoClause;
    if (into === undefined) return { wrapper: undefined, select: stmt.SelectStmt, write: (s) => s };
    // SELECT … INTO t is CREATE TABLE t AS SELECT …; only the top level may say INTO.
    const create = createTableAs(into);
    if (create === undefined) return 'SELECT … INTO with a column list or a catalog name is left as written';
    delete stmt.SelectStmt.intoClause;
    return { wrapper: 'SELECT … INTO', select: stmt.SelectStmt, write: (s) => `${create} ${s}` };
  }
  const inner = innerQuery(stmt);
  if (typeof inner !== 'object') return inner;
  const span = querySpan(stmt, text);
  if (span === undefined) return `${inner.wrapper}: the query inside could not be found in the statement's text, so it is left as written`;
  const bytes = Buffer.from(text, 'utf8');
  const before = bytes.subarray(0, span.start).toString('utf8');
  const after = bytes.subarray(span.end).toString('utf8');
  const nested = wrappedSelect(inner.query, bytes.subarray(span.start, span.end).toString('utf8'));
  if (typeof nested !== 'object') return nested;
  return { wrapper: nested.wrapper === undefined ? inner.wrapper : `${inner.wrapper} ${nested.wrapper}`, select: nested.select, write: (s) => `${before}${nested.write(s)}${after}` };
}

function innerQuery(stmt: Node): { wrapper: string; query: Node } | string | undefined {
  if ('CreateTableAsStmt' in stmt && stmt.CreateTableAsStmt.objtype === 'OBJECT_MATVIEW') {
    return "CREATE MATERIALIZED VIEW: its stored query is left as written (a rewrite would name shards, and be made for this session's settings, not those of a later REFRESH)";
  }
  if ('PrepareStmt' in stmt) return 'PREPARE: the prepared query is left as written (it may run later under other settings); EXECUTE runs it';
  if ('ExplainStmt' in stmt && stmt.ExplainStmt.query !== undefined) return { wrapper: 'EXPLAIN', query: stmt.ExplainStmt.query };
  if ('DeclareCursorStmt' in stmt && stmt.DeclareCursorStmt.query !== undefined) return { wrapper: 'DECLARE CURSOR', query: stmt.DeclareCursorStmt.query };
  if ('CopyStmt' in stmt && stmt.CopyStmt.query !== undefined && stmt.CopyStmt.is_from !== true) return { wrapper: 'COPY … TO', query: stmt.CopyStmt.query };
  if ('CreateTableAsStmt' in stmt && stmt.CreateTableAsStmt.objtype === 'OBJECT_TABLE' && stmt.CreateTableAsStmt.query !== undefined && 'SelectStmt' in stmt.CreateTableAsStmt.query) {
    return { wrapper: 'CREATE TABLE AS', query: stmt.CreateTableAsStmt.query };
  }
  return undefined;
}

/** `CREATE [TEMPORARY | UNLOGGED] TABLE name AS`, for SELECT … INTO's target. */
function createTableAs(into: IntoClause): string | undefined {
  const rel = into.rel;
  if (rel?.relname === undefined || rel.catalogname !== undefined || (into.colNames ?? []).length > 0) return undefined;
  const persistence = rel.relpersistence === 't' ? 'TEMPORARY ' : rel.relpersistence === 'u' ? 'UNLOGGED ' : '';
  const name = rel.schemaname === undefined ? quoteIdent(rel.relname) : quoteQualified(rel.schemaname, rel.relname);
  return `CREATE ${persistence}TABLE ${name} AS`;
}

/** Where the inner query's text starts and ends in the statement's (UTF-8 byte offsets). */
function querySpan(stmt: Node, text: string): { start: number; end: number } | undefined {
  const tokens: Token[] = scanSync(text)
    .tokens.filter((t) => t.tokenName !== 'SQL_COMMENT' && t.tokenName !== 'C_COMMENT')
    .map((t) => ({ start: t.start, end: t.end, text: t.text, word: t.keywordName === 'NO_KEYWORD' ? undefined : t.text.toUpperCase() }));
  const last = tokens[tokens.length - 1];
  if (last === undefined) return undefined;
  const endOf = (t: Token | undefined): number => t?.end ?? last.end;
  if ('ExplainStmt' in stmt) {
    // EXPLAIN [ ( option, … ) ] | [ ANALYZE ] [ VERBOSE ] query
    let i = 1;
    if (tokens[i]?.text === '(') i = closing(tokens, i) + 1;
    while (['ANALYZE', 'ANALYSE', 'VERBOSE'].includes(tokens[i]?.word ?? '')) i += 1;
    return tokens[i] === undefined ? undefined : { start: (tokens[i] as Token).start, end: endOf(last) };
  }
  if ('DeclareCursorStmt' in stmt) {
    // DECLARE name … CURSOR [ WITH | WITHOUT HOLD ] FOR query
    const cursor = tokens.findIndex((t, k) => k > 1 && t.word === 'CURSOR');
    const forAt = tokens.findIndex((t, k) => k > cursor && t.word === 'FOR');
    return cursor < 0 || forAt < 0 || tokens[forAt + 1] === undefined ? undefined : { start: (tokens[forAt + 1] as Token).start, end: endOf(last) };
  }
  if ('CopyStmt' in stmt) {
    // COPY ( query ) TO …
    if (tokens[1]?.text !== '(') return undefined;
    const close = closing(tokens, 1);
    return close <= 2 ? undefined : { start: (tokens[2] as Token).start, end: (tokens[close - 1] as Token).end };
  }
  if ('CreateTableAsStmt' in stmt) {
    // CREATE … TABLE name [ (columns) ] [ USING … ] [ WITH (…) ] [ ON COMMIT … ] [ TABLESPACE … ] AS query [ WITH [ NO ] DATA ]
    let depth = 0;
    let as = -1;
    for (const [k, t] of tokens.entries()) {
      if (t.text === '(') depth += 1;
      else if (t.text === ')') depth -= 1;
      else if (depth === 0 && t.word === 'AS') {
        as = k;
        break;
      }
    }
    if (as < 0 || tokens[as + 1] === undefined) return undefined;
    let end = tokens.length;
    const tail = tokens.slice(-3).map((t) => t.word);
    if (tail[1] === 'WITH' && tail[2] === 'DATA') end -= 2;
    else if (tail[0] === 'WITH' && tail[1] === 'NO' && tail[2] === 'DATA') end -= 3;
    return { start: (tokens[as + 1] as Token).start, end: (tokens[end - 1] as Token).end };
  }
  return undefined;
}

/** The index of the parenthesis closing the one at `open`. */
function closing(tokens: readonly Token[], open: number): number {
  let depth = 0;
  for (let k = open; k < tokens.length; k += 1) {
    const t = (tokens[k] as Token).text;
    if (t === '(') depth += 1;
    else if (t === ')') {
      depth -= 1;
      if (depth === 0) return k;
    }
  }
  return tokens.length;
}
