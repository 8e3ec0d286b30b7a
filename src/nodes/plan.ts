/**
 * `plan`: per node, what `apply` would run, read from live history with read-only sessions.
 * Nothing on any node changes: the sessions are `default_transaction_read_only`, and the history
 * table is only read if it exists.
 */
import { resolve } from 'node:path';
import { checkMigrationsCurrent, defaultMigrationsDir, readMigrations, type MigrationFile } from '../migrations/files.js';
import { generateSql, type NodeRole } from '../sql/generate.js';
import type { ClusterSpec } from '../spec/schema.js';
import { closeAll, connectAll, type ConnectOptions } from './connect.js';
import { appliedMigrations, pendingMigrations } from './history.js';
import { passwordsFor, rolePasswords, syncRolePasswords, syncUserMappings } from './secrets.js';
import { clusterTargets } from './targets.js';

export interface NodePlan {
  readonly node: string;
  readonly role: NodeRole;
  readonly serverVersion: string;
  readonly applied: readonly string[];
  readonly pending: readonly MigrationFile[];
  /** Passwords or user-mapping secrets `apply` would set. */
  readonly secretsToSet: number;
}

export interface PlanOptions extends ConnectOptions {
  readonly migrationsDir?: string;
}

export async function plan(spec: ClusterSpec, specFile: string, options: PlanOptions = {}): Promise<NodePlan[]> {
  const root = resolve(options.migrationsDir ?? defaultMigrationsDir(specFile));
  const sql = generateSql(spec);
  await checkMigrationsCurrent(spec, root);
  const files = await readMigrations(root, sql.layout);
  const { targets, secrets } = await clusterTargets(spec, specFile);
  const passwords = rolePasswords(sql.layout, secrets);
  const connections = await connectAll(targets, options);
  try {
    return await Promise.all(
      connections.map(async ({ target, client, info }): Promise<NodePlan> => {
        await client.query('SET default_transaction_read_only = on');
        const applied = await appliedMigrations(client);
        const pending = pendingMigrations(target.name, applied, files.filter((f) => f.node === target.name));
        let secretsToSet = await syncRolePasswords(client, target.name, passwordsFor(passwords, sql.layout, target.role), true);
        if (target.role === 'access') secretsToSet += await syncUserMappings(client, target.name, sql.layout, secrets.servicePassword, true);
        return { node: target.name, role: target.role, serverVersion: info.serverVersion, applied, pending, secretsToSet };
      }),
    );
  } finally {
    await closeAll(connections);
  }
}
