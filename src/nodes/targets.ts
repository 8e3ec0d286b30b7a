/** The nodes of a spec as connection targets, with every secret they need resolved up front. */
import { dirname } from 'node:path';
import { SecretError } from '../errors.js';
import type { NodeRole } from '../sql/generate.js';
import type { ClusterSpec, SecretRef } from '../spec/schema.js';
import { resolveSecret } from '../spec/secrets.js';

export interface NodeTarget {
  readonly name: string;
  readonly role: NodeRole;
  readonly url: string;
  readonly password: string | undefined;
  /**
   * The nodes this node's statements can wait on: the data nodes, for the access node (postgres_fdw).
   * A statement waiting on one that stopped answering fails naming it (src/nodes/liveness.ts).
   */
  readonly peers?: readonly NodeTarget[];
}

export interface ClusterSecrets {
  /** Password of the FDW service role. */
  readonly servicePassword: string;
  /** Password of the replication role, when the spec has one. */
  readonly replicationPassword: string | undefined;
  /** Passwords of declared roles that have one, by role name. */
  readonly rolePasswords: ReadonlyMap<string, string>;
}

/** Resolves many secrets, reporting all that are missing at once. */
async function resolveAll(refs: readonly { ref: SecretRef; usedFor: string }[], baseDir: string): Promise<string[]> {
  const settled = await Promise.allSettled(refs.map(({ ref, usedFor }) => resolveSecret(ref, baseDir, usedFor)));
  const failed = settled.filter((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failed.length > 0) {
    const reasons = failed.map((f) => (f.reason instanceof Error ? f.reason.message : String(f.reason)));
    throw new SecretError(reasons.length === 1 ? reasons[0]! : `${reasons.length} secrets cannot be read:\n${reasons.map((r) => `  - ${r}`).join('\n')}`);
  }
  return settled.map((s) => (s as PromiseFulfilledResult<string>).value);
}

interface SecretRequest {
  readonly ref: SecretRef;
  readonly usedFor: string;
}

function nodeRequests(spec: ClusterSpec): { nodes: { node: ClusterSpec['accessNode']; role: NodeRole }[]; requests: SecretRequest[] } {
  const nodes = [...spec.dataNodes.map((n) => ({ node: n, role: 'data' as const })), { node: spec.accessNode, role: 'access' as const }];
  const requests = nodes.flatMap(({ node }) => (node.password === undefined ? [] : [{ ref: node.password, usedFor: `node ${node.name} password` }]));
  return { nodes, requests };
}

function clusterRequests(spec: ClusterSpec): SecretRequest[] {
  return [
    { ref: spec.fdw.serviceRole.password, usedFor: `fdw.serviceRole.password (${spec.fdw.serviceRole.name})` },
    ...(spec.replication === undefined ? [] : [{ ref: spec.replication.role.password, usedFor: `replication.role.password (${spec.replication.role.name})` }]),
    ...spec.roles.flatMap((r) => (r.password === undefined ? [] : [{ ref: r.password, usedFor: `password of role ${r.name}` }])),
  ];
}

function toTargets(nodes: ReturnType<typeof nodeRequests>['nodes'], passwords: readonly string[]): NodeTarget[] {
  let next = 0;
  const targets: NodeTarget[] = nodes.map(({ node, role }) => ({ name: node.name, role, url: node.url, password: node.password === undefined ? undefined : passwords[next++] }));
  // The access node's session probes the data nodes when a statement waits on postgres_fdw.
  const data = targets.filter((t) => t.role === 'data');
  return targets.map((t) => (t.role === 'access' ? { ...t, peers: data } : t));
}

function toSecrets(spec: ClusterSpec, values: readonly string[]): ClusterSecrets {
  const roles = spec.roles.filter((r) => r.password !== undefined);
  const replication = spec.replication?.role !== undefined;
  return {
    servicePassword: values[0] as string,
    replicationPassword: replication ? values[1] : undefined,
    rolePasswords: new Map(roles.map((r, i) => [r.name, values[i + (replication ? 2 : 1)] as string])),
  };
}

export async function nodeTargets(spec: ClusterSpec, specFile: string): Promise<NodeTarget[]> {
  const { nodes, requests } = nodeRequests(spec);
  return toTargets(nodes, await resolveAll(requests, dirname(specFile)));
}

/**
 * The nodes and every secret `apply` needs, resolved together: a missing node password and a
 * missing role password are reported in one error, not one run after the other.
 */
export async function clusterTargets(spec: ClusterSpec, specFile: string): Promise<{ targets: NodeTarget[]; secrets: ClusterSecrets }> {
  const { nodes, requests } = nodeRequests(spec);
  const values = await resolveAll([...requests, ...clusterRequests(spec)], dirname(specFile));
  return { targets: toTargets(nodes, values.slice(0, requests.length)), secrets: toSecrets(spec, values.slice(requests.length)) };
}
