/**
 * Failover of data nodes with streaming standbys, on one cluster per PostgreSQL source: dn1
 * replicates synchronously, dn2 asynchronously, one standby each.
 *
 * 1. dn1's primary killed (SIGKILL to every process) while rows are written through the access
 *    node, then `hypershard failover`: every acknowledged row is there exactly once, answers through
 *    the access node are those from before plus the rows written after, `check` is clean. During the
 *    outage, queries that do not touch the node keep working and those that do fail fast naming it.
 *    A second failover is refused and changes nothing; the old primary coming back gets nothing (no
 *    split brain); `node rebuild` gives dn1 a new standby. (`runs` times at full scale.)
 * 2. Both standbys frozen while writes go on (dn1's commits wait; dn2's are acknowledged), lag read
 *    as `status` reads it, both primaries killed, both failed over: the asynchronous node loses at
 *    most the rows committed in the WAL the lag covered (counted in that WAL with pg_walinspect) and
 *    no more bytes of WAL than the lag said; the synchronous one loses no acknowledged row.
 * 3. dn1's primary frozen (a hung host: it accepts TCP and never answers) mid-load, then
 *    `failover`: the primary counts as unreachable after the probe's timeout, the standby is
 *    promoted, writes to dn1's shards resume once the writers' statements hit their
 *    statement_timeout, every acknowledged row is there once; thawed, the old primary (writable
 *    again) gets none of the writes that follow.
 */
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freezeDevNode, readDevCluster, startDevCluster, startDevNode, stopDevCluster, stopDevNode, type DevCluster } from '../../src/dev/cluster.js';
import { writeDevSpec } from '../../src/dev/devSpec.js';
import { check } from '../../src/drift/check.js';
import { replicationStatus } from '../../src/ha/checkReplication.js';
import { failover } from '../../src/ha/failover.js';
import { generateMigrations } from '../../src/migrations/files.js';
import { apply } from '../../src/nodes/apply.js';
import { planLayout } from '../../src/plan/layout.js';
import { SpecText } from '../../src/spec/edit.js';
import { loadSpec } from '../../src/spec/load.js';
import { connect, FAULT_SETTINGS, FULL, faultSources, runCli, SCALE, sleep, summarize } from '../support/faults.js';

interface Write {
  readonly id: number;
  readonly device: number;
  readonly ok: boolean;
  /** When the statement was sent, and when its outcome arrived. */
  readonly started: number;
  readonly at: number;
}

interface Writers {
  acknowledged(): number;
  /** The outcomes so far. */
  peek(): Write[];
  /** Stops them; a statement still waiting after 1 s is abandoned (its row is uncertain). */
  stop(): Promise<Write[]>;
}

/** Writers inserting one row per statement (unique id in `memory`) on `devices` until stopped; every outcome with its time. */
function startWriters(url: string, firstId: number, devices: readonly number[], count = 4, statementTimeoutMs = 30_000): Writers {
  let next = firstId;
  let running = true;
  const log: Write[] = [];
  const busy = new Map<number, { id: number; device: number; client: pg.Client }>();
  const one = async (slot: number): Promise<void> => {
    let client: pg.Client | undefined;
    while (running) {
      const id = next++;
      const device = devices[id % devices.length]!;
      let started = performance.now();
      try {
        client ??= await connect(url, { statement_timeout: String(statementTimeoutMs) });
        busy.set(slot, { id, device, client });
        started = performance.now();
        await client.query('INSERT INTO metrics (time, device_id, memory) VALUES (now(), $1, $2)', [device, id]);
        busy.delete(slot);
        log.push({ id, device, ok: true, started, at: performance.now() });
      } catch {
        busy.delete(slot);
        log.push({ id, device, ok: false, started, at: performance.now() });
        void client?.end().catch(() => undefined);
        client = undefined;
        await sleep(50);
      }
    }
    await client?.end().catch(() => undefined);
  };
  const done = Promise.all(Array.from({ length: count }, (_, slot) => one(slot)));
  return {
    acknowledged: () => log.filter((w) => w.ok).length,
    peek: () => [...log],
    stop: async () => {
      running = false;
      await Promise.race([done, sleep(1_000)]);
      const abandoned = [...busy.values()];
      for (const b of abandoned) (b.client as unknown as { connection: { stream: { destroy(): void } } }).connection.stream.destroy();
      return [...log, ...abandoned.map((b) => ({ id: b.id, device: b.device, ok: false, started: performance.now(), at: performance.now() }))];
    },
  };
}

/**
 * Rows with ids `firstId..lastId` read through the access node against the writers' log: the
 * acknowledged ones missing, and any row there twice or never written.
 */
async function rowProblems(access: pg.Client, log: readonly Write[], firstId: number, lastId: number): Promise<{ missing: Write[]; other: string[] }> {
  const { rows } = await access.query<{ id: number; n: number }>('SELECT memory::int AS id, count(*)::int AS n FROM metrics WHERE memory BETWEEN $1 AND $2 GROUP BY 1', [firstId, lastId]);
  const counts = new Map(rows.map((r) => [r.id, r.n]));
  const written = new Set(log.map((w) => w.id));
  return {
    missing: log.filter((w) => w.ok && !counts.has(w.id)),
    other: [...counts].flatMap(([id, n]) => (!written.has(id) ? [`row ${id} was never written`] : n > 1 ? [`row ${id} found ${n} times`] : [])),
  };
}

/** Where a promoted server's new timeline forked from its old one (its newest timeline history file). */
async function switchPoint(url: string): Promise<string> {
  const client = await connect(url);
  try {
    const { rows } = await client.query<{ text: string }>(
      `SELECT pg_catalog.pg_read_file('pg_wal/' || name) AS text FROM pg_catalog.pg_ls_waldir() WHERE name LIKE '%.history' ORDER BY name DESC LIMIT 1`,
    );
    const last = rows[0]!.text.trim().split('\n').at(-1)!;
    return last.split('\t')[1]!;
  } finally {
    await client.end();
  }
}

/** An LSN (`X/Y`, two 32-bit hex halves) as a byte position. */
function lsnBytes(lsn: string): number {
  const [hi, lo] = lsn.split('/');
  return Number((BigInt(`0x${hi}`) << 32n) + BigInt(`0x${lo}`));
}

const sources = faultSources();

describe.each(sources)('$label', (source) => {
  let workDir: string;
  let dev: DevCluster;
  let specFile: string;
  let access: pg.Client;
  let nextId = 1;
  /** Device ids by the data node holding their shard. */
  const devicesOn = new Map<string, number[]>();

  /** The dev cluster's name of the server a spec url points at (a promoted standby keeps its name). */
  const serverOf = async (url: string): Promise<string> => {
    const state = (await readDevCluster(dev.dir))!;
    return state.dataNodes.flatMap((n) => [n, ...n.standbys]).find((n) => n.port === Number(new URL(url).port))!.name;
  };
  const specNode = async (name: string) => (await loadSpec(specFile)).spec.dataNodes.find((n) => n.name === name)!;
  const count = async (): Promise<number> => Number((await access.query<{ n: string }>('SELECT count(*)::text AS n FROM metrics')).rows[0]!.n);
  const checkProblems = async (): Promise<string[]> => {
    const { spec } = await loadSpec(specFile);
    const drift = await check(spec, specFile, { timeoutMs: 10_000 });
    return drift.nodes.flatMap((n) => [...(n.error === undefined ? [] : [`${n.node}: ${n.error}`]), ...n.items.filter((i) => i.kind !== 'warning').map((i) => `${n.node}: ${i.message}`)]);
  };

  beforeAll(async () => {
    if (source.skip !== undefined) return;
    workDir = await mkdtemp(join(tmpdir(), 'hs-failover-'));
    await chmod(workDir, 0o755);
    dev = await startDevCluster({ dir: join(workDir, 'cluster'), dataNodes: 2, standbys: 1, postgres: source.postgres, settings: FAULT_SETTINGS });
    specFile = await writeDevSpec(dev);
    const text = new SpecText(await readFile(specFile, 'utf8'));
    text.set(['dataNodes', 1], 'replication', { synchronous: false });
    await writeFile(specFile, text.text);
    const { spec, file } = await loadSpec(specFile);
    await generateMigrations(spec, file);
    const applied = await apply(spec, file);
    expect(applied.ok, JSON.stringify(applied.nodes)).toBe(true);
    access = await connect(dev.accessNode.url);
    await access.query('INSERT INTO metrics (time, device_id, memory) SELECT now(), d, -d - 1 FROM generate_series(0, 19) d');
    const layout = planLayout(spec);
    const { rows } = await access.query<{ device_id: number; shard: string }>(`SELECT device_id, tableoid::regclass::text AS shard FROM metrics`);
    for (const r of rows) {
      const node = layout.hypertables[0]!.shards.find((s) => r.shard.endsWith(s.table.name))!.dataNode;
      devicesOn.set(node, [...(devicesOn.get(node) ?? []), r.device_id]);
    }
    // The second case counts rows in dn2's WAL.
    const dn2 = await connect(dev.dataNodes[1]!.url);
    await dn2.query('CREATE EXTENSION IF NOT EXISTS pg_walinspect');
    await dn2.end();
  });
  afterAll(async () => {
    await access?.end().catch(() => undefined);
    if (dev !== undefined) await stopDevCluster(dev.dir);
    if (workDir !== undefined) await rm(workDir, { recursive: true, force: true });
  });

  it.skipIf(source.skip !== undefined)('dn1 primary killed mid-load, failover: every acknowledged row once, reads and writes back; refused twice, old primary fenced; node rebuild', async () => {
    const dn1Devices = devicesOn.get('dn1')!;
    let acknowledged = 0;
    let found = 0;
    let worstError = 0;
    const seconds: string[] = [];
    for (let run = 0; run < SCALE.runs; run += 1) {
      const node = await specNode('dn1');
      const primaryServer = await serverOf(node.url);
      const primary = await connect(node.url);
      expect((await primary.query('SELECT application_name, sync_state FROM pg_stat_replication')).rows).toEqual([{ application_name: node.standbys[0]!.name, sync_state: 'quorum' }]);
      await primary.end();
      const before = await count();
      const firstId = nextId;
      const load = startWriters(dev.accessNode.url, firstId, [...Array(20).keys()]);
      while (load.acknowledged() < SCALE.rows / 8) await sleep(20);
      const killedAt = performance.now();
      await stopDevNode(dev.dir, primaryServer, 'kill');
      const goneAt = performance.now();

      // During the outage: a query on dn2's shards works, one on dn1's fails fast naming its server.
      await sleep(200);
      const other = await access.query<{ n: string }>('SELECT count(*)::text AS n FROM metrics WHERE device_id = $1', [devicesOn.get('dn2')![0]]);
      expect(Number(other.rows[0]!.n)).toBeGreaterThan(0);
      const failing = performance.now();
      const error = await access.query('SELECT count(*) FROM metrics WHERE device_id = $1', [dn1Devices[0]]).then(() => undefined, (e: Error) => e.message);
      worstError = Math.max(worstError, (performance.now() - failing) / 1000);
      expect(error).toMatch(/hypershard_dn1_\d/);
      expect(worstError).toBeLessThan(5);

      const started = performance.now();
      const run1 = await runCli(['failover', '-c', specFile, '--node', 'dn1', '--json'], { deadlineMs: 90_000 });
      expect(run1.code, run1.stderr + run1.stdout).toBe(0);
      const result = JSON.parse(run1.stdout) as { status: string; newPrimary: { name: string }; steps: { step: string; atMs: number }[] };
      expect(result.status).toBe('failed-over');
      expect(result.newPrimary.name).toBe(node.standbys[0]!.name);
      // Writes to dn1's shards resume.
      await sleep(500);
      const log = await load.stop();
      nextId = Math.max(...log.map((w) => w.id)) + 1;
      // Sent after the old primary was gone: only the new one can have acknowledged it (one
      // acknowledged just after the kill may have committed just before it).
      const firstWrite = log.find((w) => w.ok && w.started > goneAt && dn1Devices.includes(w.device));
      expect(firstWrite, 'a write to dn1 after the failover').toBeDefined();

      // Every acknowledged row exactly once, nothing unknown, answers = before + acknowledged (+ uncertain ones).
      const { missing, other: problems } = await rowProblems(access, log, firstId, nextId);
      expect([...missing.map((w) => `acknowledged row ${w.id} missing`), ...problems]).toEqual([]);
      const acked = log.filter((w) => w.ok).length;
      const total = await count();
      expect(total).toBeGreaterThanOrEqual(before + acked);
      expect(total).toBeLessThanOrEqual(before + log.length);
      expect(await checkProblems()).toEqual([]);
      acknowledged += acked;
      found += acked - missing.length;
      const steps = result.steps.map((s) => `${s.step} @${(s.atMs / 1000).toFixed(1)}`).join(', ');
      seconds.push(`kill to first write ${((firstWrite!.at - killedAt) / 1000).toFixed(1)} s (failover started ${((started - killedAt) / 1000).toFixed(1)} s after the kill, took ${run1.seconds.toFixed(1)} s: ${steps})`);

      if (run === 0) {
        // Twice: refused, nothing changes.
        const { spec } = await loadSpec(specFile);
        const again = await failover(spec, specFile, 'dn1');
        expect(again.status).toBe('refused');
        expect(again.reason).toMatch(/answers and takes writes: nothing to fail over/);
        expect((await loadSpec(specFile)).spec).toEqual(spec);
        // The old primary comes back (crash recovery, a writable primary): nothing reaches it.
        await startDevNode(dev.dir, primaryServer);
        const old = await connect(node.url);
        const oldCount = (await old.query<{ n: string }>('SELECT count(*)::text AS n FROM _hypershard.metrics_s0')).rows[0]!.n;
        const fresh = await connect(dev.accessNode.url);
        await fresh.query('INSERT INTO metrics (time, device_id, memory) SELECT now(), d, -1000 - d FROM generate_series(0, 19) d');
        expect((await old.query<{ n: string }>('SELECT count(*)::text AS n FROM _hypershard.metrics_s0')).rows[0]!.n).toBe(oldCount);
        expect((await fresh.query<{ n: string }>('SELECT count(*)::text AS n FROM metrics WHERE memory <= -1000')).rows[0]!.n).toBe('20');
        await old.end();
        await fresh.end();
        await stopDevNode(dev.dir, primaryServer, 'fast');
      }

      // The old primary is discarded; a new standby is copied from the current primary.
      const rebuilt = await runCli(['node', 'rebuild', '-c', specFile, '--node', 'dn1', '--json'], { deadlineMs: 120_000 });
      expect(rebuilt.code, rebuilt.stderr + rebuilt.stdout).toBe(0);
      expect((await specNode('dn1')).standbys).toHaveLength(1);
      // At small scale the next case's final check covers the rebuilt standby.
      if (FULL) expect(await checkProblems()).toEqual([]);
    }
    summarize({
      case: 'data node primary killed -9 mid-load, then failover (synchronous standby), then node rebuild',
      source: source.label,
      runs: SCALE.runs,
      rowsAcknowledged: acknowledged,
      rowsFound: found,
      secondsToError: worstError,
      note: seconds.join('; '),
    });
  });

  it.skipIf(source.skip !== undefined)('standbys frozen, both primaries killed: asynchronous loses at most what the lag said, synchronous nothing', async () => {
    const nodes = await Promise.all(['dn1', 'dn2'].map(specNode));
    const servers = await Promise.all(nodes.map((n) => serverOf(n.url)));
    const standbys = nodes.map((n) => n.standbys[0]!.name);
    const primaries = await Promise.all(nodes.map((n) => connect(n.url)));
    const { rows: startRows } = await primaries[1]!.query<{ lsn: string }>('SELECT pg_catalog.pg_current_wal_lsn()::text AS lsn');
    const scanFrom = startRows[0]!.lsn;

    const firstId = nextId;
    const writers = nodes.map((n, i) => startWriters(dev.accessNode.url, firstId + i * 1_000_000, devicesOn.get(n.name)!, 2));
    while (writers.some((w) => w.acknowledged() < SCALE.rows / 20)) await sleep(20);
    for (const s of standbys) await freezeDevNode(dev.dir, s, true);
    // More WAL than the sockets between dn2 and its frozen standby hold (a few MB), then more rows:
    // those are acknowledged by dn2 (asynchronous) and exist nowhere else.
    for (let i = 0; i < 32; i++) await primaries[1]!.query(`SELECT pg_catalog.pg_logical_emit_message(false, 'hypershard-test', repeat('x', 1048576))`);
    const ackedBefore = writers[1]!.acknowledged();
    while (writers[1]!.acknowledged() < ackedBefore + SCALE.rows / 40) await sleep(20);
    const logs = await Promise.all(writers.map((w) => w.stop()));
    nextId = firstId + 2_000_000;

    // What the lag said, as `status` reads it; the WAL it covers, on each primary.
    const { spec } = await loadSpec(specFile);
    const lag = await replicationStatus(spec, specFile, 1_000);
    const positions = await Promise.all(
      primaries.map(async (p) => (await p.query<{ now: string; replayed: string }>('SELECT pg_catalog.pg_current_wal_lsn()::text AS now, replay_lsn::text AS replayed FROM pg_catalog.pg_stat_replication')).rows[0]!),
    );
    // Rows whose commit lies in the WAL the standby had not replayed: what the asynchronous node may lose.
    const { rows: window } = await primaries[1]!.query<{ n: number }>(
      `WITH r AS (SELECT start_lsn, xid, resource_manager AS rm, record_type AS t FROM pg_get_wal_records_info($1, $2))
       SELECT count(*)::int AS n FROM r
        WHERE rm = 'Heap' AND t IN ('INSERT', 'INSERT+INIT')
          AND xid IN (SELECT xid FROM r WHERE rm = 'Transaction' AND t = 'COMMIT' AND start_lsn > $3::pg_lsn)`,
      [scanFrom, positions[1]!.now, positions[1]!.replayed],
    );
    for (const s of servers) await stopDevNode(dev.dir, s, 'kill');
    await Promise.all(primaries.map((p) => p.end().catch(() => undefined)));
    for (const s of standbys) await freezeDevNode(dev.dir, s, false);

    for (const node of nodes) {
      const { spec: now } = await loadSpec(specFile);
      const result = await failover(now, specFile, node.name);
      expect(result.status, result.reason).toBe('failed-over');
    }
    const outcome: string[] = [];
    let lost = 0;
    for (const [i, node] of nodes.entries()) {
      const lagBytes = lag.find((s) => s.standby === standbys[i])!.lagBytes!;
      const walLost = lsnBytes(positions[i]!.now) - lsnBytes(await switchPoint(node.standbys[0]!.url));
      const { missing, other } = await rowProblems(access, logs[i]!, firstId + i * 1_000_000, firstId + i * 1_000_000 + 999_999);
      expect(other).toEqual([]);
      // The WAL lost never exceeds what the lag said.
      expect(walLost).toBeLessThanOrEqual(lagBytes);
      const acked = logs[i]!.filter((w) => w.ok).length;
      lost += missing.length;
      if (node.name === 'dn1') {
        expect(missing, 'synchronous: no acknowledged row lost').toEqual([]);
      } else {
        expect(missing.length, 'asynchronous: lost rows bounded by the rows committed in the lag').toBeLessThanOrEqual(window[0]!.n);
        // The bound is not vacuous: rows acknowledged after the filler were on dn2 only.
        expect(missing.length).toBeGreaterThan(0);
      }
      outcome.push(`${node.name} (${node.name === 'dn1' ? 'synchronous' : 'asynchronous'}): lag ${lagBytes} bytes, ${walLost} bytes of WAL lost, ${missing.length} of ${acked} acknowledged rows lost${node.name === 'dn2' ? ` (bound: ${window[0]!.n} rows committed in the lag)` : ''}`);
    }
    expect(await checkProblems()).toEqual([]);
    const rows = logs.flat().filter((w) => w.ok).length;
    summarize({ case: 'standbys frozen, primaries killed -9, failover: rows lost vs the lag', source: source.label, runs: 1, rowsAcknowledged: rows, rowsFound: rows - lost, note: outcome.join('; ') });
  });

  it.skipIf(source.skip !== undefined)('dn1 primary frozen mid-load, failover: promoted without it, writes resume after the statement_timeout, every acknowledged row once; thawed, the old primary gets nothing', async () => {
    // The previous case failed both nodes over: dn1 gets a standby again.
    const rebuilt = await runCli(['node', 'rebuild', '-c', specFile, '--node', 'dn1', '--json'], { deadlineMs: 120_000 });
    expect(rebuilt.code, rebuilt.stderr + rebuilt.stdout).toBe(0);
    const node = await specNode('dn1');
    const primaryServer = await serverOf(node.url);
    const dn1Devices = devicesOn.get('dn1')!;
    const timeoutMs = 5_000;
    const before = await count();
    const firstId = nextId;
    const load = startWriters(dev.accessNode.url, firstId, [...Array(20).keys()], 4, timeoutMs);
    while (load.acknowledged() < SCALE.rows / 8) await sleep(20);
    const frozenAt = performance.now();
    await freezeDevNode(dev.dir, primaryServer, true);
    let thawed = false;
    try {
      const run = await runCli(['failover', '-c', specFile, '--node', 'dn1', '--json'], { deadlineMs: 90_000 });
      expect(run.code, run.stderr + run.stdout).toBe(0);
      const result = JSON.parse(run.stdout) as { status: string; probes: { member: string; reachable: boolean }[] };
      expect(result.status).toBe('failed-over');
      // The frozen primary (probed first) did not answer within the probe's timeout.
      expect(result.probes[0]!.reachable, JSON.stringify(result.probes)).toBe(false);
      const failedOver = performance.now();
      // Writes to dn1's shards resume (new statements; those stuck on the frozen node time out).
      for (let i = 0; i < 600; i += 1) {
        if (load.peek().some((w) => w.ok && w.started > failedOver && dn1Devices.includes(w.device))) break;
        await sleep(100);
      }
      const log = await load.stop();
      nextId = Math.max(...log.map((w) => w.id)) + 1;
      const firstWrite = log.find((w) => w.ok && w.started > frozenAt + 100 && dn1Devices.includes(w.device));
      expect(firstWrite, 'a write to dn1 after the failover').toBeDefined();
      const { missing, other } = await rowProblems(access, log, firstId, nextId);
      expect([...missing.map((w) => `acknowledged row ${w.id} missing`), ...other]).toEqual([]);
      const acked = log.filter((w) => w.ok).length;
      const total = await count();
      expect(total).toBeGreaterThanOrEqual(before + acked);
      expect(total).toBeLessThanOrEqual(before + log.length);

      // Thawed, the old primary takes writes again: nothing through the access node reaches it.
      await freezeDevNode(dev.dir, primaryServer, false);
      thawed = true;
      const old = await connect(node.url);
      const shardRows = async (): Promise<string> => (await old.query<{ n: string }>('SELECT count(*)::text AS n FROM _hypershard.metrics_s0')).rows[0]!.n;
      const oldCount = await shardRows();
      await access.query('INSERT INTO metrics (time, device_id, memory) SELECT now(), d, -2000 - d FROM generate_series(0, 19) d');
      expect(await shardRows()).toBe(oldCount);
      expect(Number((await access.query<{ n: string }>('SELECT count(*)::text AS n FROM metrics WHERE memory <= -2000')).rows[0]!.n)).toBe(20);
      await old.end();
      expect(await checkProblems()).toEqual([]);
      summarize({
        case: 'data node primary frozen (SIGSTOP) mid-load, then failover (synchronous standby)',
        source: source.label,
        runs: 1,
        rowsAcknowledged: acked,
        rowsFound: acked - missing.length,
        note: `failover ${run.seconds.toFixed(1)} s (probe timeout 5 s); freeze to first write on dn1 ${((firstWrite!.at - frozenAt) / 1000).toFixed(1)} s (writers' statement_timeout ${timeoutMs / 1000} s)`,
      });
    } finally {
      if (!thawed) await freezeDevNode(dev.dir, primaryServer, false);
      await stopDevNode(dev.dir, primaryServer, 'fast').catch(() => undefined);
    }
  });
});
