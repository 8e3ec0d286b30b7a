/**
 * What maintain does to one shard, decided from what its catalog holds: pure, so the dry run
 * reports exactly what a run would do and the rules are unit-tested without a server.
 */
import { aheadRanges, binRange, chunkName, isExpired, nameable, type TimeRange } from './ranges.js';

export interface PlannedChunk extends TimeRange {
  readonly name: string;
}

export interface RepairChunk extends PlannedChunk {
  /** Rows of the default chunk that move into it. */
  readonly rows: number;
}

/** Rows of a default chunk per chunk index (`floor((epoch − origin) / stride)`), from the server. */
export interface DefaultBin {
  readonly bin: number;
  readonly rows: number;
}

export interface RepairPlan {
  readonly chunks: readonly RepairChunk[];
  /** Rows no chunk can take: times outside years 1–9999 (infinite times the caller counts). */
  readonly unmovableRows: number;
}

export interface ShardSettings {
  /** Chunk names are `<chunkPrefix>_<YYYYMMDD>T<HHMMSS>`. */
  readonly chunkPrefix: string;
  readonly strideSeconds: number;
}

/** The chunks to create for the rows of a default chunk, one per chunk range that holds any. */
export function planRepair(bins: readonly DefaultBin[], settings: ShardSettings): RepairPlan {
  const chunks: RepairChunk[] = [];
  let unmovableRows = 0;
  for (const { bin, rows } of bins) {
    const range = binRange(bin, settings.strideSeconds);
    if (!nameable(range)) unmovableRows += rows;
    else chunks.push({ ...range, name: chunkName(settings.chunkPrefix, range.from), rows });
  }
  return { chunks, unmovableRows };
}

/** The chunks `create_chunks(…, behind => 0, ahead)` would add at `now`: those not there yet. */
export function planAhead(now: number, ahead: number, existing: ReadonlySet<string>, settings: ShardSettings): PlannedChunk[] {
  return aheadRanges(now, settings.strideSeconds, ahead)
    .map((range) => ({ ...range, name: chunkName(settings.chunkPrefix, range.from) }))
    .filter((chunk) => !existing.has(chunk.name));
}

/** Range chunks wholly older than `now − retention`, oldest first. Never a default chunk: it has no range. */
export function planRetention<C extends { readonly bounds: TimeRange | undefined; readonly isDefault: boolean }>(
  chunks: readonly C[],
  now: number,
  retentionSeconds: number | undefined,
): (C & { readonly bounds: TimeRange })[] {
  if (retentionSeconds === undefined) return [];
  return chunks
    .filter((c): c is C & { bounds: TimeRange } => !c.isDefault && c.bounds !== undefined && isExpired(c.bounds, now, retentionSeconds))
    .sort((a, b) => a.bounds.from - b.bounds.from);
}
