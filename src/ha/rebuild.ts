/**
 * `node rebuild`: a new standby of a data node, copied from its current primary. The copy needs
 * the standby's data directory, so hypershard makes it for the servers it runs itself (the dev
 * cluster the spec belongs to); for servers elsewhere the README gives the pg_basebackup line and
 * `recordStandby` lists the result. Either way the primary gets the standby's slot and
 * synchronous_standby_names, the access node's FDW servers list it, and the spec records it.
 */
import { dirname, resolve } from 'node:path';
import { addDevStandby, readDevCluster } from '../dev/cluster.js';
import { HypershardError, UnknownNodeError } from '../errors.js';
import { defaultMigrationsDir } from '../migrations/files.js';
import { connectNode } from '../nodes/connect.js';
import { nodeTargets } from '../nodes/targets.js';
import { planLayout } from '../plan/layout.js';
import type { ClusterSpec, StandbySpec } from '../spec/schema.js';
import { memberTargets, replicationPlan } from './members.js';
import { ensureReplication } from './replication.js';
import { alignServers } from './servers.js';
import { recordTopology } from './specFile.js';

export interface RebuildOptions {
  /** The standby's name. @default `<node>_s<n>`, the first free one */
  readonly name?: string;
  /** The dev cluster's folder. @default the spec's folder */
  readonly devDir?: string;
  readonly migrationsDir?: string;
  readonly timeoutMs?: number;
}

export interface RebuildResult {
  readonly dataNode: string;
  readonly standby: { readonly name: string; readonly url: string; readonly dataDir: string };
  readonly replication: readonly string[];
  readonly servers: readonly string[];
  readonly specWritten: boolean;
  readonly snapshot: string | null;
  readonly durationMs: number;
}

/**
 * @throws UnknownNodeError, or HypershardError (USAGE) when the spec is not a dev cluster's;
 *   NodeConnectionError when the primary or the access node cannot be reached.
 */
export async function rebuildStandby(spec: ClusterSpec, specFile: string, dataNode: string, options: RebuildOptions = {}): Promise<RebuildResult> {
  const started = Date.now();
  const node = spec.dataNodes.find((n) => n.name === dataNode);
  if (node === undefined) throw new UnknownNodeError([dataNode], spec.dataNodes.map((n) => n.name));
  const devDir = resolve(options.devDir ?? dirname(specFile));
  const dev = await readDevCluster(devDir);
  if (dev === undefined) {
    throw new HypershardError(
      'USAGE',
      `no dev cluster in ${devDir}: node rebuild makes the copy only for servers hypershard runs. Elsewhere, copy the primary with pg_basebackup (see docs/ha.md, "Rebuilding a standby elsewhere") and list the standby under dataNodes[].standbys, then run apply`,
    );
  }
  // Names in the spec and servers of the dev cluster (a promoted standby keeps its server's name).
  const devNodes = [dev.accessNode, ...dev.dataNodes.flatMap((n) => [n, ...n.standbys])].map((n) => n.name);
  const taken = new Set([spec.accessNode.name, ...spec.dataNodes.flatMap((n) => [n.name, ...n.standbys.map((s) => s.name)]), ...devNodes]);
  let name = options.name;
  if (name === undefined) for (let k = 1; name === undefined || taken.has(name); k++) name = `${dataNode}_s${k}`;
  else if (node.standbys.every((s) => s.name !== name) && taken.has(name) && name !== dataNode) {
    throw new HypershardError('USAGE', `a node named ${name} is already in the spec`);
  }
  const primaryPort = Number(new URL(node.url).port || 5432);
  const made = await addDevStandby(devDir, dataNode, name, primaryPort);
  const standby: StandbySpec = { name, url: made.url };
  const migrationsDir = resolve(options.migrationsDir ?? defaultMigrationsDir(specFile));
  const recorded = await recordTopology(specFile, migrationsDir, dataNode, { kind: 'add-standby', standby });
  const next = recorded.spec.dataNodes.find((n) => n.name === dataNode)!;
  const timeoutMs = options.timeoutMs ?? 10_000;
  const [primary] = await memberTargets(next, specFile);
  const connection = await connectNode(primary!, { timeoutMs });
  let replication: string[];
  try {
    replication = await ensureReplication(connection.client, replicationPlan(next));
  } finally {
    await connection.client.end().catch(() => undefined);
  }
  const accessTarget = (await nodeTargets(recorded.spec, specFile)).find((t) => t.role === 'access')!;
  const access = await connectNode(accessTarget, { timeoutMs });
  let servers: string[];
  try {
    servers = await alignServers(access.client, planLayout(recorded.spec), dataNode);
  } finally {
    await access.client.end().catch(() => undefined);
  }
  return {
    dataNode,
    standby: { name, url: made.url, dataDir: made.dataDir },
    replication,
    servers,
    specWritten: recorded.specWritten,
    snapshot: recorded.snapshot,
    durationMs: Date.now() - started,
  };
}
