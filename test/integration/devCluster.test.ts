import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { DevClusterError } from '../../src/errors.js';
import { hydrateEmbeddedSymlinks, resolvePostgresBinaries } from '../../src/dev/binaries.js';
import { readDevCluster, startDevCluster, stopDevCluster, type DevCluster, type DevNode } from '../../src/dev/cluster.js';

// A stray PGPASSWORD would make the "no password" check meaningless.
delete process.env.PGPASSWORD;

const dirs: string[] = [];
afterAll(async () => {
  // Safety net: never leave servers behind, even when an assertion failed mid-test.
  for (const dir of dirs) {
    await stopDevCluster(dir).catch(() => undefined);
    await fs.rm(dir, { recursive: true, force: true });
  }
});

async function tempDir(): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'hs-devcluster-'));
  dirs.push(dir);
  return dir;
}

function allNodes(cluster: DevCluster): DevNode[] {
  return [cluster.accessNode, ...cluster.dataNodes];
}

async function query<T extends pg.QueryResultRow>(config: string | pg.ClientConfig, sql: string): Promise<T[]> {
  const client = new pg.Client(config);
  client.on('error', () => undefined);
  await client.connect();
  try {
    return (await client.query<T>(sql)).rows;
  } finally {
    await client.end();
  }
}

async function alive(pid: number): Promise<boolean> {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = await fs.readFile(`/proc/${pid}/stat`, 'utf8');
    return !stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z'); // zombies are dead
  } catch {
    return false;
  }
}

/** The postmaster of every node plus its children (checkpointer, walwriter, backends...). */
async function serverPids(cluster: DevCluster): Promise<number[]> {
  const postmasters: number[] = [];
  for (const node of allNodes(cluster)) {
    const first = (await fs.readFile(path.join(node.dataDir, 'postmaster.pid'), 'utf8')).split('\n')[0]!;
    postmasters.push(Number(first));
  }
  const children: number[] = [];
  for (const entry of await fs.readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = await fs.readFile(`/proc/${entry}/stat`, 'utf8').catch(() => '');
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    if (postmasters.includes(ppid)) children.push(Number(entry));
  }
  return [...postmasters, ...children];
}

async function exercise(cluster: DevCluster, expectedMajor: number): Promise<void> {
  expect(cluster.postgres.version).toBe(expectedMajor);
  expect(cluster.dataNodes.map((n) => n.name)).toEqual(['dn1', 'dn2']);
  expect(new Set(allNodes(cluster).map((n) => n.port)).size).toBe(3);

  for (const node of allNodes(cluster)) {
    expect(node.url).toBe(`postgres://postgres@127.0.0.1:${node.port}/postgres`);
    // Superuser over loopback TCP without a password.
    const [row] = await query<{ v: string }>(node.url, `SELECT current_setting('server_version_num') AS v`);
    expect(Math.floor(Number(row!.v) / 10000)).toBe(expectedMajor);
    await query(node.url, 'CREATE EXTENSION postgres_fdw');
    const [settings] = await query<{ fsync: string; listen: string; maxconn: string }>(
      node.url,
      `SELECT current_setting('fsync') AS fsync, current_setting('listen_addresses') AS listen, current_setting('max_connections') AS maxconn`,
    );
    expect(settings).toEqual({ fsync: 'off', listen: '127.0.0.1', maxconn: '100' });
  }

  const dn1 = cluster.dataNodes[0]!;
  await query(dn1.url, `CREATE ROLE app LOGIN PASSWORD 'app-secret'`);
  await query(dn1.url, `CREATE TABLE metrics (v int); INSERT INTO metrics SELECT generate_series(1, 10); GRANT SELECT ON metrics TO app`);
  const app = { host: dn1.host, port: dn1.port, database: dn1.database, user: 'app' };

  const [who] = await query<{ u: string }>({ ...app, password: 'app-secret' }, 'SELECT current_user AS u');
  expect(who!.u).toBe('app');
  await expect(query({ ...app, password: 'wrong' }, 'SELECT 1')).rejects.toThrow(/password authentication failed/);
  await expect(query(app, 'SELECT 1')).rejects.toThrow();
  const [hba] = await query<{ n: string; scram: boolean }>(
    dn1.url,
    `SELECT count(*) AS n, bool_and(auth_method = 'scram-sha-256') AS scram FROM pg_hba_file_rules
      WHERE type = 'host' AND NOT ('postgres' = ANY(user_name))`,
  );
  expect(Number(hba!.n)).toBeGreaterThan(0);
  expect(hba!.scram).toBe(true);

  // The point of the password rule: postgres_fdw from the access node to a data node as a non-superuser.
  await query(
    cluster.accessNode.url,
    `CREATE SERVER dn1 FOREIGN DATA WRAPPER postgres_fdw OPTIONS (host '127.0.0.1', port '${dn1.port}', dbname 'postgres');
     CREATE ROLE reader LOGIN PASSWORD 'reader-secret';
     CREATE USER MAPPING FOR reader SERVER dn1 OPTIONS (user 'app', password 'app-secret');
     GRANT USAGE ON FOREIGN SERVER dn1 TO reader;
     CREATE FOREIGN TABLE remote_metrics (v int) SERVER dn1 OPTIONS (table_name 'metrics');
     GRANT SELECT ON remote_metrics TO reader;`,
  );
  const [sum] = await query<{ s: string }>(
    { host: '127.0.0.1', port: cluster.accessNode.port, database: 'postgres', user: 'reader', password: 'reader-secret' },
    'SELECT sum(v) AS s FROM remote_metrics',
  );
  expect(sum!.s).toBe('55');
}

async function stopAndVerify(cluster: DevCluster): Promise<number> {
  const pids = await serverPids(cluster);
  expect(pids.length).toBeGreaterThan(3);
  const t0 = performance.now();
  const results = await stopDevCluster(cluster.dir);
  const ms = performance.now() - t0;
  expect(results).toEqual([
    { node: 'access', status: 'stopped' },
    { node: 'dn1', status: 'stopped' },
    { node: 'dn2', status: 'stopped' },
  ]);
  for (const pid of pids) expect(await alive(pid), `pid ${pid} still alive`).toBe(false);
  for (const node of allNodes(cluster)) await expect(fs.stat(node.dataDir)).rejects.toThrow(/ENOENT/);
  await expect(fs.stat(path.join(cluster.dir, 'cluster.json'))).rejects.toThrow(/ENOENT/);
  expect(await readDevCluster(cluster.dir)).toBeUndefined();
  expect(await stopDevCluster(cluster.dir)).toEqual([]);
  return ms;
}

describe('dev cluster (embedded PostgreSQL)', () => {
  it('starts 1 access + 2 data nodes, serves postgres_fdw with scram for non-superusers, and stops cleanly', async () => {
    const dir = await tempDir();
    await fs.writeFile(path.join(dir, 'keep-me.txt'), 'user file');
    const steps: string[] = [];
    const t0 = performance.now();
    const cluster = await startDevCluster({ dir, dataNodes: 2, onProgress: (e) => steps.push(`${e.node}:${e.step}`) });
    const startMs = performance.now() - t0;
    expect(cluster.postgres.source).toBe('embedded');
    expect(steps.filter((s) => s.endsWith(':ready')).sort()).toEqual(['access:ready', 'dn1:ready', 'dn2:ready']);
    expect(await readDevCluster(dir)).toEqual(cluster);

    await exercise(cluster, 18);
    const stopMs = await stopAndVerify(cluster);
    expect(await fs.readFile(path.join(dir, 'keep-me.txt'), 'utf8')).toBe('user file');
    console.info(`embedded PG ${cluster.postgres.version}, 1+2 nodes: start ${Math.round(startMs)} ms, stop ${Math.round(stopMs)} ms`);
  });

  it('refuses to start a second cluster in the same dir, and replaces one whose servers died', async () => {
    const dir = await tempDir();
    const cluster = await startDevCluster({ dir, dataNodes: 0 });
    try {
      const second = startDevCluster({ dir, dataNodes: 0 });
      await expect(second).rejects.toBeInstanceOf(DevClusterError);
      await expect(second).rejects.toThrow(/already running in .*access \(pid \d+.*`dev down`/s);

      // Simulate a reboot/crash: the state file stays, the servers are gone.
      const [pid] = await serverPids(cluster);
      process.kill(pid!, 'SIGKILL');
      for (let i = 0; i < 50 && (await alive(pid!)); i++) await new Promise((r) => setTimeout(r, 100));
      const replacement = await startDevCluster({ dir, dataNodes: 0 });
      const [row] = await query<{ one: number }>(replacement.accessNode.url, 'SELECT 1 AS one');
      expect(row!.one).toBe(1);
    } finally {
      expect((await stopDevCluster(dir)).every((r) => r.status !== 'failed')).toBe(true);
    }
  });

  it('uses a temp socket dir when the cluster dir is too long for unix socket paths', async () => {
    const parent = await tempDir(); // mkdtemp: mode 0700
    const dir = path.join(parent, 'x'.repeat(60), 'y'.repeat(60));
    if (process.getuid?.() === 0) {
      // As root the servers run as an unprivileged user, which cannot get through a 0700 parent:
      // the nodes then live in a temp folder, and the cluster says so.
      const hidden = await startDevCluster({ dir, dataNodes: 0 });
      try {
        expect(hidden.notes).toEqual([expect.stringMatching(new RegExp(`${parent} \\(mode 700, owner 0\\) is not traversable by OS user \\w+: the nodes' data is in ${os.tmpdir()}/hypershard-nodes-`))]);
        expect(hidden.accessNode.dataDir.startsWith(path.join(os.tmpdir(), 'hypershard-nodes-'))).toBe(true);
      } finally {
        expect((await stopDevCluster(dir)).every((r) => r.status === 'stopped')).toBe(true);
      }
      await expect(fs.stat(path.dirname(path.dirname(hidden.accessNode.dataDir)))).rejects.toThrow(/ENOENT/);
      await fs.chmod(parent, 0o711);
    }
    const cluster = await startDevCluster({ dir, dataNodes: 0 });
    try {
      const [row] = await query<{ d: string }>(cluster.accessNode.url, `SELECT current_setting('unix_socket_directories') AS d`);
      expect(row!.d.startsWith(os.tmpdir())).toBe(true);
      await fs.stat(path.join(row!.d, `.s.PGSQL.${cluster.accessNode.port}`));
    } finally {
      expect((await stopDevCluster(dir)).every((r) => r.status === 'stopped')).toBe(true);
    }
  });

  it('hydrates the platform package symlinks idempotently', async () => {
    const root = await tempDir();
    await fs.mkdir(path.join(root, 'native', 'lib'), { recursive: true });
    await fs.writeFile(path.join(root, 'native', 'lib', 'libfoo.so.60.2'), 'lib');
    await fs.writeFile(
      path.join(root, 'native', 'pg-symlinks.json'),
      JSON.stringify([
        { source: 'native/lib/libfoo.so.60.2', target: 'native/lib/libfoo.so.60' },
        { source: 'native/lib/libfoo.so.60.2', target: 'native/lib/libfoo.so' },
      ]),
    );
    await hydrateEmbeddedSymlinks(root);
    await hydrateEmbeddedSymlinks(root);
    expect(await fs.readlink(path.join(root, 'native', 'lib', 'libfoo.so.60'))).toBe('libfoo.so.60.2');
    expect(await fs.readFile(path.join(root, 'native', 'lib', 'libfoo.so'), 'utf8')).toBe('lib');
  });
});

const system = await resolvePostgresBinaries({ kind: 'system' }).then(
  (bins) => ({ bins, reason: '' }),
  (error: unknown) => ({ bins: undefined, reason: error instanceof Error ? error.message : String(error) }),
);

describe('dev cluster (system PostgreSQL)', () => {
  it('starts 1 access + 2 data nodes from the system binaries and stops cleanly', async (ctx) => {
    if (system.bins === undefined) ctx.skip(`no system PostgreSQL installed: ${system.reason}`);
    const dir = await tempDir();
    const t0 = performance.now();
    const cluster = await startDevCluster({ dir, dataNodes: 2, postgres: { kind: 'system' } });
    const startMs = performance.now() - t0;
    expect(cluster.postgres).toEqual({ source: 'system', version: system.bins!.version, binDir: system.bins!.binDir });
    await exercise(cluster, system.bins!.version);
    const stopMs = await stopAndVerify(cluster);
    console.info(`system PG ${cluster.postgres.version}, 1+2 nodes: start ${Math.round(startMs)} ms, stop ${Math.round(stopMs)} ms`);
  });
});
