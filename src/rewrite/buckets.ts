/**
 * Time bucketing that ships. `time_bucket` (TimescaleDB's; not in vanilla PostgreSQL) and
 * `date_trunc` on timestamptz (STABLE: it reads the session's TimeZone) become `date_bin`, which
 * is IMMUTABLE and so postgres_fdw sends it to the data nodes, where they are exactly equal.
 */
import type { FuncCall, Node } from '@pgsql/types';
import { parseFixedInterval } from '../spec/interval.js';
import { quoteLiteral } from '../sql/quote.js';
import { functionName, functionSchema } from './ast.js';
import type { Rewrite, Unchanged } from './model.js';
import { deparse, parseExpression } from './parser.js';
import { baseType, inferType, type Scope } from './scope.js';

/** TimescaleDB's default origin: Monday 2000-01-03, so weekly buckets start on Mondays. */
const TIMESCALE_ORIGIN_MS = Date.UTC(2000, 0, 3);

/** TimescaleDB's origin moved by `offsetSeconds`, as a timestamptz (UTC) or timestamp literal. */
function originLiteral(offsetSeconds: number, tz: boolean): string {
  const text = new Date(TIMESCALE_ORIGIN_MS + offsetSeconds * 1000).toISOString().replace('T', ' ').replace(/\.000Z$/, '');
  return `${tz ? 'TIMESTAMPTZ' : 'TIMESTAMP'} ${quoteLiteral(tz ? `${text}+00` : text)}`;
}

/** Zones whose offset is zero at every instant, so local truncation is UTC truncation. */
const UTC_ZONES = new Set(['utc', 'etc/utc', 'gmt', 'etc/gmt', 'uct', 'etc/uct', 'universal', 'etc/universal', 'zulu', 'etc/zulu', 'greenwich', 'etc/greenwich', 'gmt0', 'gmt+0', 'gmt-0', 'etc/gmt0', 'etc/gmt+0', 'etc/gmt-0', 'z']);
/** `Etc/GMT+5`: a fixed whole-hour offset, so truncation to an hour or finer is the same as in UTC. */
const WHOLE_HOUR_ZONE = /^etc\/gmt[+-](\d|1[0-4])$/;

const TRUNC_UNITS: Record<string, { stride: string; finest: 'any' | 'hour' | 'day' }> = {
  microseconds: { stride: '1 microsecond', finest: 'any' },
  milliseconds: { stride: '1 millisecond', finest: 'any' },
  second: { stride: '1 second', finest: 'any' },
  minute: { stride: '1 minute', finest: 'hour' },
  hour: { stride: '1 hour', finest: 'hour' },
  day: { stride: '1 day', finest: 'day' },
  week: { stride: '7 days', finest: 'day' },
};

/** The spellings PostgreSQL's date_trunc accepts for the fixed-width units. */
const UNIT_SPELLINGS: Record<string, string> = {
  microsecond: 'microseconds', microseconds: 'microseconds', us: 'microseconds', usec: 'microseconds', usecs: 'microseconds',
  millisecond: 'milliseconds', milliseconds: 'milliseconds', ms: 'milliseconds', msec: 'milliseconds', msecs: 'milliseconds',
  second: 'second', seconds: 'second', sec: 'second', secs: 'second', s: 'second',
  minute: 'minute', minutes: 'minute', min: 'minute', mins: 'minute', m: 'minute',
  hour: 'hour', hours: 'hour', hr: 'hour', hrs: 'hour', h: 'hour',
  day: 'day', days: 'day', d: 'day',
  week: 'week', weeks: 'week', w: 'week',
};

export interface BucketOutcome {
  readonly node: Node;
  readonly rewrite?: Rewrite;
  readonly unchanged?: Unchanged;
}

/** Rewrites one call if it is a bucketing call that can become `date_bin`. */
export function rewriteBucket(call: FuncCall, scope: Scope, timeZone: string | undefined): BucketOutcome | undefined {
  const schema = functionSchema(call);
  const name = functionName(call);
  if (name === 'time_bucket' && (schema === undefined || schema === 'public')) return timeBucket(call, scope, timeZone);
  if (name === 'date_trunc' && (schema === undefined || schema === 'pg_catalog')) return dateTrunc(call, scope, timeZone);
  return undefined;
}

/**
 * The forms whose date_bin is exactly what hypershard's `time_bucket` (TimescaleDB's semantics,
 * `templates/access/timescaledb/`) returns, errors included: a literal width of whole seconds to
 * weeks, greater than zero (TimescaleDB's error for zero or less is its own message), on a
 * timestamptz, timestamp or date (whole days only, as TimescaleDB requires), with TimescaleDB's
 * origin, a typed origin, or a literal offset. Everything else is left to the function itself,
 * which is still exact and, for constant widths, still folds to date_bin.
 */
function timeBucket(written: FuncCall, scope: Scope, timeZone: string | undefined): BucketOutcome {
  const call = quotedOffset(written);
  const original = deparse({ FuncCall: call });
  const refuse = (reason: string): BucketOutcome => ({ node: { FuncCall: call }, unchanged: { kind: 'time-bucket', reason: `${original}: ${reason}` } });
  const positional: Node[] = [];
  const named = new Map<string, Node>();
  for (const arg of call.args ?? []) {
    if ('NamedArgExpr' in arg) named.set((arg.NamedArgExpr.name ?? '').replace(/^"(.*)"$/, '$1'), arg.NamedArgExpr.arg as Node);
    else positional.push(arg);
  }
  const width = positional[0] ?? named.get('bucket_width');
  const ts = positional[1] ?? named.get('ts');
  const third = positional[2];
  const thirdType = third === undefined ? undefined : inferType(third, scope);
  if (named.has('timezone') || positional.length > 3 || (thirdType !== undefined && baseType(thirdType) === 'text')) {
    return refuse('time_bucket with a time zone buckets in local time of a zone named by text, which postgres_fdw never ships (a text constant has no collation from a foreign column); left to the function');
  }
  if (width === undefined || ts === undefined || [...named.keys()].some((k) => !['bucket_width', 'ts', 'origin', 'offset'].includes(k))) {
    return refuse('not a time_bucket(width, value [, origin | offset]) call');
  }
  const type = inferType(ts, scope);
  const base = type === undefined ? undefined : baseType(type);
  if (base !== undefined && ['smallint', 'integer', 'bigint'].includes(base)) {
    return refuse("integer buckets keep TimescaleDB's range errors at the ends of the type, which no shippable expression raises; left to the function");
  }
  if (base !== 'timestamptz' && base !== 'timestamp' && base !== 'date') return refuse('the bucketed value is not known to be a timestamptz, timestamp or date');
  const stride = intervalLiteral(width);
  if (stride === undefined) return refuse('the bucket width is not a literal fixed interval (whole seconds to weeks); months and years have no fixed width');
  if (stride.seconds <= 0) return refuse('a width of zero or less is an error in TimescaleDB, with its own message; left to the function');
  if (base === 'date' && stride.seconds % 86_400 !== 0) return refuse('date buckets must be whole days (TimescaleDB refuses others); left to the function');

  const originNamed = named.get('origin');
  const offsetNamed = named.get('offset');
  const thirdIsOffset = third !== undefined && thirdType === 'interval';
  const thirdIsOrigin = third !== undefined && thirdType !== undefined && baseType(thirdType) === base;
  if (third !== undefined && !thirdIsOffset && !thirdIsOrigin) return refuse('its third argument is neither a typed interval offset nor an origin of the same type as the value');
  const origin = originNamed ?? (thirdIsOrigin ? third : undefined);
  const offsetNode = offsetNamed ?? (thirdIsOffset ? third : undefined);
  if (origin !== undefined && offsetNode !== undefined) return refuse('both an origin and an offset');
  if (origin !== undefined && originNamed !== undefined) {
    const originType = inferType(origin, scope);
    if (originType === undefined || baseType(originType) !== base) return refuse('its origin is not known to be of the same type as the value');
  }
  let offsetSeconds = 0;
  if (offsetNode !== undefined) {
    const offset = intervalLiteral(offsetNode);
    if (offset === undefined) return refuse('its offset is not a literal fixed interval');
    offsetSeconds = offset.seconds;
    if (base === 'date' && (offsetSeconds <= 0 || offsetSeconds % 86_400 !== 0)) return refuse("a date's offset must be whole days, at least one (TimescaleDB refuses others); left to the function");
    if (base === 'timestamptz' && offset.days && !fixedOffsetZone(timeZone)) {
      return refuse(
        timeZone === undefined
          ? 'an offset in days is applied in the session time zone, which is not known'
          : `an offset in days is applied in the session time zone, and in ${JSON.stringify(timeZone)} a day is not always 24 hours`,
      );
    }
  }
  const value = base === 'date' ? `${deparse(ts)}::timestamp` : deparse(ts);
  const from = origin === undefined ? originLiteral(offsetSeconds, base === 'timestamptz') : base === 'date' ? `(${deparse(origin)})::timestamp` : deparse(origin);
  const binned = `date_bin(${quoteLiteral(stride.sql)}::interval, ${value}, ${from})`;
  const node = parseExpression(base === 'date' ? `(${binned})::date` : binned);
  return { node, rewrite: { kind: 'time-bucket', detail: `${original} → ${deparse(node)}` } };
}

/**
 * The call with its `offset` argument named `"offset"`: the deparser writes argument names as
 * they are, and OFFSET is a reserved word, so a statement rewritten around a time_bucket call
 * left as written would otherwise not parse.
 */
function quotedOffset(call: FuncCall): FuncCall {
  const args = call.args?.map((arg): Node => ('NamedArgExpr' in arg && arg.NamedArgExpr.name === 'offset' ? { NamedArgExpr: { ...arg.NamedArgExpr, name: '"offset"' } } : arg));
  return args === undefined ? call : { ...call, args };
}

/**
 * A local midnight in a zone whose offset never changes (TimescaleDB's origin there), as a
 * timestamptz literal: day buckets from it are local days. Undefined for any other zone.
 */
export function localMidnightOrigin(timeZone: string | undefined): string | undefined {
  const zone = timeZone?.toLowerCase();
  if (zone === undefined || !fixedOffsetZone(zone)) return undefined;
  const hours = WHOLE_HOUR_ZONE.exec(zone);
  // Etc/GMT+5 is five hours behind UTC: its midnight is 05:00 UTC.
  const behind = hours === null ? 0 : (zone.includes('+') ? 1 : -1) * Number(hours[1]);
  return originLiteral(behind * 3600, true);
}

/** The local midnight origin of an offset of `east` seconds east of UTC (a timestamptz literal). */
export function offsetMidnightOrigin(east: number): string {
  return originLiteral(-east, true);
}

/** A zone whose offset never changes, so a day there is always 24 hours. */
export function fixedOffsetZone(timeZone: string | undefined): boolean {
  const zone = timeZone?.toLowerCase();
  return zone !== undefined && (UTC_ZONES.has(zone) || WHOLE_HOUR_ZONE.test(zone));
}

function dateTrunc(call: FuncCall, scope: Scope, timeZone: string | undefined): BucketOutcome | undefined {
  const args = call.args ?? [];
  if (args.length !== 2) return undefined; // the 3-argument form names its zone: immutable already
  const [unitNode, ts] = args as [Node, Node];
  const type = inferType(ts, scope);
  if (type === undefined || baseType(type) !== 'timestamptz') return undefined; // timestamp and date forms are immutable
  const original = deparse({ FuncCall: call });
  const refuse = (reason: string): BucketOutcome => ({ node: { FuncCall: call }, unchanged: { kind: 'time-bucket', reason: `${original}: ${reason}` } });
  const unitText = 'A_Const' in unitNode ? unitNode.A_Const.sval?.sval : undefined;
  const unit = unitText === undefined ? undefined : TRUNC_UNITS[UNIT_SPELLINGS[unitText.toLowerCase()] ?? ''];
  if (unit === undefined) return refuse(`truncation to ${unitText === undefined ? 'a computed unit' : JSON.stringify(unitText)} has no fixed width; it stays on the access node`);
  const zone = timeZone?.toLowerCase();
  const exact =
    unit.finest === 'any' ||
    (zone !== undefined && UTC_ZONES.has(zone)) ||
    (zone !== undefined && unit.finest === 'hour' && WHOLE_HOUR_ZONE.test(zone));
  if (!exact) {
    return refuse(
      zone === undefined
        ? 'the session time zone is not known, so truncation in local time cannot be proven equal to date_bin'
        : `in time zone ${JSON.stringify(timeZone)} local ${unitText} boundaries are not fixed-width (offsets or daylight saving), so date_bin would differ`,
    );
  }
  const node = parseExpression(`date_bin(${quoteLiteral(unit.stride)}::interval, ${deparse(ts)}, ${originLiteral(0, true)})`);
  return { node, rewrite: { kind: 'time-bucket', detail: `${original} → ${deparse(node)} (session time zone ${timeZone ?? 'unknown'})` } };
}

/**
 * A literal fixed-width interval: `'5 minutes'`, `interval '1 hour'`, `'1 day'::interval`. `days`
 * says it names days or weeks (PostgreSQL's day field, which timestamptz arithmetic takes in the
 * session's time zone) rather than only hours and less.
 */
function intervalLiteral(node: Node): { seconds: number; sql: string; days: boolean } | undefined {
  let inner = node;
  if ('TypeCast' in node) {
    const names = node.TypeCast.typeName?.names ?? [];
    const last = names[names.length - 1];
    if (last === undefined || !('String' in last) || last.String.sval !== 'interval' || node.TypeCast.arg === undefined) return undefined;
    if ((node.TypeCast.typeName?.typmods ?? []).length > 0) return undefined;
    inner = node.TypeCast.arg;
  }
  const text = 'A_Const' in inner ? inner.A_Const.sval?.sval : undefined;
  if (text === undefined) return undefined;
  const negative = text.trim().startsWith('-');
  const parsed = parseFixedInterval(negative ? text.trim().slice(1) : text);
  if (typeof parsed === 'string') return undefined;
  return negative ? { seconds: -parsed.seconds, sql: `-${parsed.sql}`, days: parsed.days } : parsed;
}
