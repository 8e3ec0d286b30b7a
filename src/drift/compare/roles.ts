/**
 * Declared roles on every node and the service role on the data nodes: their attributes
 * (identical everywhere, as apply sets them) and the memberships the spec declares.
 */
import type { ClusterLayout } from '../../plan/layout.js';
import type { NodeRole } from '../../sql/generate.js';
import type { CatalogMembership, CatalogRole } from '../catalog/roles.js';
import { finding, type Finding } from '../model.js';

interface ExpectedRole {
  readonly name: string;
  readonly login: boolean;
  readonly inherit: boolean;
  readonly connectionLimit: number;
  readonly memberOf: readonly string[];
  readonly replication?: boolean;
}

/** The roles a node must have. The access node only names the service role in user mappings. */
export function expectedRoles(layout: ClusterLayout, role: NodeRole): ExpectedRole[] {
  return [
    ...layout.roles,
    ...(role === 'data' ? [{ name: layout.serviceRole, login: true, inherit: false, connectionLimit: -1, memberOf: [] }] : []),
    ...(role === 'data' && layout.replicationRole !== undefined
      ? [{ name: layout.replicationRole, login: true, inherit: false, connectionLimit: -1, memberOf: [], replication: true }]
      : []),
  ];
}

/** Attributes as `CREATE ROLE` words, each one compared on its own. */
function attributes(r: Omit<CatalogRole, 'name'>): [string, string][] {
  return [
    ['login', r.login ? 'LOGIN' : 'NOLOGIN'],
    ['inherit', r.inherit ? 'INHERIT' : 'NOINHERIT'],
    ['connection limit', `CONNECTION LIMIT ${r.connectionLimit}`],
    ['superuser', r.superuser ? 'SUPERUSER' : 'NOSUPERUSER'],
    ['createdb', r.createdb ? 'CREATEDB' : 'NOCREATEDB'],
    ['createrole', r.createrole ? 'CREATEROLE' : 'NOCREATEROLE'],
    ['replication', r.replication ? 'REPLICATION' : 'NOREPLICATION'],
    ['bypassrls', r.bypassrls ? 'BYPASSRLS' : 'NOBYPASSRLS'],
  ];
}

export function compareRoles(layout: ClusterLayout, role: NodeRole, roles: readonly CatalogRole[], memberships: readonly CatalogMembership[]): Finding[] {
  const byName = new Map(roles.map((r) => [r.name, r]));
  const out: Finding[] = [];
  for (const want of expectedRoles(layout, role)) {
    const object = `role ${want.name}`;
    const have = byName.get(want.name);
    const expected = attributes({ ...want, superuser: false, createdb: false, createrole: false, replication: want.replication === true, bypassrls: false });
    if (have === undefined) {
      out.push(finding('missing', object, `role ${want.name} does not exist`, { expected: expected.map(([, v]) => v).join(' ') }));
      continue;
    }
    const actual = new Map(attributes(have));
    const differing = expected.filter(([k, v]) => actual.get(k) !== v);
    if (differing.length > 0) {
      out.push(finding('different', object, `${want.name} has ${differing.map(([k, v]) => `${actual.get(k) ?? '?'} instead of ${v}`).join(', ')}`, {
        expected: differing.map(([, v]) => v).join(' '),
        actual: differing.map(([k]) => actual.get(k) ?? '?').join(' '),
      }));
    }
    const parents = new Set(memberships.filter((m) => m.member === want.name).map((m) => m.role));
    for (const parent of want.memberOf.filter((p) => !parents.has(p))) {
      out.push(finding('missing', `membership of ${want.name} in ${parent}`, `${want.name} is not a member of ${parent}`));
    }
    for (const parent of [...parents].filter((p) => !want.memberOf.includes(p)).sort()) {
      out.push(finding('extra', `membership of ${want.name} in ${parent}`, `${want.name} is a member of ${parent}, which the spec does not declare`));
    }
  }
  return out;
}
