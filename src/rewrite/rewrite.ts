/** Entry point of the rewriter: SQL in, SQL postgres_fdw ships out. (Being built.) */
import type { ClusterMetadata, RewriteOptions, RewriteResult } from './model.js';

export function rewriteSql(sql: string, _metadata: ClusterMetadata, _options: RewriteOptions = {}): RewriteResult {
  return { sql, changed: false, touchesHypertable: false, rewrites: [], unchanged: [] };
}
