/** What `exec` reports per node, and the small constructors both of its modes share. */
import { connectNode, type NodeConnection } from '../nodes/connect.js';
import type { NodeTarget } from '../nodes/targets.js';
import type { NodeRole } from '../sql/generate.js';
import type { StatementFailure, StatementResult } from './runStatements.js';

/**
 * - `ok`: every statement ran (and, transactional, committed).
 * - `failed`: the node could not be reached, a statement failed, or its prepare/commit failed.
 * - `rolled-back`: transactional: the node's statements succeeded but were undone because another node failed.
 * - `not-run`: transactional: nothing ran because another node could not be reached.
 * - `in-doubt`: transactional: the outcome is unknown (the connection broke during COMMIT), or
 *   the transaction is prepared on the node and waits for COMMIT PREPARED (`preparedTransaction`).
 */
export type ExecNodeStatus = 'ok' | 'failed' | 'rolled-back' | 'not-run' | 'in-doubt';

/** `two-phase`: PREPARE TRANSACTION everywhere, then COMMIT PREPARED; `one-phase`: COMMIT node by node. */
export type ExecCommit = 'two-phase' | 'one-phase';

export interface ExecError {
  readonly phase: 'connect' | 'statement' | 'prepare' | 'commit';
  readonly message: string;
  /** SQLSTATE, when the server reported one. */
  readonly sqlState?: string;
  /** The failing statement and its 0-based index, when there are several. */
  readonly statement?: string;
  readonly statementIndex?: number;
}

export interface NodeExecResult {
  readonly node: string;
  readonly role: NodeRole;
  readonly status: ExecNodeStatus;
  /** Statements that succeeded on this node, in order (undone again when `rolled-back`). */
  readonly statements: readonly StatementResult[];
  readonly error?: ExecError;
  /** Why the node was not run, was rolled back, or is in doubt. */
  readonly reason?: string;
  /** The prepared transaction left on the node when `in-doubt` after PREPARE TRANSACTION. */
  readonly preparedTransaction?: string;
}

export interface ExecResult {
  /** Every node `ok`. */
  readonly ok: boolean;
  readonly transactional: boolean;
  /** How a transactional exec commits (or would have); absent when it never got to run. */
  readonly commit?: ExecCommit;
  /** What a one-phase commit cannot promise, and whether it happened, in words. */
  readonly caveat?: string;
  readonly nodes: readonly NodeExecResult[];
}

export interface RunSettings {
  readonly statements: readonly string[];
  readonly maxRows: number;
  readonly timeoutMs: number;
}

/** Any user may exec (no superuser check); the statements decide what privileges they need. */
export function open(target: NodeTarget, run: RunSettings): Promise<NodeConnection> {
  return connectNode(target, { timeoutMs: run.timeoutMs, readOnly: true });
}

export function connectFailed(target: NodeTarget, error: unknown): NodeExecResult {
  return nodeResult(target, 'failed', [], { error: { phase: 'connect', message: error instanceof Error ? error.message : String(error) } });
}

export function statementError(failure: StatementFailure, count: number): ExecError {
  return {
    phase: 'statement',
    message: failure.message,
    ...(failure.sqlState === undefined ? {} : { sqlState: failure.sqlState }),
    ...(count > 1 ? { statement: failure.sql, statementIndex: failure.index } : {}),
  };
}

export function nodeResult(
  target: NodeTarget,
  status: ExecNodeStatus,
  statements: readonly StatementResult[],
  extra: { error?: ExecError; reason?: string; preparedTransaction?: string } = {},
): NodeExecResult {
  return { node: target.name, role: target.role, status, statements, ...extra };
}
