/**
 * The servers a data node may be on: its primary (the spec's `url`) and its standbys, as
 * connection targets with their secrets resolved, and what replication the spec asks of them.
 */
import { dirname } from 'node:path';
import type { NodeTarget } from '../nodes/targets.js';
import type { ClusterSpec, DataNodeSpec, ReplicationSpec } from '../spec/schema.js';
import { resolveSecret } from '../spec/secrets.js';
import { standbyApplicationName, standbySlotName } from './names.js';

export interface MemberTarget extends NodeTarget {
  /** The data node this server belongs to. */
  readonly dataNode: string;
  /** `primary` for the spec's url, else the standby's name. */
  readonly member: string;
}

export interface StandbyPlan {
  readonly name: string;
  readonly slot: string;
  readonly applicationName: string;
}

/** What a data node's primary must hold for its standbys. */
export interface ReplicationPlan {
  readonly dataNode: string;
  readonly standbys: readonly StandbyPlan[];
  readonly replication: ReplicationSpec;
  /** The value of synchronous_standby_names on the primary ('' = asynchronous). */
  readonly synchronousStandbyNames: string;
}

export const DEFAULT_REPLICATION: ReplicationSpec = { synchronous: true, maxLagBytes: 16 * 1024 * 1024, maxLagSeconds: 30, manager: 'hypershard' };

export function replicationPlan(node: DataNodeSpec): ReplicationPlan {
  const replication = node.replication ?? DEFAULT_REPLICATION;
  const standbys = node.standbys.map((s) => ({ name: s.name, slot: standbySlotName(s.name), applicationName: standbyApplicationName(s.name) }));
  return { dataNode: node.name, standbys, replication, synchronousStandbyNames: synchronousStandbyNames(replication.synchronous, standbys) };
}

/**
 * `ANY 1 ("a", "b")`: a commit waits for whichever standby flushes it first, so losing one of
 * several standbys does not stop writes. Without standbys there is nothing to wait for: a primary
 * left alone after a failover takes writes unreplicated until `node rebuild` gives it one.
 */
export function synchronousStandbyNames(synchronous: boolean, standbys: readonly StandbyPlan[]): string {
  if (!synchronous || standbys.length === 0) return '';
  return `ANY 1 (${standbys.map((s) => `"${s.applicationName.replace(/"/g, '""')}"`).join(', ')})`;
}

/** Data nodes that have standbys or replication settings, i.e. that HA commands deal with. */
export function replicatedNodes(spec: ClusterSpec): DataNodeSpec[] {
  return spec.dataNodes.filter((n) => n.standbys.length > 0 || n.replication !== undefined);
}

/** The primary and each standby of `node`, passwords resolved (relative to the spec file). */
export async function memberTargets(node: DataNodeSpec, specFile: string): Promise<MemberTarget[]> {
  const dir = dirname(specFile);
  const password = async (ref: DataNodeSpec['password'], usedFor: string): Promise<string | undefined> =>
    ref === undefined ? undefined : resolveSecret(ref, dir, usedFor);
  return [
    { name: node.name, role: 'data', url: node.url, password: await password(node.password, `node ${node.name} password`), dataNode: node.name, member: 'primary' },
    ...(await Promise.all(
      node.standbys.map(async (s) => ({
        name: s.name,
        role: 'data' as const,
        url: s.url,
        password: await password(s.password, `standby ${s.name} password`),
        dataNode: node.name,
        member: s.name,
      })),
    )),
  ];
}
