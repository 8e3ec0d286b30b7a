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

/** PostgreSQL's FigureColname: the column name a target gets when it has no alias. */
export function columnName(node: Node): string {
  if ('ColumnRef' in node) {
    const fields = node.ColumnRef.fields ?? [];
    return stringValue(fields[fields.length - 1]) ?? '?column?';
  }
  if ('FuncCall' in node) return functionName(node.FuncCall);
  if ('TypeCast' in node) {
    const inner = node.TypeCast.arg === undefined ? '?column?' : columnName(node.TypeCast.arg);
    if (inner !== '?column?') return inner;
    const names = node.TypeCast.typeName?.names ?? [];
    return stringValue(names[names.length - 1]) ?? '?column?';
  }
  if ('CaseExpr' in node) return 'case';
  if ('CoalesceExpr' in node) return 'coalesce';
  if ('MinMaxExpr' in node) return node.MinMaxExpr.op === 'IS_GREATEST' ? 'greatest' : 'least';
  if ('NullIfExpr' in node) return 'nullif';
  if ('A_ArrayExpr' in node) return 'array';
  if ('SQLValueFunction' in node) {
    const op = node.SQLValueFunction.op ?? '';
    return op.replace(/^SVFOP_/, '').replace(/_N$/, '').toLowerCase();
  }
  if ('A_Expr' in node && node.A_Expr.kind === 'AEXPR_NULLIF') return 'nullif';
  if ('SubLink' in node) {
    const link = node.SubLink;
    if (link.subLinkType === 'EXISTS_SUBLINK') return 'exists';
    if (link.subLinkType === 'ARRAY_SUBLINK') return 'array';
    if (link.subLinkType === 'EXPR_SUBLINK' && link.subselect !== undefined && 'SelectStmt' in link.subselect) {
      const t = link.subselect.SelectStmt.targetList?.[0];
      if (t !== undefined && 'ResTarget' in t) return t.ResTarget.name ?? (t.ResTarget.val === undefined ? '?column?' : columnName(t.ResTarget.val));
    }
  }
  return '?column?';
}
