/**
 * Where a zone with daylight saving (or odd offsets) still has a fixed grid. A GROUP BY key that
 * reads the session's zone (`time::date`, `extract(hour FROM time)`, `date_trunc('day', time)`) is
 * the same for every row of a UTC bucket [kW, (k+1)W) when no offset change falls inside the
 * bucket and every offset is a multiple of W (W dividing an hour): the bucket is then a local
 * interval aligned to W, inside one local minute-of-W, hour and day. In America/New_York every
 * offset since 1883 is whole hours and every change falls on a whole UTC hour, so W is an hour;
 * Asia/Kolkata (+05:30) has half-hour buckets; Asia/Kathmandu (+05:45) quarter hours.
 *
 * Which W, and from which instant on, is read from the access node's own time zone data (the
 * finishing step runs there): its offset at every UTC midnight from 1900 to 2100, and where it
 * changes, the hour, the minute and whether on the minute. An offset that changes and changes
 * back between two UTC midnights would go unseen; no zone's history has one in that span.
 */
import type { Queryable } from './discover.js';

/** The span read; rows outside it are grouped by their own instant, which is always exact. */
export const GRID_FROM = '1900-01-01 00:00:00+00';
export const GRID_UNTIL = '2100-01-01 00:00:00+00';
const FROM_MS = Date.parse('1900-01-01T00:00:00Z');
const UNTIL_MS = Date.parse('2100-01-01T00:00:00Z');
/** Local dates whose midnights, and the days around them, the span covers. */
export const MIDNIGHTS_FROM = '1900-01-03';
export const MIDNIGHTS_UNTIL = '2099-12-29';
/** Widths tried, coarsest first (fewer groups per shard); each divides an hour. */
const WIDTHS = [60, 30, 15] as const;
/** A coarser width is taken only where it holds since this instant (rows before it are grouped exactly, one group per instant). */
const PREFER_SINCE_MS = Date.parse('1970-01-01T00:00:00Z');

export interface GridSpan {
  /** Bucket width in minutes. */
  readonly minutes: number;
  /** The first instant of the span where every bucket of this width lies in one local interval of it (ISO, UTC). */
  readonly since: string;
}

export interface ZoneGrid {
  /** The session TimeZone these facts are for, as PostgreSQL reports it. */
  readonly zone: string;
  /** For hour- and day-level keys: the coarsest width that holds since 1970 (else the one that holds longest). */
  readonly hours: GridSpan | undefined;
  /** For minute-level keys: one-minute buckets. */
  readonly minutes: GridSpan | undefined;
  /** Where the span read ends (ISO, UTC). */
  readonly until: string;
  /**
   * The first local date (YYYY-MM-DD) from which on to the span's end no offset change touches a
   * local midnight (none skips one, repeats one, or moves the local date back): each such date
   * starts at its midnight, which exists once, and the local date only moves forward with the
   * instant, so a local date compared with it is a range on the instant (dates.ts). 1900-01-03
   * in America/New_York (every change at 2 AM), 1949-… in Europe/Berlin (changes at midnight in
   * the 1940s); undefined where they still do (America/Santiago, America/Havana).
   */
  readonly midnightsFixedSince: string | undefined;
  /** The offset changes it was made from (absent: a grid given by hand, which then answers no range's offset). */
  readonly changes?: readonly ZoneChange[];
}

/**
 * The zone's offset changes between 1900 and 2100 as the access node's zone data has them, plus
 * its offset at the start (a row at 1900-01-01 with before = after). Empty when `$1` is a time
 * zone abbreviation (`CET`, `EST`): AT TIME ZONE reads those as a fixed offset, where the
 * session's TimeZone of that name is the full zone. Steps are in hours (a day of timestamptz
 * arithmetic is a local day of the reading session's own zone), so the answer is that session's
 * in no way.
 */
export const ZONE_CHANGES_SQL = `WITH zone AS (
  SELECT $1::text AS name WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_timezone_abbrevs WHERE lower(abbrev) = lower($1::text))
), days AS (
  SELECT d FROM zone, generate_series('${GRID_FROM}'::timestamptz, '${GRID_UNTIL}'::timestamptz - interval '24 hours', interval '24 hours') AS d
  WHERE (d AT TIME ZONE zone.name) - (d AT TIME ZONE 'UTC') <> ((d + interval '24 hours') AT TIME ZONE zone.name) - ((d + interval '24 hours') AT TIME ZONE 'UTC')
), hours AS (
  SELECT h FROM zone, days, generate_series(d, d + interval '23 hours', interval '1 hour') AS h
  WHERE (h AT TIME ZONE zone.name) - (h AT TIME ZONE 'UTC') <> ((h + interval '1 hour') AT TIME ZONE zone.name) - ((h + interval '1 hour') AT TIME ZONE 'UTC')
), minutes AS (
  SELECT m FROM zone, hours, generate_series(h, h + interval '59 minutes', interval '1 minute') AS m
  WHERE (m AT TIME ZONE zone.name) - (m AT TIME ZONE 'UTC') <> ((m + interval '1 minute') AT TIME ZONE zone.name) - ((m + interval '1 minute') AT TIME ZONE 'UTC')
)
SELECT extract(epoch FROM '${GRID_FROM}'::timestamptz)::float8 AS at, o AS before, o AS after, true AS whole
  FROM zone, LATERAL (SELECT extract(epoch FROM ('${GRID_FROM}'::timestamptz AT TIME ZONE zone.name) - ('${GRID_FROM}'::timestamptz AT TIME ZONE 'UTC'))::float8 AS o) AS start
UNION ALL
SELECT extract(epoch FROM m + interval '1 minute')::float8,
  extract(epoch FROM (m AT TIME ZONE zone.name) - (m AT TIME ZONE 'UTC'))::float8,
  extract(epoch FROM ((m + interval '1 minute') AT TIME ZONE zone.name) - ((m + interval '1 minute') AT TIME ZONE 'UTC'))::float8,
  ((m + interval '59 seconds') AT TIME ZONE zone.name) - ((m + interval '59 seconds') AT TIME ZONE 'UTC') = (m AT TIME ZONE zone.name) - (m AT TIME ZONE 'UTC')
  FROM zone, minutes
ORDER BY 1`;

/** One row of ZONE_CHANGES_SQL: seconds since the epoch, offsets in seconds east of UTC. */
export interface ZoneChange {
  readonly at: number;
  readonly before: number;
  readonly after: number;
  /** The change falls exactly on the minute `at` (else somewhere in the minute before it). */
  readonly whole: boolean;
}

/** Reads the zone's grid from the access node; undefined when it has none worth using (or `zone` is an abbreviation). */
export async function readZoneGrid(client: Queryable, zone: string): Promise<ZoneGrid | undefined> {
  const { rows } = await client.query<Record<string, unknown>>(ZONE_CHANGES_SQL, [zone]);
  const changes = rows.map((r) => ({ at: Number(r.at), before: Number(r.before), after: Number(r.after), whole: r.whole === true }));
  return zoneGrid(zone, changes);
}

/**
 * The grid the changes allow. Per width, walking back from 2100: each period (from one change to
 * the next) must have an offset that is a multiple of the width, and begin with a change on a
 * multiple of it; the first that does not ends the walk, and buckets from the next multiple on
 * are whole.
 */
export function zoneGrid(zone: string, changes: readonly ZoneChange[], nowMs = Date.now()): ZoneGrid | undefined {
  if (changes.length === 0) return undefined;
  const spans = new Map<number, number>();
  for (const width of [...WIDTHS, 1]) {
    const step = width * 60;
    const ceil = (s: number): number => Math.ceil(s / step) * step;
    let since = FROM_MS / 1000;
    for (let i = changes.length - 1; i >= 0; i--) {
      const c = changes[i] as ZoneChange;
      const end = changes[i + 1]?.at ?? UNTIL_MS / 1000;
      if (c.after % step !== 0) {
        since = ceil(end);
        break;
      }
      if (i > 0 && !(c.whole && c.at % step === 0)) {
        since = ceil(c.at);
        break;
      }
    }
    if (since * 1000 < UNTIL_MS) spans.set(width, since);
  }
  const iso = (s: number): string => new Date(s * 1000).toISOString();
  const earliest = [...WIDTHS].filter((w) => spans.has(w)).sort((a, b) => (spans.get(a) as number) - (spans.get(b) as number))[0];
  const hours = WIDTHS.find((w) => (spans.get(w) ?? Infinity) * 1000 <= PREFER_SINCE_MS) ?? earliest;
  const hoursSince = hours === undefined ? undefined : spans.get(hours);
  const minuteSince = spans.get(1);
  return {
    zone,
    midnightsFixedSince: midnightsFixedSince(changes, nowMs),
    hours: hours === undefined || hoursSince === undefined ? undefined : { minutes: hours, since: iso(hoursSince) },
    minutes: minuteSince === undefined ? undefined : { minutes: 1, since: iso(minuteSince) },
    until: iso(UNTIL_MS / 1000),
    changes,
  };
}

/**
 * The zone's offset (seconds east of UTC) at every instant from `from` to `to` (seconds since the
 * epoch, both included), when it is one offset there; undefined when a change falls inside (or
 * within the minute before a change not on the minute), or the span reaches outside the grid's.
 */
export function offsetBetween(grid: ZoneGrid, from: number, to: number): number | undefined {
  const changes = grid.changes;
  if (changes === undefined || changes.length === 0 || from > to || from < FROM_MS / 1000 || to >= UNTIL_MS / 1000) return undefined;
  let offset = (changes[0] as ZoneChange).after;
  for (const [i, c] of changes.entries()) {
    if (i === 0) continue;
    if (c.at <= from) offset = c.after;
    else if (c.at - (c.whole ? 0 : 60) <= to) return undefined;
    else break;
  }
  return offset;
}

/**
 * The first of the dates after the last change that touches a midnight (a few days on: local and
 * UTC dates differ by one at most). None while such changes are still to come: today's dates would
 * only ever fail the guard.
 */
function midnightsFixedSince(changes: readonly ZoneChange[], nowMs: number): string | undefined {
  const last = changes.findLast((c, i) => i > 0 && touchesMidnight(c));
  if (last === undefined) return MIDNIGHTS_FROM;
  return last.at * 1000 > nowMs ? undefined : new Date((last.at + 3 * 86_400) * 1000).toISOString().slice(0, 10);
}

/** Whether the local times a change skips or repeats (its minute, when not on it, too) include a local midnight. */
function touchesMidnight(c: ZoneChange): boolean {
  const day = 86_400;
  const from = c.at - (c.whole ? 0 : 60) + Math.min(c.before, c.after);
  const to = c.at + Math.max(c.before, c.after);
  // The first local midnight at or after `from` falls before `to`: inside [from, to).
  return Math.ceil(from / day) * day < to;
}

/**
 * The per-shard key: the W-bucket of `column` inside the span, the instant itself outside it (a
 * group of its own, exact). Every part is immutable, so postgres_fdw ships it.
 */
export function gridBucket(span: GridSpan, until: string, column: string): string {
  const at = (iso: string): string => `'${iso.replace('T', ' ').replace(/\.000Z$/, '+00')}'::timestamptz`;
  const bin = `date_bin('${span.minutes} minutes'::interval, ${column}, '2000-01-01 00:00:00+00'::timestamptz)`;
  return `CASE WHEN ${column} >= ${at(span.since)} AND ${column} < ${at(until)} THEN ${bin} ELSE ${column} END`;
}
