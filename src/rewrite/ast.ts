/** Small, typed helpers over libpg_query's parse tree. */
import type { A_Expr, ColumnRef, FuncCall, Node, SelectStmt } from '@pgsql/types';
import { deparse } from './parser.js';

export function stringValue(node: Node | undefined): string | undefined {
  return node !== undefined && 'String' in node ? node.String.sval : undefined;
}

/** An operator expression's operator as written, its parts joined: `>=`, `pg_catalog=`. */
export function operatorName(e: Pick<A_Expr, 'name'>): string {
  return (e.name ?? []).map((n) => stringValue(n) ?? '').join('');
}

/** Comparison operators with their operands swapped (`a < b` ⇔ `b > a`); `!=` spelled `<>`. */
export const FLIPPED_OPERATORS: Readonly<Record<string, string>> = { '=': '=', '<>': '<>', '!=': '<>', '<': '>', '<=': '>=', '>': '<', '>=': '<=' };

/** `count`, `pg_catalog.count` → `count`. */
export function functionName(call: FuncCall): string {
  const names = (call.funcname ?? []).map((n) => stringValue(n) ?? '');
  return (names[names.length - 1] ?? '').toLowerCase();
}

export function functionSchema(call: FuncCall): string | undefined {
  const names = call.funcname ?? [];
  return names.length > 1 ? stringValue(names[0]) : undefined;
}

/** `a.b` → ['a', 'b']; undefined for `a.*`. */
export function columnPath(ref: ColumnRef): string[] | undefined {
  const path: string[] = [];
  for (const field of ref.fields ?? []) {
    const s = stringValue(field);
    if (s === undefined) return undefined;
    path.push(s);
  }
  return path;
}

export function isStar(node: Node): boolean {
  return 'ColumnRef' in node && (node.ColumnRef.fields ?? []).some((f) => 'A_Star' in f);
}

/** Expression identity as PostgreSQL would see it: the deparsed text, blind to source positions. */
export function sameExpression(a: Node, b: Node): boolean {
  return deparse(a) === deparse(b);
}

export function integerConstant(node: Node | undefined): number | undefined {
  if (node === undefined || !('A_Const' in node)) return undefined;
  const c = node.A_Const;
  if (c.ival !== undefined) return c.ival.ival ?? 0;
  return undefined;
}

export function isNullConstant(node: Node | undefined): boolean {
  return node !== undefined && 'A_Const' in node && node.A_Const.isnull === true;
}

/** Children of a node that are expressions or statements, for walking. */
function children(value: unknown, out: Node[]): void {
  if (Array.isArray(value)) for (const v of value) children(v, out);
  else if (value !== null && typeof value === 'object') {
    const keys = Object.keys(value);
    // A Node is an object with exactly one key naming its type, whose first letter is upper case.
    if (keys.length === 1 && /^[A-Z]/.test(keys[0] as string)) out.push(value as Node);
    else for (const k of keys) children((value as Record<string, unknown>)[k], out);
  }
}

/**
 * Visits every node below `root` (not itself) in pre-order. The visitor returns false to skip
 * a node's subtree.
 */
export function walk(root: unknown, visit: (node: Node) => boolean | void): void {
  const stack: Node[] = [];
  children(Object.values(root as object), stack);
  stack.reverse();
  while (stack.length > 0) {
    const node = stack.pop() as Node;
    if (visit(node) === false) continue;
    const next: Node[] = [];
    children(Object.values(node)[0], next);
    for (let i = next.length - 1; i >= 0; i -= 1) stack.push(next[i] as Node);
  }
}

/**
 * Rebuilds `root` bottom-up: `replace` sees each node (after its children were rebuilt) and
 * returns a replacement or undefined to keep it. Sub-statements are entered only when
 * `intoSubqueries` is set.
 */
export function transform(root: Node, replace: (node: Node) => Node | undefined, intoSubqueries = false): Node {
  const rebuild = (value: unknown): unknown => {
    if (Array.isArray(value)) return value.map(rebuild);
    if (value === null || typeof value !== 'object') return value;
    const keys = Object.keys(value);
    if (keys.length === 1 && /^[A-Z]/.test(keys[0] as string)) {
      const node = value as Node;
      if (!intoSubqueries && ('SubLink' in node || 'SelectStmt' in node || 'RangeSubselect' in node)) return replace(node) ?? node;
      const kind = keys[0] as string;
      const body = rebuild((value as Record<string, unknown>)[kind]);
      const rebuilt = { [kind]: body } as Node;
      return replace(rebuilt) ?? rebuilt;
    }
    const out: Record<string, unknown> = {};
    for (const k of keys) out[k] = rebuild((value as Record<string, unknown>)[k]);
    return out;
  };
  return rebuild(root) as Node;
}

/**
 * Rebuilds top-down: `replace` sees a node before its children and may substitute it (the
 * substitute is not entered). Sub-selects are kept as they are, for their own pass.
 */
export function replaceTop(node: Node, replace: (n: Node) => Node | undefined): Node {
  const replaced = replace(node);
  if (replaced !== undefined) return replaced;
  if ('SubLink' in node || 'SelectStmt' in node) return node;
  const rebuild = (value: unknown): unknown => {
    if (Array.isArray(value)) return value.map(rebuild);
    if (value === null || typeof value !== 'object') return value;
    const keys = Object.keys(value);
    if (keys.length === 1 && /^[A-Z]/.test(keys[0] as string)) return replaceTop(value as Node, replace);
    const out: Record<string, unknown> = {};
    for (const k of keys) out[k] = rebuild((value as Record<string, unknown>)[k]);
    return out;
  };
  const kind = Object.keys(node)[0] as string;
  return { [kind]: rebuild((node as Record<string, unknown>)[kind]) } as Node;
}

export function containsNode(node: Node, test: (n: Node) => boolean): boolean {
  if (test(node)) return true;
  let found = false;
  walk(node, (n) => {
    if (test(n)) found = true;
    return !found;
  });
  return found;
}

/**
 * The SELECTs a statement contains (itself first), through FROM, WITH, set operations and
 * sub-links. Each SELECT's set-operation arms are expanded once: a UNION ALL of n arms (one per
 * shard) is a chain n deep, and expanding every sub-chain again made this exponential in n.
 */
export function selectStatements(stmt: SelectStmt): SelectStmt[] {
  const out: SelectStmt[] = [];
  const seen = new Set<SelectStmt>();
  const add = (s: SelectStmt): void => {
    if (seen.has(s)) return;
    seen.add(s);
    out.push(s);
  };
  const nested = (s: SelectStmt): SelectStmt[] => {
    const found: SelectStmt[] = [];
    walk({ SelectStmt: s }, (n) => {
      if ('SelectStmt' in n) found.push(n.SelectStmt);
    });
    return found;
  };
  add(stmt);
  const first = nested(stmt);
  for (const s of first) add(s);
  // Set operations keep their arms unwrapped (`larg`/`rarg` are SelectStmt, not Node).
  const expanded = new Set<SelectStmt>();
  const arms = (s: SelectStmt): void => {
    if (expanded.has(s)) return;
    expanded.add(s);
    for (const arm of [s.larg, s.rarg]) {
      if (arm === undefined) continue;
      add(arm);
      arms(arm);
      for (const inner of nested(arm)) {
        add(inner);
        arms(inner);
      }
    }
  };
  for (const s of [stmt, ...first]) arms(s);
  return out;
}

/**
 * PostgreSQL's FigureColname (parse_target.c): the name an output without an alias gets, and
 * `?column?` when nothing names it; undefined when only the catalog could tell (a scalar
 * sub-select of `SELECT *` is named after the first column the `*` stands for).
 */
export function columnName(node: Node): string | undefined {
  const figured = figure(node);
  return figured === 'unknown' ? undefined : (figured?.[0] ?? '?column?');
}

/** FigureColnameInternal: a name and its strength (2 a good name; 1 a cast's type, `case`), none, or unknown. */
type Figured = readonly [name: string, strength: 1 | 2] | undefined | 'unknown';

const SQL_VALUE_FUNCTIONS: Readonly<Record<string, string>> = {
  SVFOP_CURRENT_DATE: 'current_date',
  SVFOP_CURRENT_TIME: 'current_time',
  SVFOP_CURRENT_TIME_N: 'current_time',
  SVFOP_CURRENT_TIMESTAMP: 'current_timestamp',
  SVFOP_CURRENT_TIMESTAMP_N: 'current_timestamp',
  SVFOP_LOCALTIME: 'localtime',
  SVFOP_LOCALTIME_N: 'localtime',
  SVFOP_LOCALTIMESTAMP: 'localtimestamp',
  SVFOP_LOCALTIMESTAMP_N: 'localtimestamp',
  SVFOP_CURRENT_ROLE: 'current_role',
  SVFOP_CURRENT_USER: 'current_user',
  SVFOP_USER: 'user',
  SVFOP_SESSION_USER: 'session_user',
  SVFOP_CURRENT_CATALOG: 'current_catalog',
  SVFOP_CURRENT_SCHEMA: 'current_schema',
};
const XML_FUNCTIONS: Readonly<Record<string, string>> = {
  IS_XMLCONCAT: 'xmlconcat',
  IS_XMLELEMENT: 'xmlelement',
  IS_XMLFOREST: 'xmlforest',
  IS_XMLPARSE: 'xmlparse',
  IS_XMLPI: 'xmlpi',
  IS_XMLROOT: 'xmlroot',
  IS_XMLSERIALIZE: 'xmlserialize',
};
const JSON_FUNCTIONS: Readonly<Record<string, string>> = { JSON_EXISTS_OP: 'json_exists', JSON_QUERY_OP: 'json_query', JSON_VALUE_OP: 'json_value' };
/** Nodes named like the function they are written as, whatever their arguments. */
const NAMED_NODES: Readonly<Record<string, string>> = {
  GroupingFunc: 'grouping',
  MergeSupportFunc: 'merge_action',
  A_ArrayExpr: 'array',
  RowExpr: 'row',
  CoalesceExpr: 'coalesce',
  XmlSerialize: 'xmlserialize',
  JsonParseExpr: 'json',
  JsonScalarExpr: 'json_scalar',
  JsonSerializeExpr: 'json_serialize',
  JsonObjectConstructor: 'json_object',
  JsonArrayConstructor: 'json_array',
  JsonArrayQueryConstructor: 'json_array',
  JsonObjectAgg: 'json_objectagg',
  JsonArrayAgg: 'json_arrayagg',
};
const good = (name: string | undefined): Figured => (name === undefined ? undefined : [name, 2]);
/** The last field that is a name (not `*`, not a subscript). */
const lastName = (fields: readonly Node[] | undefined): string | undefined => (fields ?? []).reduce<string | undefined>((found, f) => stringValue(f) ?? found, undefined);

function figure(node: Node | undefined): Figured {
  if (node === undefined) return undefined;
  const kind = Object.keys(node)[0] as string;
  const named = NAMED_NODES[kind];
  if (named !== undefined) return [named, 2];
  if ('ColumnRef' in node) return good(lastName(node.ColumnRef.fields));
  if ('A_Indirection' in node) {
    const field = lastName(node.A_Indirection.indirection);
    return field === undefined ? figure(node.A_Indirection.arg) : [field, 2];
  }
  if ('FuncCall' in node) return good(stringValue(node.FuncCall.funcname?.at(-1)));
  if ('A_Expr' in node) return node.A_Expr.kind === 'AEXPR_NULLIF' ? ['nullif', 2] : undefined;
  if ('TypeCast' in node) {
    const inner = figure(node.TypeCast.arg);
    if (inner === 'unknown' || inner?.[1] === 2) return inner;
    const type = stringValue(node.TypeCast.typeName?.names?.at(-1));
    return type === undefined ? inner : [type, 1];
  }
  if ('CollateClause' in node) return figure(node.CollateClause.arg);
  if ('CaseExpr' in node) {
    const inner = figure(node.CaseExpr.defresult);
    return inner === 'unknown' || inner?.[1] === 2 ? inner : ['case', 1];
  }
  if ('MinMaxExpr' in node) return node.MinMaxExpr.op === 'IS_GREATEST' ? ['greatest', 2] : node.MinMaxExpr.op === 'IS_LEAST' ? ['least', 2] : undefined;
  if ('SQLValueFunction' in node) return good(SQL_VALUE_FUNCTIONS[node.SQLValueFunction.op ?? '']);
  if ('XmlExpr' in node) return good(XML_FUNCTIONS[node.XmlExpr.op ?? '']);
  if ('JsonFuncExpr' in node) return good(JSON_FUNCTIONS[node.JsonFuncExpr.op ?? '']);
  if ('SubLink' in node) {
    const link = node.SubLink;
    if (link.subLinkType === 'EXISTS_SUBLINK') return ['exists', 2];
    if (link.subLinkType === 'ARRAY_SUBLINK') return ['array', 2];
    if (link.subLinkType === 'EXPR_SUBLINK' && link.subselect !== undefined && 'SelectStmt' in link.subselect) return firstOutput(link.subselect.SelectStmt);
  }
  return undefined;
}

/** The name of a sub-select's first output: a set operation's is its first arm's, VALUES' `column1`. */
function firstOutput(stmt: SelectStmt): Figured {
  if (stmt.larg !== undefined) return firstOutput(stmt.larg);
  if (stmt.valuesLists !== undefined) return ['column1', 2];
  const t = stmt.targetList?.[0];
  if (t === undefined || !('ResTarget' in t) || t.ResTarget.val === undefined) return undefined;
  if (t.ResTarget.name !== undefined) return [t.ResTarget.name, 2];
  if (isStar(t.ResTarget.val)) return 'unknown';
  const name = columnName(t.ResTarget.val);
  return name === undefined ? 'unknown' : [name, 2];
}
