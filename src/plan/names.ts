import { createHash } from 'node:crypto';
import { byteLength, MAX_IDENTIFIER_BYTES } from '../sql/quote.js';

/**
 * Builds a name hypershard derives from user names (`metrics` + `_s3`). PostgreSQL would silently
 * truncate a name over 63 bytes, so two long names could become one; instead the base is cut at a
 * character boundary and a hash of the full name is added, keeping the suffix readable.
 */
export function derivedName(base: string, suffix: string, maxBytes = MAX_IDENTIFIER_BYTES): string {
  const full = base + suffix;
  if (byteLength(full) <= maxBytes) return full;
  const hash = `_${createHash('sha256').update(full).digest('hex').slice(0, 8)}`;
  const budget = maxBytes - byteLength(hash) - byteLength(suffix);
  return truncateBytes(base, budget) + hash + suffix;
}

/** The longest prefix of `text` that fits in `maxBytes` bytes without splitting a character. */
export function truncateBytes(text: string, maxBytes: number): string {
  let out = '';
  let bytes = 0;
  for (const char of text) {
    const size = byteLength(char);
    if (bytes + size > maxBytes) break;
    out += char;
    bytes += size;
  }
  return out;
}

/**
 * The FDW server of a data node's shard slot `index` (layout.ts: one server per data node and slot,
 * so shards on one node run concurrently through distinct connections).
 */
export function fdwServerName(dataNode: string, index: number): string {
  return derivedName(`hypershard_${dataNode}`, `_${index}`);
}

/**
 * The node view (layout.ts `NodeView`) of a hypertable's shards `indexes` (ascending): named by
 * the set, so a view of another set never takes its name.
 */
export function nodeViewName(tableName: string, indexes: readonly number[]): string {
  return derivedName(tableName, `_n${shardSetHash(indexes)}`);
}

/** The node lastpoint view (layout.ts `NodeView.lastpoint`) of the same set: the UNION ALL of its shards' lastpoint views. */
export function nodeLastpointName(tableName: string, indexes: readonly number[]): string {
  return derivedName(tableName, `_n${shardSetHash(indexes)}_last`);
}

const shardSetHash = (indexes: readonly number[]): string => createHash('sha256').update(indexes.join(',')).digest('hex').slice(0, 8);
