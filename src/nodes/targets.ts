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
}

export interface ClusterSecrets {
  /** Password of the FDW service role. */
  readonly servicePassword: string;
  /** Passwords of declared roles that have one, by role name. */
  readonly rolePasswords: ReadonlyMap<string, string>;
}

/** Resolves many secrets, reporting all that are missing at once. */
async function resolveAll(refs: readonly { ref: SecretRef; usedFor: string }[], baseDir: string): Promise<string[]> {
  const settled = await Promise.allSettled(refs.map(({ ref, usedFor }) => resolveSecret(ref, baseDir, usedFor)));
  const failed = settled.filter((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failed.length > 0) {
    throw new SecretError(failed.map((f) => (f.reason instanceof Error ? f.reason.message : String(f.reason))).join('\n'));
  }
  return settled.map((s) => (s as PromiseFulfilledResult<string>).value);
}

export async function nodeTargets(spec: ClusterSpec, specFile: string): Promise<NodeTarget[]> {
  const nodes = [
    ...spec.dataNodes.map((n) => ({ node: n, role: 'data' as const })),
    { node: spec.accessNode, role: 'access' as const },
  ];
  const withPassword = nodes.filter((n) => n.node.password !== undefined);
  const passwords = await resolveAll(
    withPassword.map((n) => ({ ref: n.node.password as SecretRef, usedFor: `node ${n.node.name} password` })),
    dirname(specFile),
  );
  return nodes.map(({ node, role }) => {
    const i = withPassword.findIndex((w) => w.node === node);
    return { name: node.name, role, url: node.url, password: i === -1 ? undefined : passwords[i] };
  });
}

export async function clusterSecrets(spec: ClusterSpec, specFile: string): Promise<ClusterSecrets> {
  const roles = spec.roles.filter((r) => r.password !== undefined);
  const [servicePassword, ...rolePasswords] = await resolveAll(
    [
      { ref: spec.fdw.serviceRole.password, usedFor: `fdw.serviceRole.password (${spec.fdw.serviceRole.name})` },
      ...roles.map((r) => ({ ref: r.password as SecretRef, usedFor: `password of role ${r.name}` })),
    ],
    dirname(specFile),
  );
  return {
    servicePassword: servicePassword as string,
    rolePasswords: new Map(roles.map((r, i) => [r.name, rolePasswords[i] as string])),
  };
}
