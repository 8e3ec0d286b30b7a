/** Facts read from EXPLAIN (ANALYZE, FORMAT JSON) plans. */

interface AnalyzedNode {
  readonly 'Node Type': string;
  readonly 'Actual Rows'?: number;
  readonly 'Actual Loops'?: number;
  readonly 'Rows Removed by Filter'?: number;
  readonly Plans?: readonly AnalyzedNode[];
}

function* walk(node: AnalyzedNode): Generator<AnalyzedNode> {
  yield node;
  for (const child of node.Plans ?? []) yield* walk(child);
}

/**
 * Rows the data nodes sent to the access node: over every Foreign Scan, the rows it returned
 * plus the rows its local Filter dropped (a filter postgres_fdw could not ship runs on the access
 * node, after the rows crossed the wire), × loops. EXPLAIN reports both per loop (PostgreSQL 18
 * with decimals), so the product is rounded.
 */
export function rowsReceived(plan: { readonly Plan: unknown }): number {
  let rows = 0;
  for (const node of walk(plan.Plan as AnalyzedNode)) {
    if (node['Node Type'] !== 'Foreign Scan') continue;
    rows += ((node['Actual Rows'] ?? 0) + (node['Rows Removed by Filter'] ?? 0)) * (node['Actual Loops'] ?? 1);
  }
  return Math.round(rows);
}
