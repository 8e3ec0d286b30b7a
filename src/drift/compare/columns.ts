/**
 * Columns (name, type, NOT NULL) of the access node's parent and of each data node's local parent
 * and shards, against the spec. Partitions share their parent's columns, so a shard only reports
 * what differs from its own parent (a detached shard, a NOT NULL set on the shard alone).
 */
import type { ClusterLayout, Column, QualifiedName } from '../../plan/layout.js';
import type { NodeRole } from '../../sql/generate.js';
import type { CatalogColumn } from '../catalog/columns.js';
import { formatType } from '../formatType.js';
import { displayName, finding, nameKey, type DriftKind, type Finding } from '../model.js';
import { hypertablesOn } from './parents.js';

export function expectedColumns(h: { readonly columns: readonly Column[] }): CatalogColumn[] {
  return h.columns.map((c) => ({ name: c.name, type: formatType(c.type), notNull: c.notNull }));
}

interface ColumnDiff {
  readonly column: string;
  readonly kind: DriftKind;
  readonly problem: string;
  readonly expected: string | undefined;
  readonly actual: string | undefined;
}

const describe = (c: CatalogColumn | undefined): string | undefined => (c === undefined ? undefined : `${c.type}${c.notNull ? ' NOT NULL' : ''}`);

function columnDiffs(expected: readonly CatalogColumn[], actual: readonly CatalogColumn[]): ColumnDiff[] {
  const byName = new Map(actual.map((c) => [c.name, c]));
  const diffs: ColumnDiff[] = [];
  for (const want of expected) {
    const have = byName.get(want.name);
    const problems =
      have === undefined
        ? [`no column ${want.name}`]
        : [
            ...(have.type === want.type ? [] : [`${want.name} is ${have.type}, expected ${want.type}`]),
            ...(have.notNull === want.notNull ? [] : [have.notNull ? `${want.name} is NOT NULL, the spec allows NULL` : `${want.name} allows NULL, the spec says NOT NULL`]),
          ];
    if (problems.length > 0) diffs.push({ column: want.name, kind: have === undefined ? 'missing' : 'different', problem: problems.join('; '), expected: describe(want), actual: describe(have) });
  }
  const wanted = new Set(expected.map((c) => c.name));
  for (const have of actual.filter((c) => !wanted.has(c.name))) {
    diffs.push({ column: have.name, kind: 'extra', problem: `column ${have.name} (${describe(have) ?? ''}) is not in the spec`, expected: undefined, actual: describe(have) });
  }
  return diffs;
}

/** Differences of one table's columns from the expected ones; `on` names the table when it is not the hypertable itself. */
export function compareColumns(h: { readonly table: QualifiedName }, expected: readonly CatalogColumn[], actual: readonly CatalogColumn[], on?: string): Finding[] {
  return columnDiffs(expected, actual).map((d) => toFinding(h, d, on));
}

function toFinding(h: { readonly table: QualifiedName }, d: ColumnDiff, on: string | undefined): Finding {
  return finding(d.kind, `column ${displayName(h.table)}.${d.column}${on === undefined ? '' : ` on ${on}`}`, `${on ?? displayName(h.table)}: ${d.problem}`, {
    expected: d.expected,
    actual: d.actual,
  });
}

export function compareTableColumns(layout: ClusterLayout, node: string, role: NodeRole, columns: ReadonlyMap<string, readonly CatalogColumn[]>): Finding[] {
  const out: Finding[] = [];
  for (const h of hypertablesOn(layout, node, role)) {
    const expected = expectedColumns(h);
    const parent = columns.get(nameKey(h.table));
    // A missing table is reported by the table comparisons, not column by column.
    const parentDiffs = parent === undefined ? [] : columnDiffs(expected, parent);
    out.push(...parentDiffs.map((d) => toFinding(h, d, undefined)));
    if (role === 'access') continue; // foreign partitions take their columns from the parent
    const reported = new Set(parentDiffs.map(signature));
    for (const shard of h.shards.filter((s) => s.dataNode === node)) {
      const actual = columns.get(nameKey(shard.table));
      if (actual === undefined) continue;
      out.push(...columnDiffs(expected, actual).filter((d) => !reported.has(signature(d))).map((d) => toFinding(h, d, displayName(shard.table))));
    }
  }
  return out;
}

const signature = (d: ColumnDiff): string => JSON.stringify([d.column, d.kind, d.expected, d.actual]);
