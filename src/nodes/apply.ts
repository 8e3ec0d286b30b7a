/**
 * `apply`: data nodes first (in parallel), then the access node, each through node-pg-migrate with
 * its advisory lock and history table. Never throws for a node's failure: every node gets a result.
 */
import { resolve } from 'node:path';
import { runner } from 'node-pg-migrate';
import { ApplyBusyError, errorMessage } from '../errors.js';
import { replicatedNodes, replicationPlan, type ReplicationPlan } from '../ha/members.js';
import { ensureReplication } from '../ha/replication.js';
import { checkMigrationsCurrent, defaultMigrationsDir, readMigrations, type MigrationFile } from '../migrations/files.js';
import { INTERNAL_SCHEMA, MIGRATIONS_TABLE, type ClusterLayout } from '../plan/layout.js';
import { generateSql, type NodeRole } from '../sql/generate.js';
import type { ClusterSpec } from '../spec/schema.js';
import { tryApplyLock } from './applyLock.js';
import { closeAll, connectAll, DEFAULT_CONNECT_TIMEOUT_MS, type ConnectOptions, type NodeConnection } from './connect.js';
import { recordChecksums } from './checksums.js';
import { appliedMigrations, pendingMigrations } from './history.js';
import { pgMessage, rehearse, type StatementFailure } from './rehearse.js';
import { syncRoleSettings } from './roleSettings.js';
import { syncWriteGuards } from './writeGuards.js';
import { passwordsFor, rolePasswords, syncRolePasswords, syncUserMappings, type RolePassword } from './secrets.js';
import { clusterTargets, type NodeTarget } from './targets.js';

export type NodeApplyStatus = 'applied' | 'up-to-date' | 'failed' | 'not-run';

export interface NodeApplyResult {
  readonly node: string;
  readonly role: NodeRole;
  readonly status: NodeApplyStatus;
  /** Migrations run on this node by this apply. */
  readonly migrations: readonly string[];
  /** Passwords and user-mapping secrets changed (never their values). */
  readonly secretsChanged: number;
  /** What was changed for this data node's standbys (slots, synchronous_standby_names); see src/ha/replication.ts. */
  readonly replication?: readonly string[];
  /** On a data node: service-role settings this apply set again because they differed (`name=value for role`). */
  readonly settings?: readonly string[];
  /** On a data node: write guards (and their function) this apply made because they were missing. */
  readonly guards?: readonly string[];
  readonly error?: { readonly message: string; readonly migration?: string; readonly statement?: string };
  /** Why the node was not run, when `not-run`. */
  readonly reason?: string;
  /** What works less well than it could on this node (e.g. no two-phase commit for routed writes). */
  readonly warnings?: readonly string[];
}

export interface ApplyResult {
  readonly ok: boolean;
  readonly nodes: readonly NodeApplyResult[];
}

export interface ApplyOptions extends ConnectOptions {
  /** @default `migrations/` next to the spec */
  readonly migrationsDir?: string;
  /**
   * How long a statement waits for a table lock (a hypertable busy under a long query) before the
   * migration fails and is rolled back; new queries would otherwise queue behind the waiting DDL.
   * @default 10000
   */
  readonly lockTimeoutMs?: number;
  readonly onProgress?: (event: { node: string; phase: 'rehearse' | 'migrate' | 'secrets' | 'done' }) => void;
}

/**
 * @throws SpecError, SecretError, MigrationStateError, NodeConnectionError or ApplyBusyError
 *   (another apply holds a node) before any node is changed; after that, failures are reported
 *   per node in the result.
 */
export async function apply(spec: ClusterSpec, specFile: string, options: ApplyOptions = {}): Promise<ApplyResult> {
  const root = resolve(options.migrationsDir ?? defaultMigrationsDir(specFile));
  const sql = generateSql(spec);
  await checkMigrationsCurrent(spec, root);
  const files = await readMigrations(root, sql.layout);
  const { targets, secrets } = await clusterTargets(spec, specFile);
  const connections = await connectAll(targets, options);
  try {
    await claimNodes(connections, options.lockTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS);
    const work = await Promise.all(
      connections.map(async (c) => {
        const mine = files.filter((f) => f.node === c.target.name);
        return { connection: c, pending: pendingMigrations(c.target.name, await appliedMigrations(c.client), mine) };
      }),
    );

    // Rehearse everywhere first: nothing changes on any node unless every node can take its SQL.
    const rehearsals = await Promise.all(
      work.map(async ({ connection, pending }) => {
        options.onProgress?.({ node: connection.target.name, phase: 'rehearse' });
        return rehearse(connection.client, pending).catch((e): StatementFailure => ({ migration: pending[0]?.name ?? '', statement: '', message: pgMessage(e) }));
      }),
    );
    if (rehearsals.some((r) => r !== undefined)) {
      return {
        ok: false,
        nodes: work.map(({ connection }, i) => {
          const failure = rehearsals[i];
          return failure === undefined
            ? notRun(connection, 'another node failed its rehearsal; nothing was applied anywhere')
            : failed(connection, failure.message, failure.migration, failure.statement === '' ? undefined : failure.statement);
        }),
      };
    }

    const passwords = rolePasswords(sql.layout, secrets);
    const run = (entry: (typeof work)[number]): Promise<NodeApplyResult> =>
      migrateNode(entry.connection, entry.pending, files.filter((f) => f.node === entry.connection.target.name), root, {
        layout: sql.layout,
        passwords: passwordsFor(passwords, sql.layout, entry.connection.target.role),
        servicePassword: secrets.servicePassword,
        replication: replicationPlanFor(spec, entry.connection.target),
      }, options);
    const dataResults = await Promise.all(work.filter((w) => w.connection.target.role === 'data').map(run));
    const access = work.find((w) => w.connection.target.role === 'access');
    if (access === undefined) throw new TypeError('spec without access node');
    const accessResult = dataResults.every((r) => r.status !== 'failed')
      ? await run(access)
      : notRun(access.connection, 'a data node failed; the access node is applied only after all data nodes');
    const nodes = [...dataResults, accessResult];
    return { ok: nodes.every((n) => n.status === 'applied' || n.status === 'up-to-date'), nodes };
  } finally {
    await closeAll(connections);
  }
}

async function migrateNode(
  connection: NodeConnection,
  pending: readonly MigrationFile[],
  nodeFiles: readonly MigrationFile[],
  root: string,
  secrets: { layout: ClusterLayout; passwords: readonly RolePassword[]; servicePassword: string; replication: ReplicationPlan | undefined },
  options: ApplyOptions,
): Promise<NodeApplyResult> {
  const { target, client } = connection;
  const dir = pending[0]?.dir ?? '';
  let ran: string[] = [];
  if (pending.length > 0) {
    options.onProgress?.({ node: target.name, phase: 'migrate' });
    const logs: string[] = [];
    try {
      const result = await runner({
        dbClient: client,
        dir: resolve(root, dir),
        migrationsTable: MIGRATIONS_TABLE,
        migrationsSchema: INTERNAL_SCHEMA,
        createMigrationsSchema: true,
        direction: 'up',
        checkOrder: true,
        advisoryLockMode: 'wait',
        log: (message: string) => logs.push(message),
      });
      ran = result.map((m) => m.name);
    } catch (error) {
      // The failed migration was rolled back; rehearse again to name the statement.
      const failure = await rehearse(client, pending).catch(() => undefined);
      return failed(connection, pgMessage(error), failure?.migration ?? pending[0]?.name, failure?.statement);
    }
  }
  try {
    // Right after the run: `check` compares these with the files to catch edits after apply.
    await recordChecksums(client, await appliedMigrations(client), nodeFiles);
    options.onProgress?.({ node: target.name, phase: 'secrets' });
    let changed = await syncRolePasswords(client, target.name, secrets.passwords);
    if (target.role === 'access') changed += await syncUserMappings(client, target.name, secrets.layout, secrets.servicePassword);
    const replication = secrets.replication === undefined ? [] : await ensureReplication(client, secrets.replication);
    const settings = target.role === 'data' ? await syncRoleSettings(client, secrets.layout) : [];
    const guards = target.role === 'data' ? await syncWriteGuards(client, secrets.layout, target.name) : [];
    const warnings = target.role === 'data' ? await twoPhaseWarnings(client) : [];
    options.onProgress?.({ node: target.name, phase: 'done' });
    return {
      node: target.name,
      role: target.role,
      status: ran.length > 0 || changed > 0 || replication.length > 0 || settings.length > 0 || guards.length > 0 ? 'applied' : 'up-to-date',
      migrations: ran,
      secretsChanged: changed,
      ...(replication.length === 0 ? {} : { replication }),
      ...(settings.length === 0 ? {} : { settings }),
      ...(guards.length === 0 ? {} : { guards }),
      ...(warnings.length === 0 ? {} : { warnings }),
    };
  } catch (error) {
    return failed(connection, `setting secrets failed: ${errorMessage(error)}`);
  }
}

/** Routed writes commit with two-phase commit, which a data node without prepared transactions cannot take. */
async function twoPhaseWarnings(client: NodeConnection['client']): Promise<string[]> {
  const { rows } = await client.query<{ n: number }>(`SELECT pg_catalog.current_setting('max_prepared_transactions')::int AS n`);
  return rows[0]?.n === 0
    ? ['max_prepared_transactions is 0: routed writes (hypershard load, the gateway) cannot commit atomically here and are refused unless one-phase commit is chosen; set it above 0 (a restart)']
    : [];
}

/** The standbys' needs on a data node's primary, when hypershard manages its replication. */
function replicationPlanFor(spec: ClusterSpec, target: NodeTarget): ReplicationPlan | undefined {
  const node = target.role === 'data' ? replicatedNodes(spec).find((n) => n.name === target.name) : undefined;
  return node === undefined || node.replication?.manager === 'external' ? undefined : replicationPlan(node);
}

/**
 * The apply lock on every node (closing the sessions releases it), and the lock timeout. The
 * access node is claimed first: of two applies started together, one gets it and goes on, and
 * the other stops there, instead of each holding some data nodes and both giving up.
 */
async function claimNodes(connections: readonly NodeConnection[], lockTimeoutMs: number): Promise<void> {
  const claim = async ({ target, client }: NodeConnection): Promise<{ node: string; holder: string }[]> => {
    await client.query(`SELECT pg_catalog.set_config('lock_timeout', $1, false)`, [String(Math.max(1, Math.round(lockTimeoutMs)))]);
    const result = await tryApplyLock(client);
    return result.held ? [] : [{ node: target.name, holder: result.holder }];
  };
  const access = connections.filter((c) => c.target.role === 'access');
  const first = (await Promise.all(access.map(claim))).flat();
  if (first.length > 0) throw new ApplyBusyError(first);
  const busy = (await Promise.all(connections.filter((c) => c.target.role !== 'access').map(claim))).flat();
  if (busy.length > 0) throw new ApplyBusyError(busy);
}

function failed(c: NodeConnection, message: string, migration?: string, statement?: string): NodeApplyResult {
  return {
    node: c.target.name,
    role: c.target.role,
    status: 'failed',
    migrations: [],
    secretsChanged: 0,
    error: { message, ...(migration === undefined ? {} : { migration }), ...(statement === undefined ? {} : { statement }) },
  };
}

function notRun(c: NodeConnection, reason: string): NodeApplyResult {
  return { node: c.target.name, role: c.target.role, status: 'not-run', migrations: [], secretsChanged: 0, reason };
}
