/**
 * A maintenance session on one node: UTC and ISO dates, so partition bounds read back as
 * unambiguous text; a lock timeout, so a chunk busy under a long query fails that step instead of
 * queueing every query behind it; read-only for a dry run.
 */
import { connectNode, type NodeConnection } from '../nodes/connect.js';
import type { NodeTarget } from '../nodes/targets.js';

export interface SessionOptions {
  readonly timeoutMs: number;
  readonly lockTimeoutMs: number;
  /** Changes nothing: the session is read-only and any user will do. */
  readonly readOnly: boolean;
}

/** @throws NodeConnectionError or NodeUnsupportedError, naming the node. */
export async function openSession(target: NodeTarget, options: SessionOptions): Promise<NodeConnection> {
  const connection = await connectNode(target, { timeoutMs: options.timeoutMs, readOnly: options.readOnly });
  try {
    await connection.client.query(
      `SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD'; SET lock_timeout = ${Math.max(1, Math.round(options.lockTimeoutMs))}` +
        (options.readOnly ? '; SET default_transaction_read_only = on' : ''),
    );
    return connection;
  } catch (error) {
    await connection.client.end().catch(() => undefined);
    throw error;
  }
}

/** Runs `fn` in a transaction: committed when it returns, rolled back when it throws. */
export async function inTransaction<T>(connection: NodeConnection, fn: () => Promise<T>): Promise<T> {
  const { client } = connection;
  await client.query('BEGIN');
  try {
    const result = await fn();
    await client.query('COMMIT');
    return result;
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  }
}
