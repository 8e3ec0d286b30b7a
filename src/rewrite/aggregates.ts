/**
 * Aggregates split into a part each shard finishes (which postgres_fdw ships, being a complete
 * aggregate over one foreign table) and a combining step on the access node. Each split returns
 * exactly the original aggregate's value and type; where floating-point addition order differs
 * (sums, averages, variances of floats), values agree to rounding.
 */
import type { FuncCall, Node } from '@pgsql/types';
import { functionName, functionSchema } from './ast.js';
import { deparse } from './parser.js';
import { quoteQualified } from '../sql/quote.js';
import { baseType, inferType, type Scope, typeClass } from './scope.js';

/** Aggregates we can combine. */
const DECOMPOSABLE = new Set(['count', 'sum', 'min', 'max', 'avg', 'bool_and', 'bool_or', 'every', 'stddev', 'stddev_samp', 'stddev_pop', 'variance', 'var_samp', 'var_pop']);
/** Aggregates PostgreSQL has that cannot be combined from per-shard results. */
const NON_DECOMPOSABLE = new Set([
  'percentile_cont', 'percentile_disc', 'mode', 'rank', 'dense_rank', 'percent_rank', 'cume_dist',
  'string_agg', 'array_agg', 'json_agg', 'jsonb_agg', 'json_object_agg', 'jsonb_object_agg', 'xmlagg',
  'bit_and', 'bit_or', 'bit_xor', 'corr', 'covar_pop', 'covar_samp', 'regr_avgx', 'regr_avgy', 'regr_count',
  'regr_intercept', 'regr_r2', 'regr_slope', 'regr_sxx', 'regr_sxy', 'regr_syy', 'range_agg', 'range_intersect_agg', 'any_value',
]);

export function isAggregateCall(call: FuncCall, scope?: Scope): boolean {
  if (call.over !== undefined) return false;
  if (bookendOf(call, scope) !== undefined) return true;
  const schema = functionSchema(call);
  if (schema !== undefined && schema !== 'pg_catalog') return call.agg_star === true || call.agg_distinct === true || call.agg_filter !== undefined || call.agg_within_group === true;
  const name = functionName(call);
  return DECOMPOSABLE.has(name) || NON_DECOMPOSABLE.has(name) || call.agg_star === true || call.agg_distinct === true || call.agg_filter !== undefined || call.agg_within_group === true || (call.agg_order ?? []).length > 0;
}

export interface Split {
  /** Per-shard aggregate expressions (SQL), in order. */
  readonly partials: readonly string[];
  /** The combining expression, given the columns holding the partials. */
  readonly combine: (columns: readonly string[]) => string;
}

/** @returns the split, or the reason there is none. */
export function splitAggregate(call: FuncCall, scope: Scope, spaceColumn: (node: Node) => boolean): Split | string {
  const name = functionName(call);
  const text = deparse({ FuncCall: call });
  const bookend = bookendOf(call, scope);
  if (bookend !== undefined) return splitBookend(call, bookend, scope, text);
  if (NON_DECOMPOSABLE.has(name) || call.agg_within_group === true) return `${text}: ${name} cannot be computed from per-shard results`;
  if (!DECOMPOSABLE.has(name) || (functionSchema(call) ?? 'pg_catalog') !== 'pg_catalog') return `${text}: ${name} is not an aggregate hypershard knows how to combine`;
  if ((call.agg_order ?? []).length > 0) return `${text}: an aggregate with ORDER BY depends on row order across shards`;
  const args = call.args ?? [];
  const arg = args[0];
  const filter = call.agg_filter === undefined ? '' : ` FILTER (WHERE ${deparse(call.agg_filter)})`;
  if (call.agg_distinct === true) {
    // Rows of one space key live on one shard, so DISTINCT over the space key is per-shard DISTINCT.
    const overSpace = arg !== undefined && args.length === 1 && spaceColumn(arg);
    if (!(overSpace && (name === 'count' || name === 'sum')) && !['min', 'max', 'bool_and', 'bool_or', 'every'].includes(name)) {
      return `${text}: DISTINCT ${overSpace ? '' : 'over a column other than the space key '}spans shards; the same value can sit on several`;
    }
  }
  const distinct = call.agg_distinct === true ? 'DISTINCT ' : '';
  const a = arg === undefined ? '*' : deparse(arg);
  const agg = (fn: string, expr: string): string => `${fn}(${distinct}${expr})${filter}`;
  switch (name) {
    case 'count':
      return { partials: [call.agg_star === true ? `count(*)${filter}` : agg('count', a)], combine: ([p]) => `coalesce(sum(${p}), 0)::bigint` };
    case 'min':
    case 'max':
      return { partials: [agg(name, a)], combine: ([p]) => `${name}(${p})` };
    case 'bool_and':
    case 'every':
    case 'bool_or':
      return { partials: [agg(name, a)], combine: ([p]) => `${name === 'bool_or' ? 'bool_or' : 'bool_and'}(${p})` };
  }
  const type = arg === undefined ? undefined : inferType(arg, scope);
  if (type === undefined) return `${text}: the argument's type cannot be told from the query, and the combined result's type depends on it (cast it, e.g. ${name}(x::double precision))`;
  const base = baseType(type);
  switch (name) {
    case 'sum':
      if (!(typeClass.integer(type) || typeClass.float(type) || typeClass.numeric(type) || base === 'interval')) return `${text}: sum over ${type} is not combined`;
      // sum(int2/int4) is bigint, but sum(bigint) is numeric: cast the combination back.
      return { partials: [agg('sum', a)], combine: ([p]) => (base === 'smallint' || base === 'integer' ? `sum(${p})::bigint` : `sum(${p})`) };
    case 'avg':
      if (typeClass.float(type)) {
        return { partials: [agg('sum', `(${a})::double precision`), agg('count', a)], combine: ([s, n]) => `(sum(${s}) / nullif(sum(${n}), 0)::double precision)` };
      }
      if (typeClass.integer(type) || typeClass.numeric(type)) {
        return { partials: [agg('sum', a), agg('count', a)], combine: ([s, n]) => `(sum(${s})::numeric / nullif(sum(${n}), 0)::numeric)` };
      }
      return `${text}: avg over ${type} is not combined`;
    default:
      return variance(name, a, type, agg, text);
  }
}

function variance(name: string, a: string, type: string, agg: (fn: string, expr: string) => string, text: string): Split | string {
  const sample = !name.endsWith('_pop');
  const root = name.startsWith('stddev');
  if (typeClass.float(type)) {
    // Per shard: n, Σx and M2 = Σ(x - mean)² (var_pop·n, which PostgreSQL computes stably);
    // combined: M2 = Σ M2ᵢ + Σ sᵢ²/nᵢ − S²/N (Chan et al.), so no large Σx² cancels out.
    const x = `(${a})::double precision`;
    return {
      partials: [agg('count', a), agg('sum', x), `(${agg('var_pop', x)} * ${agg('count', a)})`],
      combine: ([n, s, m2]) => {
        const N = `sum(${n})`;
        const M2 = `greatest(sum(${m2}) + sum(${s} * ${s} / nullif(${n}, 0)::double precision) - sum(${s}) * sum(${s}) / nullif(${N}, 0)::double precision, 0)`;
        const value = `(CASE WHEN ${N} > ${sample ? 1 : 0} THEN ${M2} / (${N}${sample ? ' - 1' : ''})::double precision END)`;
        return root ? `sqrt(${value})` : value;
      },
    };
  }
  if (typeClass.integer(type) || typeClass.numeric(type)) {
    // Exact in numeric, digit for digit as PostgreSQL computes it (numeric_stddev_internal):
    // (N·Σx² − (Σx)²) / (N·(N−1)) at the division's scale, 0 when the numerator is not positive,
    // and the square root to that same scale (sqrt() alone picks its own).
    const x = `(${a})::numeric`;
    return {
      partials: [agg('count', a), agg('sum', x), agg('sum', `${x} * ${x}`)],
      combine: ([n, s, q]) => {
        const N = `sum(${n})::numeric`;
        const numerator = `(${N} * sum(${q}) - sum(${s}) * sum(${s}))`;
        const ratio = `(${numerator} / (${N} * (${N}${sample ? ' - 1' : ''})))`;
        const value = root ? `round(sqrt(${ratio}), scale(${ratio}))` : ratio;
        return `(CASE WHEN sum(${n}) > ${sample ? 1 : 0} THEN CASE WHEN ${numerator} <= 0 THEN 0::numeric ELSE ${value} END END)`;
      },
    };
  }
  return `${text}: ${name} over ${type} is not combined`;
}

/** Aggregates whose DISTINCT form is computed from a set of distinct values as well as from the rows. */
const OVER_VALUES = new Set(['count', 'sum', 'avg', 'stddev', 'stddev_samp', 'stddev_pop', 'variance', 'var_samp', 'var_pop']);

export const overValues = (name: string): boolean => OVER_VALUES.has(name);

/** Types whose values repeat (flags, categories, small codes, days). */
const REPEATING = new Set(['boolean', 'text', 'character varying', 'varchar', 'character', 'bpchar', 'smallint', 'integer', 'date']);

/**
 * `agg(DISTINCT x) [FILTER (WHERE c)]` from the distinct values of x each shard returns: every
 * shard groups by x too (as `CASE WHEN c THEN x END` under a FILTER: a row the filter drops gives
 * NULL, which the aggregate skips either way), and the access node computes `agg(DISTINCT x)`
 * over those values, the same set the statement would have. Other aggregates of the statement
 * combine as before, from parts per (group, x).
 * @returns the per-shard grouping expression (SQL) and the combination, or why not.
 */
export function distinctValues(call: FuncCall, scope: Scope): { readonly key: string; readonly combine: (column: string) => string } | string {
  const name = functionName(call);
  const text = deparse({ FuncCall: call });
  const args = call.args ?? [];
  const arg = args[0];
  if (!OVER_VALUES.has(name) || (functionSchema(call) ?? 'pg_catalog') !== 'pg_catalog') return `${text}: ${name}(DISTINCT …) is not computed from per-shard values`;
  if (args.length !== 1 || arg === undefined || (call.agg_order ?? []).length > 0) return `${text}: DISTINCT over one argument only`;
  const type = inferType(arg, scope);
  // Values of these types repeat, so a shard's distinct values per group are fewer than its rows.
  // Floats, numerics, bigints and times are mostly distinct: the values would be as many as the
  // rows, and the planner ships the rows instead (seen in EXPLAIN), so nothing would be gained.
  if (type === undefined || !REPEATING.has(baseType(type))) {
    return `${text}: ${type === undefined ? 'the argument’s type cannot be told' : `values of ${type} are mostly distinct, so each shard would send about as many values as rows`}; DISTINCT is computed from per-shard values only for ${[...REPEATING].join(', ')}`;
  }
  const value = deparse(arg);
  const key = call.agg_filter === undefined ? value : `CASE WHEN ${deparse(call.agg_filter)} THEN ${value} END`;
  return { key, combine: (column) => `${name}(DISTINCT ${column})` };
}

/** Types whose order is the same on every node (no collation) and whose values are not arrays. */
const ORDERED_ALIKE = new Set(['timestamptz', 'timestamp', 'date', 'smallint', 'integer', 'bigint', 'numeric', 'real', 'double precision']);

/**
 * hypershard's TimescaleDB `first(value, time)` / `last(value, time)` (scope.bookends), called as
 * such: unqualified where the search path finds them, or qualified with their schema.
 */
export function bookendOf(call: FuncCall, scope: Scope | undefined): { readonly name: 'first' | 'last'; readonly schema: string } | undefined {
  const name = functionName(call);
  const bookends = scope?.bookends;
  if (bookends === undefined || (name !== 'first' && name !== 'last') || (call.args ?? []).length !== 2 || call.over !== undefined) return undefined;
  const schema = functionSchema(call);
  return (schema === undefined && bookends.unqualified) || schema === bookends.schema ? { name, schema: bookends.schema } : undefined;
}

/**
 * first/last: each shard returns its value at its earliest (latest) non-NULL time, as the first
 * element of the values ordered by time (ties: any of them, as the aggregate itself keeps the row
 * it happened to see first), and that time; the access node's first/last over those pairs is the
 * value at the earliest (latest) time of all. Only for a time of a type every node orders alike.
 */
function splitBookend(call: FuncCall, bookend: { readonly name: 'first' | 'last'; readonly schema: string }, scope: Scope, text: string): Split | string {
  const [value, time] = (call.args ?? []) as [Node, Node];
  if (call.agg_distinct === true || (call.agg_order ?? []).length > 0 || call.agg_within_group === true) return `${text}: ${bookend.name} with DISTINCT or ORDER BY is not combined`;
  const timeType = inferType(time, scope);
  if (timeType === undefined || !ORDERED_ALIKE.has(baseType(timeType))) return `${text}: the order of its second argument (${timeType ?? 'of a type the query does not tell'}) is not known to be the same on every node`;
  const valueType = inferType(value, scope);
  if (valueType === undefined || valueType.endsWith('[]')) return `${text}: the value's type cannot be told from the query (or is an array), and the combined result's type depends on it`;
  const [v, t] = [deparse(value), deparse(time)];
  const filter = call.agg_filter === undefined ? '' : `(${deparse(call.agg_filter)}) AND `;
  const direction = bookend.name === 'first' ? 'ASC' : 'DESC';
  return {
    partials: [`(array_agg(${v} ORDER BY ${t} ${direction}) FILTER (WHERE ${filter}${t} IS NOT NULL))[1]`, `${bookend.name === 'first' ? 'min' : 'max'}(${t}) FILTER (WHERE ${filter}${t} IS NOT NULL)`],
    combine: ([pv, pt]) => `${quoteQualified(bookend.schema, bookend.name)}(${pv}, ${pt})`,
  };
}
