/**
 * `check`: every difference between the live catalogs of the nodes and what the spec generates,
 * named by node and object. Read-only like `plan`: sessions are `default_transaction_read_only`
 * and nothing is created. Each node is checked on its own, so an unreachable one is reported
 * (within the connect timeout) while the others are still checked.
 */
import { resolve } from 'node:path';
import { errorMessage } from '../errors.js';
import { evolve } from '../evolve/diff.js';
import { defaultMigrationsDir, readMigrations, type MigrationFile } from '../migrations/files.js';
import { readSnapshots } from '../migrations/snapshots.js';
import { migrationChecksum } from '../nodes/checksums.js';
import { connectNode, DEFAULT_CONNECT_TIMEOUT_MS, type ConnectOptions } from '../nodes/connect.js';
import { nodeTargets, type NodeTarget } from '../nodes/targets.js';
import { planLayout, type ClusterLayout } from '../plan/layout.js';
import { replicationFindings } from '../ha/checkReplication.js';
import { replicatedNodes } from '../ha/members.js';
import type { ClusterSpec, DataNodeSpec } from '../spec/schema.js';
import { readNodeCatalog } from './catalog/node.js';
import { compareNode } from './compare/node.js';
import { isClean, type CheckResult, type NodeCheck } from './model.js';

export interface CheckOptions extends Omit<ConnectOptions, 'readOnly'> {
  /** @default `migrations/` next to the spec */
  readonly migrationsDir?: string;
}

/**
 * @throws SpecError, SecretError or MigrationStateError (bad input) before any node is contacted;
 *   what happens on a node (unreachable, a failing query) is reported in its result instead.
 */
export async function check(spec: ClusterSpec, specFile: string, options: CheckOptions = {}): Promise<CheckResult> {
  const root = resolve(options.migrationsDir ?? defaultMigrationsDir(specFile));
  const layout = planLayout(spec);
  const files = await readMigrations(root, layout);
  const ungenerated = await ungeneratedMigrations(root, layout);
  const targets = await nodeTargets(spec, specFile);
  const nodes = await Promise.all(
    targets.map((target) => checkNode(target, layout, files, ungenerated.get(target.name), options, replicatedNodes(spec).find((n) => n.name === target.name), specFile)),
  );
  return { clean: isClean(nodes), nodes };
}

async function checkNode(
  target: NodeTarget,
  layout: ClusterLayout,
  files: readonly MigrationFile[],
  notGenerated: string | undefined,
  options: CheckOptions,
  replicated: DataNodeSpec | undefined,
  specFile: string,
): Promise<NodeCheck> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  const head = { node: target.name, role: target.role };
  const connection = await connectNode(target, { timeoutMs, readOnly: true }).catch((error: unknown) => errorMessage(error));
  if (typeof connection === 'string') return { ...head, reachable: false, error: connection, items: [] };
  const { client, info } = connection;
  try {
    await client.query('SET default_transaction_read_only = on');
    // Names in printed expressions come qualified, whatever the user's search_path.
    await client.query('SET search_path = pg_catalog');
    // A table locked by someone else must not hang the check past its bound.
    await client.query(`SELECT pg_catalog.set_config('lock_timeout', $1, false)`, [String(timeoutMs)]);
    const catalog = await readNodeCatalog(client, layout, target.role, info.serverVersionNum);
    const mine = files.filter((f) => f.node === target.name).map((f) => ({ name: f.name, checksum: migrationChecksum(f.content) }));
    const findings = compareNode(layout, target.name, target.role, catalog, { files: mine, notGenerated });
    // Standbys: streaming, within the lag bounds, with their slots (src/ha/).
    if (replicated !== undefined) findings.push(...(await replicationFindings(replicated, client, specFile, timeoutMs)));
    return { ...head, reachable: true, serverVersion: info.serverVersion, items: findings.map((f) => ({ node: target.name, ...f })) };
  } catch (error) {
    return { ...head, reachable: true, serverVersion: info.serverVersion, error: `reading the catalogs failed: ${errorMessage(error)}`, items: [] };
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Nodes for which the spec needs a migration `generate` has not written yet, and why. */
async function ungeneratedMigrations(root: string, layout: ClusterLayout): Promise<Map<string, string>> {
  const nodes = [...layout.dataNodes, layout.accessNode];
  const last = (await readSnapshots(root)).at(-1);
  if (last === undefined) return new Map(nodes.map((n) => [n, `no migrations were generated in ${root} (run generate, review, then apply)`]));
  const evolution = evolve(planLayout(last.spec), layout);
  const why = `the spec changed since the last generate (${evolution.changes.join('; ')}); run generate, review, then apply`;
  const result = new Map([...evolution.steps.keys()].map((n) => [n, why]));
  if (evolution.refused.length > 0) {
    result.set(layout.accessNode, `the spec changed in ways generate refuses: ${evolution.refused.join('; ')}`);
  }
  return result;
}
