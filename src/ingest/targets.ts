/**
 * Whom routed writes connect as. On the access node: the spec's user (it reads the catalogs,
 * takes the shard locks and writes the commit record; a gateway may do the last two in its
 * client's own session instead). On the data nodes: the FDW service role, which is exactly what
 * the access node itself writes as: INSERT/SELECT/UPDATE/DELETE/TRUNCATE on shard tables and
 * nothing else, so routing grants no power a write through the access node would not have.
 * COMMIT PREPARED must come from the role that prepared, so recovery connects as it too.
 */
import type pg from 'pg';
import { clientConfig } from '../nodes/connect.js';
import { clusterTargets, type NodeTarget } from '../nodes/targets.js';
import type { ClusterSpec } from '../spec/schema.js';

export interface IngestTargets {
  readonly access: NodeTarget;
  /** Per data node name: how to connect to it as the service role. */
  readonly dataNodes: ReadonlyMap<string, DataNodeTarget>;
  readonly serviceRole: string;
}

export interface DataNodeTarget {
  readonly name: string;
  readonly url: string;
  readonly config: pg.ClientConfig;
}

/** @throws SecretError when the service role's password (or a node's) cannot be read. */
export async function ingestTargets(spec: ClusterSpec, specFile: string, applicationName = 'hypershard-ingest'): Promise<IngestTargets> {
  const { targets, secrets: { servicePassword } } = await clusterTargets(spec, specFile);
  const access = targets.find((t) => t.role === 'access');
  if (access === undefined) throw new TypeError('a spec has an access node');
  const serviceRole = spec.fdw.serviceRole.name;
  const dataNodes = new Map(
    targets
      .filter((t) => t.role === 'data')
      .map((t) => [t.name, { name: t.name, url: t.url, config: { ...clientConfig(t.url, servicePassword), user: serviceRole, application_name: applicationName } }]),
  );
  return { access, dataNodes, serviceRole };
}
