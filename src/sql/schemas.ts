/** The schemas of the hypertables and reference tables on a node. */
import type { QualifiedName } from '../plan/layout.js';
import type { Step } from './statement.js';
import { render } from './templates.js';

/**
 * Creates each non-public schema of `tables` once, before the first of them, and drops it once,
 * after the last: DROP SCHEMA (without CASCADE) fails while any table is left in it.
 */
export function schemasStep(tables: readonly { readonly table: QualifiedName }[]): Step {
  const schemas = [...new Set(tables.map((h) => h.table.schema))].filter((schema) => schema !== 'public');
  return {
    up: schemas.map((schema) => ({ what: `schema ${schema}`, sql: render('common/create-schema', { schema }) })),
    down: [...schemas].reverse().map((schema) => ({ what: `schema ${schema}`, sql: render('common/drop-schema', { schema }) })),
  };
}
