/** What `rebalance` reports: a result per move and per data node (the library never prints). */

export interface ShardLoad {
  readonly hypertable: string;
  readonly shard: number;
  readonly dataNode: string;
  /** pg_total_relation_size over the shard's leaves (chunks and default chunk, with indexes and TOAST). */
  readonly bytes: number;
}

export interface PlannedMove {
  readonly hypertable: string;
  readonly shard: number;
  readonly source: string;
  readonly target: string;
  readonly bytes: number;
  /** Why this move: what it changes, so a plan that also moves shards between old nodes explains itself. */
  readonly why: MoveReason;
}

/** A move's effect, in the plan's measure (bytes, or shards when counts decide). */
export interface MoveReason {
  /** What the source and the target hold before and after the move. */
  readonly source: { readonly before: number; readonly after: number };
  readonly target: { readonly before: number; readonly after: number };
  /** Max/min over the data nodes before and after the move; null while a node holds nothing. */
  readonly maxOverMin: { readonly before: number | null; readonly after: number | null };
}

export type MoveStatus = 'moved' | 'would-move' | 'failed' | 'not-run';

export interface MoveResult extends PlannedMove {
  readonly status: MoveStatus;
  readonly rows: number;
  /** Rows copied per second during the copy. */
  readonly rowsPerSecond: number;
  /** Time from the switch's first DDL to COMMIT: readers of the hypertable wait this long at most. */
  readonly switchMs: number;
  readonly durationMs: number;
  /** The phase that failed: prepare, copy, verify, switch, cleanup. */
  readonly phase?: string;
  readonly error?: string;
}

/** Moves left by an earlier run that was interrupted, and what this run did with them. */
export interface RecoveredMove {
  readonly hypertable: string;
  readonly shard: number;
  readonly source: string;
  readonly target: string;
  /** The phase the journal said. */
  readonly phase: string;
  readonly action: 'rolled-back' | 'cleaned-up' | 'failed';
  readonly error?: string;
}

export interface NodeBalance {
  readonly node: string;
  readonly shardsBefore: number;
  readonly shardsAfter: number;
  readonly bytesBefore: number;
  readonly bytesAfter: number;
}

export interface RebalanceResult {
  readonly ok: boolean;
  readonly dryRun: boolean;
  /** 'bytes' when shard sizes decide; 'count' when they are too small to matter. */
  readonly measure: 'bytes' | 'count';
  readonly recovered: readonly RecoveredMove[];
  readonly moves: readonly MoveResult[];
  readonly nodes: readonly NodeBalance[];
  /** The spec file and snapshot written with the new placement, when moves happened. */
  readonly specWritten: boolean;
  readonly snapshot: string | null;
  /** Old FDW servers no shard uses any more, dropped on the access node. */
  readonly serversDropped: readonly string[];
  readonly durationMs: number;
}

export interface RebalanceProgress {
  readonly hypertable: string;
  readonly shard: number;
  readonly source: string;
  readonly target: string;
  readonly phase: 'prepare' | 'copy' | 'verify' | 'switch' | 'cleanup';
  readonly rowsCopied: number;
  readonly totalRows: number;
  readonly rowsPerSecond: number;
}
