/**
 * Standbys as a user meets them through the CLI (docs/ha.md): `dev up --data-nodes 2 --standbys 1
 * --json` lists every node with its url and data directory, standbys under their data node; after
 * generate and apply, `status` shows each standby streaming with its lag and `check` is clean. Then
 * what `check` and `status` must report, each on a real standby:
 *
 * - a standby that stopped (unreachable), and back (clean again);
 * - a standby whose replay is paused while its primary writes more WAL than `maxLagBytes` (lagging);
 * - a primary whose `synchronous_standby_names` was changed behind hypershard's back (apply puts it back);
 * - a standby promoted behind hypershard's back (a second primary).
 */
import { chmod, mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDevNode, stopDevNode } from '../../src/dev/cluster.js';
import { runCli, sleep, type CliRun } from '../support/faults.js';

const SYSTEM_BIN = process.env.HYPERSHARD_TEST_SYSTEM_BIN ?? '/usr/lib/postgresql/15/bin';
const sources = [
  { label: 'PostgreSQL 18 (embedded)', args: [] as string[], skip: undefined as string | undefined },
  { label: 'PostgreSQL 15 (system)', args: ['--postgres', 'system', '--bin-dir', SYSTEM_BIN], skip: await stat(join(SYSTEM_BIN, 'postgres')).then(() => undefined, () => `no PostgreSQL at ${SYSTEM_BIN}`) },
];

interface NodeJson {
  name: string;
  url: string;
  dataDir: string;
}
interface StandbyJson {
  dataNode: string;
  standby: string;
  state: string;
  syncState: string | null;
  lagBytes: number | null;
  lagSeconds: number | null;
  error?: string;
}

async function sql<T extends pg.QueryResultRow>(url: string, text: string): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  client.on('error', () => undefined);
  await client.connect();
  try {
    return (await client.query<T>(text)).rows;
  } finally {
    await client.end();
  }
}

describe.each(sources)('$label', ({ args, skip }) => {
  let workDir: string;
  let dir: string;
  let specFile: string;
  let nodes: { accessNode: NodeJson; dataNodes: (NodeJson & { standbys: NodeJson[] })[] };
  const output = (run: CliRun): string => `${run.stdout}\n${run.stderr}`;
  const cli = (command: string[]): Promise<CliRun> => runCli([...command, '-c', specFile], { deadlineMs: 90_000 });
  const standbys = async (): Promise<StandbyJson[]> => {
    const run = await cli(['status', '--json']);
    expect(run.code, output(run)).toBe(0);
    return (JSON.parse(run.stdout) as { standbys: StandbyJson[] }).standbys;
  };
  const standby = async (name: string): Promise<StandbyJson> => (await standbys()).find((s) => s.standby === name)!;
  /** Polls status until `name` is streaming again (a restarted standby reconnects within seconds). */
  const streaming = async (name: string): Promise<void> => {
    let last: StandbyJson | undefined;
    for (let i = 0; i < 30; i += 1) {
      last = await standby(name);
      if (last.state === 'streaming') return;
      await sleep(1_000);
    }
    expect(last).toMatchObject({ state: 'streaming' });
  };

  beforeAll(async () => {
    if (skip !== undefined) return;
    workDir = await mkdtemp(join(tmpdir(), 'hs-standbys-'));
    await chmod(workDir, 0o755);
    dir = join(workDir, 'dev');
    specFile = join(dir, 'hypershard.yaml');
    const up = await runCli(['dev', 'up', '--data-nodes', '2', '--standbys', '1', '--dir', dir, '--json', ...args], { deadlineMs: 240_000 });
    expect(up.code, output(up)).toBe(0);
    nodes = JSON.parse(up.stdout) as typeof nodes;
    for (const step of [['generate'], ['apply']]) {
      const run = await cli(step);
      expect(run.code, output(run)).toBe(0);
    }
  });
  afterAll(async () => {
    if (dir !== undefined) await runCli(['dev', 'down', '--dir', dir]);
    if (workDir !== undefined) await rm(workDir, { recursive: true, force: true });
  });

  it.skipIf(skip !== undefined)('dev up --standbys 1 --json lists every node with its url and data directory, each standby in recovery under its data node', async () => {
    expect(nodes.dataNodes.map((n) => [n.name, n.standbys.map((s) => s.name)])).toEqual([
      ['dn1', ['dn1_s1']],
      ['dn2', ['dn2_s1']],
    ]);
    for (const n of nodes.dataNodes) {
      expect((await sql<{ r: boolean }>(n.url, 'SELECT pg_is_in_recovery() AS r'))[0]!.r).toBe(false);
      for (const s of n.standbys) {
        expect((await stat(join(s.dataDir, 'standby.signal'))).isFile()).toBe(true);
        expect((await sql<{ r: boolean }>(s.url, 'SELECT pg_is_in_recovery() AS r'))[0]!.r).toBe(true);
      }
    }
  });

  it.skipIf(skip !== undefined)('status shows each standby streaming, synchronous, with its lag in bytes and seconds; check is clean', async () => {
    const all = await standbys();
    expect(all.map((s) => [s.dataNode, s.standby, s.state, s.syncState])).toEqual([
      ['dn1', 'dn1_s1', 'streaming', 'quorum'],
      ['dn2', 'dn2_s1', 'streaming', 'quorum'],
    ]);
    for (const s of all) {
      expect(s.lagBytes).toBeGreaterThanOrEqual(0);
      expect(s.lagSeconds).toBeGreaterThanOrEqual(0);
    }
    const text = await cli(['status']);
    expect(text.stdout).toMatch(/data node\s+standby\s+address\s+state\s+sync\s+lag bytes\s+lag seconds/);
    const check = await cli(['check']);
    expect(check.code, output(check)).toBe(0);
  });

  it.skipIf(skip !== undefined)('a standby that stopped: status says unreachable, check names it and exits 1; started again, clean', async () => {
    await stopDevNode(dir, 'dn1_s1', 'fast');
    try {
      expect(await standby('dn1_s1')).toMatchObject({ state: 'unreachable', syncState: null, lagBytes: null });
      const check = await cli(['check']);
      expect(check.code, output(check)).toBe(1);
      expect(output(check)).toMatch(/standby dn1_s1 \(\S+\) cannot be reached/);
    } finally {
      await startDevNode(dir, 'dn1_s1');
    }
    await streaming('dn1_s1');
    const check = await cli(['check']);
    expect(check.code, output(check)).toBe(0);
  });

  it.skipIf(skip !== undefined)('a standby whose replay is paused while its primary writes more WAL than maxLagBytes: lagging, then clean once it replays', async () => {
    const dn2 = nodes.dataNodes[1]!;
    await sql(dn2.standbys[0]!.url, 'SELECT pg_wal_replay_pause()');
    try {
      // 17 MiB of WAL (maxLagBytes defaults to 16 MiB); non-transactional, so no commit waits on the standby.
      await sql(dn2.url, `SELECT pg_logical_emit_message(false, 'hypershard-test', repeat('x', 1048576)) FROM generate_series(1, 17)`);
      const lagging = await standby('dn2_s1');
      expect(lagging.state).toBe('lagging');
      expect(lagging.lagBytes).toBeGreaterThan(16 * 1024 * 1024);
      const check = await cli(['check']);
      expect(check.code, output(check)).toBe(1);
      expect(output(check)).toMatch(/standby dn2_s1 is lagging: \d+ bytes and \S+ s behind \(bounds 16777216 bytes, 30 s\)/);
    } finally {
      await sql(dn2.standbys[0]!.url, 'SELECT pg_wal_replay_resume()');
    }
    await streaming('dn2_s1');
    const check = await cli(['check']);
    expect(check.code, output(check)).toBe(0);
  });

  it.skipIf(skip !== undefined)("a primary's synchronous_standby_names changed behind hypershard's back: check says what it needs, apply puts it back", async () => {
    const dn1 = nodes.dataNodes[0]!;
    await sql(dn1.url, `ALTER SYSTEM SET synchronous_standby_names = ''`);
    await sql(dn1.url, 'SELECT pg_reload_conf()');
    await sleep(500);
    const check = await cli(['check']);
    expect(check.code, output(check)).toBe(1);
    expect(output(check)).toMatch(/replication of dn1[\s\S]*the primary needs: .*synchronous_standby_names/);
    const apply = await cli(['apply']);
    expect(apply.code, output(apply)).toBe(0);
    expect((await sql<{ s: string }>(dn1.url, 'SHOW synchronous_standby_names'))[0]!).toEqual({ synchronous_standby_names: 'ANY 1 ("dn1_s1")' });
    await streaming('dn1_s1');
    expect(await standby('dn1_s1')).toMatchObject({ syncState: 'quorum' });
    const again = await cli(['check']);
    expect(again.code, output(again)).toBe(0);
  });

  it.skipIf(skip !== undefined)("a standby promoted behind hypershard's back: status and check report a second primary", async () => {
    await sql(nodes.dataNodes[1]!.standbys[0]!.url, 'SELECT pg_promote()');
    expect(await standby('dn2_s1')).toMatchObject({ state: 'not-a-standby', error: 'it takes writes: a second primary' });
    const check = await cli(['check']);
    expect(check.code, output(check)).toBe(1);
    expect(output(check)).toMatch(/standby dn2_s1 \(\S+\): it takes writes: a second primary/);
  });
});
