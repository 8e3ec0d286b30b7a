/**
 * The protocol between routed writes and rebalance. A routed write holds, in its access-node
 * transaction, a shared advisory lock per shard it writes; a move takes the same lock exclusively
 * before it copies the shard, so neither starts while the other runs. A routed write reads the
 * placement after its locks are granted, so it writes where the shard is, never behind a move's
 * back. Transaction-scoped: a crashed writer's locks go with its session.
 */
import { createHash } from 'node:crypto';
import type { QualifiedName } from '../plan/layout.js';

/**
 * The first key of a hypertable's shard locks: 4 bytes of sha256 over its name, the same in every
 * process and version. The second key is the shard's remainder.
 */
export function shardLockKey(table: QualifiedName): number {
  return createHash('sha256').update(`hypershard-shard\u0000${table.schema}\u0000${table.name}`).digest().readInt32BE(0);
}

/** Shared locks on the given remainders, in order (a move locks one: no deadlock among writers and moves). */
export function shardLocksSql(table: QualifiedName, remainders: readonly number[], mode: 'shared' | 'exclusive'): string {
  const key = shardLockKey(table);
  const fn = mode === 'shared' ? 'pg_advisory_xact_lock_shared' : 'pg_advisory_xact_lock';
  const sorted = [...new Set(remainders)].sort((a, b) => a - b);
  for (const r of sorted) if (!Number.isSafeInteger(r) || r < 0) throw new TypeError(`not a remainder: ${r}`);
  return `SELECT pg_catalog.${fn}(${key}, r) FROM pg_catalog.unnest(ARRAY[${sorted.join(',')}]::pg_catalog.int4[]) AS r`;
}
