/** rebalance's pure parts: choosing moves, the placement field, and placement in the layout. */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readSnapshots, writeSnapshot } from '../../src/migrations/snapshots.js';
import { exampleSpecYaml } from '../../src/spec/example.js';
import { parseSpec } from '../../src/spec/load.js';
import { SpecError } from '../../src/errors.js';
import { planLayout } from '../../src/plan/layout.js';
import { renderRebalance } from '../../src/cli/commands/rebalance.js';
import { copyRanges } from '../../src/rebalance/copy.js';
import { planMoves, TINY_BYTES_PER_NODE } from '../../src/rebalance/plan.js';
import type { ShardLoad } from '../../src/rebalance/result.js';
import { placementOverrides, recordPlacement, withPlacement } from '../../src/rebalance/specFile.js';
import { validateSpec } from '../../src/spec/validate.js';
import type { CatalogChunk } from '../../src/maintain/chunkCatalog.js';

const spec = (placement?: Record<string, string>) =>
  validateSpec({
    version: 1,
    accessNode: { name: 'access', url: 'postgres://postgres@a/app' },
    dataNodes: ['dn1', 'dn2', 'dn3'].map((name) => ({ name, url: `postgres://postgres@${name}/app` })),
    fdw: { serviceRole: { password: { env: 'SVC' } } },
    hypertables: [
      {
        name: 'm',
        columns: [
          { name: 't', type: 'timestamptz', notNull: true },
          { name: 'k', type: 'int', notNull: true },
        ],
        timeColumn: 't',
        spaceColumn: 'k',
        shards: 4,
        dataNodes: ['dn1', 'dn2'],
        ...(placement === undefined ? {} : { placement }),
      },
    ],
  });

const load = (shard: number, dataNode: string, bytes: number): ShardLoad => ({ hypertable: 'public.m', shard, dataNode, bytes });
const MB = 1024 * 1024;

describe('planMoves', () => {
  it('balances shard counts when shards are tiny, to within one', () => {
    const plan = planMoves([load(0, 'dn1', 8192), load(1, 'dn2', 8192), load(2, 'dn1', 8192), load(3, 'dn2', 8192)], ['dn1', 'dn2', 'dn3']);
    expect(plan.measure).toBe('count');
    expect(plan.moves).toEqual([
      { hypertable: 'public.m', shard: 0, source: 'dn1', target: 'dn3', bytes: 8192, why: { source: { before: 2, after: 1 }, target: { before: 0, after: 1 }, maxOverMin: { before: null, after: 2 } } },
    ]);
  });

  it('moves bytes from the fullest node to the emptiest while max/min improves', () => {
    const loads = [load(0, 'dn1', 40 * MB), load(1, 'dn2', 10 * MB), load(2, 'dn1', 30 * MB), load(3, 'dn2', 10 * MB)];
    const plan = planMoves(loads, ['dn1', 'dn2', 'dn3']);
    expect(plan.measure).toBe('bytes');
    // dn1 70, dn2 20, dn3 0 → the 40 MB shard to dn3 (30, 20, 40) → stop: no move makes max/min smaller.
    expect(plan.moves.map((m) => [m.shard, m.source, m.target])).toEqual([[0, 'dn1', 'dn3']]);
  });

  it('explains a move between two old nodes after the move to the new one', () => {
    // dn1 52 MB, dn2 48 MB, dn3 new. One move to dn3 leaves max/min at 1.92; a second one, dn2 → dn1,
    // pairs the two smallest shards and brings it to 1.56.
    const loads = [load(0, 'dn1', 27 * MB), load(1, 'dn2', 31 * MB), load(2, 'dn1', 25 * MB), load(3, 'dn2', 17 * MB)];
    const plan = planMoves(loads, ['dn1', 'dn2', 'dn3']);
    expect(plan.moves.map((m) => [m.shard, m.source, m.target])).toEqual([[0, 'dn1', 'dn3'], [3, 'dn2', 'dn1']]);
    const second = plan.moves[1]!.why;
    expect(second.source).toEqual({ before: 48 * MB, after: 31 * MB });
    expect(second.target).toEqual({ before: 25 * MB, after: 42 * MB });
    expect(second.maxOverMin.before).toBeCloseTo(48 / 25);
    expect(second.maxOverMin.after).toBeCloseTo(42 / 27);
    const text = renderRebalance({
      ok: true, dryRun: true, measure: plan.measure, recovered: [],
      moves: plan.moves.map((m) => ({ ...m, status: 'would-move', rows: 0, rowsPerSecond: 0, switchMs: 0, durationMs: 0 })),
      nodes: [
        { node: 'dn1', shardsBefore: 2, shardsAfter: 2, bytesBefore: 52 * MB, bytesAfter: 42 * MB },
        { node: 'dn2', shardsBefore: 2, shardsAfter: 1, bytesBefore: 48 * MB, bytesAfter: 31 * MB },
        { node: 'dn3', shardsBefore: 0, shardsAfter: 1, bytesBefore: 0, bytesAfter: 27 * MB },
      ],
      specWritten: false, snapshot: null, serversDropped: [], durationMs: 1,
    });
    expect(text).toMatch(/public\.m\s+3\s+dn2\s+dn1\s+17\.0 MB\s+dn2 48\.0 MB → 31\.0 MB, dn1 25\.0 MB → 42\.0 MB; max\/min 1\.92 → 1\.56/);
    expect(text).toMatch(/dn1 52\.0 MB → 25\.0 MB, dn3 0 bytes → 27\.0 MB; max\/min a node empty → 1\.92/);
    expect(text).toContain('once dn3 has shards, a move between nodes that held shards before evens out what is left');
  });

  it('moves nothing when the cluster is balanced', () => {
    expect(planMoves([load(0, 'dn1', 20 * MB), load(1, 'dn2', 20 * MB)], ['dn1', 'dn2']).moves).toEqual([]);
    expect(planMoves([load(0, 'dn1', TINY_BYTES_PER_NODE), load(1, 'dn2', 1)], ['dn1', 'dn2']).moves).toEqual([]);
  });
});

describe('placement', () => {
  it('overrides round-robin in the layout', () => {
    const shards = planLayout(spec({ '0': 'dn3' })).hypertables[0]!.shards;
    expect(shards.map((s) => [s.dataNode, s.server])).toEqual([
      ['dn3', 'hypershard_dn3_0'],
      ['dn2', 'hypershard_dn2_1'],
      ['dn1', 'hypershard_dn1_2'],
      ['dn2', 'hypershard_dn2_3'],
    ]);
  });

  it('rejects unknown shard indexes and data nodes', () => {
    let error: unknown;
    try {
      spec({ '4': 'dn1', '1': 'dn9', x: 'dn1' });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(SpecError);
    const messages = (error as SpecError).issues.map((i) => `${i.path}: ${i.message}`).join('\n');
    expect(messages).toContain('no shard 4');
    expect(messages).toContain('unknown data node "dn9"');
    expect(messages).toContain('placement');
  });

  it('records only what differs from round-robin', () => {
    const s = spec();
    const table = s.hypertables[0]!;
    expect(placementOverrides(s, table, new Map([[0, 'dn3'], [1, 'dn2'], [2, 'dn1'], [3, 'dn2']]))).toEqual({ '0': 'dn3' });
    expect(withPlacement(spec({ '0': 'dn3' }), new Map([['m', new Map([[0, 'dn1']])]])).hypertables[0]!.placement).toBeUndefined();
  });
});

describe('copyRanges', () => {
  const chunk = (from: string, to: string, fromEpoch: number, toEpoch: number): CatalogChunk => ({
    shard: 'm_s0', table: { schema: '_hypershard', name: `m_s0_${fromEpoch}` }, isDefault: false,
    range: `FOR VALUES FROM ('${from}') TO ('${to}')`, bounds: { from: fromEpoch, to: toEpoch }, bytes: 0, reltuples: 0,
  });
  it('covers every time once: each chunk, the gaps, before and after', () => {
    expect(copyRanges('t', [chunk('2026-01-03 00:00:00+00', '2026-01-04 00:00:00+00', 3, 4), chunk('2026-01-01 00:00:00+00', '2026-01-02 00:00:00+00', 1, 2), chunk('2026-01-02 00:00:00+00', '2026-01-03 00:00:00+00', 2, 3), chunk('2026-01-05 00:00:00+00', '2026-01-06 00:00:00+00', 5, 6)])).toEqual([
      `"t" >= '2026-01-01 00:00:00+00' AND "t" < '2026-01-02 00:00:00+00'`,
      `"t" >= '2026-01-02 00:00:00+00' AND "t" < '2026-01-03 00:00:00+00'`,
      `"t" >= '2026-01-03 00:00:00+00' AND "t" < '2026-01-04 00:00:00+00'`,
      `"t" >= '2026-01-05 00:00:00+00' AND "t" < '2026-01-06 00:00:00+00'`,
      `"t" < '2026-01-01 00:00:00+00'`,
      `"t" >= '2026-01-04 00:00:00+00' AND "t" < '2026-01-05 00:00:00+00'`,
      `"t" >= '2026-01-06 00:00:00+00'`,
    ]);
    expect(copyRanges('t', [])).toEqual(['true']);
  });
});

describe('recordPlacement', () => {
  it('writes placement beside dataNodes, keeping comments, and a snapshot that generates the same SQL', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hypershard-placement-'));
    try {
      const file = join(dir, 'hypershard.yaml');
      const yaml = exampleSpecYaml({
        accessNode: { name: 'access', url: 'postgres://postgres@a/app' },
        dataNodes: ['dn1', 'dn2', 'dn3'].map((name) => ({ name, url: `postgres://postgres@${name}/app` })),
        servicePassword: { env: 'SVC' },
        readerPassword: { env: 'READER' },
        shards: 4,
      }).replace('    shards: 4\n', '    shards: 4\n    dataNodes: [dn1, dn2]\n');
      await writeFile(file, yaml);
      const migrations = join(dir, 'migrations');
      await writeSnapshot(migrations, 1, parseSpec(yaml));
      const written = await recordPlacement(file, migrations, new Map([['metrics', new Map([[0, 'dn3'], [1, 'dn2']])]]));
      expect(written.specWritten).toBe(true);
      const text = await readFile(file, 'utf8');
      expect(text).toMatch(/ {4}dataNodes: \[ ?dn1, dn2 ?\]\n {4}placement: \{ "0": dn3 \}\n/);
      expect(text).toContain('# Data nodes hold the rows.');
      const snapshots = await readSnapshots(migrations);
      expect(snapshots.map((x) => x.step)).toEqual([1, 2]);
      expect(snapshots[1]?.spec.hypertables[0]?.placement).toEqual({ '0': 'dn3' });
      // Recording the same placement again writes nothing.
      expect(await recordPlacement(file, migrations, new Map([['metrics', new Map([[0, 'dn3']])]]))).toEqual({ specWritten: false, snapshot: null });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
