/**
 * Reference tables. On every node the table (the access node's, or a data node's copy) with its
 * columns and primary key. On the access node also what keeps the copies in sync: a foreign table
 * per FDW server on the right server and remote table, none besides those, the four statement
 * triggers, enabled, calling the sync function, and that function as the spec generates it (a stale
 * one writes to copies the spec no longer has, or misses a column).
 */
import type { ClusterLayout, QualifiedName, ReferenceTable } from '../../plan/layout.js';
import type { NodeRole } from '../../sql/generate.js';
import { SYNC_TRIGGERS, syncFunctionStatement } from '../../sql/referenceTables.js';
import type { CatalogColumn } from '../catalog/columns.js';
import type { CatalogReferenceObjects, CatalogTrigger } from '../catalog/referenceTables.js';
import type { CatalogRelation } from '../catalog/relations.js';
import { displayName, finding, nameKey, type Finding } from '../model.js';
import { compareColumns, expectedColumns } from './columns.js';
import { relkindName } from './parents.js';

/** pg_trigger.tgtype bits of an AFTER … FOR EACH STATEMENT trigger on each event. */
const TRIGGER_TYPE: Readonly<Record<string, number>> = { INSERT: 4, DELETE: 8, UPDATE: 16, TRUNCATE: 32 };

export function compareReferenceTables(
  layout: ClusterLayout,
  role: NodeRole,
  relations: readonly CatalogRelation[],
  columns: ReadonlyMap<string, readonly CatalogColumn[]>,
  objects: CatalogReferenceObjects,
): Finding[] {
  const byName = new Map(relations.map((r) => [nameKey(r.table), r]));
  const out: Finding[] = [];
  for (const r of layout.referenceTables) {
    const object = `${role === 'access' ? 'reference table' : 'copy of reference table'} ${displayName(r.table)}`;
    const actual = byName.get(nameKey(r.table));
    if (actual === undefined) out.push(finding('missing', object, `table ${displayName(r.table)} does not exist`));
    else if (actual.kind !== 'r') out.push(finding('different', object, `${displayName(r.table)} is a ${relkindName(actual.kind)}, expected a table`, { expected: 'table', actual: relkindName(actual.kind) }));
    else {
      out.push(...compareColumns(r, expectedColumns(r), columns.get(nameKey(r.table)) ?? []));
      out.push(...comparePrimaryKey(r, objects));
    }
    if (role === 'access') out.push(...compareCopies(r, byName, columns, objects), ...compareSync(r, actual !== undefined, objects));
  }
  return out;
}

function comparePrimaryKey(r: ReferenceTable, objects: CatalogReferenceObjects): Finding[] {
  const object = `primary key of ${displayName(r.table)}`;
  const expected = `${r.primaryKeyName} (${r.primaryKey.join(', ')})`;
  const actual = objects.primaryKeys.find((k) => nameKey(k.table) === nameKey(r.table));
  if (actual === undefined) return [finding('missing', object, `${displayName(r.table)} has no primary key; changes reach the copies by key`, { expected })];
  const found = `${actual.name} (${actual.columns.join(', ')})`;
  return found === expected ? [] : [finding('different', object, `primary key is ${found}, expected ${expected}`, { expected, actual: found })];
}

function compareCopies(r: ReferenceTable, byName: ReadonlyMap<string, CatalogRelation>, columns: ReadonlyMap<string, readonly CatalogColumn[]>, objects: CatalogReferenceObjects): Finding[] {
  const out: Finding[] = [];
  for (const copy of r.copies) {
    const object = `copy ${displayName(copy.table)} of ${displayName(r.table)}`;
    const actual = byName.get(nameKey(copy.table));
    if (actual === undefined) {
      out.push(finding('missing', object, `foreign table ${displayName(copy.table)} on ${copy.server} (data node ${copy.dataNode}) does not exist`));
      continue;
    }
    if (actual.kind !== 'f') {
      out.push(finding('different', object, `is a ${relkindName(actual.kind)}, expected a foreign table`, { expected: 'foreign table', actual: relkindName(actual.kind) }));
      continue;
    }
    if (actual.server !== copy.server) out.push(finding('different', object, `uses server ${actual.server ?? '(none)'}, expected ${copy.server} (data node ${copy.dataNode})`, { expected: copy.server, actual: actual.server }));
    for (const [key, value] of [['schema_name', r.table.schema], ['table_name', r.table.name]] as const) {
      const found = actual.options.get(key);
      if (found !== value) out.push(finding(found === undefined ? 'missing' : 'different', object, `option ${key} is ${found ?? 'not set'}, expected ${value}`, { expected: `${key}=${value}`, actual: found === undefined ? undefined : `${key}=${found}` }));
    }
    out.push(...compareColumns(r, expectedColumns(r), columns.get(nameKey(copy.table)) ?? [], displayName(copy.table)));
  }
  const declared = new Set(r.copies.map((c) => nameKey(c.table)));
  for (const extra of objects.foreignTables.filter((f) => nameKey(f.remote) === nameKey(r.table) && !declared.has(nameKey(f.table)))) {
    out.push(finding('extra', `copy ${displayName(extra.table)} of ${displayName(r.table)}`, `foreign table ${displayName(extra.table)} on ${extra.server} reads ${displayName(r.table)}; the spec has no copy there`, { actual: extra.server }));
  }
  return out;
}

function compareSync(r: ReferenceTable, tableExists: boolean, objects: CatalogReferenceObjects): Finding[] {
  const out: Finding[] = [];
  const sameName = (a: QualifiedName, b: QualifiedName): boolean => nameKey(a) === nameKey(b);
  const fn = objects.functions.find((f) => sameName(f.function, r.syncFunction));
  const fnObject = `sync function ${displayName(r.syncFunction)}`;
  if (fn === undefined) out.push(finding('missing', fnObject, `the function that writes changes of ${displayName(r.table)} to the copies does not exist`));
  else {
    const expected = functionBody(syncFunctionStatement(r).sql);
    if (fn.body !== expected) out.push(finding('different', fnObject, `differs from what the spec generates (it writes other copies or columns); changes may not reach every data node`));
    if (!fn.securityDefiner) out.push(finding('different', fnObject, 'is not SECURITY DEFINER; writers without privileges on the copies would fail', { expected: 'SECURITY DEFINER', actual: 'SECURITY INVOKER' }));
  }
  // A missing table is reported once, not with its triggers.
  if (!tableExists) return out;
  for (const trigger of SYNC_TRIGGERS) {
    const object = `sync trigger ${trigger.name} on ${displayName(r.table)}`;
    const actual = objects.triggers.find((t) => sameName(t.table, r.table) && t.name === trigger.name);
    if (actual === undefined) {
      out.push(finding('missing', object, `no trigger: ${trigger.event} on ${displayName(r.table)} does not reach the copies`));
      continue;
    }
    const expected = describeTrigger({ type: TRIGGER_TYPE[trigger.event] ?? 0, ...transitionTables(trigger.event), function: r.syncFunction });
    const found = describeTrigger(actual);
    if (found !== expected) out.push(finding('different', object, `is ${found}, expected ${expected}`, { expected, actual: found }));
    if (actual.enabled !== 'O') {
      out.push(finding('different', object, `is ${actual.enabled === 'D' ? 'disabled' : `enabled only in mode ${actual.enabled}`}: ${trigger.event} on ${displayName(r.table)} does not reach the copies`, { expected: 'enabled', actual: actual.enabled === 'D' ? 'disabled' : `tgenabled ${actual.enabled}` }));
    }
  }
  return out;
}

function transitionTables(event: string): { oldTable: string | undefined; newTable: string | undefined } {
  return { oldTable: event === 'UPDATE' || event === 'DELETE' ? 'hypershard_old' : undefined, newTable: event === 'UPDATE' || event === 'INSERT' ? 'hypershard_new' : undefined };
}

function describeTrigger(t: Pick<CatalogTrigger, 'type' | 'oldTable' | 'newTable' | 'function'>): string {
  const events = Object.entries(TRIGGER_TYPE).filter(([, bit]) => (t.type & bit) !== 0).map(([event]) => event);
  const tables = [t.oldTable === undefined ? '' : ` OLD TABLE ${t.oldTable}`, t.newTable === undefined ? '' : ` NEW TABLE ${t.newTable}`].join('');
  // Bit 1: FOR EACH ROW; bit 2: BEFORE; bit 64: INSTEAD OF.
  const timing = (t.type & 2) !== 0 ? 'BEFORE' : (t.type & 64) !== 0 ? 'INSTEAD OF' : 'AFTER';
  return `${timing} ${events.join(' OR ')} FOR EACH ${(t.type & 1) !== 0 ? 'ROW' : 'STATEMENT'}${tables} EXECUTE ${displayName(t.function)}()`;
}

/** The body of a rendered `CREATE FUNCTION … AS $tag$…$tag$;`, as pg_proc.prosrc holds it. */
function functionBody(sql: string): string {
  const match = /AS (\$[a-z0-9]*\$)([\s\S]*)\1;$/.exec(sql);
  return match?.[2] ?? sql;
}
