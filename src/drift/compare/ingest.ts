/** Whether routed writes (load, gateway COPY and INSERT) can commit atomically on this node. */
import { COMMIT_LOG } from '../../ingest/commitLog.js';
import type { NodeRole } from '../../sql/generate.js';
import type { CatalogIngest } from '../catalog/ingest.js';
import { finding, type Finding } from '../model.js';

export function compareIngest(role: NodeRole, ingest: CatalogIngest): Finding[] {
  const found: Finding[] = [];
  if (role === 'data' && ingest.maxPreparedTransactions === 0) {
    found.push(
      finding('warning', 'setting max_prepared_transactions', 'max_prepared_transactions is 0: routed writes (hypershard load, the gateway) cannot commit atomically here and are refused unless one-phase commit is chosen; set it above 0 (a restart)', {
        expected: 'max_prepared_transactions > 0',
        actual: 'max_prepared_transactions = 0',
      }),
    );
  }
  if (role === 'access' && !ingest.commitLog) {
    found.push(finding('missing', `table ${COMMIT_LOG.schema}.${COMMIT_LOG.name}`, 'the commit log of routed writes is missing (migrations generated before it existed): run hypershard generate and apply'));
  }
  if (ingest.inDoubt > 0) {
    found.push(finding('warning', 'prepared routed transactions', `${ingest.inDoubt} routed transaction${ingest.inDoubt === 1 ? ' was' : 's were'} left prepared by a writer that stopped (they hold locks): run hypershard recover`));
  }
  return found;
}
