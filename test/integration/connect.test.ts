/** Reaching nodes: bounded waits, clear reasons, and the checks made before anything runs. */
import { createServer, type Server, type Socket } from 'node:net';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDevCluster, stopDevCluster, type DevCluster } from '../../src/dev/cluster.js';
import { NodeConnectionError, NodeUnsupportedError } from '../../src/errors.js';
import { connectAll, connectNode } from '../../src/nodes/connect.js';
import { sql } from '../support/db.js';

describe('connecting to nodes', () => {
  let dir: string;
  let cluster: DevCluster;
  let silent: Server;
  let silentPort: number;
  const sockets: Socket[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hs-connect-'));
    await chmod(dir, 0o755);
    cluster = await startDevCluster({ dir: join(dir, 'c'), dataNodes: 1 });
    // A server that accepts connections and never answers: what a hung or firewalled node looks like.
    silent = createServer((socket) => sockets.push(socket));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    silentPort = (silent.address() as { port: number }).port;
  });
  afterAll(async () => {
    for (const s of sockets) s.destroy();
    silent?.close();
    await stopDevCluster(join(dir, 'c'));
    await rm(dir, { recursive: true, force: true });
  });

  it('names a node that never answers, within the timeout', async () => {
    const started = Date.now();
    const error = await connectNode({ name: 'dn9', role: 'data', url: `postgres://postgres@127.0.0.1:${silentPort}/postgres`, password: undefined }, { timeoutMs: 800 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NodeConnectionError);
    expect((error as Error).message).toBe(`node dn9: no answer from postgres@127.0.0.1:${silentPort}/postgres within 800 ms`);
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it('reports every node that fails, not just the first, and keeps no connection open', async () => {
    const targets = [
      { name: 'access', role: 'access' as const, url: cluster.accessNode.url, password: undefined },
      { name: 'dn1', role: 'data' as const, url: 'postgres://postgres@127.0.0.1:1/postgres', password: undefined },
      { name: 'dn2', role: 'data' as const, url: `postgres://postgres@127.0.0.1:${silentPort}/postgres`, password: undefined },
    ];
    const error = await connectAll(targets, { timeoutMs: 800 }).catch((e: unknown) => e);
    expect((error as Error).message.split('\n')).toEqual([
      'node dn1: connection refused at postgres@127.0.0.1:1/postgres (is PostgreSQL running and listening there?)',
      `node dn2: no answer from postgres@127.0.0.1:${silentPort}/postgres within 800 ms`,
    ]);
    // A backend leaves pg_stat_activity shortly after its client disconnects.
    let open = '';
    for (let i = 0; i < 40 && open !== '0'; i += 1) {
      if (i > 0) await new Promise((r) => setTimeout(r, 50));
      open = (await sql<{ n: string }>(cluster.accessNode.url, `SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = 'hypershard' AND pid <> pg_backend_pid()`))[0]!.n;
    }
    expect(open).toBe('0');
  });

  it('refuses a user that can neither create roles nor owns the database, before anything runs', async () => {
    await sql(cluster.dataNodes[0]!.url, `CREATE ROLE app LOGIN PASSWORD 'app-secret'`);
    const url = cluster.dataNodes[0]!.url.replace('postgres@', 'app@');
    const error = await connectNode({ name: 'dn1', role: 'data', url, password: 'app-secret' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NodeUnsupportedError);
    expect((error as Error).message).toMatch(/^node dn1: user app is neither a superuser nor a role manager owning database postgres/);
  });

  it('names a failed password without echoing it', async () => {
    const url = cluster.dataNodes[0]!.url.replace('postgres@', 'app@');
    const error = await connectNode({ name: 'dn1', role: 'data', url, password: 'wrong-secret' }).catch((e: unknown) => e);
    expect((error as Error).message).toBe(`node dn1: password authentication failed at ${url.replace('postgres://', '')}`);
    expect((error as Error).message).not.toContain('wrong-secret');
  });

  it('reads version and postgres_fdw on a healthy access node', async () => {
    const connection = await connectNode({ name: 'access', role: 'access', url: cluster.accessNode.url, password: undefined });
    try {
      expect(connection.info.serverVersionNum).toBeGreaterThanOrEqual(180000);
      expect(connection.info.superuser).toBe(true);
    } finally {
      await connection.client.end();
    }
  });
});
