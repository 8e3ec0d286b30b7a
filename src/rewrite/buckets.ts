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
  if (name === 'time_bucket' && (schema === undefined || schema === 'public')) return timeBucket(call, scope);
  if (name === 'date_trunc' && (schema === undefined || schema === 'pg_catalog')) return dateTrunc(call, scope, timeZone);
  return undefined;
}

function timeBucket(call: FuncCall, scope: Scope): BucketOutcome {
  const original = deparse({ FuncCall: call });
  const refuse = (reason: string): BucketOutcome => ({ node: { FuncCall: call }, unchanged: { kind: 'time-bucket', reason: `${original}: ${reason}` } });
  const args = call.args ?? [];
  const positional: Node[] = [];
  const named = new Map<string, Node>();
  for (const arg of args) {
    if ('NamedArgExpr' in arg) named.set((arg.NamedArgExpr.name ?? '').toLowerCase(), arg.NamedArgExpr.arg as Node);
    else positional.push(arg);
  }
  const [width, ts, third] = positional;
  if (width === undefined || ts === undefined || positional.length > 3) return refuse('not a time_bucket(interval, time [, origin | offset]) call');
  if (named.has('timezone')) return refuse('time_bucket with a time zone buckets in local time; left as written');
  const stride = intervalLiteral(width);
  if (stride === undefined) return refuse('the bucket width is not a literal fixed interval (seconds to weeks); months and years have no fixed width');
  const type = inferType(ts, scope);
  if (type === undefined || !['timestamptz', 'timestamp'].includes(baseType(type))) return refuse('the bucketed value is not known to be a timestamptz or timestamp column');
  const tz = baseType(type) === 'timestamptz';
  let origin: string;
  let offsetSeconds = 0;
  const thirdType = third === undefined ? undefined : inferType(third, scope);
  if (third !== undefined && thirdType === 'interval') offsetSeconds = intervalLiteral(third)?.seconds ?? Number.NaN;
  const originNode = named.get('origin') ?? (thirdType !== undefined && baseType(thirdType) === baseType(type) ? third : undefined);
  const offsetNode = named.get('offset');
  if (offsetNode !== undefined) offsetSeconds = intervalLiteral(offsetNode)?.seconds ?? Number.NaN;
  if (third !== undefined && thirdType !== 'interval' && originNode !== third) return refuse('its third argument is neither a typed interval offset nor a typed origin');
  if (Number.isNaN(offsetSeconds)) return refuse('its offset is not a literal fixed interval');
  if (originNode !== undefined) {
    if (offsetSeconds !== 0) return refuse('both an origin and an offset');
    origin = deparse(originNode);
  } else {
    origin = originLiteral(offsetSeconds, tz);
  }
  const node = parseExpression(`date_bin(${quoteLiteral(stride.sql)}::interval, ${deparse(ts)}, ${origin})`);
  return { node, rewrite: { kind: 'time-bucket', detail: `${original} → ${deparse(node)}` } };
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

/** A literal fixed-width interval: `'5 minutes'`, `interval '1 hour'`, `'1 day'::interval`. */
function intervalLiteral(node: Node): { seconds: number; sql: string } | undefined {
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
  return negative ? { seconds: -parsed.seconds, sql: `-${parsed.sql}` } : parsed;
}
