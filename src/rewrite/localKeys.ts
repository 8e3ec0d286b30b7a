/**
 * GROUP BY keys that read the session's TimeZone (`time::date`, `extract(hour FROM time)`,
 * `date_part('dow', time)`, `date_trunc('month', time)`): postgres_fdw ships none of them (a cast
 * of a timestamptz is STABLE, a field or unit is a text constant), so no shard could aggregate.
 * Each is a function of a fixed-width bucket of the time column, in a zone whose offset never
 * changes: every row of one local minute, hour or day has the same value. So each shard groups
 * by `date_bin(width, time, <a local midnight>)`, which ships, and the access node applies the
 * original expression to the bucket's start and groups the shards' parts by that:
 *
 *   extract(hour FROM t)  → shards: date_bin('1 hour', t, o)   access node: extract(hour FROM g)
 *   t::date, date(t)      → shards: date_bin('1 day', t, o)    access node: g::date
 *   date_trunc('month', t)→ shards: date_bin('1 day', t, o)    access node: date_trunc('month', g)
 *
 * g is a timestamptz inside the same local minute, hour or day as every row of its bucket, and
 * the expression is evaluated on the access node in the session's own zone, so it gives each
 * row's value. In zones with daylight saving (or a history of odd offsets) a bucket of fixed
 * width can straddle a local boundary: left alone there.
 */
import type { Node } from '@pgsql/types';
import { FLIPPED_OPERATORS, functionName, functionSchema, operatorName, replaceTop, stringValue } from './ast.js';
import type { Rewrite } from './model.js';
import { localMidnightOrigin, offsetMidnightOrigin } from './buckets.js';
import { localDateOf } from './dates.js';
import { deparse, parseExpression } from './parser.js';
import { baseType, inferType, type Scope } from './scope.js';
import { gridBucket, offsetBetween, type GridSpan, type ZoneGrid } from './zoneGrid.js';

/** Fields of extract/date_part, and units of date_trunc, constant within one local bucket of this width. */
const WIDTH: Record<string, '1 minute' | '1 hour' | '1 day'> = {
  minute: '1 minute', minutes: '1 minute',
  hour: '1 hour', hours: '1 hour',
  day: '1 day', days: '1 day', dow: '1 day', isodow: '1 day', doy: '1 day', week: '1 day', weeks: '1 day',
  month: '1 day', months: '1 day', quarter: '1 day', year: '1 day', years: '1 day', isoyear: '1 day',
  decade: '1 day', decades: '1 day', century: '1 day', centuries: '1 day', millennium: '1 day', millennia: '1 day',
};

export interface LocalKey {
  /** The per-shard grouping expression (SQL), shippable. */
  readonly shard: string;
  /** The original expression over the column holding the bucket's start. */
  readonly finish: (column: string) => string;
}

/**
 * `node` as a per-shard bucket and a finishing step, or undefined when it is not such a key (or
 * the zone does not allow it). In a zone with a fixed offset, buckets of the key's own width from
 * a local midnight; in any other, buckets of the zone's grid (zoneGrid.ts), finer, so that no
 * offset change falls inside one, and each row's own instant outside the span the grid holds.
 */
export function localTimeKey(node: Node, scope: Scope, timeZone: string | undefined, grid?: ZoneGrid): LocalKey | undefined {
  const origin = localMidnightOrigin(timeZone);
  const zoned = origin === undefined && grid !== undefined && grid.zone === timeZone ? grid : undefined;
  if (origin === undefined && zoned === undefined) return undefined;
  const timestamptz = (n: Node | undefined): n is Node => n !== undefined && 'ColumnRef' in n && baseType(inferType(n, scope) ?? '') === 'timestamptz';
  const span = (width: string): GridSpan | undefined => (width === '1 minute' ? zoned?.minutes : zoned?.hours);
  const usable = (width: string): boolean => origin !== undefined || span(width) !== undefined;
  // Only called where usable(width): an origin, or else the grid's span for the width.
  const bucket = (width: string, column: Node): string => {
    const s = span(width);
    return s !== undefined && zoned !== undefined ? gridBucket(s, zoned.until, deparse(column)) : `date_bin('${width}'::interval, ${deparse(column)}, ${origin as string})`;
  };
  const date = localDateOf(node, (n) => {
    const type = inferType(n, scope);
    return type === undefined ? undefined : baseType(type);
  });
  if (date !== undefined) return usable('1 day') ? { shard: bucket('1 day', date), finish: (g) => `(${g})::date` } : undefined;
  if (!('FuncCall' in node)) return undefined;
  const call = node.FuncCall;
  const name = functionName(call);
  const args = call.args ?? [];
  if (!['extract', 'date_part', 'date_trunc'].includes(name) || (functionSchema(call) ?? 'pg_catalog') !== 'pg_catalog' || args.length !== 2 || call.over !== undefined) return undefined;
  const [field, column] = args as [Node, Node];
  const text = 'A_Const' in field ? field.A_Const.sval?.sval?.toLowerCase() : undefined;
  const width = text === undefined ? undefined : WIDTH[text];
  // date_trunc to an hour or minute is date_bin already where the offset is fixed (buckets.ts).
  if (width === undefined || !usable(width) || !timestamptz(column) || (name === 'date_trunc' && width !== '1 day' && zoned === undefined)) return undefined;
  return {
    shard: bucket(width, column),
    finish: (g) => deparse({ FuncCall: { ...call, args: [field, parseExpression(g)] } }),
  };
}

/** Fields a filter may compare, with the bucket they count in and the one they count within. */
const FIELD_SPANS: Record<string, { unit: string; within: string }> = {
  hour: { unit: '1 hour', within: '1 day' },
  hours: { unit: '1 hour', within: '1 day' },
  minute: { unit: '1 minute', within: '1 hour' },
  minutes: { unit: '1 minute', within: '1 hour' },
};
const COMPARED = new Set(['=', '<>', '!=', '<', '<=', '>', '>=']);

/**
 * `extract(hour FROM t) >= 9`, `date_part('minute', t) < 30` (t a timestamptz column, compared
 * with a number): where the session's offset is fixed the local hour is the whole hours between
 * the row's local day and its local hour, `date_bin('1 hour', t, o) - date_bin('1 day', t, o)`,
 * an interval of exactly k hours for hour k; k op c ⇔ k hours op c hours, for any number c (a
 * literal of up to six digits each side of the point, written as an interval literal). Both
 * date_bin calls and the subtraction are immutable, so the filter ships (as written, postgres_fdw
 * keeps it on the access node over every row). NULL t gives NULL on both sides.
 *
 * The offset is fixed in a fixed-offset zone, and, in a zone with daylight saving, over a range
 * of t the WHERE clause keeps to: `t >= a AND t < b` (or BETWEEN, `>`, `<=`) with a and b
 * literals that name their offset (`'2026-01-05T00:00:00Z'`, as dashboards write them) and no
 * offset change between them in the access node's zone data (the grid). A row outside the range
 * fails the WHERE clause whatever the filter says of it, so the filter need only be exact inside.
 */
export function fieldFilters(node: Node, rewrites: Rewrite[], scope: Scope, timeZone: string | undefined, grid?: ZoneGrid): Node {
  const fixed = localMidnightOrigin(timeZone);
  const zoned = fixed === undefined && grid !== undefined && grid.zone === timeZone ? grid : undefined;
  if (fixed === undefined && zoned === undefined) return node;
  const ranges = zoned === undefined ? new Map<string, Range>() : literalRanges(node);
  return replaceTop(node, (n) => {
    if (!('A_Expr' in n) || n.A_Expr.kind !== 'AEXPR_OP' || n.A_Expr.lexpr === undefined || n.A_Expr.rexpr === undefined) return undefined;
    const op = operatorName(n.A_Expr);
    if (!COMPARED.has(op)) return undefined;
    const left = fieldOf(n.A_Expr.lexpr, scope);
    const right = fieldOf(n.A_Expr.rexpr, scope);
    const [field, value, o] = left !== undefined && number(n.A_Expr.rexpr) ? [left, n.A_Expr.rexpr, op] : right !== undefined && number(n.A_Expr.lexpr) ? [right, n.A_Expr.lexpr, FLIPPED_OPERATORS[op] as string] : [undefined, undefined, op];
    if (field === undefined || value === undefined) return undefined;
    const amount = deparse(value).replace(/\s+/g, '');
    if (!/^-?\d{1,6}(\.\d{1,6})?$/.test(amount)) return undefined;
    const col = deparse(field.column);
    const range = ranges.get(col);
    const offset = zoned === undefined || range === undefined ? undefined : offsetBetween(zoned, Math.floor(range.from), Math.ceil(range.to));
    const origin = fixed ?? (offset === undefined ? undefined : offsetMidnightOrigin(offset));
    if (origin === undefined) return undefined;
    const why = fixed !== undefined ? "the session's zone has a fixed offset" : `the session's zone is at ${offsetText(offset as number)} all through the statement's range of ${col}, ${range?.text ?? ''}`;
    const text = `(date_bin('${field.span.unit}'::interval, ${col}, ${origin}) - date_bin('${field.span.within}'::interval, ${col}, ${origin})) ${o === '!=' ? '<>' : o} '${amount} ${field.span.unit.slice(2)}s'::interval`;
    rewrites.push({ kind: 'local-field', detail: `${deparse(n)} → ${text}: the local ${field.name} as whole ${field.span.unit.slice(2)}s since the local ${field.span.within.slice(2)} began (${why}), which ships, so the data nodes filter` });
    return parseExpression(text);
  });
}

/** A column's range in the WHERE clause: seconds since the epoch, both ends included (a strict bound is still inside). */
interface Range {
  readonly from: number;
  readonly to: number;
  readonly text: string;
}

/** An ISO timestamp that names its offset: the same instant in any session zone and DateStyle. */
const ISO_WITH_OFFSET = /^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?)\s*(Z|[+-]\d{2}(?::?\d{2})?)$/i;

/** Seconds since the epoch of a literal that names its offset, else undefined. */
function instantOf(n: Node): number | undefined {
  let value = n;
  if ('TypeCast' in value) {
    const type = stringValue((value.TypeCast.typeName?.names ?? []).at(-1));
    if (type !== 'timestamptz' || value.TypeCast.arg === undefined) return undefined;
    value = value.TypeCast.arg;
  }
  const text = 'A_Const' in value ? value.A_Const.sval?.sval : undefined;
  const m = text === undefined ? null : ISO_WITH_OFFSET.exec(text.trim());
  if (m === null) return undefined;
  const zone = (m[3] as string).toUpperCase() === 'Z' ? 'Z' : (m[3] as string).replace(/^([+-]\d{2})(\d{2})$/, '$1:$2').replace(/^([+-]\d{2})$/, '$1:00');
  const ms = Date.parse(`${m[1]}T${(m[2] as string).length === 5 ? `${m[2]}:00` : (m[2] as string)}${zone}`);
  return Number.isNaN(ms) ? undefined : ms / 1000;
}

/** Per column (as deparsed), the range its top-level WHERE conjuncts keep it to, from literals that name their offset; both ends needed. */
function literalRanges(where: Node): Map<string, Range> {
  const conjuncts = 'BoolExpr' in where && where.BoolExpr.boolop === 'AND_EXPR' ? (where.BoolExpr.args ?? []) : [where];
  const bounds = new Map<string, { from?: number; to?: number; texts: string[] }>();
  const bound = (column: Node, side: 'from' | 'to', at: number, text: string): void => {
    if (!('ColumnRef' in column)) return;
    const key = deparse(column);
    const b = bounds.get(key) ?? { texts: [] };
    b[side] = side === 'from' ? Math.max(b.from ?? -Infinity, at) : Math.min(b.to ?? Infinity, at);
    b.texts.push(text);
    bounds.set(key, b);
  };
  for (const c of conjuncts) {
    if (!('A_Expr' in c) || c.A_Expr.lexpr === undefined || c.A_Expr.rexpr === undefined) continue;
    const { lexpr, rexpr, kind } = c.A_Expr;
    if (kind === 'AEXPR_BETWEEN') {
      const items = 'List' in rexpr ? (rexpr.List.items ?? []) : [];
      const [lo, hi] = [items[0], items[1]].map((x) => (x === undefined ? undefined : instantOf(x)));
      if (items.length === 2 && lo !== undefined && hi !== undefined) {
        bound(lexpr, 'from', lo, deparse(c));
        bound(lexpr, 'to', hi, deparse(c));
      }
      continue;
    }
    if (kind !== 'AEXPR_OP') continue;
    const op = operatorName(c.A_Expr);
    const [column, literal, o] = 'ColumnRef' in lexpr ? [lexpr, rexpr, op] : [rexpr, lexpr, FLIPPED_OPERATORS[op] ?? op];
    const at = instantOf(literal);
    if (at === undefined) continue;
    if (o === '>' || o === '>=') bound(column, 'from', at, deparse(c));
    else if (o === '<' || o === '<=') bound(column, 'to', at, deparse(c));
  }
  const ranges = new Map<string, Range>();
  for (const [key, b] of bounds) if (b.from !== undefined && b.to !== undefined) ranges.set(key, { from: b.from, to: b.to, text: b.texts.join(' AND ') });
  return ranges;
}

/** `+05:30`, `-04:00`. */
function offsetText(east: number): string {
  const a = Math.abs(east);
  const pad = (x: number): string => String(x).padStart(2, '0');
  return `${east < 0 ? '-' : '+'}${pad(Math.floor(a / 3600))}:${pad(Math.floor(a / 60) % 60)}${a % 60 === 0 ? '' : `:${pad(a % 60)}`}`;
}

function fieldOf(n: Node, scope: Scope): { name: string; span: { unit: string; within: string }; column: Node } | undefined {
  if (!('FuncCall' in n)) return undefined;
  const call = n.FuncCall;
  const name = functionName(call);
  const args = call.args ?? [];
  if (!['extract', 'date_part'].includes(name) || (functionSchema(call) ?? 'pg_catalog') !== 'pg_catalog' || args.length !== 2 || call.over !== undefined) return undefined;
  const [field, column] = args as [Node, Node];
  const text = 'A_Const' in field ? field.A_Const.sval?.sval?.toLowerCase() : undefined;
  const span = text === undefined ? undefined : FIELD_SPANS[text];
  if (span === undefined || !('ColumnRef' in column) || baseType(inferType(column, scope) ?? '') !== 'timestamptz') return undefined;
  return { name: text as string, span, column };
}

/** A plain number literal (`9`, `-1`, `17.5`). */
function number(n: Node): boolean {
  if ('A_Const' in n) return n.A_Const.ival !== undefined || n.A_Const.fval !== undefined || (n.A_Const.sval === undefined && n.A_Const.isnull !== true && n.A_Const.boolval === undefined && n.A_Const.bsval === undefined);
  return 'A_Expr' in n && n.A_Expr.kind === 'AEXPR_OP' && n.A_Expr.lexpr === undefined && n.A_Expr.rexpr !== undefined && number(n.A_Expr.rexpr);
}
