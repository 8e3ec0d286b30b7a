/**
 * What a primary holds for its standbys, kept by `apply`, `failover` and `node rebuild`: a
 * replication slot per standby and synchronous_standby_names. These live in the server, not in
 * the database: a standby copies neither its primary's slots nor later ALTER SYSTEMs, and a
 * promoted standby starts without slots. So they are made to match the spec each time (like role
 * passwords), not run once as a migration would be, and `check` compares them.
 */
import type pg from 'pg';
import { quoteLiteral } from '../sql/quote.js';
import type { ReplicationPlan } from './members.js';

/** Slots hypershard owns: named after standbys, so it drops only its own. */
const SLOT_PREFIX = 'hypershard\\_%';

export interface PrimaryReplicationState {
  readonly slots: readonly { readonly name: string; readonly active: boolean; readonly retainedBytes: number | null }[];
  readonly synchronousStandbyNames: string;
  readonly synchronousCommit: string;
  readonly inRecovery: boolean;
}

export async function readPrimaryState(client: pg.Client): Promise<PrimaryReplicationState> {
  const { rows: slots } = await client.query<{ slot_name: string; active: boolean; retained: string | null }>(
    `SELECT slot_name, active,
            pg_catalog.pg_wal_lsn_diff(CASE WHEN pg_catalog.pg_is_in_recovery() THEN pg_catalog.pg_last_wal_receive_lsn() ELSE pg_catalog.pg_current_wal_lsn() END, restart_lsn)::bigint AS retained
       FROM pg_catalog.pg_replication_slots WHERE slot_type = 'physical' AND slot_name LIKE '${SLOT_PREFIX}' ORDER BY slot_name`,
  );
  const { rows } = await client.query<{ names: string; commit: string; recovery: boolean }>(
    `SELECT current_setting('synchronous_standby_names') AS names, current_setting('synchronous_commit') AS commit, pg_catalog.pg_is_in_recovery() AS recovery`,
  );
  const row = rows[0] as { names: string; commit: string; recovery: boolean };
  return {
    slots: slots.map((s) => ({ name: s.slot_name, active: s.active, retainedBytes: s.retained === null ? null : Number(s.retained) })),
    synchronousStandbyNames: row.names,
    synchronousCommit: row.commit,
    inRecovery: row.recovery,
  };
}

/** What differs between a primary and its plan, as the changes `ensureReplication` would make. */
export function replicationChanges(plan: ReplicationPlan, state: PrimaryReplicationState): string[] {
  const changes: string[] = [];
  const have = new Set(state.slots.map((s) => s.name));
  for (const s of plan.standbys) if (!have.has(s.slot)) changes.push(`create slot ${s.slot}`);
  const wanted = new Set(plan.standbys.map((s) => s.slot));
  for (const s of state.slots) if (!wanted.has(s.name) && !s.active) changes.push(`drop slot ${s.name}`);
  if (state.synchronousStandbyNames !== plan.synchronousStandbyNames) {
    changes.push(`set synchronous_standby_names to '${plan.synchronousStandbyNames}' (was '${state.synchronousStandbyNames}')`);
  }
  // Without it a commit is acknowledged before any standby has it, whatever the standby names say.
  if (plan.synchronousStandbyNames !== '' && ['off', 'local'].includes(state.synchronousCommit)) {
    changes.push(`set synchronous_commit to on (was ${state.synchronousCommit})`);
  }
  return changes;
}

/**
 * Makes the primary match its plan; returns what it changed. Slots of standbys that left the spec
 * are dropped when no standby streams from them (an active one is reported by `check` instead).
 * ALTER SYSTEM cannot run in a transaction, so each change stands alone; a second run changes nothing.
 */
export async function ensureReplication(client: pg.Client, plan: ReplicationPlan): Promise<string[]> {
  const state = await readPrimaryState(client);
  const changes = replicationChanges(plan, state);
  if (changes.length === 0) return [];
  const have = new Set(state.slots.map((s) => s.name));
  for (const s of plan.standbys) {
    // Reserve WAL at once: a standby that is down or still copying must find what it needs.
    if (!have.has(s.slot)) await client.query('SELECT pg_catalog.pg_create_physical_replication_slot($1, true)', [s.slot]);
  }
  const wanted = new Set(plan.standbys.map((s) => s.slot));
  for (const s of state.slots) if (!wanted.has(s.name) && !s.active) await client.query('SELECT pg_catalog.pg_drop_replication_slot($1)', [s.name]);
  let reload = false;
  if (state.synchronousStandbyNames !== plan.synchronousStandbyNames) {
    await client.query(`ALTER SYSTEM SET synchronous_standby_names = ${quoteLiteral(plan.synchronousStandbyNames)}`);
    reload = true;
  }
  if (plan.synchronousStandbyNames !== '' && ['off', 'local'].includes(state.synchronousCommit)) {
    await client.query(`ALTER SYSTEM SET synchronous_commit = 'on'`);
    reload = true;
  }
  if (reload) await client.query('SELECT pg_catalog.pg_reload_conf()');
  return changes;
}
