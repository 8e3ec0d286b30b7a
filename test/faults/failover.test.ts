/**
 * A data node's primary killed (SIGKILL to every process) while rows are written through the
 * access node, then `hypershard failover`: every acknowledged row is there exactly once, answers
 * through the access node are those from before plus the rows written after, `check` is clean.
 * During the outage, queries that do not touch the node keep working and those that do fail fast
 * naming it. Then: a second failover is refused and changes nothing, the old primary coming back
 * gets nothing (no split brain), and a failover with the rebuilt standby works again.
 * One synchronous standby per data node, PostgreSQL 18 and 15.
 */
import { existsSync } from 'node:fs';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDevCluster, startDevNode, stopDevCluster, stopDevNode, type DevCluster } from '../../src/dev/cluster.js';
import { writeDevSpec } from '../../src/dev/devSpec.js';
import { check } from '../../src/drift/check.js';
import { generateMigrations } from '../../src/migrations/files.js';
import { apply } from '../../src/nodes/apply.js';
import { planLayout } from '../../src/plan/layout.js';
import { loadSpec } from '../../src/spec/load.js';
import { connect, FAULT_SETTINGS, runCli, SCALE, sleep, summarize } from '../support/faults.js';

const SYSTEM_BIN = process.env.HYPERSHARD_TEST_SYSTEM_BIN ?? '/usr/lib/postgresql/15/bin';
const sources = [
  { label: 'PostgreSQL 18 (embedded)', postgres: { kind: 'embedded' as const }, skip: undefined },
  {
    label: 'PostgreSQL 15 (system)',
    postgres: { kind: 'system' as const, binDir: SYSTEM_BIN },
    skip: existsSync(join(SYSTEM_BIN, 'postgres')) ? undefined : `no PostgreSQL at ${SYSTEM_BIN} (apt-get install postgresql-15)`,
  },
];

interface Write {
  readonly id: number;
  readonly device: number;
  readonly ok: boolean;
  readonly at: number;
  readonly error?: string;
}

/** Writers inserting one row per statement (unique id in `memory`) until stopped; every outcome with its time. */
function writers(url: string, firstId: number, count = 4): { stop(): Promise<Write[]>; acknowledged(): number } {
  let next = firstId;
  let running = true;
  const log: Write[] = [];
  const one = async (): Promise<void> => {
    let client: pg.Client | undefined;
    while (running) {
      const id = next++;
      const device = id % 20;
      try {
        client ??= await connect(url, { statement_timeout: '20000' });
        await client.query('INSERT INTO metrics (time, device_id, memory) VALUES (now(), $1, $2)', [device, id]);
        log.push({ id, device, ok: true, at: performance.now() });
      } catch (error) {
        log.push({ id, device, ok: false, at: performance.now(), error: error instanceof Error ? error.message : String(error) });
        void client?.end().catch(() => undefined);
        client = undefined;
        await sleep(50);
      }
    }
    await client?.end().catch(() => undefined);
  };
  const done = Promise.all(Array.from({ length: count }, one));
  return {
    acknowledged: () => log.filter((w) => w.ok).length,
    stop: async () => {
      running = false;
      await done;
      return log;
    },
  };
}

describe.each(sources)('$label', (source) => {
  let workDir: string;
  let dev: DevCluster;
  let specFile: string;
  let access: pg.Client;
  /** Device ids by the data node holding their shard. */
  const devicesOn = new Map<string, number[]>();

  beforeAll(async () => {
    if (source.skip !== undefined) return;
    workDir = await mkdtemp(join(tmpdir(), 'hs-failover-'));
    await chmod(workDir, 0o755);
    dev = await startDevCluster({ dir: join(workDir, 'cluster'), dataNodes: 2, standbys: 1, postgres: source.postgres, settings: FAULT_SETTINGS });
    specFile = await writeDevSpec(dev);
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
  });
  afterAll(async () => {
    await access?.end().catch(() => undefined);
    if (dev !== undefined) await stopDevCluster(dev.dir);
    if (workDir !== undefined) await rm(workDir, { recursive: true, force: true });
  });

  it.skipIf(source.skip !== undefined)('dn1 primary killed mid-load, failover, every acknowledged row once, reads and writes back', { timeout: 240_000 }, async () => {
    const dn1 = dev.dataNodes[0]!;
    const replicated = await access.query('SELECT application_name, sync_state FROM pg_stat_replication');
    expect(replicated.rows).toEqual([]); // the access node has no standby; the data nodes do (below)
    const primary = await connect(dn1.url);
    expect((await primary.query('SELECT application_name, sync_state FROM pg_stat_replication')).rows).toEqual([{ application_name: 'dn1_s1', sync_state: 'quorum' }]);
    await primary.end();
    const before = (await access.query<{ n: string }>('SELECT count(*)::text AS n FROM metrics')).rows[0]!.n;

    const load = writers(dev.accessNode.url, 1);
    while (load.acknowledged() < SCALE.rows / 4) await sleep(20);
    const killedAt = performance.now();
    await stopDevNode(dev.dir, dn1.name, 'kill');

    // During the outage: a query on dn2's shards works, one on dn1's fails fast naming its server.
    await sleep(300);
    const dn2Device = devicesOn.get('dn2')![0]!;
    const dn1Device = devicesOn.get('dn1')![0]!;
    const other = await access.query<{ n: string }>('SELECT count(*)::text AS n FROM metrics WHERE device_id = $1', [dn2Device]);
    expect(Number(other.rows[0]!.n)).toBeGreaterThan(0);
    const failing = performance.now();
    const error = await access.query('SELECT count(*) FROM metrics WHERE device_id = $1', [dn1Device]).then(() => undefined, (e: Error) => e.message);
    const secondsToError = (performance.now() - failing) / 1000;
    expect(error).toMatch(/hypershard_dn1_\d/);
    expect(secondsToError).toBeLessThan(5);

    const run = await runCli(['failover', '-c', specFile, '--node', 'dn1', '--json'], { deadlineMs: 90_000 });
    expect(run.code, run.stderr + run.stdout).toBe(0);
    const result = JSON.parse(run.stdout) as { status: string; newPrimary: { name: string }; servers: string[]; specWritten: boolean; steps: { step: string; atMs: number }[] };
    process.stdout.write(`failover steps: ${result.steps.map((s) => `${s.step} @${s.atMs} ms`).join('; ')}\n`);
    expect(result.status).toBe('failed-over');
    expect(result.newPrimary.name).toBe('dn1_s1');
    // Writes to dn1's shards resume.
    await sleep(1_000);
    const log = await load.stop();
    const firstWrite = log.find((w) => w.ok && w.at > killedAt && devicesOn.get('dn1')!.includes(w.device) && log.some((e) => !e.ok && e.at > killedAt && e.at < w.at))?.at;
    expect(firstWrite).toBeDefined();

    // Every acknowledged row exactly once, nothing unknown, answers = before + acknowledged (+ in doubt).
    const { rows } = await access.query<{ id: number; n: number }>('SELECT memory::int AS id, count(*)::int AS n FROM metrics WHERE memory >= 1 GROUP BY 1');
    const counts = new Map(rows.map((r) => [r.id, r.n]));
    const acked = log.filter((w) => w.ok);
    const problems = [
      ...acked.filter((w) => counts.get(w.id) !== 1).map((w) => `acknowledged row ${w.id} found ${counts.get(w.id) ?? 0} times`),
      ...[...counts].filter(([id, n]) => n > 1 || !log.some((w) => w.id === id)).map(([id, n]) => `row ${id} found ${n} times`),
    ];
    expect(problems).toEqual([]);
    const total = Number((await access.query<{ n: string }>('SELECT count(*)::text AS n FROM metrics')).rows[0]!.n);
    expect(total).toBeGreaterThanOrEqual(Number(before) + acked.length);
    expect(total).toBeLessThanOrEqual(Number(before) + log.length);

    const { spec } = await loadSpec(specFile);
    const drift = await check(spec, specFile, { timeoutMs: 10_000 });
    expect(drift.nodes.flatMap((n) => [...(n.error === undefined ? [] : [n.error]), ...n.items.filter((i) => i.kind !== 'warning').map((i) => i.message)])).toEqual([]);

    // Twice: refused, nothing changes.
    const again = await runCli(['failover', '-c', specFile, '--node', 'dn1'], { deadlineMs: 60_000 });
    expect(again.code).toBe(1);
    expect(again.stdout).toMatch(/answers and takes writes: nothing to fail over/);

    // The old primary comes back (crash recovery, a writable primary): nothing reaches it.
    await startDevNode(dev.dir, dn1.name);
    const old = await connect(dn1.url);
    const oldCount = (await old.query<{ n: string }>('SELECT count(*)::text AS n FROM _hypershard.metrics_s0')).rows[0]!.n;
    const fresh = await connect(dev.accessNode.url);
    await fresh.query('INSERT INTO metrics (time, device_id, memory) SELECT now(), d, 1000000 + d FROM generate_series(0, 19) d');
    await access.query('INSERT INTO metrics (time, device_id, memory) SELECT now(), d, 2000000 + d FROM generate_series(0, 19) d');
    expect((await old.query<{ n: string }>('SELECT count(*)::text AS n FROM _hypershard.metrics_s0')).rows[0]!.n).toBe(oldCount);
    expect((await fresh.query<{ n: string }>('SELECT count(*)::text AS n FROM metrics WHERE memory >= 1000000')).rows[0]!.n).toBe('40');
    await old.end();
    await fresh.end();

    summarize({
      case: 'data node primary killed -9 mid-load, then failover (synchronous standby)',
      source: source.label,
      runs: 1,
      rowsAcknowledged: acked.length,
      rowsFound: acked.filter((w) => counts.get(w.id) === 1).length,
      secondsToError,
      note: `kill to first write on dn1 after failover ${((firstWrite! - killedAt) / 1000).toFixed(1)} s; failover command ${run.seconds.toFixed(1)} s`,
    });
  });

  it.skipIf(source.skip !== undefined)('node rebuild makes a new standby, and a second failover promotes it', { timeout: 240_000 }, async () => {
    // The old primary is discarded; a new standby is copied from the current primary.
    await stopDevNode(dev.dir, dev.dataNodes[0]!.name, 'fast');
    const rebuilt = await runCli(['node', 'rebuild', '-c', specFile, '--node', 'dn1', '--json'], { deadlineMs: 120_000 });
    expect(rebuilt.code, rebuilt.stderr + rebuilt.stdout).toBe(0);
    const { spec } = await loadSpec(specFile);
    expect(spec.dataNodes[0]!.standbys.map((s) => s.name)).toEqual(['dn1_s2']);
    const before = Number((await access.query<{ n: string }>('SELECT count(*)::text AS n FROM metrics')).rows[0]!.n);
    // The current primary (dn1_s1) dies; failover goes back to the rebuilt node.
    await stopDevNode(dev.dir, 'dn1_s1', 'kill');
    const run = await runCli(['failover', '-c', specFile, '--node', 'dn1', '--json'], { deadlineMs: 90_000 });
    expect(run.code, run.stderr + run.stdout).toBe(0);
    expect((JSON.parse(run.stdout) as { newPrimary: { name: string } }).newPrimary.name).toBe('dn1_s2');
    await access.query('INSERT INTO metrics (time, device_id, memory) SELECT now(), d, 3000000 + d FROM generate_series(0, 19) d');
    expect(Number((await access.query<{ n: string }>('SELECT count(*)::text AS n FROM metrics')).rows[0]!.n)).toBe(before + 20);
    const { spec: after } = await loadSpec(specFile);
    const drift = await check(after, specFile, { timeoutMs: 10_000 });
    expect(drift.clean, JSON.stringify(drift.nodes.map((n) => n.items))).toBe(true);
    summarize({ case: 'failover twice (rebuilt standby promoted back)', source: source.label, runs: 1, note: `failover ${run.seconds.toFixed(1)} s` });
  });
});
