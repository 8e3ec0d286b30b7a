/**
 * The CHECK that keeps each shard's rows within its hash bounds on the data node (foreign
 * partitions are never validated, so it is the only guard against a row on the wrong shard).
 */
import type { ClusterLayout, Hypertable, Shard } from '../../plan/layout.js';
import { derivedName } from '../../plan/names.js';
import type { CatalogCheck } from '../catalog/constraints.js';
import { displayName, finding, nameKey, type Finding } from '../model.js';
import { parseBoundsCheck, type BoundsCheck } from '../pgText.js';

/** The constraint name hypershard gives a shard's bounds check (see src/sql/dataNode.ts). */
export function boundsCheckName(shard: Shard): string {
  return derivedName(shard.table.name, '_bounds');
}

function formatBoundsCheck(check: BoundsCheck): string {
  return `satisfies_hash_partition('${check.parent.join('.')}'::regclass, ${check.modulus}, ${check.remainder}, ${check.column})`;
}

function sameCheck(a: BoundsCheck, b: BoundsCheck): boolean {
  return a.parent.join('\u0000') === b.parent.join('\u0000') && a.modulus === b.modulus && a.remainder === b.remainder && a.column === b.column;
}

export function compareShardCheck(h: Hypertable, shard: Shard, checks: readonly CatalogCheck[]): Finding[] {
  const name = boundsCheckName(shard);
  const object = `constraint ${name} on ${displayName(shard.table)}`;
  const expected: BoundsCheck = { parent: [h.table.schema, h.table.name], modulus: shard.modulus, remainder: shard.remainder, column: h.spaceColumn };
  const matching = checks.find((c) => {
    const parsed = parseBoundsCheck(c.expression);
    return parsed !== undefined && sameCheck(parsed, expected);
  });
  if (matching !== undefined) {
    return matching.validated ? [] : [finding('different', object, `the bounds check is NOT VALID: rows from before it was added are not checked`, { expected: 'validated', actual: 'NOT VALID' })];
  }
  const named = checks.find((c) => c.name === name);
  if (named !== undefined) {
    return [finding('different', object, `the bounds check does not match shard ${shard.index} of ${displayName(h.table)}`, { expected: formatBoundsCheck(expected), actual: named.expression })];
  }
  return [finding('missing', object, `${displayName(shard.table)} has no bounds check: a row written straight to the shard could belong to another one`, { expected: formatBoundsCheck(expected) })];
}

export function compareBoundsChecks(layout: ClusterLayout, node: string, existing: ReadonlySet<string>, checks: ReadonlyMap<string, readonly CatalogCheck[]>): Finding[] {
  return layout.hypertables.flatMap((h) =>
    h.shards
      .filter((s) => s.dataNode === node && existing.has(nameKey(s.table)))
      .flatMap((s) => compareShardCheck(h, s, checks.get(nameKey(s.table)) ?? [])),
  );
}
