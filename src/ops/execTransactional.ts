/**
 * `exec` with `transactional`, TimescaleDB's distributed_exec semantics: one transaction per node,
 * committed only when every node ran every statement.
 *
 * With max_prepared_transactions > 0 on every chosen node it is a two-phase commit: each node
 * PREPAREs its transaction, and only when all did is it committed everywhere (COMMIT PREPARED). A
 * failure up to the prepare undoes every node; a COMMIT PREPARED that fails later leaves a
 * prepared transaction that can still be committed by name. Without it, the transactions are held
 * open and committed one node after another, and a commit can still fail (a deferred constraint,
 * a lost connection) after earlier nodes committed: the nodes then differ, and the result says so.
 */
import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import type { NodeConnection } from '../nodes/connect.js';
import type { NodeTarget } from '../nodes/targets.js';
import { quoteLiteral } from '../sql/quote.js';
import { connectFailed, nodeResult, open, statementError, type ExecError, type ExecResult, type NodeExecResult, type RunSettings } from './execResult.js';
import { failureOf, runStatements, type StatementResult } from './runStatements.js';

/** A node whose transaction is open, with what its statements did. */
interface OpenTransaction {
  readonly target: NodeTarget;
  readonly client: pg.Client;
  readonly results: readonly StatementResult[];
  readonly error?: ExecError;
}

export async function runTransactional(targets: readonly NodeTarget[], run: RunSettings): Promise<ExecResult> {
  const settled = await Promise.allSettled(targets.map((t) => open(t, run)));
  const connections = settled.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  try {
    if (connections.length < targets.length) {
      const unreachable = targets.filter((_, i) => settled[i]?.status === 'rejected').map((t) => t.name);
      return {
        ok: false,
        transactional: true,
        nodes: targets.map((target, i) => {
          const s = settled[i];
          return s?.status === 'rejected'
            ? connectFailed(target, s.reason)
            : nodeResult(target, 'not-run', [], { reason: `not run: ${unreachable.join(', ')} could not be reached, and a transactional exec runs only when every node can` });
        }),
      };
    }
    const twoPhaseOn = await Promise.all(connections.map(preparedTransactionsAllowed));
    const transactions = await Promise.all(connections.map((c) => begin(c, run)));
    const failed = transactions.filter((t) => t.error !== undefined).map((t) => t.target.name);
    const commit = twoPhaseOn.every(Boolean) ? 'two-phase' : 'one-phase';
    const caveat =
      commit === 'one-phase'
        ? `without two-phase commit (max_prepared_transactions is 0 on ${connections.filter((_, i) => !twoPhaseOn[i]).map((c) => c.target.name).join(', ')}), ` +
          'the nodes commit one after another: a commit that fails on one node after others committed leaves the nodes different'
        : undefined;
    let nodes: NodeExecResult[];
    if (failed.length > 0) {
      nodes = await Promise.all(
        transactions.map(async (t) => {
          await t.client.query('ROLLBACK').catch(() => undefined); // a broken session is rolled back by the server
          return t.error !== undefined
            ? nodeResult(t.target, 'failed', t.results, { error: t.error })
            : nodeResult(t.target, 'rolled-back', t.results, { reason: `rolled back: ${failed.join(', ')} failed` });
        }),
      );
    } else {
      nodes = commit === 'two-phase' ? await commitTwoPhase(transactions) : await commitOnePhase(transactions);
    }
    return {
      ok: nodes.every((n) => n.status === 'ok'),
      transactional: true,
      commit,
      ...(caveat === undefined ? {} : { caveat: caveat + divergence(nodes) }),
      nodes,
    };
  } finally {
    await Promise.all(connections.map((c) => c.client.end().catch(() => undefined)));
  }
}

async function preparedTransactionsAllowed(connection: NodeConnection): Promise<boolean> {
  const { rows } = await connection.client
    .query<{ n: number }>(`SELECT current_setting('max_prepared_transactions')::int AS n`)
    .catch(() => ({ rows: [] as { n: number }[] }));
  return (rows[0]?.n ?? 0) > 0;
}

async function begin(connection: NodeConnection, run: RunSettings): Promise<OpenTransaction> {
  const { target, client } = connection;
  try {
    await client.query('BEGIN');
  } catch (error) {
    return { target, client, results: [], error: { phase: 'statement', ...failureOf(error) } };
  }
  const outcome = await runStatements(client, run.statements, run.maxRows);
  return {
    target,
    client,
    results: outcome.results,
    ...(outcome.failure === undefined ? {} : { error: statementError(outcome.failure, run.statements.length) }),
  };
}

async function commitTwoPhase(transactions: readonly OpenTransaction[]): Promise<NodeExecResult[]> {
  // Node names are letters, digits, '_' and '-', and differ, so identifiers differ even when
  // several nodes are databases of one server (prepared transactions are server-wide).
  const id = randomUUID();
  const gid = (t: OpenTransaction): string => `hypershard_exec_${id}_${t.target.name}`;
  const prepared = await Promise.all(transactions.map((t) => finish(t.client, `PREPARE TRANSACTION ${quoteLiteral(gid(t))}`)));
  const failed = transactions.filter((_, i) => prepared[i] !== undefined).map((t) => t.target.name);
  if (failed.length > 0) {
    return Promise.all(
      transactions.map(async (t, i): Promise<NodeExecResult> => {
        const failure = prepared[i];
        if (failure !== undefined) return nodeResult(t.target, 'failed', t.results, { error: { phase: 'prepare', ...failure } });
        const undone = await finish(t.client, `ROLLBACK PREPARED ${quoteLiteral(gid(t))}`);
        return undone === undefined
          ? nodeResult(t.target, 'rolled-back', t.results, { reason: `rolled back: ${failed.join(', ')} failed to prepare` })
          : nodeResult(t.target, 'in-doubt', t.results, {
              preparedTransaction: gid(t),
              reason: `${failed.join(', ')} failed to prepare, and rolling back this node's prepared transaction failed (${undone.message}); run ROLLBACK PREPARED ${quoteLiteral(gid(t))} on it`,
            });
      }),
    );
  }
  const committed = await Promise.all(transactions.map((t) => finish(t.client, `COMMIT PREPARED ${quoteLiteral(gid(t))}`)));
  return transactions.map((t, i) => {
    const failure = committed[i];
    return failure === undefined
      ? nodeResult(t.target, 'ok', t.results)
      : nodeResult(t.target, 'in-doubt', t.results, {
          preparedTransaction: gid(t),
          reason: `prepared on every node, but COMMIT PREPARED failed here (${failure.message}); if ${gid(t)} is still in pg_prepared_xacts, run COMMIT PREPARED ${quoteLiteral(gid(t))} on it`,
        });
  });
}

async function commitOnePhase(transactions: readonly OpenTransaction[]): Promise<NodeExecResult[]> {
  const nodes: NodeExecResult[] = [];
  let stopped: string | undefined;
  for (const t of transactions) {
    if (stopped !== undefined) {
      await t.client.query('ROLLBACK').catch(() => undefined);
      nodes.push(nodeResult(t.target, 'rolled-back', t.results, { reason: `not committed: committing on ${stopped} failed` }));
      continue;
    }
    const failure = await finish(t.client, 'COMMIT');
    if (failure === undefined) {
      nodes.push(nodeResult(t.target, 'ok', t.results));
    } else if (failure.sqlState !== undefined) {
      // The server refused the commit (deferred constraint, serialization): it rolled back.
      nodes.push(nodeResult(t.target, 'failed', t.results, { error: { phase: 'commit', ...failure } }));
      stopped = t.target.name;
    } else {
      nodes.push(nodeResult(t.target, 'in-doubt', t.results, { reason: `the connection broke during COMMIT (${failure.message}): whether this node committed is unknown` }));
      stopped = t.target.name;
    }
  }
  return nodes;
}

/**
 * Runs a statement that ends a transaction; undefined when it did. A COMMIT or PREPARE of a
 * transaction that is already aborted succeeds with the tag ROLLBACK, which is a failure here.
 */
async function finish(client: pg.Client, sql: string): Promise<{ message: string; sqlState?: string } | undefined> {
  try {
    const result = await client.query(sql);
    const rolledBack = !sql.startsWith('ROLLBACK') && result.command === 'ROLLBACK';
    return rolledBack ? { message: `${sql.split(' ')[0] ?? sql} rolled the transaction back instead` } : undefined;
  } catch (error) {
    return failureOf(error);
  }
}

/** Spelled out when a one-phase commit left the nodes different. */
function divergence(nodes: readonly NodeExecResult[]): string {
  const names = (...statuses: string[]): string[] => nodes.filter((n) => statuses.includes(n.status)).map((n) => n.node);
  const committed = names('ok');
  if (committed.length === 0 || committed.length === nodes.length) return '';
  const not = names('failed', 'rolled-back');
  const unknown = names('in-doubt');
  return `. That happened: ${committed.join(', ')} committed` +
    (not.length === 0 ? '' : `, ${not.join(', ')} did not`) +
    (unknown.length === 0 ? '' : `, ${unknown.join(', ')} unknown`);
}
