/**
 * Puts secrets where migrations cannot hold them: role passwords (as SCRAM verifiers, identical on
 * every node) and the service role's password in the access node's user mappings. Each is
 * compared first, so a second `apply` changes nothing. Secret values never appear in results.
 */
import type pg from 'pg';
import type { ClusterLayout } from '../plan/layout.js';
import { quoteIdent } from '../sql/quote.js';
import { scramVerifier, verifierMatches } from './scram.js';
import { runSecretStatements, type SecretStatement } from './secretStatements.js';
import type { ClusterSecrets } from './targets.js';

export interface RolePassword {
  readonly role: string;
  readonly password: string;
  /** One verifier for every node, so credentials are byte-identical across the cluster. */
  readonly verifier: string;
}

/** Computed once per run, so every node receives the same verifier. */
export function rolePasswords(layout: ClusterLayout, secrets: ClusterSecrets): RolePassword[] {
  const replication = layout.replicationRole === undefined || secrets.replicationPassword === undefined ? [] : [{ role: layout.replicationRole, password: secrets.replicationPassword }];
  return [{ role: layout.serviceRole, password: secrets.servicePassword }, ...replication, ...[...secrets.rolePasswords].map(([role, password]) => ({ role, password }))].map(
    (p) => ({ ...p, verifier: scramVerifier(p.password) }),
  );
}

/** The passwords a node holds: the service and replication roles log in on data nodes only. */
export function passwordsFor(passwords: readonly RolePassword[], layout: ClusterLayout, role: 'access' | 'data'): RolePassword[] {
  return passwords.filter((p) => role === 'data' || (p.role !== layout.serviceRole && p.role !== layout.replicationRole));
}

/**
 * Sets each role's password unless the node already accepts it, as its SCRAM verifier (the
 * plaintext never travels) and out of every statement recorder. Returns how many changed (or
 * would, with `dryRun`).
 */
export async function syncRolePasswords(client: pg.Client, node: string, passwords: readonly RolePassword[], dryRun = false): Promise<number> {
  const stale: SecretStatement[] = [];
  for (const { role, password, verifier } of passwords) {
    const { rows } = await client.query<{ rolpassword: string | null }>('SELECT rolpassword FROM pg_catalog.pg_authid WHERE rolname = $1', [role]);
    if (!verifierMatches(rows[0]?.rolpassword, password)) stale.push({ template: `ALTER ROLE ${quoteIdent(role)} PASSWORD %L`, secret: verifier });
  }
  if (!dryRun) await runSecretStatements(client, node, stale);
  return stale.length;
}

/**
 * Sets the service role's password in every user mapping of the access node that lacks it
 * (postgres_fdw needs the plaintext there), out of every statement recorder.
 */
export async function syncUserMappings(client: pg.Client, node: string, layout: ClusterLayout, password: string, dryRun = false): Promise<number> {
  const { rows } = await client.query<{ srvname: string; umoptions: string[] | null }>(
    `SELECT srvname, umoptions FROM pg_catalog.pg_user_mappings WHERE usename = 'public' AND srvname = ANY($1)`,
    [layout.servers.map((s) => s.name)],
  );
  const stale = rows.filter((row) => !(row.umoptions ?? []).includes(`password=${password}`));
  // A server a pending migration creates gets its mapping's password from this apply too.
  if (dryRun) return layout.servers.filter((s) => !rows.some((row) => row.srvname === s.name && !stale.includes(row))).length;
  await runSecretStatements(
    client,
    node,
    stale.map((row) => ({
      template: `ALTER USER MAPPING FOR PUBLIC SERVER ${quoteIdent(row.srvname)} OPTIONS (${(row.umoptions ?? []).some((o) => o.startsWith('password=')) ? 'SET' : 'ADD'} password %L)`,
      secret: password,
    })),
  );
  return stale.length;
}
