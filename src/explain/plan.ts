/**
 * EXPLAIN (FORMAT JSON) plans as typed, read-only nodes, and where their work ran: which foreign
 * scans (shards, data nodes) and what each pushed, and what stayed on the access node.
 */
import type { ClusterLayout, Shard } from '../plan/layout.js';

export interface PlanNode {
  readonly 'Node Type': string;
  readonly Plans?: readonly PlanNode[];
  readonly 'Relation Name'?: string;
  readonly Schema?: string;
  /** Set when a foreign scan replaces a join or an aggregate (pushed down). */
  readonly Relations?: string;
  readonly 'Remote SQL'?: string;
  readonly 'Actual Rows'?: number;
  readonly 'Actual Loops'?: number;
  readonly 'Plan Rows'?: number;
  readonly 'Async Capable'?: boolean;
  readonly Strategy?: string;
  readonly 'Partial Mode'?: string;
}

export interface ExplainResult {
  readonly Plan: PlanNode;
  readonly 'Execution Time'?: number;
}

export interface ShardWork {
  readonly shard: Shard;
  /** `aggregate`, `join` or `scan`: what the data node ran for this shard. */
  readonly kind: 'aggregate' | 'join' | 'scan';
  /** Clauses the Remote SQL carries, e.g. WHERE, GROUP BY, ORDER BY, LIMIT. */
  readonly pushed: readonly string[];
  readonly remoteSql: string;
  /** Rows shipped to the access node (actual with ANALYZE, else the planner's estimate). */
  readonly rows: number;
  readonly rowsAreEstimate: boolean;
  readonly async: boolean;
}

export interface WorkPlacement {
  readonly shards: readonly ShardWork[];
  /** Plan nodes above the foreign scans, run on the access node (outermost first). */
  readonly accessNode: readonly string[];
}

export function* walk(node: PlanNode): Generator<PlanNode> {
  yield node;
  for (const child of node.Plans ?? []) yield* walk(child);
}

const CLAUSES = ['WHERE', 'GROUP BY', 'HAVING', 'ORDER BY', 'LIMIT'] as const;

/** Names PostgreSQL prints bare in EXPLAIN (quote_identifier's rule, without the keyword list). */
function displayName(name: string): string {
  return /^[a-z_][a-z0-9_$]*$/.test(name) ? name : `"${name.replaceAll('"', '""')}"`;
}

export function workPlacement(explain: ExplainResult, layout: ClusterLayout): WorkPlacement {
  const shards = layout.hypertables.flatMap((h) => h.shards);
  const byName = (schema: string | undefined, name: string | undefined): Shard | undefined =>
    shards.find((s) => s.table.schema === schema && s.table.name === name);
  const work: ShardWork[] = [];
  const accessNode: string[] = [];
  const visit = (node: PlanNode): void => {
    if (node['Node Type'] !== 'Foreign Scan') {
      accessNode.push(describe(node));
      node.Plans?.forEach(visit);
      return;
    }
    const relations = node.Relations;
    const touched =
      relations === undefined
        ? [byName(node.Schema, node['Relation Name'])].filter((s): s is Shard => s !== undefined)
        : // VERBOSE prints `schema.name alias`, plain EXPLAIN `name alias`.
          shards.filter((s) => {
            const name = `${displayName(s.table.name)} `;
            return relations.includes(`${displayName(s.table.schema)}.${name}`) || relations.includes(`(${name}`) || relations.includes(` ${name}`);
          });
    const remoteSql = node['Remote SQL'] ?? '';
    const actual = node['Actual Rows'];
    for (const shard of touched) {
      work.push({
        shard,
        kind: relations?.startsWith('Aggregate on') === true ? 'aggregate' : relations === undefined ? 'scan' : 'join',
        pushed: CLAUSES.filter((c) => remoteSql.includes(` ${c} `)),
        remoteSql,
        rows: actual === undefined ? (node['Plan Rows'] ?? 0) : actual * (node['Actual Loops'] ?? 1),
        rowsAreEstimate: actual === undefined,
        async: node['Async Capable'] === true,
      });
    }
  };
  visit(explain.Plan);
  return { shards: work, accessNode };
}

function describe(node: PlanNode): string {
  const mode = node['Partial Mode'] !== undefined && node['Partial Mode'] !== 'Simple' ? `${node['Partial Mode']} ` : '';
  const strategy = node['Node Type'] === 'Aggregate' && node.Strategy !== undefined ? ` (${node.Strategy})` : '';
  return `${mode}${node['Node Type']}${strategy}`;
}
