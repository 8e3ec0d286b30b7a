/**
 * Chunk health on the data nodes: every shard has its default chunk, and rows in it (outside the
 * chunk horizon) are a warning, not drift: `maintain` moves them into proper chunks.
 */
import type { ClusterLayout } from '../../plan/layout.js';
import type { CatalogDefaultChunk } from '../catalog/defaultChunks.js';
import { displayName, finding, nameKey, type Finding } from '../model.js';

export function compareDefaultChunks(layout: ClusterLayout, node: string, existing: ReadonlySet<string>, chunks: readonly CatalogDefaultChunk[]): Finding[] {
  const out: Finding[] = [];
  for (const h of layout.hypertables) {
    for (const shard of h.shards.filter((s) => s.dataNode === node && existing.has(nameKey(s.table)))) {
      const expected = `${shard.table.schema}.${shard.chunkPrefix}_default`;
      const chunk = chunks.find((c) => nameKey(c.shard) === nameKey(shard.table));
      if (chunk === undefined) {
        out.push(finding('missing', `default chunk ${expected}`, `${displayName(shard.table)} has no default chunk: a row outside every chunk fails to insert`));
        continue;
      }
      const object = `default chunk ${displayName(chunk.chunk)}`;
      if (displayName(chunk.chunk) !== expected) {
        out.push(finding('different', object, `the default chunk of ${displayName(shard.table)} has another name`, { expected, actual: displayName(chunk.chunk) }));
      }
      if (chunk.error !== undefined) {
        out.push(finding('warning', object, `its rows could not be counted: ${chunk.error}`));
      } else if (chunk.rows > 0) {
        out.push(finding('warning', object, `${chunk.rows} row${chunk.rows === 1 ? '' : 's'} outside the chunk horizon, from ${chunk.from ?? '?'} to ${chunk.to ?? '?'}; range pruning cannot skip them (maintain moves them into chunks)`, {
          expected: '0 rows',
          actual: `${chunk.rows} row${chunk.rows === 1 ? '' : 's'}, ${chunk.from ?? '?'} … ${chunk.to ?? '?'}`,
        }));
      }
    }
  }
  return out;
}
