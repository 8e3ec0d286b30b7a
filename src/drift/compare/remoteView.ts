/**
 * A view hypershard keeps on a data node and the foreign table reading it on the access node
 * (lastpoint views, node views): present, of the right kind, through the right server and remote
 * name, with the hypertable's columns in order (a view made before a column change is stale).
 */
import type { Hypertable, QualifiedName } from '../../plan/layout.js';
import type { CatalogColumn } from '../catalog/columns.js';
import type { CatalogRelation } from '../catalog/relations.js';
import { displayName, finding, nameKey, type Finding } from '../model.js';
import { expectedColumns } from './columns.js';
import { relkindName } from './parents.js';

export interface ExpectedRemoteView {
  readonly object: string;
  readonly view: QualifiedName;
  readonly server: string;
  readonly dataNode: string;
  /** What the missing view is for, said in the finding. */
  readonly purpose: string;
}

export function compareRemoteView(h: Hypertable, expected: ExpectedRemoteView, actual: CatalogRelation | undefined, columns: ReadonlyMap<string, readonly CatalogColumn[]>, access: boolean): Finding[] {
  const { object, view, server, dataNode } = expected;
  const kind = access ? 'f' : 'v';
  if (actual === undefined) return [finding('missing', object, `${relkindName(kind)} ${displayName(view)} does not exist (${expected.purpose})`)];
  if (actual.kind !== kind) return [finding('different', object, `is a ${relkindName(actual.kind)}, expected a ${relkindName(kind)}`, { expected: relkindName(kind), actual: relkindName(actual.kind) })];
  const out: Finding[] = [];
  if (access && actual.server !== server) {
    out.push(finding('different', object, `uses server ${actual.server ?? '(none)'}, expected ${server} (data node ${dataNode})`, { expected: server, actual: actual.server }));
  }
  if (access && (actual.options.get('schema_name') !== view.schema || actual.options.get('table_name') !== view.name)) {
    out.push(finding('different', object, `does not read ${displayName(view)} on the data node`, { expected: `${view.schema}.${view.name}`, actual: `${actual.options.get('schema_name') ?? '?'}.${actual.options.get('table_name') ?? '?'}` }));
  }
  // A view's columns never say NOT NULL: compare names and types, in order.
  const shape = (cs: readonly CatalogColumn[]): string => cs.map((c) => `${c.name} ${c.type}${access && c.notNull ? ' NOT NULL' : ''}`).join(', ');
  const want = shape(expectedColumns(h));
  const have = shape(columns.get(nameKey(view)) ?? []);
  if (want !== have) out.push(finding('different', object, `is stale: its columns are not the hypertable's (made before a column change?); generate and apply remake it`, { expected: want, actual: have }));
  return out;
}
