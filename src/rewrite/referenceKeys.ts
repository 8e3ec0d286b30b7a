/**
 * `space IN (SELECT … FROM <reference table>)`, resolved before planning: the keys are read
 * first, on the session's own connection as its own role (row-level security and privileges
 * apply as they would to the statement), and put into the statement as integer literals, so the
 * planner and the shard pinning of shards.ts read only the shards those keys hash to. Left in
 * the statement, the sub-select is an InitPlan: every shard's arm is planned and started, and
 * the list reaches them only at run time.
 *
 * The keys are read in a statement of their own, under its own snapshot. So the statement
 * carries a guard: when it runs, it reads the keys again under its own snapshot and, when they
 * differ from those substituted (a reference row changed in between), raises an error (SQLSTATE
 * 42P01, `KEYS_GUARD_NAME`) instead of answering; callers then run it as written. Only outside
 * a transaction block, where that retry is safe (inside one, an error would end the block).
 *
 * Only a sub-select that reads reference tables alone (no hypertable, no other relation, no
 * function that is not known to be non-volatile) is read first: it is small, it reads what
 * every data node holds a copy of, and reading it twice gives the same keys.
 */
import type { Node, SelectStmt } from '@pgsql/types';
import { hashUint32, remainderOf, rowHash } from '../route/hash.js';
import { quoteLiteral } from '../sql/quote.js';
import { guardFailure } from './guardFailure.js';
import { columnPath, functionName, isStar, operatorName, stringValue, walk } from './ast.js';
import { correlation } from './inSubquery.js';
import type { ClusterMetadata, RewriteOptions } from './model.js';
import { deparse, parseStatements } from './parser.js';
import { DEFAULT_SEARCH_PATH, resolveColumn, scopeOf, typeClass } from './scope.js';
import { wrappedSelect } from './wrappers.js';

/** At most this many keys are substituted; more, and the statement runs with the sub-select. */
export const MAX_REFERENCE_KEYS = 1000;

/** The relation name the guard's error names (at most 63 bytes, as PostgreSQL reports names). */
export const KEYS_GUARD_NAME = 'hypershard: reference keys changed; run as written';

/** Functions a key sub-select may call: known not to be volatile. */
const NON_VOLATILE = new Set(['lower', 'upper', 'length', 'char_length', 'btrim', 'ltrim', 'rtrim', 'trim', 'substr', 'substring', 'left', 'right', 'concat', 'replace', 'split_part', 'starts_with', 'abs', 'mod', 'coalesce', 'nullif', 'greatest', 'least']);

export interface KeyLookup {
  /** The sub-select as written, for explanations. */
  readonly subselect: string;
  /** `schema.name` of the hypertable and its space column. */
  readonly column: string;
  /**
   * Reads the keys: one row with `keys` (the distinct non-NULL keys, sorted, as an array's text),
   * `n` (how many, at most MAX_REFERENCE_KEYS + 1) and `type` (the sub-select's column type).
   */
  readonly query: string;
  /** The statement's bind parameters the query takes, in its order ($1 = the first of these). */
  readonly params: readonly number[];
  /**
   * How many of the hypertable's shards these keys hash to (as PostgreSQL's hash partitioning
   * does, src/route/hash.ts); undefined when not computed here (keys beyond int4, mixed moduli).
   */
  shardsHit(values: readonly string[]): { hit: number; of: number } | undefined;
  /** The statement with the keys in place of the sub-select (and the guard that checks them). */
  substitute(keys: KeyAnswer): string;
}

export interface KeyAnswer {
  /** PostgreSQL's text of the sorted distinct keys, e.g. `{3,8}`. */
  readonly keys: string;
  readonly type: string;
}

/** What the rows of `KeyLookup.query` say: the keys, or why they are not substituted. */
export function readKeyAnswer(row: Readonly<Record<string, unknown>> | undefined): { answer: KeyAnswer; values: string[] } | string {
  const n = Number(row?.n ?? 0);
  const keys = row?.keys;
  const type = row?.type;
  if (n === 0 || typeof keys !== 'string' || typeof type !== 'string') return 'the sub-select returned no key';
  if (n > MAX_REFERENCE_KEYS) return `the sub-select returned more than ${MAX_REFERENCE_KEYS} keys`;
  if (!['smallint', 'integer', 'bigint'].includes(type)) return `the sub-select returns ${type}, and only integer keys are hashed to shards here`;
  const values = keys.replace(/^\{|\}$/g, '').split(',');
  if (!values.every((v) => /^-?\d{1,19}$/.test(v))) return 'the keys are not integers';
  return { answer: { keys, type }, values };
}

/**
 * The key sub-select of `sql` that may be read first, if any: a plain SELECT (or EXPLAIN of one)
 * whose WHERE has, as one of its top-level AND terms, `space IN (SELECT …)` or
 * `space = ANY(ARRAY(SELECT …))` on a hypertable it reads, the sub-select reading reference tables
 * only. (A sub-select that may not be read first is left to the rewriter, which reports it.)
 */
export function findKeyLookup(sql: string, metadata: ClusterMetadata, options: RewriteOptions = {}): KeyLookup | undefined {
  if (metadata.referenceTables.length === 0) return undefined;
  let statements;
  try {
    statements = parseStatements(sql);
  } catch {
    return undefined;
  }
  const [first] = statements;
  if (statements.length !== 1 || first === undefined) return undefined;
  const text = Buffer.from(sql, 'utf8').subarray(first.location, first.length === undefined ? undefined : first.location + first.length).toString('utf8').trim();
  const wrapped = wrappedSelect(first.stmt, text);
  if (typeof wrapped !== 'object' || (wrapped.wrapper !== undefined && wrapped.wrapper !== 'EXPLAIN')) return undefined;
  const select = wrapped.select;
  if (select.op !== 'SETOP_NONE' || select.whereClause === undefined || select.withClause !== undefined) return undefined;
  const searchPath = options.searchPath ?? DEFAULT_SEARCH_PATH;
  const scope = scopeOf(select, metadata, searchPath, new Set());
  const terms = conjuncts(select.whereClause);
  for (const term of terms) {
    const found = keySubselect(term);
    if (found === undefined || !('ColumnRef' in found.column)) continue;
    const resolved = resolveColumn(found.column.ColumnRef, scope);
    const table = resolved?.relation.hypertable;
    if (resolved === undefined || table === undefined || resolved.column !== table.spaceColumn || !typeClass.integer(resolved.type)) continue;
    if (!readsReferenceTablesOnly(found.subselect, metadata, searchPath)) continue;
    // The sentinel the keys replace: a name no statement uses.
    const sentinel = `hypershard_keys_${Math.random().toString(36).slice(2)}`;
    if (sql.includes(sentinel)) return undefined;
    const subselect = deparse({ SelectStmt: found.subselect });
    const { text: query, params } = renumbered(found.subselect);
    const replaced = { ColumnRef: { fields: [{ String: { sval: sentinel } }] } } as Node;
    select.whereClause = terms.length === 1 ? replaced : { BoolExpr: { boolop: 'AND_EXPR', args: terms.map((t) => (t === term ? replaced : t)) } };
    const template = wrapped.write(deparse({ SelectStmt: select }));
    const space = deparse(found.column);
    const marker = deparse(replaced);
    if (!template.includes(marker)) return undefined;
    return {
      subselect,
      column: `${table.table.schema}.${table.table.name}.${table.spaceColumn}`,
      query:
        `SELECT pg_catalog.array_agg(k.v ORDER BY k.v)::text AS keys, pg_catalog.count(*) AS n, pg_catalog.pg_typeof(pg_catalog.min(k.v))::text AS type ` +
        `FROM (SELECT DISTINCT s.v FROM (${query}) AS s(v) WHERE s.v IS NOT NULL LIMIT ${MAX_REFERENCE_KEYS + 1}) AS k`,
      params,
      shardsHit: (values) => {
        const moduli = new Set(table.shards.map((x) => x.modulus));
        const modulus = table.shards[0]?.modulus;
        if (moduli.size !== 1 || modulus === undefined) return undefined;
        const hit = new Set<number>();
        for (const v of values) {
          const n = Number(v);
          if (!Number.isSafeInteger(n) || n < -2147483648 || n > 2147483647) return undefined;
          hit.add(remainderOf(rowHash(hashUint32(n >>> 0)), modulus));
        }
        return { hit: table.shards.filter((x) => hit.has(x.remainder)).length, of: table.shards.length };
      },
      substitute: (keys) => {
        const type = keys.type;
        const list = keys.keys.replace(/^\{|\}$/g, '').split(',').map((v) => `${v}::${type}`).join(', ');
        const current = `(SELECT pg_catalog.array_agg(DISTINCT g.v ORDER BY g.v) FROM (${subselect}) AS g(v) WHERE g.v IS NOT NULL)`;
        const guard = `(SELECT CASE WHEN ${current} = ${quoteLiteral(keys.keys)}::${type}[] THEN true ELSE ${guardFailure(KEYS_GUARD_NAME)} IS NULL END)`;
        return template.split(marker).join(`(${space} IN (${list}) AND ${guard})`);
      },
    };
  }
  return undefined;
}

/** `x IN (SELECT …)` or `x = ANY(ARRAY(SELECT …))`: x and the sub-select. */
function keySubselect(term: Node): { column: Node; subselect: SelectStmt } | undefined {
  if ('SubLink' in term) {
    const link = term.SubLink;
    const operator = (link.operName ?? []).map((n) => stringValue(n)).join('.');
    if (link.subLinkType !== 'ANY_SUBLINK' || (operator !== '' && operator !== '=') || link.testexpr === undefined || link.subselect === undefined || !('SelectStmt' in link.subselect)) return undefined;
    return { column: link.testexpr, subselect: link.subselect.SelectStmt };
  }
  if ('A_Expr' in term && term.A_Expr.kind === 'AEXPR_OP_ANY') {
    const e = term.A_Expr;
    const op = operatorName(e);
    const array = e.rexpr;
    if (op !== '=' || e.lexpr === undefined || array === undefined || !('SubLink' in array) || array.SubLink.subLinkType !== 'ARRAY_SUBLINK') return undefined;
    const sub = array.SubLink.subselect;
    return sub !== undefined && 'SelectStmt' in sub ? { column: e.lexpr, subselect: sub.SelectStmt } : undefined;
  }
  return undefined;
}

/** One output column, no correlation, only reference tables, no CTE, no function not known to be non-volatile. */
function readsReferenceTablesOnly(select: SelectStmt, metadata: ClusterMetadata, searchPath: readonly string[]): boolean {
  const targets = select.targetList ?? [];
  const only = targets[0];
  if (select.op !== 'SETOP_NONE' || targets.length !== 1 || only === undefined || !('ResTarget' in only) || only.ResTarget.val === undefined || isStar(only.ResTarget.val)) return false;
  if (correlation(select) !== undefined) return false;
  let ok = true;
  let relations = 0;
  walk({ SelectStmt: select }, (n) => {
    if ('WithClause' in n || 'RangeFunction' in n || 'RangeTableSample' in n || 'RangeTableFunc' in n || 'LockingClause' in n) ok = false;
    if ('SelectStmt' in n && (n.SelectStmt.withClause !== undefined || (n.SelectStmt.lockingClause ?? []).length > 0)) ok = false;
    if ('RangeVar' in n) {
      relations += 1;
      // Each relation a reference table, as the session's search path resolves its name.
      const probe: SelectStmt = { fromClause: [{ RangeVar: n.RangeVar }], op: 'SETOP_NONE' } as SelectStmt;
      const scope = scopeOf(probe, metadata, searchPath, new Set());
      if (scope.relations[0]?.reference === undefined) ok = false;
    }
    if ('FuncCall' in n && (!NON_VOLATILE.has(functionName(n.FuncCall)) || n.FuncCall.over !== undefined || (n.FuncCall.funcname ?? []).length > 1)) ok = false;
    if ('ColumnRef' in n && (columnPath(n.ColumnRef)?.length ?? 0) > 2) ok = false;
    return ok;
  });
  return ok && relations > 0;
}

/** The sub-select's text with its bind parameters numbered from $1, and which of the statement's they are. */
function renumbered(select: SelectStmt): { text: string; params: number[] } {
  const copy = structuredClone(select);
  const params: number[] = [];
  walk({ SelectStmt: copy }, (n) => {
    if ('ParamRef' in n) {
      const number = n.ParamRef.number ?? 0;
      let index = params.indexOf(number);
      if (index < 0) index = params.push(number) - 1;
      (n.ParamRef as { number: number }).number = index + 1;
    }
  });
  return { text: deparse({ SelectStmt: copy }), params };
}

function conjuncts(node: Node): Node[] {
  if ('BoolExpr' in node && node.BoolExpr.boolop === 'AND_EXPR') return (node.BoolExpr.args ?? []).flatMap(conjuncts);
  return [node];
}
