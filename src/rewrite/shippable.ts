/**
 * What postgres_fdw will not send to a data node, found in an expression before a rewrite claims
 * that a shard does the work: a filter, grouping key or aggregate argument holding one of these
 * is evaluated on the access node, over every row the shard sends. (Measured on PostgreSQL 15 and
 * 18; see shared/notes/field-notes.md §2, §6.) The model is conservative: a function it does not
 * know is taken as not shipped.
 *
 *   - volatile and stable functions with a column argument (now()-style ones without columns are
 *     constants by then: stable.ts wraps them);
 *   - functions whose only text input is a constant (date_part('hour', t), date_trunc with a zone,
 *     AT TIME ZONE, to_char): their collation does not come from a foreign column;
 *   - COALESCE, NULLIF, GREATEST, LEAST, IS [NOT] TRUE / FALSE / UNKNOWN;
 *   - timestamptz ± interval, and comparisons of a timestamptz with a date or timestamp (stable:
 *     they read the session's TimeZone), and casts of a timestamptz to date, timestamp or text;
 *   - sub-selects that refer to the row; functions outside pg_catalog.
 */
import type { FuncCall, Node } from '@pgsql/types';
import { columnPath, functionName, functionSchema, operatorName } from './ast.js';
import { bookendOf } from './aggregates.js';
import { inferType, type Scope } from './scope.js';

const VOLATILE = new Set(['random', 'random_normal', 'clock_timestamp', 'timeofday', 'nextval', 'currval', 'lastval', 'setval', 'gen_random_uuid', 'uuid_generate_v4', 'txid_current', 'pg_backend_pid', 'setseed']);
const STABLE = new Set(['now', 'current_setting', 'statement_timestamp', 'transaction_timestamp', 'to_timestamp', 'to_date', 'to_char', 'age', 'make_timestamptz', 'concat', 'concat_ws', 'format', 'current_date', 'localtimestamp']);
/** Functions whose first argument is a text constant naming a field or unit. */
const FIELD_FIRST = new Set(['date_part', 'extract', 'date_trunc']);
/** Built-ins postgres_fdw ships (immutable, no text constant of their own). */
const SHIPPED = new Set([
  'date_bin', 'abs', 'sqrt', 'cbrt', 'ln', 'log', 'log10', 'exp', 'power', 'pow', 'round', 'trunc', 'floor', 'ceil', 'ceiling', 'sign',
  'mod', 'div', 'degrees', 'radians', 'sin', 'cos', 'tan', 'asin', 'acos', 'atan', 'atan2', 'width_bucket', 'lower', 'upper', 'length',
  'char_length', 'character_length', 'octet_length', 'substr', 'substring', 'left', 'right', 'btrim', 'ltrim', 'rtrim', 'trim', 'replace',
  'split_part', 'starts_with', 'reverse', 'md5', 'array_length', 'cardinality', 'isfinite', 'int4', 'int8', 'float8', 'numeric',
  'count', 'sum', 'min', 'max', 'avg', 'bool_and', 'bool_or', 'every', 'var_pop', 'var_samp', 'variance', 'stddev', 'stddev_pop', 'stddev_samp',
  // Immutable aggregates postgres_fdw ships whole where the shard holds every row of a group (ORDER BY and WITHIN GROUP included).
  'array_agg', 'string_agg', 'percentile_cont', 'percentile_disc', 'mode',
]);
const NEVER_SHIPPED: Record<string, string> = { CoalesceExpr: 'COALESCE', MinMaxExpr: 'GREATEST/LEAST', NullIfExpr: 'NULLIF', BooleanTest: 'IS [NOT] TRUE/FALSE/UNKNOWN' };
const TIME_PARTS = new Set(['date', 'timestamp', 'time', 'text', 'varchar', 'char', 'bpchar']);
const COMPARISON = new Set(['=', '<>', '!=', '<', '<=', '>', '>=']);

/**
 * Why postgres_fdw would keep `node` (evaluated against the rows of `scope`) on the access node,
 * or undefined when nothing in it is known to stop it from shipping.
 */
export function unshippable(node: Node, scope: Scope): string | undefined {
  const kind = Object.keys(node)[0] as string;
  if (kind === 'ColumnRef' || kind === 'A_Const' || kind === 'ParamRef' || kind === 'A_Star') return undefined;
  if (kind in NEVER_SHIPPED) return `${NEVER_SHIPPED[kind] as string} is never shipped by postgres_fdw`;
  if (kind === 'SQLValueFunction') return 'a SQL value function (CURRENT_DATE, LOCALTIMESTAMP …) is STABLE';
  if (kind === 'SubLink') return correlated(node, scope) ? 'a sub-select that refers to the row is evaluated on the access node' : undefined;
  if ('A_Expr' in node && node.A_Expr.kind === 'AEXPR_NULLIF') return 'NULLIF is never shipped by postgres_fdw';
  if ('FuncCall' in node) {
    const reason = functionReason(node.FuncCall, scope);
    if (reason !== undefined) return reason;
  }
  if ('TypeCast' in node && node.TypeCast.arg !== undefined) {
    const to = typeNameOf(node.TypeCast.typeName?.names);
    const from = inferType(node.TypeCast.arg, scope);
    if (from === 'timestamptz' && to !== undefined && TIME_PARTS.has(to)) return `a timestamptz cast to ${to} is STABLE (it reads the session's TimeZone)`;
    if (to !== undefined && ['text', 'varchar'].includes(to) && from !== undefined && !['text', 'varchar'].includes(from) && hasColumn(node.TypeCast.arg)) {
      return `a ${from} cast to ${to} has no collation from a foreign column`;
    }
  }
  if ('A_Expr' in node && node.A_Expr.kind === 'AEXPR_OP') {
    const op = operatorName(node.A_Expr);
    const left = node.A_Expr.lexpr === undefined ? undefined : inferType(node.A_Expr.lexpr, scope);
    const right = node.A_Expr.rexpr === undefined ? undefined : inferType(node.A_Expr.rexpr, scope);
    if ((op === '+' || op === '-') && (left === 'timestamptz' || right === 'timestamptz') && (left === 'interval' || right === 'interval' || isIntervalLiteral(node.A_Expr.rexpr))) {
      return 'timestamptz ± interval is STABLE (it reads the session’s TimeZone)';
    }
    if (COMPARISON.has(op) && ((left === 'timestamptz' && (right === 'date' || right === 'timestamp')) || (right === 'timestamptz' && (left === 'date' || left === 'timestamp')))) {
      return `comparing a timestamptz with a ${left === 'timestamptz' ? right : left} is STABLE (it reads the session’s TimeZone)`;
    }
  }
  let found: string | undefined;
  const visit = (value: unknown): void => {
    if (found !== undefined) return;
    if (Array.isArray(value)) for (const v of value) visit(v);
    else if (value !== null && typeof value === 'object') {
      const keys = Object.keys(value);
      if (keys.length === 1 && /^[A-Z]/.test(keys[0] as string)) found = unshippable(value as Node, scope);
      else for (const k of keys) visit((value as Record<string, unknown>)[k]);
    }
  };
  visit((node as Record<string, unknown>)[kind]);
  return found;
}

function functionReason(call: FuncCall, scope: Scope): string | undefined {
  const name = functionName(call);
  const schema = functionSchema(call);
  // hypershard's first/last: split per shard into built-ins (aggregates.ts), their arguments checked as any.
  if (bookendOf(call, scope) !== undefined) return undefined;
  if (schema !== undefined && schema !== 'pg_catalog') return `${schema}.${name}() is not a built-in, and postgres_fdw ships only built-ins`;
  if (VOLATILE.has(name)) return `${name}() is VOLATILE`;
  const args = call.args ?? [];
  const columns = args.some(hasColumn);
  if (name === 'timezone' || (FIELD_FIRST.has(name) && args.length === 3)) return `${name}() with a time zone passes it as a text constant, whose collation does not come from a foreign column`;
  if (FIELD_FIRST.has(name)) {
    const ts = args[1] === undefined ? undefined : inferType(args[1], scope);
    if (name === 'date_trunc' && ts === 'timestamptz') return `date_trunc() on a timestamptz is STABLE (it reads the session’s TimeZone)`;
    return `${name}() takes its field as a text constant, whose collation does not come from a foreign column`;
  }
  if (STABLE.has(name) && columns) return `${name}() is STABLE`;
  if (!SHIPPED.has(name) && !STABLE.has(name)) return `${name}() is not a built-in hypershard knows postgres_fdw to ship`;
  return undefined;
}

/**
 * Whether a call gives one value for one input within a statement: a built-in this model knows,
 * shipped or not, and not volatile.
 */
export function deterministicCall(call: FuncCall): boolean {
  const name = functionName(call);
  const schema = functionSchema(call);
  return (schema === undefined || schema === 'pg_catalog') && !VOLATILE.has(name) && (SHIPPED.has(name) || STABLE.has(name) || FIELD_FIRST.has(name) || name === 'timezone');
}

function typeNameOf(names: readonly Node[] | undefined): string | undefined {
  const last = names?.[names.length - 1];
  return last !== undefined && 'String' in last ? last.String.sval : undefined;
}

function isIntervalLiteral(node: Node | undefined): boolean {
  return node !== undefined && 'TypeCast' in node && typeNameOf(node.TypeCast.typeName?.names) === 'interval';
}

/** Whether `node` reads a column of its own row (sub-selects not entered). */
export function hasColumn(node: Node): boolean {
  if ('ColumnRef' in node) return true;
  let found = false;
  const visit = (value: unknown): void => {
    if (found || value === null || typeof value !== 'object') return;
    if (Array.isArray(value)) value.forEach(visit);
    else {
      if ('ColumnRef' in (value as object)) found = true;
      else if (!('SubLink' in (value as object))) Object.values(value as object).forEach(visit);
    }
  };
  visit(node);
  return found;
}

/**
 * A sub-select naming a relation of this level qualified (unless its own FROM gives that name to
 * one of its own), or naming anything unqualified where it has no FROM of its own (elsewhere an
 * unqualified name is taken as its own).
 */
function correlated(node: Node, scope: Scope): boolean {
  let found = false;
  // `fromless`: inside a sub-select without FROM; `own`: the names sub-selects give their FROM items.
  const visit = (value: unknown, fromless: boolean, own: ReadonlySet<string>): void => {
    if (found || value === null || typeof value !== 'object') return;
    if (Array.isArray(value)) value.forEach((v) => visit(v, fromless, own));
    else if ('ColumnRef' in (value as object)) {
      const path = columnPath((value as { ColumnRef: import('@pgsql/types').ColumnRef }).ColumnRef);
      const qualifier = path !== undefined && path.length >= 2 ? path[path.length - 2] : undefined;
      if (qualifier !== undefined && !own.has(qualifier) && scope.relations.some((r) => r.refName === qualifier)) found = true;
      if (path !== undefined && path.length === 1 && fromless) found = true;
    } else if ('SelectStmt' in (value as object) || 'targetList' in (value as object) || ('op' in (value as object) && 'larg' in (value as object))) {
      // A SelectStmt node, or a set operation's arm (held bare, not as a node).
      const select = ('SelectStmt' in (value as object) ? (value as { SelectStmt: import('@pgsql/types').SelectStmt }).SelectStmt : value) as import('@pgsql/types').SelectStmt;
      const setOperation = select.op !== undefined && select.op !== 'SETOP_NONE';
      visit(Object.values(select), (select.fromClause ?? []).length === 0 && !setOperation, new Set([...own, ...fromNames(select.fromClause ?? [])]));
    } else Object.values(value as object).forEach((v) => visit(v, fromless, own));
  };
  visit(node, false, new Set());
  return found;
}

/** The names FROM items are referred to by: aliases, else relation names. */
function fromNames(items: readonly Node[]): string[] {
  return items.flatMap((item): string[] => {
    if ('RangeVar' in item) return [item.RangeVar.alias?.aliasname ?? item.RangeVar.relname ?? ''];
    if ('JoinExpr' in item) return [...fromNames([item.JoinExpr.larg, item.JoinExpr.rarg].filter((n) => n !== undefined)), ...(item.JoinExpr.alias?.aliasname === undefined ? [] : [item.JoinExpr.alias.aliasname])];
    if ('RangeSubselect' in item) return item.RangeSubselect.alias?.aliasname === undefined ? [] : [item.RangeSubselect.alias.aliasname];
    if ('RangeFunction' in item) return item.RangeFunction.alias?.aliasname === undefined ? [] : [item.RangeFunction.alias.aliasname];
    return [];
  });
}
