/** What `check` reports: each difference between the live catalogs and what the spec generates. */
import type { QualifiedName } from '../plan/layout.js';
import type { NodeRole } from '../sql/generate.js';

/**
 * `missing`: the spec wants it and the node lacks it; `extra`: the node has it and the spec does
 * not; `different`: both have it, it differs; `warning`: not drift from the spec, but needs care
 * (rows in a default chunk).
 */
export type DriftKind = 'missing' | 'extra' | 'different' | 'warning';

export interface DriftItem {
  readonly node: string;
  readonly kind: DriftKind;
  /** What it is about, e.g. `foreign partition _hypershard.metrics_s3`, `column public.metrics.cpu on _hypershard.metrics_s0`. */
  readonly object: string;
  readonly expected?: string;
  readonly actual?: string;
  readonly message: string;
}

export interface NodeCheck {
  readonly node: string;
  readonly role: NodeRole;
  /** Whether the node could be reached and passed the connection checks. */
  readonly reachable: boolean;
  readonly serverVersion?: string;
  /** Why the node could not be checked (unreachable, unsupported, a catalog query failed). */
  readonly error?: string;
  readonly items: readonly DriftItem[];
}

export interface CheckResult {
  /** Every node was checked and nothing differs from the spec (warnings allowed). */
  readonly clean: boolean;
  readonly nodes: readonly NodeCheck[];
}

/** A drift item without its node: comparisons are pure per node, the node is added once. */
export type Finding = Omit<DriftItem, 'node'>;

export function finding(kind: DriftKind, object: string, message: string, values: { expected?: string | undefined; actual?: string | undefined } = {}): Finding {
  return {
    kind,
    object,
    ...(values.expected === undefined ? {} : { expected: values.expected }),
    ...(values.actual === undefined ? {} : { actual: values.actual }),
    message,
  };
}

/** `schema.name` for messages (unquoted: messages are for people, not SQL). */
export function displayName(name: QualifiedName): string {
  return `${name.schema}.${name.name}`;
}

/** Key for maps of qualified names; NUL cannot occur in identifiers. */
export function nameKey(name: QualifiedName): string {
  return `${name.schema}\u0000${name.name}`;
}

/** Catalog rows (ordered) grouped by their table's nameKey, each made into `T`. */
export function groupByTable<R extends { schema: string; table: string }, T>(rows: readonly R[], make: (row: R) => T): Map<string, T[]> {
  const byTable = new Map<string, T[]>();
  for (const r of rows) {
    const key = nameKey({ schema: r.schema, name: r.table });
    byTable.set(key, [...(byTable.get(key) ?? []), make(r)]);
  }
  return byTable;
}

export function isClean(nodes: readonly NodeCheck[]): boolean {
  return nodes.every((n) => n.reachable && n.error === undefined && n.items.every((i) => i.kind === 'warning'));
}
