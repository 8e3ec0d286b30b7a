/**
 * `exec`: the same statements on many nodes at once, with a result per node. Without
 * `transactional` every node runs on its own in autocommit; with it, the work commits on every
 * node or on none (see `runTransactional` for what "none" can promise without two-phase commit).
 */
import { splitStatements } from '../audit/statements.js';
import { HypershardError } from '../errors.js';
import { DEFAULT_CONNECT_TIMEOUT_MS, type NodeConnection } from '../nodes/connect.js';
import { nodeTargets, type NodeTarget } from '../nodes/targets.js';
import type { ClusterSpec } from '../spec/schema.js';
import { connectFailed, nodeResult, open, statementError, type ExecResult, type NodeExecResult, type RunSettings } from './execResult.js';
import { runTransactional } from './execTransactional.js';
import { runStatements } from './runStatements.js';
import { selectTargets, type NodeSelection } from './select.js';
import { transactionControlStatements } from './transactionControl.js';

export interface ExecOptions extends NodeSelection {
  /** Bound on reaching each node and logging in. @default 10000 */
  readonly timeoutMs?: number;
  /** Commit on every node or on none. @default false */
  readonly transactional?: boolean;
  /** Rows kept per statement; `rowCount` still counts them all. @default 100 */
  readonly maxRows?: number;
}

/**
 * Runs `sql` (split into statements with PostgreSQL's parser, or statements already split) on the
 * selected nodes concurrently, one session per node, statements in order, stopping at a node's
 * first failure.
 * @throws UnknownNodeError, SecretError, or HypershardError `USAGE` / `AUDIT_PARSE` (no statements,
 *   unparsable text, transaction control inside a transactional exec) before any node is contacted.
 *   Everything after that is reported per node.
 */
export async function exec(spec: ClusterSpec, specFile: string, sql: string | readonly string[], options: ExecOptions = {}): Promise<ExecResult> {
  const targets = selectTargets(await nodeTargets(spec, specFile), options);
  const statements = typeof sql === 'string' ? await splitStatements(sql) : sql.filter((s) => s.trim() !== '');
  if (statements.length === 0) throw new HypershardError('USAGE', 'no statements to run');
  if (options.transactional === true) {
    const control = await transactionControlStatements(statements);
    if (control.length > 0) {
      throw new HypershardError(
        'USAGE',
        `a transactional exec runs the statements in one transaction per node and commits it itself; remove ${control.map((s) => JSON.stringify(s)).join(', ')}`,
      );
    }
  }
  const run: RunSettings = { statements, maxRows: options.maxRows ?? 100, timeoutMs: options.timeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS };
  if (options.transactional === true) return runTransactional(targets, run);
  const nodes = await Promise.all(targets.map((t) => runAlone(t, run)));
  return { ok: nodes.every((n) => n.status === 'ok'), transactional: false, nodes };
}

/** Autocommit on one node: what ran before a failure stays. */
async function runAlone(target: NodeTarget, run: RunSettings): Promise<NodeExecResult> {
  let connection: NodeConnection;
  try {
    connection = await open(target, run);
  } catch (error) {
    return connectFailed(target, error);
  }
  try {
    const outcome = await runStatements(connection.client, run.statements, run.maxRows);
    return outcome.failure === undefined
      ? nodeResult(target, 'ok', outcome.results)
      : nodeResult(target, 'failed', outcome.results, { error: statementError(outcome.failure, run.statements.length) });
  } finally {
    await connection.client.end().catch(() => undefined);
  }
}

