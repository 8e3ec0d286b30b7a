/**
 * Rewrites as templates over a statement's free literals, so a dashboard whose time range
 * changes on every refresh is rewritten once per shape, not once per refresh.
 *
 * A literal is free when no decision of the rewriter can depend on its value: a plain string or
 * number compared (=, <>, <, <=, >, >=, BETWEEN, IN) with a column that is not a space column.
 * Bucket widths, date_trunc units, LIMIT counts, ordinals and space-key values are never free.
 * The template is made by rewriting the statement with each free literal replaced by a sentinel
 * of the same kind, and is kept only when, with the statement's own literals put back, it equals
 * the statement's own rewrite: two values give one shape of rewrite, or the shape is not
 * templated at all. A later statement of the shape (same text outside its free literals, same
 * fixed literals) then costs a scan of its text and a join of the template's pieces.
 */
import { operatorName } from './ast.js';
import type { Node } from '@pgsql/types';
import { parseSync, scanSync } from 'libpg-query';
import type { Literal, Shape } from './literals.js';
import type { RewriteResult } from './model.js';

/** Literal text, or the index of a statement's literal. */
type Pieces = readonly (string | number)[];

export interface Template {
  /** Per literal of the shape: the text it must have (a fixed literal), or undefined (free). */
  readonly fixed: readonly (string | undefined)[];
  readonly changed: boolean;
  readonly touchesHypertable: boolean;
  readonly sql: Pieces;
  readonly rewrites: readonly { readonly kind: RewriteResult['rewrites'][number]['kind']; readonly detail: Pieces }[];
  readonly unchanged: readonly { readonly kind: RewriteResult['unchanged'][number]['kind']; readonly reason: Pieces }[];
}

const COMPARISONS = new Set(['=', '<>', '!=', '<', '<=', '>', '>=']);
const TOKEN_OF: Record<Literal['kind'], string> = { string: 'SCONST', integer: 'ICONST', decimal: 'FCONST' };

/**
 * The template of `sql` (whose own rewrite is `result`), or undefined when it has no free
 * literal or its rewrite does not follow its literals. `rewrite` rewrites another text for the
 * same settings; `spaceColumns` names every hypertable's space column.
 */
export function buildTemplate(sql: string, shape: Shape, result: RewriteResult, rewrite: (sql: string) => RewriteResult, spaceColumns: ReadonlySet<string>): Template | undefined {
  if (shape.literals.length === 0) return undefined;
  const bytes = byteOffsets(sql, shape.literals);
  if (!scannedAlike(sql, shape.literals, bytes)) return undefined;
  let tree: Node[];
  try {
    tree = (parseSync(sql).stmts ?? []).map((s) => s.stmt).filter((s): s is Node => s !== undefined);
  } catch {
    return undefined;
  }
  const freeAt = freeLocations(tree, spaceColumns);
  const free = shape.literals.map((_, i) => freeAt.has(bytes[i] as number));
  if (!free.includes(true)) return undefined;

  // Sentinels: values of the same kind found nowhere in the statement or its rewrite.
  const seen = [sql, result.sql, ...result.rewrites.map((r) => r.detail), ...result.unchanged.map((u) => u.reason)].join('\u0000');
  const sentinels = shape.literals.map((l, i) => (free[i] === true ? sentinel(l.kind, i) : undefined));
  if (sentinels.some((s) => s !== undefined && seen.includes(s))) return undefined;
  let probe = '';
  let copied = 0;
  shape.literals.forEach((l, i) => {
    const s = sentinels[i];
    if (s === undefined) return;
    probe += sql.slice(copied, l.start) + s;
    copied = l.end;
  });
  probe += sql.slice(copied);
  let probed: RewriteResult;
  try {
    probed = rewrite(probe);
  } catch {
    return undefined;
  }
  const split = splitter(sentinels);
  const template: Template = {
    fixed: shape.literals.map((l, i) => (free[i] === true ? undefined : l.text)),
    changed: probed.changed,
    touchesHypertable: probed.touchesHypertable,
    sql: split(probed.sql),
    rewrites: probed.rewrites.map((r) => ({ kind: r.kind, detail: split(r.detail) })),
    unchanged: probed.unchanged.map((u) => ({ kind: u.kind, reason: split(u.reason) })),
  };
  const again = instantiate(template, shape);
  return again !== undefined && sameResult(again, result) ? template : undefined;
}

/** The rewrite of a statement of the template's shape, or undefined when a fixed literal differs. */
export function instantiate(template: Template, shape: Shape): RewriteResult | undefined {
  const { literals } = shape;
  for (let i = 0; i < template.fixed.length; i += 1) {
    const fixed = template.fixed[i];
    if (fixed !== undefined && literals[i]?.text !== fixed) return undefined;
  }
  const fill = (pieces: Pieces): string => {
    let out = '';
    for (const p of pieces) out += typeof p === 'string' ? p : (literals[p] as Literal).text;
    return out;
  };
  return {
    sql: fill(template.sql),
    changed: template.changed,
    touchesHypertable: template.touchesHypertable,
    rewrites: template.rewrites.map((r) => ({ kind: r.kind, detail: fill(r.detail) })),
    unchanged: template.unchanged.map((u) => ({ kind: u.kind, reason: fill(u.reason) })),
  };
}

function sentinel(kind: Literal['kind'], i: number): string {
  const n = 987_600_000 + i * 37;
  return kind === 'string' ? `'hypershard_literal_${i}_x'` : kind === 'integer' ? String(n) : `${n}.25`;
}

/** Splits a text at the sentinels (numbers only where no digit, letter or point adjoins them) into pieces. */
function splitter(sentinels: readonly (string | undefined)[]): (text: string) => Pieces {
  const alternatives = sentinels.flatMap((s, i) => (s === undefined ? [] : [{ s, i }]));
  const pattern = new RegExp(alternatives.map(({ s }) => (s.startsWith("'") ? escape(s) : `(?<![\\w.])${escape(s)}(?![\\w.])`)).map((p) => `(${p})`).join('|'), 'g');
  return (text) => {
    const pieces: (string | number)[] = [];
    let copied = 0;
    for (const m of text.matchAll(pattern)) {
      const which = m.slice(1).findIndex((g) => g !== undefined);
      pieces.push(text.slice(copied, m.index), (alternatives[which] as { i: number }).i);
      copied = (m.index ?? 0) + m[0].length;
    }
    pieces.push(text.slice(copied));
    return pieces.filter((p) => p !== '');
  };
}

const escape = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

function sameResult(a: RewriteResult, b: RewriteResult): boolean {
  return JSON.stringify([a.sql, a.changed, a.touchesHypertable, a.rewrites, a.unchanged]) === JSON.stringify([b.sql, b.changed, b.touchesHypertable, b.rewrites, b.unchanged]);
}

/** UTF-8 offsets of the literals' starts (PostgreSQL's locations are in bytes). */
function byteOffsets(sql: string, literals: readonly Literal[]): number[] {
  const out: number[] = [];
  let bytes = 0;
  let at = 0;
  for (const l of literals) {
    bytes += Buffer.byteLength(sql.slice(at, l.start), 'utf8');
    at = l.start;
    out.push(bytes);
  }
  return out;
}

/** Whether PostgreSQL's scanner finds each literal where the JavaScript scanner did, as the same kind of token. */
function scannedAlike(sql: string, literals: readonly Literal[], bytes: readonly number[]): boolean {
  let tokens: { start: number; end: number; tokenName: string }[];
  try {
    tokens = scanSync(sql).tokens;
  } catch {
    return false;
  }
  const at = new Map(tokens.map((t) => [t.start, t]));
  return literals.every((l, i) => {
    const t = at.get(bytes[i] as number);
    return t !== undefined && t.tokenName === TOKEN_OF[l.kind] && t.end - t.start === Buffer.byteLength(l.text, 'utf8');
  });
}

/**
 * Byte locations of the constants compared with a column other than a space column:
 * `col op c`, `c op col`, `col [NOT] BETWEEN c AND c`, `col [NOT] IN (c, …)`, where c is a
 * constant or a constant cast to a type (`'…'::timestamptz`, `timestamptz '…'`).
 */
function freeLocations(roots: readonly Node[], spaceColumns: ReadonlySet<string>): Set<number> {
  const out = new Set<number>();
  const column = (n: Node | undefined): boolean => {
    if (n === undefined || !('ColumnRef' in n)) return false;
    const fields = n.ColumnRef.fields ?? [];
    const last = fields[fields.length - 1];
    return last !== undefined && 'String' in last && last.String.sval !== undefined && !spaceColumns.has(last.String.sval);
  };
  const constant = (n: Node | undefined): void => {
    if (n === undefined) return;
    if ('TypeCast' in n && (n.TypeCast.typeName?.arrayBounds ?? []).length === 0) return constant(n.TypeCast.arg);
    if ('A_Const' in n && n.A_Const.isnull !== true && n.A_Const.location !== undefined) out.add(n.A_Const.location);
  };
  const visit = (value: unknown): void => {
    if (Array.isArray(value)) {
      for (const v of value) visit(v);
      return;
    }
    if (value === null || typeof value !== 'object') return;
    const record = value as Record<string, unknown>;
    const expr = (record as { A_Expr?: import('@pgsql/types').A_Expr }).A_Expr;
    if (expr !== undefined) {
      const op = operatorName(expr);
      const items = expr.rexpr !== undefined && 'List' in expr.rexpr ? (expr.rexpr.List.items ?? []) : [];
      if (expr.kind === 'AEXPR_OP' && COMPARISONS.has(op)) {
        if (column(expr.lexpr)) constant(expr.rexpr);
        if (column(expr.rexpr)) constant(expr.lexpr);
      } else if ((expr.kind === 'AEXPR_BETWEEN' || expr.kind === 'AEXPR_NOT_BETWEEN') && column(expr.lexpr)) {
        items.forEach(constant);
      } else if (expr.kind === 'AEXPR_IN' && column(expr.lexpr)) {
        items.forEach(constant);
      }
    }
    for (const child of Object.values(record)) visit(child);
  };
  visit(roots);
  return out;
}
