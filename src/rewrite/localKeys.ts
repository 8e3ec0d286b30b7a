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
import { functionName, functionSchema } from './ast.js';
import { localMidnightOrigin } from './buckets.js';
import { localDateOf } from './dates.js';
import { deparse, parseExpression } from './parser.js';
import { baseType, inferType, type Scope } from './scope.js';

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

/** `node` as a per-shard bucket and a finishing step, or undefined when it is not such a key (or the zone does not allow it). */
export function localTimeKey(node: Node, scope: Scope, timeZone: string | undefined): LocalKey | undefined {
  const origin = localMidnightOrigin(timeZone);
  if (origin === undefined) return undefined;
  const timestamptz = (n: Node | undefined): n is Node => n !== undefined && 'ColumnRef' in n && baseType(inferType(n, scope) ?? '') === 'timestamptz';
  const bucket = (width: string, column: Node): string => `date_bin('${width}'::interval, ${deparse(column)}, ${origin})`;
  const date = localDateOf(node, (n) => {
    const type = inferType(n, scope);
    return type === undefined ? undefined : baseType(type);
  });
  if (date !== undefined) return { shard: bucket('1 day', date), finish: (g) => `(${g})::date` };
  if (!('FuncCall' in node)) return undefined;
  const call = node.FuncCall;
  const name = functionName(call);
  const args = call.args ?? [];
  if (!['extract', 'date_part', 'date_trunc'].includes(name) || (functionSchema(call) ?? 'pg_catalog') !== 'pg_catalog' || args.length !== 2 || call.over !== undefined) return undefined;
  const [field, column] = args as [Node, Node];
  const text = 'A_Const' in field ? field.A_Const.sval?.sval?.toLowerCase() : undefined;
  const width = text === undefined ? undefined : WIDTH[text];
  if (width === undefined || !timestamptz(column) || (name === 'date_trunc' && width !== '1 day')) return undefined;
  return {
    shard: bucket(width, column),
    finish: (g) => deparse({ FuncCall: { ...call, args: [field, parseExpression(g)] } }),
  };
}
