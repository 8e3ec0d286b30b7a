/** What `maintain` reports: a result per node, never an exception for one node's failure. */
import type { RecoverResult } from '../ingest/recover.js';
import type { ReferenceSyncResult } from '../reference/sync.js';
import type { NodeRole } from '../sql/generate.js';

/** A chunk acted on, with its range as ISO 8601 UTC times. */
export interface ChunkAction {
  /** `schema.name` of the hypertable. */
  readonly hypertable: string;
  readonly shard: number;
  /** `schema.name` of the chunk. */
  readonly chunk: string;
  readonly from: string;
  readonly to: string;
}

export interface CreatedChunk extends ChunkAction {
  /** `ahead`: kept ahead of now (chunks.ahead); `default-rows`: made for rows found in the default chunk. */
  readonly reason: 'ahead' | 'default-rows';
  /** Rows moved into it from the default chunk (0 for `ahead`). */
  readonly rows: number;
}

export type MaintainStep = 'connect' | 'lock' | 'repair' | 'ahead' | 'retention' | 'reference' | 'analyze';

export interface MaintainError {
  readonly step: MaintainStep;
  readonly hypertable?: string;
  readonly shard?: number;
  readonly message: string;
}

/**
 * - `ok`: every step ran on the node (in a dry run: was planned).
 * - `failed`: the node could not be reached, or a step failed (`errors`; the other steps still ran).
 * - `skipped`: another maintain holds the node's advisory lock; nothing was done.
 */
export type MaintainNodeStatus = 'ok' | 'failed' | 'skipped';

export interface MaintainNodeResult {
  readonly node: string;
  readonly role: NodeRole;
  readonly status: MaintainNodeStatus;
  /** Why the node was skipped. */
  readonly reason?: string;
  readonly created: readonly CreatedChunk[];
  readonly dropped: readonly ChunkAction[];
  readonly rowsMoved: number;
  /** Rows left in default chunks because no chunk can hold them (infinite times, years outside 1–9999). */
  readonly rowsLeftInDefault: number;
  /** Tables analyzed: hypertables on the access node, chunks that received rows on a data node. */
  readonly analyzed: readonly string[];
  readonly errors: readonly MaintainError[];
  readonly durationMs: number;
}

export interface MaintainResult {
  /** No node failed (skipped nodes are not failures: another run is maintaining them). */
  readonly ok: boolean;
  /** Nothing was changed; the results say what a run would do. */
  readonly dryRun: boolean;
  /** Data nodes in spec order, then the access node. */
  readonly nodes: readonly MaintainNodeResult[];
  /**
   * Reference tables' copies checked against the access node's tables and copied again where they
   * differ (absent in a dry run, without reference tables, or when the access node was skipped).
   */
  readonly reference?: ReferenceSyncResult;
  /** Routed transactions left prepared by a writer that stopped, finished from their commit records (src/ingest/recover.ts). */
  readonly recovered?: RecoverResult | { readonly error: string };
  readonly durationMs: number;
}

export interface MaintainProgress {
  readonly node: string;
  readonly step: MaintainStep | 'skipped' | 'done';
  /** One line saying what happened, e.g. `metrics shard 0: 12 rows into 2 chunks`. */
  readonly detail: string;
}
