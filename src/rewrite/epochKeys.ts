/**
 * GROUP BY keys that bucket a time column by its epoch: Grafana's `$__timeGroup(time, '5m')` is
 * `floor(extract(epoch from time)/300)*300`. postgres_fdw ships no `extract` (its field is a text
 * constant), so as written no shard can aggregate. `floor(extract(epoch FROM t) / n)` is constant
 * over each n-second bucket counted from the epoch, in any session zone (an epoch is the instant's),
 * so each shard groups by `date_bin('n seconds', t, <the epoch>)`, which ships, and the access
 * node applies the key as written to each bucket's start (as localKeys.ts does for zone-reading keys):
 *
 *   floor(extract(epoch FROM t) / 300) * 300  → shards: date_bin('300 seconds', t, epoch)
 *                                               access node: floor(extract(epoch FROM g) / 300) * 300
 *
 * Exact because extract(epoch …) is a numeric of six decimals, and numeric division keeps enough
 * digits (at least 16 significant ones) that the quotient of an instant just before a bucket's end
 * never rounds up to the next integer while |epoch| < 2e10 seconds (about 1336 to 2603). Rows
 * outside 1337 to 2603 are grouped per shard by their own instant, so the key is computed from
 * each row's value there.
 *
 * Any arithmetic of such floors with numeric constants (`… * 300 * 1000`, a cast to bigint) is
 * accepted; any other reference to the column, or a function besides floor and extract, is not.
 */
import type { Node } from '@pgsql/types';
import { functionName, functionSchema, operatorName, transform } from './ast.js';
import type { LocalKey } from './localKeys.js';
import { deparse, parseExpression } from './parser.js';
import { baseType, inferType, type Scope } from './scope.js';

const ARITHMETIC = new Set(['+', '-', '*', '/']);
const NUMERIC_CASTS = new Set(['smallint', 'integer', 'bigint', 'numeric', 'real', 'double precision']);

/** The key's per-shard bucket and its finish, or undefined when `node` is not such a key. */
export function epochKey(node: Node, scope: Scope): LocalKey | undefined {
  let column: Node | undefined;
  let seconds: string | undefined;
  let refused = false;
  // The floors, each over extract(epoch FROM <one time column>) / <the same n>.
  const floorOf = (n: Node): boolean => {
    if (!('FuncCall' in n) || functionName(n.FuncCall) !== 'floor' || (functionSchema(n.FuncCall) ?? 'pg_catalog') !== 'pg_catalog') return false;
    const args = n.FuncCall.args ?? [];
    const quotient = args[0];
    if (args.length !== 1 || quotient === undefined || !('A_Expr' in quotient) || operatorName(quotient.A_Expr) !== '/' || quotient.A_Expr.kind !== 'AEXPR_OP') return false;
    const epoch = quotient.A_Expr.lexpr;
    const width = positiveSeconds(quotient.A_Expr.rexpr);
    if (epoch === undefined || !('FuncCall' in epoch) || width === undefined) return false;
    const call = epoch.FuncCall;
    const [field, col] = call.args ?? [];
    if (functionName(call) !== 'extract' || (functionSchema(call) ?? 'pg_catalog') !== 'pg_catalog' || call.args?.length !== 2 || field === undefined || col === undefined) return false;
    if (!('A_Const' in field) || field.A_Const.sval?.sval?.toLowerCase() !== 'epoch' || !('ColumnRef' in col)) return false;
    const type = baseType(inferType(col, scope) ?? '');
    if (type !== 'timestamptz' && type !== 'timestamp') return false;
    if (column !== undefined && deparse(column) !== deparse(col)) return false;
    if (seconds !== undefined && seconds !== width) return false;
    column = col;
    seconds = width;
    return true;
  };
  const check = (n: Node): void => {
    if (refused || floorOf(n)) return;
    if ('A_Const' in n && (n.A_Const.ival !== undefined || n.A_Const.fval !== undefined)) return;
    if ('A_Expr' in n && n.A_Expr.kind === 'AEXPR_OP' && ARITHMETIC.has(operatorName(n.A_Expr) ?? '')) {
      for (const side of [n.A_Expr.lexpr, n.A_Expr.rexpr]) if (side !== undefined) check(side);
      return;
    }
    if ('TypeCast' in n && n.TypeCast.arg !== undefined && NUMERIC_CASTS.has(inferType(n, scope) ?? '')) {
      check(n.TypeCast.arg);
      return;
    }
    refused = true;
  };
  check(node);
  if (refused || column === undefined || seconds === undefined) return undefined;
  const col = deparse(column);
  const tz = baseType(inferType(column, scope) ?? '') === 'timestamptz';
  const origin = tz ? `'1970-01-01 00:00:00+00'::timestamptz` : `'1970-01-01 00:00:00'::timestamp`;
  const [low, high] = tz ? [`'1337-01-01 00:00:00+00'::timestamptz`, `'2603-01-01 00:00:00+00'::timestamptz`] : [`'1337-01-01 00:00:00'::timestamp`, `'2603-01-01 00:00:00'::timestamp`];
  return {
    shard: `CASE WHEN ${col} >= ${low} AND ${col} < ${high} THEN date_bin('${seconds} seconds'::interval, ${col}, ${origin}) ELSE ${col} END`,
    finish: (g) => deparse(transform(node, (n) => ('ColumnRef' in n && deparse(n) === col ? parseExpression(g) : undefined))),
  };
}

/** A positive number of seconds with at most six decimals (date_bin's microseconds), as written. */
function positiveSeconds(n: Node | undefined): string | undefined {
  if (n === undefined || !('A_Const' in n)) return undefined;
  const text = n.A_Const.ival !== undefined ? String(n.A_Const.ival.ival ?? 0) : n.A_Const.fval?.fval;
  if (text === undefined || !/^\d{1,10}(\.\d{1,6})?$/.test(text) || Number(text) <= 0) return undefined;
  return text;
}
