/**
 * Column changes of one table (a hypertable or a reference table): renames only when the spec
 * says so, adds, drops, type and NOT NULL changes, each as a step the caller places on its nodes.
 */
import type { Column, QualifiedName } from '../plan/layout.js';
import type { Step } from '../sql/statement.js';
import { render } from '../sql/templates.js';
import { one, tableName, type Plan } from './plan.js';

/** Type changes that cannot lose data. */
const WIDENINGS = new Set(['smallint>integer', 'smallint>bigint', 'integer>bigint', 'real>double precision', 'varchar>text', 'char>text', 'smallint>numeric', 'integer>numeric', 'bigint>numeric']);

/** A change's step for one table (the one the spec names, or another with its columns: a foreign table). */
export type OnTable = (table: QualifiedName) => Step;

export interface ColumnsOf {
  readonly table: QualifiedName;
  readonly columns: readonly Column[];
}

/**
 * `kind` names the table in refusals (`hypertable`, `reference table`). `onAll` places a change
 * that is the same on every table; `onEach` one that differs between tables that store rows
 * (a retype converts them with USING) and foreign or partitioned ones (which reject USING).
 */
export function diffColumns(plan: Plan, kind: string, old: ColumnsOf, next: ColumnsOf, onAll: (step: OnTable) => void, onEach: (using: OnTable, plain: OnTable) => void): void {
  const label = `${kind} ${tableName(next.table)}`;
  const qualified = tableName(next.table);
  const before = new Map(old.columns.map((c) => [c.name, c]));
  const renamedAway = new Set<string>();
  const renames: [Column, Column][] = [];
  for (const column of next.columns) {
    if (before.has(column.name) || column.renamedFrom === undefined) continue;
    const source = before.get(column.renamedFrom);
    if (source === undefined) {
      plan.refused.push(`${label}: column ${column.name} says renamedFrom ${column.renamedFrom}, but there is no such column`);
      continue;
    }
    renamedAway.add(source.name);
    renames.push([source, column]);
  }
  const added = next.columns.filter((c) => !before.has(c.name) && !renames.some(([, to]) => to === c));
  const dropped = old.columns.filter((c) => !next.columns.some((n) => n.name === c.name) && !renamedAway.has(c.name));
  if (added.length > 0 && dropped.length > 0) {
    // The shape of a rename: never guess. Say how to mean either.
    plan.refused.push(
      `${label}: column${dropped.length === 1 ? '' : 's'} ${dropped.map((c) => c.name).join(', ')} removed and ${added.map((c) => c.name).join(', ')} added; ` +
        `for a rename write \`renamedFrom: ${dropped[0]?.name ?? ''}\` on the new column, for a drop and an add make them in two generates`,
    );
    return;
  }
  for (const [from, to] of renames) {
    plan.change('rename_column', `column ${qualified}.${from.name} renamed to ${to.name}`);
    onAll((table) => one(`rename column ${from.name} to ${to.name} on ${qualified}`, render('common/rename-column', { table, from: from.name, to: to.name }), render('common/rename-column', { table, from: to.name, to: from.name })));
  }
  for (const column of added) {
    if (column.notNull) {
      plan.refused.push(`${label}: new column ${column.name} is notNull without a default, which fails on rows in place; add it nullable, fill it, then make it notNull`);
      continue;
    }
    plan.change('add_column', `column ${qualified}.${column.name} ${column.type.sql} added`);
    onAll((table) => one(`add column ${column.name} to ${qualified}`, render('common/add-column', { table, column }), render('common/drop-column', { table, name: column.name })));
  }
  for (const column of dropped) {
    plan.change('drop_column', `column ${qualified}.${column.name} dropped, with its values on every data node`, true);
    onAll((table) => one(`drop column ${column.name} from ${qualified}`, render('common/drop-column', { table, name: column.name }), render('common/add-column', { table, column })));
  }
  for (const column of next.columns) {
    const previous = before.get(column.renamedFrom !== undefined && !before.has(column.name) ? column.renamedFrom : column.name);
    if (previous === undefined) continue;
    if (previous.type.sql !== column.type.sql) {
      const widening = WIDENINGS.has(`${previous.type.base}>${column.type.base}`) && previous.type.arrayDepth === column.type.arrayDepth;
      plan.change('alter_column_type', `column ${qualified}.${column.name} retyped from ${previous.type.sql} to ${column.type.sql}`, !widening);
      const retype = (using: boolean): OnTable => (table) =>
        one(`type of ${column.name} on ${qualified}`, render('common/alter-column-type', { table, name: column.name, type: column.type, using }), render('common/alter-column-type', { table, name: column.name, type: previous.type, using }));
      onEach(retype(true), retype(false));
    }
    if (previous.notNull !== column.notNull) {
      plan.change('alter_not_null', `column ${qualified}.${column.name} ${column.notNull ? 'made notNull' : 'made nullable'}`);
      onAll((table) => one(`not null on ${column.name} of ${qualified}`, render('common/set-not-null', { table, name: column.name, notNull: column.notNull }), render('common/set-not-null', { table, name: column.name, notNull: previous.notNull })));
    }
  }
}
