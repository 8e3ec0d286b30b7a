/** What a SELECT reads: which FROM items are distributed hypertables, and the types of columns. */
import type { ColumnRef, Node, RangeVar, SelectStmt } from '@pgsql/types';
import { parseColumnType } from '../spec/columnType.js';
import { columnPath, functionName, operatorName } from './ast.js';
import type { ClusterMetadata, DistributedTable, ReferenceTable } from './model.js';

export interface Relation {
  /** The name the query refers to it by: its alias, else its relation name. */
  readonly refName: string;
  readonly alias: string | undefined;
  readonly rangeVar: RangeVar;
  readonly hypertable: DistributedTable | undefined;
  readonly reference: ReferenceTable | undefined;
}

export interface Scope {
  readonly relations: readonly Relation[];
  /** True when every FROM item is a plain relation we looked up (no joins, sub-selects, functions). */
  readonly simple: boolean;
  /** True when the FROM is plain relations joined by commas or INNER JOINs only. */
  readonly innerJoins: boolean;
  /** hypershard's first/last: their schema, and whether an unqualified name finds them (on the search path). */
  readonly bookends?: { readonly schema: string; readonly unqualified: boolean };
}

export const DEFAULT_SEARCH_PATH: readonly string[] = ['public'];

function findTable<T extends { table: { schema: string; name: string } }>(tables: readonly T[], rv: RangeVar, searchPath: readonly string[], metadata: ClusterMetadata): T | undefined {
  if (rv.catalogname !== undefined) return undefined;
  const name = rv.relname ?? '';
  if (rv.schemaname !== undefined) return tables.find((t) => t.table.schema === rv.schemaname && t.table.name === name);
  // The first schema on the path holding any relation of that name is where the name resolves.
  const holders = metadata.relationSchemas?.[name];
  for (const schema of searchPath) {
    const found = tables.find((t) => t.table.schema === schema && t.table.name === name);
    if (found !== undefined) return found;
    if (holders?.includes(schema) === true) return undefined;
  }
  return undefined;
}

export function scopeOf(stmt: SelectStmt, metadata: ClusterMetadata, searchPath: readonly string[], ctes: ReadonlySet<string>): Scope {
  const relations: Relation[] = [];
  let simple = true;
  let innerJoins = true;
  const visit = (item: Node): void => {
    if ('RangeVar' in item) {
      const rv = item.RangeVar;
      // A CTE of the same name shadows a table when unqualified.
      const shadowed = rv.schemaname === undefined && ctes.has(rv.relname ?? '');
      const alias = rv.alias?.aliasname;
      relations.push({
        refName: alias ?? rv.relname ?? '',
        alias,
        rangeVar: rv,
        hypertable: shadowed || rv.inh === false ? undefined : findTable(metadata.hypertables, rv, searchPath, metadata),
        reference: shadowed ? undefined : findTable(metadata.referenceTables, rv, searchPath, metadata),
      });
    } else if ('JoinExpr' in item) {
      simple = false;
      if (item.JoinExpr.jointype !== 'JOIN_INNER' || item.JoinExpr.alias !== undefined) innerJoins = false;
      if (item.JoinExpr.larg !== undefined) visit(item.JoinExpr.larg);
      if (item.JoinExpr.rarg !== undefined) visit(item.JoinExpr.rarg);
    } else {
      simple = false;
      innerJoins = false;
    }
  };
  for (const item of stmt.fromClause ?? []) visit(item);
  const bookends = metadata.timescaledb === undefined ? undefined : { schema: metadata.timescaledb.schema, unqualified: searchPath.includes(metadata.timescaledb.schema) };
  return { relations, simple, innerJoins, ...(bookends === undefined ? {} : { bookends }) };
}

/** The hypertable column a reference names, when the scope makes that unambiguous. */
export function resolveColumn(ref: ColumnRef, scope: Scope): { relation: Relation; column: string; type: string } | undefined {
  const path = columnPath(ref);
  if (path === undefined) return undefined;
  let relation: Relation | undefined;
  let column: string;
  if (path.length === 1) {
    // Unqualified: safe when the FROM is this one relation, or relations whose columns we all know.
    column = path[0] as string;
    if (scope.relations.length === 1 && scope.simple) relation = scope.relations[0];
    else if (scope.innerJoins && scope.relations.every((r) => (r.hypertable ?? r.reference) !== undefined)) {
      const having = scope.relations.filter((r) => (r.hypertable ?? r.reference)?.columns.some((c) => c.name === column));
      relation = having.length === 1 ? having[0] : undefined;
    }
  } else if (path.length === 2) {
    relation = scope.relations.find((r) => r.refName === path[0]);
    column = path[1] as string;
  } else return undefined;
  const table = relation?.hypertable ?? relation?.reference;
  const type = table?.columns.find((c) => c.name === column)?.type;
  if (relation === undefined || type === undefined) return undefined;
  return { relation, column, type };
}

const INTEGER_TYPES = new Set(['smallint', 'integer', 'bigint']);
const FLOAT_TYPES = new Set(['real', 'double precision']);
/** Types that sort the same on every node whatever its collation. */
const NON_COLLATABLE = new Set([...INTEGER_TYPES, ...FLOAT_TYPES, 'numeric', 'boolean', 'date', 'timestamp', 'timestamptz', 'interval', 'uuid', 'time', 'timetz', 'inet', 'bytea']);

export const typeClass = {
  integer: (t: string | undefined): boolean => t !== undefined && INTEGER_TYPES.has(baseType(t)),
  float: (t: string | undefined): boolean => t !== undefined && FLOAT_TYPES.has(baseType(t)),
  numeric: (t: string | undefined): boolean => t !== undefined && baseType(t) === 'numeric',
  collationFree: (t: string | undefined): boolean => t !== undefined && NON_COLLATABLE.has(baseType(t)),
};

/** `numeric(12,2)` → `numeric`, `int4` → `integer`, by the spec's own type grammar; arrays keep their brackets. */
export function baseType(type: string): string {
  const parsed = parseColumnType(type);
  return typeof parsed === 'string' ? type : `${parsed.base}${'[]'.repeat(parsed.arrayDepth)}`;
}

/**
 * The type of an expression, where it can be told from the tree and the metadata alone:
 * columns, casts, literals and the time functions. Undefined otherwise.
 */
export function inferType(node: Node, scope: Scope): string | undefined {
  if ('ColumnRef' in node) return resolveColumn(node.ColumnRef, scope)?.type;
  if ('TypeCast' in node) {
    const names = node.TypeCast.typeName?.names ?? [];
    const last = names[names.length - 1];
    const name = last !== undefined && 'String' in last ? last.String.sval : undefined;
    if ((node.TypeCast.typeName?.arrayBounds ?? []).length > 0) return undefined;
    const parsed = name === undefined ? undefined : parseColumnType(name);
    return parsed === undefined || typeof parsed === 'string' ? undefined : parsed.base;
  }
  if ('A_Const' in node) {
    const c = node.A_Const;
    if (c.ival !== undefined) return 'integer';
    // A whole number past int4 is an int8 literal, past int8 a numeric one, as PostgreSQL types them.
    if (c.fval !== undefined) return /^-?\d+$/.test(c.fval.fval ?? '') && BigInt(c.fval.fval ?? '0') >= -(2n ** 63n) && BigInt(c.fval.fval ?? '0') < 2n ** 63n ? 'bigint' : 'numeric';
    if (c.boolval !== undefined) return 'boolean';
    return undefined;
  }
  if ('A_Expr' in node && node.A_Expr.kind === 'AEXPR_OP' && ARITHMETIC_TYPES.has(operatorName(node.A_Expr) ?? '')) {
    const right = node.A_Expr.rexpr === undefined ? undefined : inferType(node.A_Expr.rexpr, scope);
    if (node.A_Expr.lexpr === undefined) return operatorName(node.A_Expr) === '-' ? right : undefined;
    const left = inferType(node.A_Expr.lexpr, scope);
    return left === undefined || right === undefined ? undefined : arithmeticType(baseType(left), baseType(right), operatorName(node.A_Expr) ?? '');
  }
  if ('FuncCall' in node) {
    const name = functionName(node.FuncCall);
    const args = node.FuncCall.args ?? [];
    if (name === 'date_bin' || name === 'date_trunc' || name === 'time_bucket') {
      const ts = args[1];
      return ts === undefined ? undefined : inferType(ts, scope);
    }
    return undefined;
  }
  return undefined;
}

const ARITHMETIC_TYPES = new Set(['+', '-', '*', '/', '%']);
const INTEGERS = ['smallint', 'integer', 'bigint'];

/**
 * The type PostgreSQL's built-in arithmetic gives two numbers: the wider integer, numeric with an
 * integer, double precision with any of those (its implicit casts); undefined where the operator
 * it picks is less plain (real with another type, `%` of floats, anything not a number).
 */
function arithmeticType(left: string, right: string, op: string): string | undefined {
  const [l, r] = [INTEGERS.indexOf(left), INTEGERS.indexOf(right)];
  if (l >= 0 && r >= 0) return INTEGERS[Math.max(l, r)];
  if (op === '%') return (left === 'numeric' && (r >= 0 || right === 'numeric')) || (right === 'numeric' && l >= 0) ? 'numeric' : undefined;
  if (left === 'real' && right === 'real') return 'real';
  const kinds = new Set([left, right]);
  if (kinds.has('real')) return undefined;
  if (kinds.has('double precision') && [left, right].every((t) => t === 'double precision' || t === 'numeric' || INTEGERS.includes(t))) return 'double precision';
  if ([left, right].every((t) => t === 'numeric' || INTEGERS.includes(t))) return 'numeric';
  return undefined;
}
