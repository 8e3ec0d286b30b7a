/** The objects every node of its role needs before any hypertable. */
import { INTERNAL_SCHEMA } from '../../plan/layout.js';
import type { NodeRole } from '../../sql/generate.js';
import type { CatalogBase } from '../catalog/base.js';
import { finding, type Finding } from '../model.js';

export function compareBase(role: NodeRole, base: CatalogBase): Finding[] {
  const out: Finding[] = [];
  if (!base.schema) out.push(finding('missing', `schema ${INTERNAL_SCHEMA}`, `schema ${INTERNAL_SCHEMA} does not exist`));
  if (role === 'access' && !base.fdwExtension) out.push(finding('missing', 'extension postgres_fdw', 'postgres_fdw is not installed; no shard can be reached'));
  if (role === 'data' && !base.chunkFunction) {
    out.push(finding('missing', `function ${INTERNAL_SCHEMA}.create_chunks`, 'the chunk function is missing; new chunks cannot be made'));
  }
  return out;
}
