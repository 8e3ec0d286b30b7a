/**
 * The access node's FDW servers (one per data node and shard slot) with the options the layout
 * gives them, and the PUBLIC user mapping of each to the service role. A password is only ever
 * reported as missing; its value is not read into the catalog snapshot at all.
 */
import type { ClusterLayout, FdwServer } from '../../plan/layout.js';
import type { CatalogServer, CatalogUserMapping } from '../catalog/servers.js';
import { finding, type Finding } from '../model.js';

/** parallel_commit exists from PostgreSQL 15; the migration sets it only there. */
const PARALLEL_COMMIT_VERSION = 150000;

export function expectedServerOptions(server: FdwServer, serverVersionNum: number): (readonly [string, string])[] {
  return [...server.options, ...(server.parallelCommit && serverVersionNum >= PARALLEL_COMMIT_VERSION ? [['parallel_commit', 'true'] as const] : [])];
}

function compareOptions(object: string, expected: readonly (readonly [string, string])[], actual: ReadonlyMap<string, string>): Finding[] {
  const out: Finding[] = [];
  for (const [key, value] of expected) {
    const found = actual.get(key);
    if (found === undefined) out.push(finding('missing', object, `option ${key} is not set, expected ${value}`, { expected: `${key}=${value}` }));
    else if (found !== value) out.push(finding('different', object, `option ${key} is ${found}, expected ${value}`, { expected: `${key}=${value}`, actual: `${key}=${found}` }));
  }
  const keys = new Set(expected.map(([key]) => key));
  for (const [key, value] of actual) {
    if (!keys.has(key)) out.push(finding('extra', object, `option ${key} is set, the spec does not set it`, { actual: `${key}=${value}` }));
  }
  return out;
}

export function compareServers(layout: ClusterLayout, serverVersionNum: number, actual: readonly CatalogServer[]): Finding[] {
  const byName = new Map(actual.map((s) => [s.name, s]));
  const out: Finding[] = [];
  for (const server of layout.servers) {
    const object = `server ${server.name}`;
    const have = byName.get(server.name);
    if (have === undefined) {
      out.push(finding('missing', object, `FDW server ${server.name} for data node ${server.dataNode} does not exist`));
      continue;
    }
    if (have.wrapper !== 'postgres_fdw') out.push(finding('different', object, `uses the foreign data wrapper ${have.wrapper}`, { expected: 'postgres_fdw', actual: have.wrapper }));
    out.push(...compareOptions(object, expectedServerOptions(server, serverVersionNum), have.options));
  }
  const wanted = new Set(layout.servers.map((s) => s.name));
  for (const have of actual.filter((s) => !wanted.has(s.name))) {
    out.push(finding('extra', `server ${have.name}`, `FDW server ${have.name} is not in the layout (a data node or hypertable removed by hand?)`));
  }
  return out;
}

export function compareUserMappings(layout: ClusterLayout, servers: readonly CatalogServer[], actual: readonly CatalogUserMapping[]): Finding[] {
  const out: Finding[] = [];
  const present = new Set(servers.map((s) => s.name));
  for (const server of layout.servers.filter((s) => present.has(s.name))) {
    const object = `user mapping for PUBLIC on server ${server.name}`;
    const mapping = actual.find((m) => m.server === server.name && m.user === 'public');
    if (mapping === undefined) {
      out.push(finding('missing', object, `no user mapping: the access node cannot log in to ${server.dataNode} through ${server.name}`));
      continue;
    }
    if (!mapping.visible) {
      out.push(finding('warning', object, 'its options are hidden from this user; run check as the owner of the server or a superuser to compare them'));
      continue;
    }
    out.push(...compareOptions(object, [['user', layout.serviceRole]], mapping.options));
    // Only presence: the value is a secret, and apply sets it.
    if (!mapping.hasPassword) out.push(finding('missing', object, 'password missing (run apply to set it from the secret reference)', { expected: 'password set' }));
  }
  const wanted = new Set(layout.servers.map((s) => s.name));
  for (const mapping of actual.filter((m) => wanted.has(m.server) && m.user !== 'public')) {
    out.push(finding('extra', `user mapping for ${mapping.user} on server ${mapping.server}`, `${mapping.user} has its own mapping, overriding the PUBLIC one to the service role`));
  }
  return out;
}
