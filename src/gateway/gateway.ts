/**
 * `startGateway()`: a PostgreSQL wire-protocol server in front of the access node. Every client
 * session gets one access-node connection of its own; statements that read distributed
 * hypertables are rewritten as hypershard/pg rewrites them. Listening, limits, the cancel table,
 * metrics and a graceful stop live here; a session's protocol in session.ts.
 */
import { EventEmitter } from 'node:events';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import tls from 'node:tls';
import pg from 'pg';
import { HypershardError } from '../errors.js';
import { clientConfig } from '../nodes/connect.js';
import { nodeTargets } from '../nodes/targets.js';
import type { ClusterSpec } from '../spec/schema.js';
import { urlDatabase } from '../spec/url.js';
import { GatewayMetrics, prometheusText, type GatewayMetricsSnapshot } from './metrics.js';
import { resolveGatewayOptions, type GatewayOptions, type ResolvedGatewayOptions } from './options.js';
import { errorResponse } from './protocol/messages.js';
import { GatewayRewriter } from './rewriting.js';
import { GatewayIngest } from './routedWrites.js';
import { RouterReadState, routerStateOf } from '../route/reads.js';
import { CancelRegistry, Session, type GatewayRewriteEvent, type SessionContext } from './session.js';
import { upstreamFromUrl } from './upstream.js';

export interface GatewayEvents {
  /** A statement that names a distributed hypertable went through the rewriter. */
  rewrite: [GatewayRewriteEvent];
  /** Something the operator should know that is not one session's business (the catalogs unreadable, say). */
  warning: [string];
}

export interface Gateway extends EventEmitter<GatewayEvents> {
  /** `host:port` the gateway accepts connections on. */
  readonly address: string;
  /** `host:port` of the metrics endpoint, when there is one. */
  readonly metricsAddress: string | undefined;
  readonly options: ResolvedGatewayOptions;
  metrics(): GatewayMetricsSnapshot;
  /** Reads the access node's catalogs again now (after DDL, a rebalance). */
  refresh(): Promise<void>;
  /**
   * Stops accepting, lets sessions finish what they are doing (idle ones are closed at once, the
   * others when they come to rest), closes what remains after `drainTimeoutMs`.
   */
  close(): Promise<void>;
}

/**
 * @throws SpecError/SecretError for a spec it cannot use, HypershardError (USAGE) for bad options,
 * HypershardError (GATEWAY_LISTEN) when the address cannot be bound.
 */
export async function startGateway(spec: ClusterSpec, specFile: string, options: GatewayOptions = {}): Promise<Gateway> {
  const resolved = await resolveGatewayOptions(spec, specFile, options);
  const upstream = upstreamFromUrl(spec.accessNode.url);
  const access = (await nodeTargets(spec, specFile)).find((t) => t.role === 'access');
  if (access === undefined) throw new TypeError('a spec has an access node');
  const metrics = new GatewayMetrics();
  const events = new EventEmitter<GatewayEvents>();
  // Said once the caller listens (right after startGateway resolves).
  const warn = (message: string): void => void setImmediate(() => events.emit('warning', message));
  const rewriter = resolved.rewrite ? new GatewayRewriter({ admin: clientConfig(access.url, access.password), statementTimeoutMs: resolved.statementTimeoutMs }) : undefined;
  await rewriter?.start();
  if (rewriter?.unavailable !== undefined) warn(`statements pass through unrewritten until the access node's catalogs can be read: ${rewriter.unavailable}`);
  let ingest: GatewayIngest | undefined;
  if (resolved.route) {
    const opened = await GatewayIngest.open(spec, specFile, resolved.connectTimeoutMs);
    ingest = opened.ingest;
    ingest?.watch((message) => events.emit('warning', message));
    if (opened.reason !== undefined) warn(ingest === undefined ? `COPY into hypertables goes through the access node: ${opened.reason}` : opened.reason);
    const finished = opened.recovered?.transactions.filter((t) => t.action === 'committed' || t.action === 'rolled-back') ?? [];
    if (finished.length > 0) warn(`recovered ${finished.length} routed transaction part(s) an earlier run left prepared (${finished.map((t) => `${t.node}: ${t.action}`).join(', ')})`);
    ingest?.onRecover((result) => {
      const done = result.transactions.filter((t) => t.action === 'committed' || t.action === 'rolled-back');
      const down = result.nodes.filter((n) => !n.reachable).map((n) => n.node);
      if (done.length > 0) events.emit('warning', `recovered ${done.length} routed transaction part(s) a data node had left prepared (${done.map((t) => `${t.node}: ${t.action}`).join(', ')})`);
      if (down.length > 0) events.emit('warning', `routed transaction parts wait on ${down.join(', ')}, which does not answer; retrying`);
    });
  }

  const sessions = new Set<Session>();
  const ctx: SessionContext = {
    options: resolved,
    upstream,
    // A URL without a database means the user's name, as libpq reads it.
    database: urlDatabase(spec.accessNode.url) ?? decodeURIComponent(new URL(spec.accessNode.url).username),
    rewriter,
    ingest,
    metrics,
    // The data-node connections' state is their cluster's (a Pool given the same cluster shares it).
    routerReads: resolved.routerReads ? (ingest === undefined ? new RouterReadState() : routerStateOf(ingest.cluster)) : undefined,
    secureContext: resolved.tls === undefined ? undefined : tls.createSecureContext({ cert: resolved.tls.cert, key: resolved.tls.key }),
    cancels: new CancelRegistry(),
    onRewrite: (event) => events.emit('rewrite', event),
    onClosed: (session) => {
      if (sessions.delete(session)) metrics.sessionsActive -= 1;
    },
  };

  // The access node may stop answering without closing anything (frozen, behind a partition):
  // its sessions would wait forever. A check that cannot get an answer twice ends them, naming it.
  let unanswered = 0;
  let unresponsive: string | undefined;
  const health = resolved.healthCheckMs > 0 ? setInterval(() => void check(), resolved.healthCheckMs) : undefined;
  health?.unref();
  let checking = false;
  const check = async (): Promise<void> => {
    if (checking) return;
    checking = true;
    try {
      const answered = await answers(clientConfig(access.url, access.password), resolved.statementTimeoutMs);
      unanswered = answered ? 0 : unanswered + 1;
      if (answered) unresponsive = undefined;
      else if (unanswered >= 2) {
        unresponsive = `the access node at ${upstream.address} has not answered for ${Math.round((unanswered * resolved.healthCheckMs) / 1000)} s (checked every ${resolved.healthCheckMs} ms)`;
        events.emit('warning', `${unresponsive}: closing its ${sessions.size} session(s)`);
        for (const s of sessions) s.abort('access-node-unresponsive', unresponsive);
      }
    } finally {
      checking = false;
    }
  };

  // Every connection, so a stop can end those a client leaves half-open.
  const sockets = new Set<net.Socket>();
  const refuse = (socket: net.Socket, message: Buffer): void => {
    socket.end(message);
    setTimeout(() => socket.destroy(), 1000).unref();
  };
  const server = net.createServer({ noDelay: true, pauseOnConnect: false }, (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    if (unresponsive !== undefined) {
      metrics.sessionsRejected += 1;
      refuse(socket, errorResponse({ severity: 'FATAL', code: '08006', message: `hypershard gateway: ${unresponsive}` }));
      return;
    }
    if (sessions.size >= resolved.maxConnections) {
      metrics.sessionsRejected += 1;
      refuse(socket, errorResponse({ severity: 'FATAL', code: '53300', message: `sorry, too many clients already (hypershard gateway limit: ${resolved.maxConnections})` }));
      return;
    }
    metrics.sessionsTotal += 1;
    metrics.sessionsActive += 1;
    sessions.add(new Session(ctx, socket));
  });
  // What started above keeps the process alive: a gateway that cannot listen stops it all.
  const abandon = async (): Promise<void> => {
    if (health !== undefined) clearInterval(health);
    server.close();
    await rewriter?.close();
    await ingest?.close();
  };
  let address: string;
  try {
    address = await listen(server, resolved.host, resolved.port);
  } catch (error) {
    await abandon();
    throw error;
  }
  let metricsServer: http.Server | undefined;
  let metricsAddress: string | undefined;
  if (resolved.metricsPort !== undefined) {
    metricsServer = http.createServer((req, res) => {
      if (req.url !== '/metrics') {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' }).end(prometheusText(metrics.snapshot()));
    });
    try {
      metricsAddress = await listen(metricsServer, resolved.host, resolved.metricsPort);
    } catch (error) {
      await abandon();
      throw error;
    }
  }

  let closing: Promise<void> | undefined;
  const gateway = Object.assign(events, {
    address,
    metricsAddress,
    options: resolved,
    metrics: () => metrics.snapshot(),
    refresh: async () => rewriter?.refresh(),
    close: () => {
      closing ??= (async () => {
        if (health !== undefined) clearInterval(health);
        const stopped = new Promise<void>((resolvePromise) => server.close(() => resolvePromise()));
        metricsServer?.close();
        for (const s of sessions) s.drain();
        const deadline = Date.now() + resolved.drainTimeoutMs;
        while (sessions.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
        for (const s of sessions) s.terminate();
        await new Promise((r) => setTimeout(r, 100));
        for (const socket of sockets) socket.destroy();
        await stopped;
        await rewriter?.close();
        await ingest?.close();
      })();
      return closing;
    },
  });
  return gateway;
}

/**
 * Whether the node answers a new connection and SELECT 1 within `timeoutMs`. An error is an
 * answer (refused, authentication): only silence counts against it.
 */
async function answers(config: pg.ClientConfig, timeoutMs: number): Promise<boolean> {
  const client = new pg.Client({ ...config, application_name: 'hypershard gateway health check' });
  client.on('error', () => undefined);
  const silence = new Promise<'silent'>((resolve) => setTimeout(() => resolve('silent'), timeoutMs).unref());
  const attempt = (async () => {
    try {
      await client.connect();
      await client.query('SELECT 1');
    } catch {
      // refused, reset, authentication …: the node (or its host) answered
    }
    return 'answered' as const;
  })();
  const outcome = await Promise.race([attempt, silence]);
  void client.end().catch(() => undefined);
  if (outcome === 'silent') (client as unknown as { connection?: { stream?: net.Socket } }).connection?.stream?.destroy();
  return outcome === 'answered';
}

function listen(server: net.Server | http.Server, host: string, port: number): Promise<string> {
  return new Promise((resolvePromise, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) =>
      reject(new HypershardError('GATEWAY_LISTEN', `cannot listen on ${host}:${port}: ${error.code === 'EADDRINUSE' ? 'the address is in use' : (error.code ?? error.message)}`, { cause: error })),
    );
    server.listen(port, host, () => {
      const a = server.address() as AddressInfo;
      resolvePromise(`${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`);
    });
  });
}
