/**
 * Which key sub-selects are read before planning (src/rewrite/referenceKeys.ts) and what the
 * statement becomes with their keys; executed against real clusters in
 * test/integration/rewriteKeys.test.ts.
 */
import { describe, expect, it } from 'vitest';
import type { ClusterMetadata, DistributedTable } from '../../src/rewrite/model.js';
import { findKeyLookup, KEYS_GUARD_NAME, MAX_REFERENCE_KEYS, readKeyAnswer } from '../../src/rewrite/referenceKeys.js';
import { rewriteSql } from '../../src/rewrite/rewrite.js';

const CPU: DistributedTable = {
  table: { schema: 'public', name: 'cpu' },
  columns: [{ name: 'time', type: 'timestamptz', notNull: true }, { name: 'tags_id', type: 'integer', notNull: true }, { name: 'host', type: 'text' }, { name: 'usage', type: 'double precision' }],
  spaceColumn: 'tags_id',
  timeColumn: 'time',
  shards: [0, 1, 2, 3].map((i) => ({ index: i, modulus: 4, remainder: i, table: { schema: '_hypershard', name: `cpu_s${i}` }, server: `srv_${i}` })),
};
const TEXT_KEYED: DistributedTable = { ...CPU, table: { schema: 'public', name: 'logs' }, spaceColumn: 'host', shards: CPU.shards.map((s) => ({ ...s, table: { schema: '_hypershard', name: `logs_s${s.index}` } })) };
const TAGS = {
  table: { schema: 'public', name: 'tags' },
  columns: [{ name: 'id', type: 'integer' }, { name: 'hostname', type: 'text' }],
  copies: CPU.shards.map((s) => ({ server: s.server, table: { schema: '_hypershard', name: `tags_${s.server}` } })),
};
const META: ClusterMetadata = { hypertables: [CPU, TEXT_KEYED], referenceTables: [TAGS] };

describe('reference keys read before planning', () => {
  it('finds space IN (SELECT …) and = ANY(ARRAY(SELECT …)) over reference tables, with the sub-select’s bind values renumbered', () => {
    const a = findKeyLookup(`SELECT max(usage) FROM cpu WHERE time > now() - interval '1 hour' AND tags_id IN (SELECT id FROM tags WHERE hostname = 'h1')`, META);
    expect(a?.column).toBe('public.cpu.tags_id');
    expect(a?.query).toContain(`FROM (SELECT id FROM tags WHERE hostname = 'h1') AS s(v) WHERE s.v IS NOT NULL LIMIT ${MAX_REFERENCE_KEYS + 1}`);
    const b = findKeyLookup(`EXPLAIN SELECT * FROM cpu c WHERE c.usage > $1 AND c.tags_id = ANY(ARRAY(SELECT t.id FROM tags t WHERE t.hostname = lower($2)))`, META);
    expect(b?.params).toEqual([2]);
    expect(b?.query).toContain('lower($1)');
    const text = b?.substitute({ keys: '{3,8}', type: 'integer' }) ?? '';
    expect(text.startsWith('EXPLAIN SELECT')).toBe(true);
    expect(text).toContain('c.tags_id IN (3::integer, 8::integer) AND (SELECT CASE WHEN (SELECT pg_catalog.array_agg(DISTINCT g.v ORDER BY g.v) FROM (SELECT t.id FROM tags AS t WHERE t.hostname = lower($2)) AS g(v)');
    expect(text).toContain(`= '{3,8}'::integer[] THEN true ELSE ('"${KEYS_GUARD_NAME}"'`);
  });

  it('leaves sub-selects that read more than reference tables, call functions not known to be non-volatile, refer outside, or key text', () => {
    for (const sql of [
      `SELECT * FROM cpu WHERE tags_id IN (SELECT tags_id FROM cpu WHERE usage > 90)`,
      `SELECT * FROM cpu WHERE tags_id IN (SELECT id FROM tags WHERE random() < 0.5)`,
      `SELECT * FROM cpu WHERE tags_id IN (SELECT id FROM tags t JOIN other o ON o.id = t.id)`,
      `SELECT * FROM cpu c WHERE tags_id IN (SELECT id FROM tags t WHERE t.hostname = c.host)`,
      `SELECT * FROM cpu WHERE tags_id IN (SELECT id FROM tags) OR usage > 1`,
      `SELECT * FROM cpu WHERE tags_id IN (WITH x AS (SELECT id FROM tags) SELECT id FROM x)`,
      `SELECT * FROM logs WHERE host IN (SELECT hostname FROM tags)`,
      `SELECT * FROM cpu WHERE tags_id IN (SELECT id FROM tags); SELECT 1`,
      `UPDATE cpu SET usage = 0 WHERE tags_id IN (SELECT id FROM tags)`,
      `DECLARE c CURSOR FOR SELECT * FROM cpu WHERE tags_id IN (SELECT id FROM tags)`,
    ]) expect(findKeyLookup(sql, META), sql).toBeUndefined();
  });

  it('substitutes at most MAX_REFERENCE_KEYS integer keys, and none when the sub-select returned none', () => {
    expect(readKeyAnswer({ keys: '{1,2}', n: '2', type: 'integer' })).toEqual({ answer: { keys: '{1,2}', type: 'integer' }, values: ['1', '2'] });
    expect(readKeyAnswer({ keys: null, n: '0', type: 'integer' })).toBe('the sub-select returned no key');
    expect(readKeyAnswer({ keys: '{1}', n: String(MAX_REFERENCE_KEYS + 1), type: 'integer' })).toBe(`the sub-select returned more than ${MAX_REFERENCE_KEYS} keys`);
    expect(readKeyAnswer({ keys: '{1.5}', n: '1', type: 'numeric' })).toContain('only integer keys');
  });

  it('the substituted statement is pinned to the shards the keys hash to, its guard kept in every arm', () => {
    const lookup = findKeyLookup(`SELECT date_trunc('minute', time) AS m, max(usage) FROM cpu WHERE tags_id IN (SELECT id FROM tags WHERE hostname = 'h1') GROUP BY 1`, META);
    const r = rewriteSql(lookup!.substitute({ keys: '{1}', type: 'integer' }), META, { timeZone: 'UTC' });
    expect(r.rewrites.find((x) => x.kind === 'shard-pinning')?.detail).toBe('tags_id = 1: only the shard that value hashes to is read');
    expect(r.sql.match(/_hypershard\.cpu_s\d/g)).toHaveLength(1);
    expect(r.sql).toContain(KEYS_GUARD_NAME);
    // Which shards keys reach, as the rewrite of constant keys computes it.
    expect(lookup!.shardsHit(['1'])).toEqual({ hit: 1, of: 4 });
    const all = Array.from({ length: 40 }, (_, i) => String(i + 1));
    expect(lookup!.shardsHit(all)).toEqual({ hit: 4, of: 4 });
    expect(lookup!.shardsHit(['4294967296'])).toBeUndefined();
  });
});
