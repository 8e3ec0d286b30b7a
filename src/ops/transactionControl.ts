/**
 * Finds statements that end or split a transaction (BEGIN, COMMIT, ROLLBACK, PREPARE
 * TRANSACTION …): inside `exec --transactional` they would commit part of the work on one node
 * behind the coordinator's back. Savepoints stay inside the transaction and are allowed.
 */
import { parse } from 'pgsql-parser';

const ALLOWED = new Set(['TRANS_STMT_SAVEPOINT', 'TRANS_STMT_RELEASE', 'TRANS_STMT_ROLLBACK_TO']);

/** The statements, among those given, that control the transaction themselves. */
export async function transactionControlStatements(statements: readonly string[]): Promise<string[]> {
  const found: string[] = [];
  for (const sql of statements) {
    let tree: { stmts?: { stmt?: { TransactionStmt?: { kind?: string } } }[] };
    try {
      tree = (await parse(sql)) as typeof tree;
    } catch {
      continue; // not ours to judge: the server reports the syntax error on every node
    }
    const control = (tree.stmts ?? []).filter((s) => s.stmt?.TransactionStmt !== undefined);
    if (control.some((s) => !ALLOWED.has(s.stmt?.TransactionStmt?.kind ?? ''))) found.push(sql);
  }
  return found;
}
