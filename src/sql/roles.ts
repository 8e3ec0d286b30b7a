/** Role and grant statements, identical on every node so a role means the same everywhere. */
import type { QualifiedName, Role } from '../plan/layout.js';
import type { Step } from './statement.js';
import { render } from './templates.js';

export function createRoles(roles: readonly Role[]): Step {
  const up = roles.map((role) => ({ what: `role ${role.name}`, sql: render('common/create-role', role) }));
  const memberships = roles.flatMap((role) =>
    role.memberOf.map((parent) => ({ parent, member: role.name })),
  );
  return {
    up: [...up, ...memberships.map((m) => ({ what: `membership ${m.member} in ${m.parent}`, sql: render('common/grant-role', m) }))],
    down: [
      ...memberships.reverse().map((m) => ({ what: `membership ${m.member} in ${m.parent}`, sql: render('common/revoke-role', m) })),
      ...[...roles].reverse().map((role) => ({ what: `role ${role.name}`, sql: render('common/drop-role', role) })),
    ],
  };
}

/**
 * GRANTs of declared roles on hypertables (the access node's parents, the data nodes' local
 * parents), limited to the tables a node holds.
 */
export function grantTables(roles: readonly Role[], holds: (table: QualifiedName) => boolean): Step {
  const grants = roles.flatMap((role) =>
    role.grants.filter((g) => holds(g.table)).map((g) => ({ role: role.name, table: g.table, privileges: g.privileges })),
  );
  const schemas = [...new Set(grants.map((g) => g.table.schema))].flatMap((schema) =>
    [...new Set(grants.filter((g) => g.table.schema === schema).map((g) => g.role))].map((role) => ({ schema, role })),
  );
  return {
    up: [
      ...schemas.map((s) => ({ what: `usage on schema ${s.schema} for ${s.role}`, sql: render('common/grant-schema-usage', s) })),
      ...grants.map((g) => ({ what: `grant on ${g.table.schema}.${g.table.name} to ${g.role}`, sql: render('common/grant-table', g) })),
    ],
    down: [
      ...[...grants].reverse().map((g) => ({ what: `grant on ${g.table.schema}.${g.table.name} to ${g.role}`, sql: render('common/revoke-table', g) })),
      ...[...schemas].reverse().map((s) => ({ what: `usage on schema ${s.schema} for ${s.role}`, sql: render('common/revoke-schema-usage', s) })),
    ],
  };
}
