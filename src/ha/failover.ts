/**
 * `failover`: a standby of a data node becomes its primary, and the cluster follows.
 *
 * 1. Every member of the node is probed (bounded). A primary that answers and takes writes is a
 *    reason to refuse (two primaries would take writes) unless `force`, which makes this a planned
 *    switchover: the old primary is fenced first and the standby waits until it has replayed all
 *    of the old primary's WAL, so nothing is lost even with asynchronous replication.
 * 2. A standby already promoted (a run interrupted after promoting, or an external manager's
 *    promotion) is adopted; otherwise the reachable standby furthest ahead in WAL is promoted
 *    (`to` names one), with synchronous_standby_names set first for the standbys that remain,
 *    since it would otherwise wait for standbys that follow the dead primary, and
 *    wal_retrieve_retry_interval lowered while it promotes (PostgreSQL ≤ 15 would sit out up to 5 s).
 * 3. Once it takes writes: slots for the remaining standbys on it, those standbys pointed at it,
 *    the access node's FDW servers altered (new primary first, old primary gone), which drops
 *    every session's cached connection, and the spec file and snapshot rewritten.
 *
 * The old primary is fenced by exclusion: no FDW server lists it, the spec no longer names it, so
 * neither the access node nor any hypershard command reaches it, whether or not it comes back;
 * when it answers (`force`) it is also made read-only with its client sessions ended. Running the
 * command again after it completed changes nothing: the recorded primary answers, so it refuses.
 */
import { resolve } from 'node:path';
import type pg from 'pg';
import { errorMessage, HypershardError, UnknownNodeError } from '../errors.js';
import { defaultMigrationsDir } from '../migrations/files.js';
import { closeAll, connectNode, safeAddress, type NodeConnection } from '../nodes/connect.js';
import { nodeTargets } from '../nodes/targets.js';
import { planLayout } from '../plan/layout.js';
import type { ClusterSpec } from '../spec/schema.js';
import { quoteLiteral } from '../sql/quote.js';
import { memberTargets, replicationPlan, type MemberTarget } from './members.js';
import { ensureReplication } from './replication.js';
import { alignServers } from './servers.js';
import { changeTopology, recordTopology } from './specFile.js';

export interface FailoverOptions {
  /** The standby to promote; default the reachable one furthest ahead in WAL. */
  readonly to?: string;
  /** Fail over even though the primary answers (a planned switchover; it is fenced first). */
  readonly force?: boolean;
  /** @default `migrations/` next to the spec */
  readonly migrationsDir?: string;
  /** Bound on reaching each server. @default 5000 */
  readonly timeoutMs?: number;
  /** Bound on the promotion (and, with force, on the standby catching up). @default 60000 */
  readonly promoteTimeoutMs?: number;
  readonly onProgress?: (step: string) => void;
}

export type FailoverStatus = 'failed-over' | 'adopted' | 'refused' | 'failed';

export interface MemberProbe {
  readonly member: string;
  readonly address: string;
  readonly reachable: boolean;
  /** In recovery (a standby); null when unreachable. */
  readonly standby: boolean | null;
  /** WAL received (standby) or written (primary), as an LSN; null when unreachable. */
  readonly lsn: string | null;
  readonly error?: string;
}

export interface FailoverResult {
  readonly ok: boolean;
  readonly status: FailoverStatus;
  readonly dataNode: string;
  /** Why it refused or failed. */
  readonly reason?: string;
  readonly probes: readonly MemberProbe[];
  readonly oldPrimary: { readonly address: string; readonly fenced: readonly string[] };
  readonly newPrimary?: { readonly name: string; readonly address: string; readonly promoted: boolean };
  /** Remaining standbys, each pointed at the new primary (or why not). */
  readonly standbys: readonly { readonly name: string; readonly repointed: boolean; readonly error?: string }[];
  /** Slot and setting changes on the new primary. */
  readonly replication: readonly string[];
  /** FDW servers altered on the access node. */
  readonly servers: readonly string[];
  readonly specWritten: boolean;
  readonly snapshot: string | null;
  /** When each step started, in ms from the start of the run. */
  readonly steps: readonly { readonly step: string; readonly atMs: number }[];
  /** Milliseconds from the start of the run to the new primary taking writes. */
  readonly writableAfterMs?: number;
  readonly durationMs: number;
}

const DEFAULT_TIMEOUT_MS = 5_000;
const DEFAULT_PROMOTE_TIMEOUT_MS = 60_000;

/**
 * @throws UnknownNodeError (USAGE) for a data node or standby not in the spec, SpecError or
 *   SecretError, before any server is contacted; everything after is reported in the result.
 */
export async function failover(spec: ClusterSpec, specFile: string, dataNode: string, options: FailoverOptions = {}): Promise<FailoverResult> {
  const started = Date.now();
  const node = spec.dataNodes.find((n) => n.name === dataNode);
  if (node === undefined) throw new UnknownNodeError([dataNode], spec.dataNodes.map((n) => n.name));
  if (options.to !== undefined && !node.standbys.some((s) => s.name === options.to)) {
    throw new UnknownNodeError([options.to], node.standbys.map((s) => s.name));
  }
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const promoteTimeoutMs = options.promoteTimeoutMs ?? DEFAULT_PROMOTE_TIMEOUT_MS;
  const migrationsDir = resolve(options.migrationsDir ?? defaultMigrationsDir(specFile));
  const members = await memberTargets(node, specFile);
  const access = (await nodeTargets(spec, specFile)).find((t) => t.role === 'access');
  if (access === undefined) throw new TypeError('spec without access node');
  const steps: { step: string; atMs: number }[] = [];
  const progress = (step: string): void => {
    steps.push({ step, atMs: Date.now() - started });
    options.onProgress?.(step);
  };

  progress('probing the primary and the standbys');
  const connections = await Promise.all(members.map((m) => connectNode(m, { timeoutMs, readOnly: true }).catch((error: unknown) => errorMessage(error))));
  const open = connections.filter((c): c is NodeConnection => typeof c !== 'string');
  const base = {
    dataNode,
    oldPrimary: { address: safeAddress(node.url), fenced: [] as string[] },
    standbys: [] as { name: string; repointed: boolean; error?: string }[],
    replication: [] as string[],
    servers: [] as string[],
    steps,
    specWritten: false,
    snapshot: null as string | null,
  };
  try {
    const probes = await Promise.all(members.map((m, i) => probe(m, connections[i] as NodeConnection | string)));
    const end = (status: FailoverStatus, reason: string): FailoverResult => ({ ...base, ok: false, status, reason, probes, durationMs: Date.now() - started });
    const [primaryProbe, ...standbyProbes] = probes as [MemberProbe, ...MemberProbe[]];
    const primaryConnection = connections[0];
    const writable = standbyProbes.filter((p) => p.reachable && p.standby === false);
    const primaryWritable = primaryProbe.reachable && primaryProbe.standby === false;

    if (writable.length > 1 || (writable.length === 1 && primaryWritable)) {
      const who = [...(primaryWritable ? ['the primary'] : []), ...writable.map((p) => p.member)];
      return end('refused', `${who.join(' and ')} all take writes (split brain); stop all but one, then fail over with --to naming the one to keep`);
    }
    if (primaryWritable && options.force !== true) {
      return end('refused', `the primary of ${dataNode} (${primaryProbe.address}) answers and takes writes: nothing to fail over, and promoting a standby now would leave two primaries. For a planned switchover, run with --force (the primary is fenced first and no committed write is lost)`);
    }

    // Which standby becomes the primary.
    let chosen = writable[0];
    const promote = chosen === undefined;
    if (chosen !== undefined && options.to !== undefined && chosen.member !== options.to) {
      return end('refused', `standby ${chosen.member} was already promoted; fail over to it (leave out --to) or demote it first`);
    }
    if (chosen === undefined) {
      if (node.replication?.manager === 'external') {
        return end('refused', `${dataNode}'s replication is managed externally: promote a standby with that manager, then run failover again to record it`);
      }
      const candidates = standbyProbes.filter((p) => p.reachable && p.standby === true && (options.to === undefined || p.member === options.to));
      if (candidates.length === 0) {
        const why = standbyProbes.map((p) => `${p.member}: ${p.error ?? (p.standby === true ? 'not the one asked for' : 'not a standby')}`).join('; ');
        return end('failed', standbyProbes.length === 0 ? `${dataNode} has no standbys in the spec` : `no standby of ${dataNode} can be promoted (${why})`);
      }
      // Furthest ahead first: with synchronous replication it holds every acknowledged commit.
      chosen = [...candidates].sort((a, b) => compareLsn(b.lsn, a.lsn))[0] as MemberProbe;
    }
    const target = members.find((m) => m.member === chosen.member) as MemberTarget;
    const targetConnection = connections[members.indexOf(target)] as NodeConnection;
    const nextSpec = changeTopology(spec, dataNode, { kind: 'promote', standby: target.member });
    const nextNode = nextSpec.dataNodes.find((n) => n.name === dataNode)!;
    const plan = replicationPlan(nextNode);
    const client = targetConnection.client;
    await client.query('SET default_transaction_read_only = off');

    let writableAfterMs: number | undefined;
    let retryInterval: PreviousSetting | undefined;
    if (promote) {
      if (primaryWritable && typeof primaryConnection !== 'string' && primaryConnection !== undefined) {
        progress(`fencing the old primary ${primaryProbe.address}`);
        base.oldPrimary.fenced.push(...(await fence(primaryConnection.client)));
        const last = await currentLsn(primaryConnection.client);
        progress(`waiting for ${target.member} to replay up to ${last}`);
        await waitForReplay(client, last, promoteTimeoutMs, target.member);
      }
      progress(`promoting ${target.member}`);
      // Before promoting: once it is a primary, commits would wait for standbys that follow the dead primary.
      await client.query(`ALTER SYSTEM SET synchronous_standby_names = ${quoteLiteral(plan.synchronousStandbyNames)}`);
      retryInterval = await shortenRetryInterval(client);
      await client.query('SELECT pg_catalog.pg_reload_conf()');
      const { rows } = await client.query<{ promoted: boolean }>('SELECT pg_catalog.pg_promote(true, $1) AS promoted', [Math.max(1, Math.ceil(promoteTimeoutMs / 1000))]);
      if (rows[0]?.promoted !== true) return end('failed', `${target.member} did not finish promoting within ${promoteTimeoutMs} ms; see its server log`);
    }
    progress(`waiting for ${target.member} to take writes`);
    await waitForWrites(client, promoteTimeoutMs, target.member);
    writableAfterMs = Date.now() - started;
    if (retryInterval !== undefined) await restoreRetryInterval(client, retryInterval);

    base.replication.push(...(await ensureReplication(client, plan)));
    for (const standby of nextNode.standbys) {
      const at = members.findIndex((m) => m.member === standby.name);
      const connection = connections[at];
      if (typeof connection === 'string' || connection === undefined) {
        base.standbys.push({ name: standby.name, repointed: false, error: connection ?? 'not probed' });
        continue;
      }
      try {
        await repoint(connection.client, target.url, plan.standbys.find((s) => s.name === standby.name)!.slot);
        base.standbys.push({ name: standby.name, repointed: true });
      } catch (error) {
        base.standbys.push({ name: standby.name, repointed: false, error: errorMessage(error) });
      }
    }

    progress('pointing the access node at the new primary');
    const accessConnection = await connectNode(access, { timeoutMs }).catch((error: unknown) => errorMessage(error));
    if (typeof accessConnection === 'string') {
      return { ...end('failed', `${target.member} was promoted, but the access node could not be reached to follow it: ${accessConnection}; run failover again`), writableAfterMs };
    }
    try {
      base.servers.push(...(await alignServers(accessConnection.client, planLayout(nextSpec), dataNode)));
    } finally {
      await accessConnection.client.end().catch(() => undefined);
    }
    base.oldPrimary.fenced.push(`removed from the host lists of the FDW servers ${base.servers.join(', ') || '(none applied yet)'}`);

    progress('recording the new topology in the spec');
    const recorded = await recordTopology(specFile, migrationsDir, dataNode, { kind: 'promote', standby: target.member });
    base.specWritten = recorded.specWritten;
    base.snapshot = recorded.snapshot;
    base.oldPrimary.fenced.push(`removed from the spec (${dataNode}.url is now ${safeAddress(target.url)})`);
    return {
      ...base,
      ok: base.standbys.every((s) => s.repointed),
      status: promote ? 'failed-over' : 'adopted',
      ...(base.standbys.some((s) => !s.repointed) ? { reason: 'some standbys could not be pointed at the new primary; rebuild them (node rebuild)' } : {}),
      probes,
      newPrimary: { name: target.member, address: safeAddress(target.url), promoted: promote },
      writableAfterMs,
      durationMs: Date.now() - started,
    };
  } catch (error) {
    const probes = members.map((m) => ({ member: m.member, address: safeAddress(m.url), reachable: false, standby: null, lsn: null }));
    return { ...base, ok: false, status: 'failed', reason: errorMessage(error), probes, durationMs: Date.now() - started };
  } finally {
    await closeAll(open);
  }
}

async function probe(member: MemberTarget, connection: NodeConnection | string): Promise<MemberProbe> {
  const address = safeAddress(member.url);
  if (typeof connection === 'string') return { member: member.member, address, reachable: false, standby: null, lsn: null, error: connection };
  try {
    const { rows } = await connection.client.query<{ standby: boolean; lsn: string | null }>(
      `SELECT pg_catalog.pg_is_in_recovery() AS standby,
              (CASE WHEN pg_catalog.pg_is_in_recovery()
                    THEN greatest(pg_catalog.pg_last_wal_receive_lsn(), pg_catalog.pg_last_wal_replay_lsn())
                    ELSE pg_catalog.pg_current_wal_lsn() END)::text AS lsn`,
    );
    return { member: member.member, address, reachable: true, standby: rows[0]?.standby ?? null, lsn: rows[0]?.lsn ?? null };
  } catch (error) {
    return { member: member.member, address, reachable: false, standby: null, lsn: null, error: errorMessage(error) };
  }
}

/** Orders LSNs `X/Y` (hex); an unknown one sorts first. */
export function compareLsn(a: string | null, b: string | null): number {
  const value = (lsn: string | null): bigint => {
    if (lsn === null) return -1n;
    const [hi, lo] = lsn.split('/');
    return (BigInt(`0x${hi ?? '0'}`) << 32n) + BigInt(`0x${lo ?? '0'}`);
  };
  const d = value(a) - value(b);
  return d < 0n ? -1 : d > 0n ? 1 : 0;
}

/** A setting as postgresql.auto.conf had it before an ALTER SYSTEM: its value there, or null when it was not there. */
type PreviousSetting = { readonly autoConf: string | null };

/** What a standby waits, after its primary is lost, before trying to fetch WAL again. */
const PROMOTE_RETRY_INTERVAL = '50ms';

/**
 * A standby whose primary died retries fetching WAL every wal_retrieve_retry_interval (5 s by
 * default), and on PostgreSQL 15 and older a promotion requested during that wait sits out the rest
 * of it: the startup process checks for the promotion only after the wait (measured: pg_promote took
 * 5.1 s on 15, 0.1 s on 18). The interval is lowered, with the reload that precedes pg_promote waking
 * the startup process, and put back once the promotion is done.
 */
async function shortenRetryInterval(client: pg.Client): Promise<PreviousSetting> {
  const { rows } = await client.query<{ setting: string }>(
    `SELECT setting FROM pg_catalog.pg_file_settings
      WHERE name = 'wal_retrieve_retry_interval' AND sourcefile LIKE '%postgresql.auto.conf' ORDER BY seqno DESC LIMIT 1`,
  );
  await client.query(`ALTER SYSTEM SET wal_retrieve_retry_interval = ${quoteLiteral(PROMOTE_RETRY_INTERVAL)}`);
  return { autoConf: rows[0]?.setting ?? null };
}

async function restoreRetryInterval(client: pg.Client, previous: PreviousSetting): Promise<void> {
  await client.query(
    previous.autoConf === null
      ? 'ALTER SYSTEM RESET wal_retrieve_retry_interval'
      : `ALTER SYSTEM SET wal_retrieve_retry_interval = ${quoteLiteral(previous.autoConf)}`,
  );
  await client.query('SELECT pg_catalog.pg_reload_conf()');
}

/**
 * Stops a primary that still answers from taking writes: new transactions read-only by default,
 * every commit waiting for a standby that does not exist (so a session that turns read-only off
 * gets no acknowledgement), and its client sessions ended.
 */
async function fence(client: pg.Client): Promise<string[]> {
  await client.query('SET default_transaction_read_only = off');
  await client.query(`ALTER SYSTEM SET default_transaction_read_only = on`);
  await client.query(`ALTER SYSTEM SET synchronous_standby_names = 'hypershard_fenced'`);
  await client.query(`ALTER SYSTEM SET synchronous_commit = 'on'`);
  await client.query('SELECT pg_catalog.pg_reload_conf()');
  const { rows } = await client.query<{ n: string }>(
    `SELECT count(pg_catalog.pg_terminate_backend(pid))::text AS n FROM pg_catalog.pg_stat_activity
      WHERE backend_type = 'client backend' AND pid <> pg_catalog.pg_backend_pid()`,
  );
  return [
    'default_transaction_read_only = on (ALTER SYSTEM)',
    "synchronous_standby_names = 'hypershard_fenced': no commit is acknowledged",
    `${rows[0]?.n ?? '0'} client sessions ended`,
  ];
}

async function currentLsn(client: pg.Client): Promise<string> {
  const { rows } = await client.query<{ lsn: string }>('SELECT pg_catalog.pg_current_wal_lsn()::text AS lsn');
  return rows[0]?.lsn ?? '0/0';
}

async function waitForReplay(client: pg.Client, lsn: string, timeoutMs: number, who: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { rows } = await client.query<{ lsn: string | null }>('SELECT pg_catalog.pg_last_wal_replay_lsn()::text AS lsn');
    if (compareLsn(rows[0]?.lsn ?? null, lsn) >= 0) return;
    if (Date.now() > deadline) throw new HypershardError('FAILOVER', `${who} did not replay the old primary's WAL up to ${lsn} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Until a transaction can get an ID and commit: the server left recovery and takes writes. */
async function waitForWrites(client: pg.Client, timeoutMs: number, who: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await client.query('SELECT pg_catalog.txid_current()');
      return;
    } catch (error) {
      if (Date.now() > deadline) throw new HypershardError('FAILOVER', `${who} does not take writes ${timeoutMs} ms after promotion: ${errorMessage(error)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

/** Points a standby at the new primary: same conninfo (user, password file, application_name), new host and port. */
async function repoint(client: pg.Client, primaryUrl: string, slot: string): Promise<void> {
  const url = new URL(primaryUrl);
  const { rows } = await client.query<{ conninfo: string }>(`SELECT current_setting('primary_conninfo') AS conninfo`);
  const conninfo = withAddress(rows[0]?.conninfo ?? '', url.hostname.replace(/^\[(.*)\]$/, '$1'), url.port === '' ? '5432' : url.port);
  await client.query(`ALTER SYSTEM SET primary_conninfo = ${quoteLiteral(conninfo)}`);
  await client.query(`ALTER SYSTEM SET primary_slot_name = ${quoteLiteral(slot)}`);
  await client.query('SELECT pg_catalog.pg_reload_conf()');
}

/** A libpq conninfo string with host and port replaced (values quoted as libpq reads them). */
export function withAddress(conninfo: string, host: string, port: string): string {
  const pairs: [string, string][] = [];
  for (const m of conninfo.matchAll(/(\w+)\s*=\s*('(?:[^'\\]|\\.)*'|\S+)/g)) {
    const raw = m[2] as string;
    pairs.push([m[1] as string, raw.startsWith("'") ? raw.slice(1, -1).replace(/\\(.)/g, '$1') : raw]);
  }
  const rest = pairs.filter(([k]) => k !== 'host' && k !== 'port' && k !== 'hostaddr');
  const quote = (v: string): string => `'${v.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
  const all: [string, string][] = [['host', host], ['port', port], ...rest];
  return all.map(([k, v]) => `${k}=${quote(v)}`).join(' ');
}
