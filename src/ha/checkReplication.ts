/**
 * What `check` and `status` say about a data node's standbys: each one present in the primary's
 * pg_stat_replication and streaming, its replay within the spec's lag bounds, its slot on the
 * primary, synchronous_standby_names as the spec makes it, and each standby really in recovery
 * (one that is not is a second primary).
 */
import type pg from 'pg';
import type { Finding } from '../drift/model.js';
import { errorMessage } from '../errors.js';
import { connectNode, safeAddress } from '../nodes/connect.js';
import type { ClusterSpec, DataNodeSpec } from '../spec/schema.js';
import { memberTargets, replicatedNodes, replicationPlan } from './members.js';
import { readPrimaryState, replicationChanges } from './replication.js';

export type StandbyState = 'streaming' | 'catching-up' | 'lagging' | 'not-streaming' | 'unreachable' | 'not-a-standby';

export interface StandbyStatus {
  readonly dataNode: string;
  readonly standby: string;
  readonly address: string;
  readonly state: StandbyState;
  /** sync_state in pg_stat_replication (`quorum`, `sync`, `async`, `potential`), when connected. */
  readonly syncState: string | null;
  /** WAL written on the primary and not yet replayed on the standby; null when unknown. */
  readonly lagBytes: number | null;
  /** replay_lag of pg_stat_replication (0 when caught up); null when unknown. */
  readonly lagSeconds: number | null;
  readonly error?: string;
}

interface Sender {
  application_name: string;
  state: string;
  sync_state: string;
  lag_bytes: string | null;
  lag_seconds: number | null;
}

/** Reads the standbys of `node` through its primary (`primary`, already connected) and each standby. */
export async function standbyStatuses(node: DataNodeSpec, primary: pg.Client, specFile: string, timeoutMs: number): Promise<StandbyStatus[]> {
  const plan = replicationPlan(node);
  const { rows } = await primary.query<Sender>(
    `SELECT application_name, state, sync_state,
            pg_catalog.pg_wal_lsn_diff(pg_catalog.pg_current_wal_lsn(), replay_lsn)::bigint::text AS lag_bytes,
            extract(epoch FROM replay_lag)::float8 AS lag_seconds
       FROM pg_catalog.pg_stat_replication`,
  );
  const members = (await memberTargets(node, specFile)).slice(1);
  return Promise.all(
    plan.standbys.map(async (s, i): Promise<StandbyStatus> => {
      const target = members[i]!;
      const head = { dataNode: node.name, standby: s.name, address: safeAddress(target.url) };
      const sender = rows.find((r) => r.application_name === s.applicationName);
      const inRecovery = await connectNode(target, { timeoutMs, readOnly: true }).then(
        async (c) => {
          try {
            return (await c.client.query<{ r: boolean }>('SELECT pg_catalog.pg_is_in_recovery() AS r')).rows[0]?.r ?? null;
          } finally {
            await c.client.end().catch(() => undefined);
          }
        },
        (error: unknown) => errorMessage(error),
      );
      if (inRecovery === false) return { ...head, state: 'not-a-standby', syncState: null, lagBytes: null, lagSeconds: null, error: 'it takes writes: a second primary' };
      if (sender === undefined) {
        const error = typeof inRecovery === 'string' ? inRecovery : 'it answers but does not stream from the primary';
        return { ...head, state: typeof inRecovery === 'string' ? 'unreachable' : 'not-streaming', syncState: null, lagBytes: null, lagSeconds: null, error };
      }
      const lagBytes = sender.lag_bytes === null ? null : Number(sender.lag_bytes);
      const lagSeconds = sender.lag_seconds ?? (lagBytes === 0 ? 0 : null);
      const lagging = (lagBytes !== null && lagBytes > plan.replication.maxLagBytes) || (lagSeconds !== null && lagSeconds > plan.replication.maxLagSeconds);
      const state: StandbyState = sender.state !== 'streaming' ? 'catching-up' : lagging ? 'lagging' : 'streaming';
      return { ...head, state, syncState: sender.sync_state, lagBytes, lagSeconds };
    }),
  );
}

/** `check`'s items for a data node with standbys, read on its primary. */
export async function replicationFindings(node: DataNodeSpec, primary: pg.Client, specFile: string, timeoutMs: number): Promise<Finding[]> {
  const plan = replicationPlan(node);
  const out: Finding[] = [];
  try {
    if (plan.replication.manager === 'hypershard') {
      for (const change of replicationChanges(plan, await readPrimaryState(primary))) {
        out.push({ kind: change.startsWith('create') ? 'missing' : 'different', object: `replication of ${node.name}`, message: `the primary needs: ${change}` });
      }
    }
    for (const s of await standbyStatuses(node, primary, specFile, timeoutMs)) {
      const object = `standby ${s.standby}`;
      if (s.state === 'unreachable') out.push({ kind: 'missing', object, message: `standby ${s.standby} (${s.address}) cannot be reached: ${s.error ?? ''}` });
      else if (s.state === 'not-streaming' || s.state === 'not-a-standby') out.push({ kind: 'different', object, message: `standby ${s.standby} (${s.address}): ${s.error ?? s.state}` });
      else if (s.state !== 'streaming') {
        out.push({ kind: 'different', object, message: `standby ${s.standby} is ${s.state}: ${s.lagBytes ?? '?'} bytes and ${s.lagSeconds ?? '?'} s behind (bounds ${plan.replication.maxLagBytes} bytes, ${plan.replication.maxLagSeconds} s)` });
      }
    }
  } catch (error) {
    out.push({ kind: 'different', object: `replication of ${node.name}`, message: `reading replication state failed: ${errorMessage(error)}` });
  }
  return out;
}

/** `status`'s standby table: every standby of every data node, each read through its primary. */
export async function replicationStatus(spec: ClusterSpec, specFile: string, timeoutMs: number): Promise<StandbyStatus[]> {
  const nodes = replicatedNodes(spec).filter((n) => n.standbys.length > 0);
  const perNode = await Promise.all(
    nodes.map(async (node) => {
      const [primary] = await memberTargets(node, specFile);
      const connection = await connectNode(primary!, { timeoutMs, readOnly: true }).catch((error: unknown) => errorMessage(error));
      if (typeof connection === 'string') {
        return node.standbys.map((s): StandbyStatus => ({ dataNode: node.name, standby: s.name, address: safeAddress(s.url), state: 'unreachable', syncState: null, lagBytes: null, lagSeconds: null, error: `the primary cannot be reached: ${connection}` }));
      }
      try {
        return await standbyStatuses(node, connection.client, specFile, timeoutMs);
      } finally {
        await connection.client.end().catch(() => undefined);
      }
    }),
  );
  return perNode.flat();
}
