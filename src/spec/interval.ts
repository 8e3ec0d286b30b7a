/**
 * Chunk intervals must be fixed-width (no months or years) so chunk boundaries line up with
 * `date_bin`, which ships to data nodes. Accepts PostgreSQL-style text: `1 day`, `6 hours`, `1 week`, `90 minutes`,
 * and amounts glued to their units as PostgreSQL reads them too (`5m`, `1h30m`, `2d`: Grafana's `$__interval`).
 */
const UNIT_SECONDS: Record<string, number> = {
  second: 1, seconds: 1, sec: 1, secs: 1, s: 1,
  minute: 60, minutes: 60, min: 60, mins: 60, m: 60,
  hour: 3600, hours: 3600, hr: 3600, hrs: 3600, h: 3600,
  day: 86_400, days: 86_400, d: 86_400,
  week: 604_800, weeks: 604_800, w: 604_800,
};

/** No chunk width or retention needs more; the bound also keeps every sum exact (amounts past 2^53 are not). */
const MAX_DAYS = 36_500;

export interface FixedInterval {
  readonly seconds: number;
  /** Canonical PostgreSQL text, e.g. `1 day` or `21600 seconds`. */
  readonly sql: string;
  /** Written with days or weeks (PostgreSQL's day field, which timestamptz arithmetic applies in the session's zone). */
  readonly days: boolean;
}

export function parseFixedInterval(input: string): FixedInterval | string {
  // `1h30m` is read as `1 h 30 m`, as PostgreSQL reads it; any other word stays whole.
  const parts = input
    .trim()
    .toLowerCase()
    .split(/\s+/)
    .flatMap((word) => (/^(\d+[a-z]+)+$/.test(word) ? [...word.matchAll(/(\d+)([a-z]+)/g)].flatMap((m) => [m[1] as string, m[2] as string]) : [word]));
  if (parts.length % 2 !== 0 || parts.length === 0) {
    return `invalid interval ${JSON.stringify(input)}; write it like "1 day", "6 hours" or "1 week"`;
  }
  let seconds = 0;
  let days = false;
  for (let i = 0; i < parts.length; i += 2) {
    const amount = Number(parts[i]);
    const unit = UNIT_SECONDS[parts[i + 1] ?? ''];
    if (!/^\d+$/.test(parts[i] ?? '') || amount <= 0) return `invalid interval ${JSON.stringify(input)}: ${parts[i]} is not a positive whole number`;
    if (unit === undefined) {
      return `invalid interval ${JSON.stringify(input)}: unit ${JSON.stringify(parts[i + 1])} is not fixed-width (use seconds, minutes, hours, days or weeks; months and years vary in length)`;
    }
    seconds += amount * unit;
    days ||= unit >= 86_400;
  }
  // Also catches amounts that are not safe integers (99999999999999999999999 weeks).
  if (seconds > MAX_DAYS * 86_400) return `invalid interval ${JSON.stringify(input)}: longer than ${MAX_DAYS} days (about 100 years)`;
  return { seconds, sql: canonicalInterval(seconds), days };
}

function canonicalInterval(seconds: number): string {
  for (const [unit, size] of [['week', 604_800], ['day', 86_400], ['hour', 3600], ['minute', 60]] as const) {
    if (seconds % size === 0) {
      const n = seconds / size;
      return `${n} ${unit}${n === 1 ? '' : 's'}`;
    }
  }
  return `${seconds} seconds`;
}
