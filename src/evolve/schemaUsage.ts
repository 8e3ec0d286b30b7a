/**
 * USAGE on schemas, reconciled at the end of an evolution with exactly what `check` expects
 * (expectedSchemaGrants): granted where a role newly needs it, revoked where it no longer does
 * (also before the role itself is dropped, which USAGE would block). The steps that create or
 * drop objects grant some USAGE themselves; what they already do is not repeated. Without this,
 * a role given its first grant on a table in `public` had USAGE there in a first migration but
 * not in a later one, and `check` reported drift that `apply` never repaired.
 */
import { expectedSchemaGrants } from '../drift/compare/privileges.js';
import { INTERNAL_SCHEMA, type ClusterLayout } from '../plan/layout.js';
import type { NodeRole } from '../sql/generate.js';
import type { Statement } from '../sql/statement.js';
import { render } from '../sql/templates.js';
import type { Plan } from './plan.js';

interface Usage {
  readonly schema: string;
  readonly role: string;
}

const key = (u: Usage): string => `${u.schema}\u0000${u.role}`;

function usage(layout: ClusterLayout, node: string, role: NodeRole): Map<string, Usage> {
  return new Map(
    expectedSchemaGrants(layout, node, role)
      .filter((e) => e.privileges.includes('USAGE'))
      .map((e) => [key({ schema: e.on, role: e.role }), { schema: e.on, role: e.role }]),
  );
}

export function diffSchemaUsage(plan: Plan, before: ClusterLayout, after: ClusterLayout): void {
  const nodes: { node: string; role: NodeRole; existed: boolean }[] = [
    { node: after.accessNode, role: 'access', existed: true },
    ...after.dataNodes.map((node) => ({ node, role: 'data' as const, existed: before.dataNodes.includes(node) })),
  ];
  for (const { node, role, existed } of nodes) {
    const had = existed ? usage(before, node, role) : new Map<string, Usage>();
    const has = usage(after, node, role);
    // Schemas that exist on the node after the migration: public, hypershard's own, and those of what it holds.
    const present = new Set(['public', INTERNAL_SCHEMA, ...expectedSchemaGrants(after, node, role).map((e) => e.on)]);
    const planned = new Set((plan.steps.get(node) ?? []).flatMap((s) => s.up.map((st) => st.sql)));
    const grant = (u: Usage): Statement => ({ what: `usage on schema ${u.schema} for ${u.role}`, sql: render('common/grant-schema-usage', u) });
    const revoke = (u: Usage): Statement => ({ what: `usage on schema ${u.schema} for ${u.role}`, sql: render('common/revoke-schema-usage', u) });
    const granted = [...has.entries()].filter(([k]) => !had.has(k)).map(([, u]) => u).filter((u) => !planned.has(grant(u).sql));
    const revoked = [...had.entries()].filter(([k]) => !has.has(k)).map(([, u]) => u).filter((u) => present.has(u.schema) && !planned.has(revoke(u).sql));
    if (granted.length === 0 && revoked.length === 0) continue;
    plan.add(node, { up: [...granted.map(grant), ...revoked.map(revoke)], down: [...revoked.map(grant), ...granted.map(revoke)] });
  }
}
