/**
 * Chunk range arithmetic, pure. Times are whole epoch seconds (UTC); chunks are aligned like
 * `date_bin(interval, t, '2000-01-01')` and named `<prefix>_<YYYYMMDD>T<HHMMSS>` after their lower
 * bound in UTC, exactly as `_hypershard.create_chunks` names them.
 */

/** 2000-01-01T00:00:00Z, the origin chunks are aligned to. */
export const ORIGIN_EPOCH = 946_684_800;

/**
 * 0001-01-01 and 10000-01-01 UTC: chunks between them have a 4-digit year in their name, so names
 * are unambiguous (to_char writes year 44 BC as 0044, like 44 AD).
 */
const FIRST_NAMEABLE = -62_135_596_800;
const LAST_NAMEABLE = 253_402_300_800;

export interface TimeRange {
  /** Inclusive lower bound, epoch seconds. */
  readonly from: number;
  /** Exclusive upper bound, epoch seconds. */
  readonly to: number;
}

/** Lower bound of the chunk holding `epoch` (floor, also before the origin). */
export function chunkStart(epoch: number, strideSeconds: number): number {
  return ORIGIN_EPOCH + Math.floor((epoch - ORIGIN_EPOCH) / strideSeconds) * strideSeconds;
}

/** The chunk with index `bin` counted from the origin (negative before it). */
export function binRange(bin: number, strideSeconds: number): TimeRange {
  const from = ORIGIN_EPOCH + bin * strideSeconds;
  return { from, to: from + strideSeconds };
}

/**
 * The chunks `create_chunks(…, behind => 0, ahead)` makes at `now`: the one holding now and
 * `ahead` after it, so the newest upper bound is at least now + ahead × stride.
 */
export function aheadRanges(now: number, strideSeconds: number, ahead: number): TimeRange[] {
  const first = chunkStart(now, strideSeconds);
  return Array.from({ length: ahead + 1 }, (_, i) => ({ from: first + i * strideSeconds, to: first + (i + 1) * strideSeconds }));
}

/** Whether a chunk lies wholly before the retention horizon: its upper bound ≤ now − retention. */
export function isExpired(range: TimeRange, now: number, retentionSeconds: number): boolean {
  return range.to <= now - retentionSeconds;
}

/** Whether a chunk can be named (and bounded) with a 4-digit year. */
export function nameable(range: TimeRange): boolean {
  return range.from >= FIRST_NAMEABLE && range.to <= LAST_NAMEABLE;
}

/** `YYYYMMDD"T"HHMMSS` of the lower bound in UTC, as create_chunks' to_char writes it. */
export function chunkSuffix(from: number): string {
  const d = utcParts(from);
  return `${d.year}${d.month}${d.day}T${d.hour}${d.minute}${d.second}`;
}

export function chunkName(prefix: string, from: number): string {
  return `${prefix}_${chunkSuffix(from)}`;
}

/**
 * A bound as PostgreSQL text: `2024-05-01 00:00:00+00` for timestamptz, `2024-05-01 00:00:00`
 * for timestamp (whose chunks hold UTC wall-clock times, as create_chunks' `utc_bounds`).
 */
export function boundText(epoch: number, utc: boolean): string {
  const d = utcParts(epoch);
  return `${d.year}-${d.month}-${d.day} ${d.hour}:${d.minute}:${d.second}${utc ? '' : '+00'}`;
}

/** ISO 8601 in UTC to the second, for reports: `2024-05-01T00:00:00Z`. */
export function isoTime(epoch: number): string {
  return new Date(epoch * 1000).toISOString().replace(/\.000Z$/, 'Z');
}

function utcParts(epoch: number): Record<'year' | 'month' | 'day' | 'hour' | 'minute' | 'second', string> {
  if (!Number.isInteger(epoch) || epoch < FIRST_NAMEABLE || epoch > LAST_NAMEABLE) {
    throw new RangeError(`${epoch} is not a whole second between years 1 and 9999`);
  }
  const d = new Date(epoch * 1000);
  const two = (n: number): string => String(n).padStart(2, '0');
  return {
    year: String(d.getUTCFullYear()).padStart(4, '0'),
    month: two(d.getUTCMonth() + 1),
    day: two(d.getUTCDate()),
    hour: two(d.getUTCHours()),
    minute: two(d.getUTCMinutes()),
    second: two(d.getUTCSeconds()),
  };
}
