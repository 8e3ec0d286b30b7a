import { describe, expect, it } from 'vitest';
import { gridBucket, offsetBetween, zoneGrid, type ZoneChange } from '../../src/rewrite/zoneGrid.js';

const at = (iso: string): number => Date.parse(iso) / 1000;
const start = (offset: number): ZoneChange => ({ at: at('1900-01-01T00:00:00Z'), before: offset, after: offset, whole: true });
const change = (iso: string, before: number, after: number, whole = true): ZoneChange => ({ at: at(iso), before, after, whole });

describe('zoneGrid', () => {
  it('whole-hour offsets changing on whole UTC hours: hour buckets over the whole span', () => {
    const changes = [start(-18000), change('2026-03-08T07:00:00Z', -18000, -14400), change('2026-11-01T06:00:00Z', -14400, -18000)];
    const grid = zoneGrid('America/New_York', changes);
    expect(grid).toEqual({
      zone: 'America/New_York',
      hours: { minutes: 60, since: '1900-01-01T00:00:00.000Z' },
      minutes: { minutes: 1, since: '1900-01-01T00:00:00.000Z' },
      until: '2100-01-01T00:00:00.000Z',
      midnightsFixedSince: '1900-01-03',
      changes,
    });
  });

  it('midnights are fixed unless a change skips, repeats or crosses one (then a local date is no range of instants); from a few days after the last that does', () => {
    const since = (...changes: ZoneChange[]): string | undefined => zoneGrid('X/Y', [start(-14400), ...changes])?.midnightsFixedSince;
    const fixed = (...changes: ZoneChange[]): boolean => since(...changes) === '1900-01-03';
    // America/Santiago: 24:00 -> 01:00 in September skips a midnight. In April 24:00 -> 23:00
    // repeats the last hour of the day before: its midnight comes once, after (that alone is fixed).
    expect(fixed(change('2026-09-06T04:00:00Z', -14400, -10800))).toBe(false);
    expect(fixed(change('2026-04-05T03:00:00Z', -10800, -14400))).toBe(true);
    // 01:00 -> 00:00: the midnight comes twice.
    expect(fixed(change('2026-11-01T05:00:00Z', -14400, -18000))).toBe(false);
    // 00:30 -> 23:30 the day before: the local date goes back.
    expect(fixed(change('2026-11-01T04:30:00Z', -14400, -18000))).toBe(false);
    // A change inside the minute before 00:00 local (not on the minute): its minute reaches midnight.
    expect(fixed(change('2026-03-08T04:00:00Z', -14400, -14370, false))).toBe(false);
    // 02:00 -> 03:00 and 02:00 -> 01:00, 23:00 -> 23:30: midnights untouched.
    expect(fixed(change('2026-03-08T06:00:00Z', -14400, -10800), change('2026-11-01T05:00:00Z', -10800, -14400), change('2027-01-01T03:00:00Z', -14400, -12600))).toBe(true);
    // A midnight touched in 1946, none after: from three days on. Touched next year (or in 2099): none, yet.
    expect(since(change('1946-04-14T04:00:00Z', -14400, -10800), change('2026-03-08T06:00:00Z', -10800, -7200))).toBe('1946-04-17');
    expect(since(change(`${new Date().getUTCFullYear() + 1}-09-06T04:00:00Z`, -14400, -10800))).toBeUndefined();
    expect(since(change('2099-09-06T04:00:00Z', -14400, -10800))).toBeUndefined();
  });

  it('an odd local mean time, then a change inside a minute, then half hours: half-hour buckets from the next half hour on', () => {
    const grid = zoneGrid('Asia/Kolkata', [start(19270), change('1905-12-31T18:39:00Z', 19270, 19800, false), change('1941-09-30T18:30:00Z', 19800, 23400), change('1942-05-14T17:30:00Z', 23400, 19800)]);
    expect(grid?.hours).toEqual({ minutes: 30, since: '1905-12-31T19:00:00.000Z' });
    expect(grid?.minutes).toEqual({ minutes: 1, since: '1905-12-31T18:39:00.000Z' });
  });

  it('a coarser width that holds only recently is passed over for one that holds since 1970', () => {
    // Offsets of whole hours since 1990, of half hours before.
    const grid = zoneGrid('X/Y', [start(1800), change('1990-01-01T00:30:00Z', 1800, 3600)]);
    expect(grid?.hours).toEqual({ minutes: 30, since: '1900-01-01T00:00:00.000Z' });
  });

  it('a change off the width breaks it up to that change; an offset off it, up to the end of its period', () => {
    const offHour = zoneGrid('X/Y', [start(3600), change('2000-03-01T00:30:00Z', 3600, 7200), change('2000-10-01T00:00:00Z', 7200, 3600)]);
    expect(offHour?.hours).toEqual({ minutes: 30, since: '1900-01-01T00:00:00.000Z' });
    // Off every width, and recent: the width that holds longest, from the change on.
    const offAll = zoneGrid('X/Y', [start(3600), change('2000-03-01T00:10:00Z', 3600, 7200), change('2000-10-01T00:00:00Z', 7200, 3600)]);
    expect(offAll?.hours).toEqual({ minutes: 15, since: '2000-03-01T00:15:00.000Z' });
    const oddOffset = zoneGrid('X/Y', [start(3600), change('2000-03-01T00:00:00Z', 3600, 3900), change('2000-10-01T00:00:00Z', 3900, 3600)]);
    expect(oddOffset?.hours).toEqual({ minutes: 60, since: '2000-10-01T00:00:00.000Z' });
    expect(oddOffset?.minutes).toEqual({ minutes: 1, since: '1900-01-01T00:00:00.000Z' });
  });

  it('no span when the last period itself breaks every width; nothing for an abbreviation (no rows)', () => {
    const changes = [start(3600), change('2000-03-01T00:00:00Z', 3600, 3601, false)];
    expect(zoneGrid('X/Y', changes)).toEqual({ zone: 'X/Y', hours: undefined, minutes: undefined, until: '2100-01-01T00:00:00.000Z', midnightsFixedSince: '1900-01-03', changes });
    expect(zoneGrid('CET', [])).toBeUndefined();
  });

  it('the offset all through a span of instants, when there is one', () => {
    const grid = zoneGrid('X/Y', [start(-18000), change('2026-03-08T07:00:00Z', -18000, -14400), change('2026-11-01T06:00:00Z', -14400, -18000), change('2027-03-14T07:00:30Z', -18000, -14400, false)]);
    if (grid === undefined) throw new Error('no grid');
    expect(offsetBetween(grid, at('2026-01-05T00:00:00Z'), at('2026-01-06T00:00:00Z'))).toBe(-18000);
    expect(offsetBetween(grid, at('2026-06-01T00:00:00Z'), at('2026-06-02T00:00:00Z'))).toBe(-14400);
    // From the instant of a change on: its new offset; up to it (included): the change is inside.
    expect(offsetBetween(grid, at('2026-11-01T06:00:00Z'), at('2026-11-02T00:00:00Z'))).toBe(-18000);
    expect(offsetBetween(grid, at('2026-11-01T00:00:00Z'), at('2026-11-01T06:00:00Z'))).toBeUndefined();
    expect(offsetBetween(grid, at('2026-03-01T00:00:00Z'), at('2026-03-15T00:00:00Z'))).toBeUndefined();
    // A change somewhere in the minute before its instant: that minute is inside.
    expect(offsetBetween(grid, at('2027-03-01T00:00:00Z'), at('2027-03-14T07:00:00Z'))).toBeUndefined();
    expect(offsetBetween(grid, at('2027-03-01T00:00:00Z'), at('2027-03-14T06:59:29Z'))).toBe(-18000);
    // Outside the span read, or backwards: no answer.
    expect(offsetBetween(grid, at('1899-12-31T00:00:00Z'), at('1900-01-02T00:00:00Z'))).toBeUndefined();
    expect(offsetBetween(grid, at('2099-12-31T00:00:00Z'), at('2100-01-01T00:00:00Z'))).toBeUndefined();
    expect(offsetBetween(grid, at('2026-06-02T00:00:00Z'), at('2026-06-01T00:00:00Z'))).toBeUndefined();
  });

  it('the per-shard key: buckets inside the span, the instant itself outside it', () => {
    expect(gridBucket({ minutes: 30, since: '1905-12-31T19:00:00.000Z' }, '2100-01-01T00:00:00.000Z', 'm."time"')).toBe(
      `CASE WHEN m."time" >= '1905-12-31 19:00:00+00'::timestamptz AND m."time" < '2100-01-01 00:00:00+00'::timestamptz THEN date_bin('30 minutes'::interval, m."time", '2000-01-01 00:00:00+00'::timestamptz) ELSE m."time" END`,
    );
  });
});
