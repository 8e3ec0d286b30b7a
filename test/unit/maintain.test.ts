import { describe, expect, it } from 'vitest';
import { MAINTAIN_LOCK_KEY } from '../../src/maintain/lock.js';
import { aheadRanges, binRange, boundText, chunkName, chunkStart, isExpired, isoTime, nameable, ORIGIN_EPOCH } from '../../src/maintain/ranges.js';
import { planAhead, planRepair, planRetention } from '../../src/maintain/shardPlan.js';
import { renderChunks, renderMaintain } from '../../src/cli/commands/maintain.js';

const DAY = 86_400;
const HOUR = 3600;
/** Epoch seconds of an ISO time. */
const t = (iso: string): number => Date.parse(iso) / 1000;

describe('chunk ranges', () => {
  it('aligns like date_bin with origin 2000-01-01, also before the origin', () => {
    expect(ORIGIN_EPOCH).toBe(t('2000-01-01T00:00:00Z'));
    expect(chunkStart(t('2026-11-23T20:33:13Z'), DAY)).toBe(t('2026-11-23T00:00:00Z'));
    expect(chunkStart(t('2026-11-23T00:00:00Z'), DAY)).toBe(t('2026-11-23T00:00:00Z'));
    expect(chunkStart(t('1990-05-05T10:00:00Z'), DAY)).toBe(t('1990-05-05T00:00:00Z'));
    expect(chunkStart(t('1999-12-31T23:59:59Z'), DAY)).toBe(t('1999-12-31T00:00:00Z'));
    // Weeks start on the origin's weekday (a Saturday), as date_bin's do.
    expect(chunkStart(t('2026-11-23T12:00:00Z'), 7 * DAY)).toBe(t('2026-11-21T00:00:00Z'));
    expect(chunkStart(t('2026-11-23T07:59:00Z'), 6 * HOUR)).toBe(t('2026-11-23T06:00:00Z'));
  });

  it('numbers chunks from the origin', () => {
    expect(binRange(0, DAY)).toEqual({ from: ORIGIN_EPOCH, to: ORIGIN_EPOCH + DAY });
    expect(binRange(-1, DAY)).toEqual({ from: t('1999-12-31T00:00:00Z'), to: ORIGIN_EPOCH });
  });

  it('makes the chunk holding now and `ahead` after it', () => {
    const ranges = aheadRanges(t('2026-11-23T20:00:00Z'), DAY, 2);
    expect(ranges.map((r) => [isoTime(r.from), isoTime(r.to)])).toEqual([
      ['2026-11-23T00:00:00Z', '2026-11-24T00:00:00Z'],
      ['2026-11-24T00:00:00Z', '2026-11-25T00:00:00Z'],
      ['2026-11-25T00:00:00Z', '2026-11-26T00:00:00Z'],
    ]);
    expect(ranges.at(-1)!.to).toBeGreaterThanOrEqual(t('2026-11-23T20:00:00Z') + 2 * DAY);
  });

  it('names chunks after their lower bound in UTC, as create_chunks does', () => {
    expect(chunkName('metrics_s0', t('2026-11-23T00:00:00Z'))).toBe('metrics_s0_20261123T000000');
    expect(chunkName('m', t('1990-05-05T06:30:15Z'))).toBe('m_19900505T063015');
    expect(chunkName('m', t('0099-01-01T00:00:00Z'))).toBe('m_00990101T000000');
    expect(() => chunkName('m', t('2026-11-23T00:00:00.5Z'))).toThrow(RangeError);
  });

  it('writes bounds as PostgreSQL text, UTC wall-clock for timestamp columns', () => {
    expect(boundText(t('2026-11-23T00:00:00Z'), false)).toBe('2026-11-23 00:00:00+00');
    expect(boundText(t('2026-11-23T00:00:00Z'), true)).toBe('2026-11-23 00:00:00');
    expect(boundText(t('0001-01-01T00:00:00Z'), false)).toBe('0001-01-01 00:00:00+00');
  });

  it('names only chunks with a 4-digit year', () => {
    expect(nameable({ from: t('0001-01-01T00:00:00Z'), to: t('0001-01-02T00:00:00Z') })).toBe(true);
    expect(nameable({ from: t('9999-12-31T00:00:00Z'), to: t('9999-12-31T00:00:00Z') + DAY })).toBe(true);
    expect(nameable({ from: t('0000-12-31T00:00:00Z'), to: t('0001-01-01T00:00:00Z') })).toBe(false);
    expect(nameable({ from: t('9999-12-31T00:00:00Z') + DAY, to: t('9999-12-31T00:00:00Z') + 2 * DAY })).toBe(false);
  });

  it('expires a chunk only when its whole range is older than now − retention', () => {
    const now = t('2026-11-23T12:00:00Z');
    const retention = 30 * DAY;
    expect(isExpired({ from: t('2026-10-23T00:00:00Z'), to: t('2026-10-24T00:00:00Z') }, now, retention)).toBe(true);
    // Upper bound exactly at the horizon: every row in it is older than retention.
    expect(isExpired({ from: t('2026-10-23T12:00:00Z'), to: t('2026-10-24T12:00:00Z') }, now, retention)).toBe(true);
    // Straddles the horizon: some rows are still wanted.
    expect(isExpired({ from: t('2026-10-24T00:00:00Z'), to: t('2026-10-25T00:00:00Z') }, now, retention)).toBe(false);
  });
});

describe('shard plans', () => {
  const settings = { chunkPrefix: 'metrics_s0', strideSeconds: DAY };

  it('plans one chunk per range the default chunk has rows in', () => {
    const bin = (iso: string): number => Math.floor((t(iso) - ORIGIN_EPOCH) / DAY);
    const plan = planRepair(
      [
        { bin: bin('1990-05-05T10:00:00Z'), rows: 2 },
        { bin: bin('2150-06-01T00:00:00Z'), rows: 1 },
        { bin: bin('0001-01-01T00:00:00Z') - 1, rows: 4 },
        { bin: bin('9999-12-31T00:00:00Z') + 1, rows: 5 },
      ],
      settings,
    );
    expect(plan.chunks.map((c) => [c.name, isoTime(c.from), isoTime(c.to), c.rows])).toEqual([
      ['metrics_s0_19900505T000000', '1990-05-05T00:00:00Z', '1990-05-06T00:00:00Z', 2],
      ['metrics_s0_21500601T000000', '2150-06-01T00:00:00Z', '2150-06-02T00:00:00Z', 1],
    ]);
    expect(plan.unmovableRows).toBe(9);
  });

  it('plans only the chunks ahead that do not exist yet', () => {
    const now = t('2026-11-23T20:00:00Z');
    expect(planAhead(now, 3, new Set(['metrics_s0_20261123T000000', 'metrics_s0_20261124T000000']), settings).map((c) => c.name)).toEqual([
      'metrics_s0_20261125T000000',
      'metrics_s0_20261126T000000',
    ]);
    expect(planAhead(now, 0, new Set(), settings).map((c) => c.name)).toEqual(['metrics_s0_20261123T000000']);
  });

  it('drops exactly the expired range chunks, oldest first, never a default chunk', () => {
    const now = t('2026-11-23T12:00:00Z');
    const chunk = (name: string, from: string | undefined, isDefault = false) => ({
      name,
      isDefault,
      bounds: from === undefined ? undefined : { from: t(from), to: t(from) + DAY },
    });
    const chunks = [
      chunk('c_20261020', '2026-10-20T00:00:00Z'),
      chunk('c_19900505', '1990-05-05T00:00:00Z'),
      chunk('c_20261024', '2026-10-24T00:00:00Z'),
      chunk('c_20261122', '2026-11-22T00:00:00Z'),
      chunk('c_default', undefined, true),
      chunk('c_minvalue', undefined),
    ];
    expect(planRetention(chunks, now, 30 * DAY).map((c) => c.name)).toEqual(['c_19900505', 'c_20261020']);
    expect(planRetention(chunks, now, undefined)).toEqual([]);
    // Even a default chunk that somehow carried bounds is never dropped.
    expect(planRetention([{ ...chunk('d', '1990-01-01T00:00:00Z'), isDefault: true }], now, DAY)).toEqual([]);
  });
});

describe('maintain lock', () => {
  it('uses a fixed key derived from "hypershard-maintain"', () => {
    expect(MAINTAIN_LOCK_KEY).toBe('5445571011036800553');
  });
});

describe('maintain and chunks output', () => {
  const base = { created: [], dropped: [], rowsMoved: 0, rowsLeftInDefault: 0, analyzed: [], errors: [] };
  it('shows per node what was done, then each chunk', () => {
    const text = renderMaintain({
      ok: false,
      dryRun: false,
      durationMs: 120,
      nodes: [
        {
          ...base,
          node: 'dn1',
          role: 'data',
          status: 'ok',
          durationMs: 80,
          created: [{ hypertable: 'public.metrics', shard: 0, chunk: '_hypershard.metrics_s0_19900505T000000', from: '1990-05-05T00:00:00Z', to: '1990-05-06T00:00:00Z', reason: 'default-rows', rows: 2 }],
          dropped: [{ hypertable: 'public.metrics', shard: 0, chunk: '_hypershard.metrics_s0_19900505T000000', from: '1990-05-05T00:00:00Z', to: '1990-05-06T00:00:00Z' }],
          rowsMoved: 2,
          rowsLeftInDefault: 1,
        },
        { ...base, node: 'dn2', role: 'data', status: 'skipped', reason: 'another maintain is running', durationMs: 5 },
        { ...base, node: 'access', role: 'access', status: 'failed', durationMs: 30, errors: [{ step: 'analyze', hypertable: 'public.metrics', message: 'boom' }] },
      ],
    });
    expect(text).toBe(
      [
        'node    role    status   chunks created  chunks dropped  rows moved  analyzed  ms',
        '------  ------  -------  --------------  --------------  ----------  --------  --',
        'dn1     data    ok       1               1               2           0         80',
        'dn2     data    skipped  0               0               0           0         5',
        'access  access  failed   0               0               0           0         30',
        '',
        'dn1: created _hypershard.metrics_s0_19900505T000000 [1990-05-05T00:00:00Z, 1990-05-06T00:00:00Z), moved 2 rows from the default chunk',
        'dn1: dropped _hypershard.metrics_s0_19900505T000000 [1990-05-05T00:00:00Z, 1990-05-06T00:00:00Z), expired',
        'dn1: 1 row left in default chunks: no chunk can hold an infinite time or a year outside 1-9999',
        'dn2: skipped: another maintain is running',
        'access: failed (analyze, public.metrics): boom',
      ].join('\n'),
    );
  });

  it('lists chunks with their range, size and estimate; default chunks with their rows', () => {
    const chunk = { node: 'dn1', hypertable: 'public.metrics', shard: 0, bytes: 24_576 };
    const text = renderChunks({
      ok: true,
      nodes: [
        {
          node: 'dn1',
          status: 'ok',
          chunks: [
            { ...chunk, chunk: '_hypershard.metrics_s0_20261123T000000', default: false, range: "FOR VALUES FROM ('2026-11-23 00:00:00+00') TO ('2026-11-24 00:00:00+00')", from: '2026-11-23T00:00:00Z', to: '2026-11-24T00:00:00Z', rowEstimate: null },
            { ...chunk, chunk: '_hypershard.metrics_s0_default', default: true, range: 'DEFAULT', from: null, to: null, rowEstimate: 3, rows: 3, bytes: 8192 },
          ],
        },
      ],
    });
    expect(text).toBe(
      [
        'node  hypertable      shard  chunk                                   range                                                          size     rows (estimate)',
        '----  --------------  -----  --------------------------------------  -------------------------------------------------------------  -------  ---------------',
        "dn1   public.metrics  0      _hypershard.metrics_s0_20261123T000000  FROM ('2026-11-23 00:00:00+00') TO ('2026-11-24 00:00:00+00')  24.0 kB  unknown",
        'dn1   public.metrics  0      _hypershard.metrics_s0_default          DEFAULT                                                        8.0 kB   default, 3 rows',
        '',
        '3 rows in default chunks, where queries cannot skip them by time: run maintain to move them into chunks',
      ].join('\n'),
    );
  });
});
