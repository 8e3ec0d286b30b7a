/**
 * A userspace TCP proxy on 127.0.0.1 that adds a fixed one-way latency in each direction.
 *
 * `tc netem` is not available on these machines, and loopback hides what shipping rows between
 * the access node and the data nodes costs: every postgres_fdw round trip (a FETCH of the next
 * `fetch_size` rows, an INSERT batch, a COMMIT) takes microseconds here and milliseconds in a real
 * network. Put between the access node and a data node, this proxy delays every chunk it reads,
 * in each direction, by `latencyMs` and forwards chunks in order. Delays are scheduled with timers
 * against each chunk's arrival time, so a stream of chunks is pipelined (throughput is kept) and
 * only round trips pay: as on a real link with that latency and ample bandwidth.
 *
 * Lifetime is bounded: close() (callers use finally) destroys every connection and the listener,
 * and a safety timer closes the proxy after `maxLifetimeMs` even if the caller never does.
 */
import net, { type AddressInfo } from 'node:net';

export interface LatencyProxyOptions {
  /** Where to forward: a data node on this machine. */
  readonly targetHost: string;
  readonly targetPort: number;
  /** Added to each direction, so a round trip gets 2 × latencyMs. */
  readonly latencyMs: number;
  /** Safety bound on the proxy's life. @default 6 hours */
  readonly maxLifetimeMs?: number;
}

export interface ProxyStats {
  connections: number;
  /** Bytes forwarded from the access node to the data node (queries, INSERT batches). */
  bytesUp: number;
  /** Bytes forwarded from the data node to the access node (shipped rows). */
  bytesDown: number;
  /**
   * Requests: how often a connection's traffic turned towards the data node after the data node
   * had spoken (or at its start). Each is at least one round trip the access node waited for.
   */
  roundTrips: number;
}

export interface LatencyProxy {
  readonly host: string;
  readonly port: number;
  readonly stats: Readonly<ProxyStats>;
  close(): Promise<void>;
}

const LISTEN_HOST = '127.0.0.1';
/** Pause reading from a side while this much is queued for the other, so memory stays bounded. */
const HIGH_WATER_BYTES = 8 * 1024 * 1024;

/** Counters summed over several proxies (one per data node). */
export function proxyTotals(proxies: readonly LatencyProxy[]): ProxyStats {
  const sum = (k: keyof ProxyStats): number => proxies.reduce((s, p) => s + p.stats[k], 0);
  return { connections: sum('connections'), bytesUp: sum('bytesUp'), bytesDown: sum('bytesDown'), roundTrips: sum('roundTrips') };
}

/** What changed in the counters between two readings. */
export function proxyDelta(before: ProxyStats, after: ProxyStats): ProxyStats {
  return {
    connections: after.connections - before.connections,
    bytesUp: after.bytesUp - before.bytesUp,
    bytesDown: after.bytesDown - before.bytesDown,
    roundTrips: after.roundTrips - before.roundTrips,
  };
}

export async function startLatencyProxy(options: LatencyProxyOptions): Promise<LatencyProxy> {
  if (!Number.isFinite(options.latencyMs) || options.latencyMs < 0) throw new RangeError(`latencyMs must be >= 0, got ${options.latencyMs}`);
  const stats: ProxyStats = { connections: 0, bytesUp: 0, bytesDown: 0, roundTrips: 0 };
  const sockets = new Set<net.Socket>();
  const timers = new Set<NodeJS.Timeout>();

  const server = net.createServer((client) => {
    stats.connections += 1;
    const upstream = net.connect({ host: options.targetHost, port: options.targetPort });
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.setNoDelay(true);
      s.on('close', () => sockets.delete(s));
      // Either side failing ends the pair; postgres_fdw sees a broken connection, as on a real network.
      s.on('error', () => {
        client.destroy();
        upstream.destroy();
      });
    }
    // Counted on arrival, before the delay: the direction the conversation turns to.
    let lastUp = false;
    client.on('data', () => {
      if (!lastUp) stats.roundTrips += 1;
      lastUp = true;
    });
    upstream.on('data', () => (lastUp = false));
    pipeDelayed(client, upstream, options.latencyMs, timers, (n) => (stats.bytesUp += n));
    pipeDelayed(upstream, client, options.latencyMs, timers, (n) => (stats.bytesDown += n));
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, LISTEN_HOST, () => {
      server.removeListener('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;

  let closed: Promise<void> | undefined;
  const close = (): Promise<void> =>
    (closed ??= new Promise<void>((resolve) => {
      clearTimeout(lifetime);
      for (const t of timers) clearTimeout(t);
      timers.clear();
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    }));
  const lifetime = setTimeout(() => void close(), options.maxLifetimeMs ?? 6 * 3_600_000);
  lifetime.unref(); // the safety bound must not keep a finished process alive

  return { host: LISTEN_HOST, port, stats, close };
}

/**
 * Forwards `from` to `to`, each chunk `latencyMs` after it arrived, in arrival order. One timer at
 * a time, for the head of the queue: chunks due by then go out together, then the next is armed.
 */
function pipeDelayed(from: net.Socket, to: net.Socket, latencyMs: number, timers: Set<NodeJS.Timeout>, count: (bytes: number) => void): void {
  const queue: { due: number; data: Buffer }[] = [];
  let queuedBytes = 0;
  let timer: NodeJS.Timeout | undefined;
  let ended = false;
  /** The receiving socket's buffer is full: wait for 'drain' before reading more. */
  let blocked = false;

  const maybeResume = (): void => {
    if (!blocked && queuedBytes < HIGH_WATER_BYTES && from.isPaused()) from.resume();
  };
  const send = (data: Buffer): void => {
    count(data.length);
    if (to.destroyed) return;
    if (!to.write(data) && !blocked) {
      blocked = true;
      from.pause();
      to.once('drain', () => {
        blocked = false;
        maybeResume();
      });
    }
  };
  const finish = (): void => {
    if (!to.destroyed) to.end();
  };
  const flush = (): void => {
    if (timer !== undefined) timers.delete(timer);
    timer = undefined;
    const now = performance.now();
    while (queue.length > 0 && queue[0]!.due <= now) {
      const { data } = queue.shift()!;
      queuedBytes -= data.length;
      send(data);
    }
    maybeResume();
    if (queue.length > 0) arm();
    else if (ended) finish();
  };
  const arm = (): void => {
    if (timer !== undefined) return;
    const head = queue[0];
    if (head === undefined) return;
    timer = setTimeout(flush, Math.max(0, head.due - performance.now()));
    timers.add(timer);
  };

  from.on('data', (data: Buffer) => {
    if (latencyMs === 0) return send(data);
    queue.push({ due: performance.now() + latencyMs, data });
    queuedBytes += data.length;
    if (queuedBytes >= HIGH_WATER_BYTES) from.pause();
    arm();
  });
  // A half-close (or a close) travels with the same delay as the data before it.
  const onEnd = (): void => {
    if (ended) return;
    ended = true;
    if (queue.length === 0) finish();
  };
  from.on('end', onEnd);
  from.on('close', onEnd);
}
