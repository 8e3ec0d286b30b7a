/**
 * Connections the routed writer keeps between transactions: one list per node, each connection
 * idle (no transaction open) when it comes back. A gateway routing one INSERT after another then
 * pays no connect and authentication per statement.
 *
 * Every connection is supervised like the CLI's (src/nodes/liveness.ts): a statement or COPY
 * outstanding for 5 s gets its node probed, and fails naming the node once a probe gets no answer
 * within `timeoutMs` (a frozen node, a partition); a connection that breaks under one names the node.
 */
import pg from 'pg';
import { NodeConnectionError } from '../errors.js';
import { safeAddress } from '../nodes/connect.js';
import { superviseClient } from '../nodes/liveness.js';
import type { NodeRole } from '../sql/generate.js';

export class ConnectionPool {
  readonly #idle = new Map<string, pg.Client[]>();
  readonly #all = new Set<pg.Client>();
  /** Connections that broke (their node restarted or went away): never handed out again. */
  readonly #broken = new WeakSet<pg.Client>();
  readonly #maxIdlePerNode: number;
  #closed = false;

  constructor(maxIdlePerNode = 8) {
    this.#maxIdlePerNode = maxIdlePerNode;
  }

  /** @throws NodeConnectionError naming the node when it cannot be reached within `timeoutMs`. */
  async acquire(node: string, config: pg.ClientConfig, url: string, timeoutMs: number, role: NodeRole = 'data'): Promise<pg.Client> {
    if (this.#closed) throw new TypeError('the connection pool is closed');
    const list = this.#idle.get(node) ?? [];
    for (let idle = list.pop(); idle !== undefined; idle = list.pop()) {
      if (!this.#broken.has(idle)) return idle;
      this.#drop(idle);
    }
    const client = new pg.Client({ ...config, connectionTimeoutMillis: timeoutMs, keepAlive: true, keepAliveInitialDelayMillis: 10_000 });
    // A node that goes away between statements must not fail the process, nor (pooled) the next
    // statement: a broken connection is dropped, and the next write connects anew.
    const broke = (): void => void this.#broken.add(client);
    client.on('error', broke);
    client.on('end', broke);
    try {
      await client.connect();
    } catch (error) {
      await client.end().catch(() => undefined);
      const e = error as { message?: string };
      throw new NodeConnectionError(node, `cannot connect as ${config.user ?? '?'} to ${safeAddress(url)}: ${e.message ?? String(error)}`, { cause: error });
    }
    superviseClient(client, { name: node, role, url, password: undefined }, { probeTimeoutMs: timeoutMs, config: () => ({ ...config, connectionTimeoutMillis: timeoutMs }) });
    this.#all.add(client);
    return client;
  }

  /** Back into the pool when `reusable` (no transaction open, nothing broken), else closed. */
  release(node: string, client: pg.Client, reusable: boolean): void {
    const list = this.#idle.get(node) ?? [];
    if (reusable && !this.#closed && !this.#broken.has(client) && list.length < this.#maxIdlePerNode) {
      list.push(client);
      this.#idle.set(node, list);
      return;
    }
    this.#drop(client);
  }

  #drop(client: pg.Client): void {
    this.#all.delete(client);
    void client.end().catch(() => undefined);
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#idle.clear();
    const all = [...this.#all];
    this.#all.clear();
    await Promise.all(all.map((c) => c.end().catch(() => undefined)));
  }
}
