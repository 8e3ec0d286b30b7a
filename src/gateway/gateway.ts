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
import { HypershardError } from '../errors.js';
import { clientConfig } from '../nodes/connect.js';
import { nodeTargets } from '../nodes/targets.js';
import type { ClusterSpec } from '../spec/schema.js';
import { urlDatabase } from '../spec/url.js';
import { GatewayMetrics, prometheusText, type GatewayMetricsSnapshot } from './metrics.js';
import { resolveGatewayOptions, type GatewayOptions, type ResolvedGatewayOptions } from './options.js';
import { errorResponse } from './protocol/messages.js';
import { GatewayRewriter } from './rewriting.js';
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
  const rewriter = resolved.rewrite ? new GatewayRewriter({ admin: clientConfig(access.url, access.password), statementTimeoutMs: resolved.statementTimeoutMs }) : undefined;
  await rewriter?.start();
  if (rewriter?.unavailable !== undefined) events.emit('warning', `statements pass through unrewritten until the access node's catalogs can be read: ${rewriter.unavailable}`);

  const sessions = new Set<Session>();
  const ctx: SessionContext = {
    options: resolved,
    upstream,
    // A URL without a database means the user's name, as libpq reads it.
    database: urlDatabase(spec.accessNode.url) ?? decodeURIComponent(new URL(spec.accessNode.url).username),
    rewriter,
    metrics,
    secureContext: resolved.tls === undefined ? undefined : tls.createSecureContext({ cert: resolved.tls.cert, key: resolved.tls.key }),
    cancels: new CancelRegistry(),
    onRewrite: (event) => events.emit('rewrite', event),
    onClosed: (session) => {
      if (sessions.delete(session)) metrics.sessionsActive -= 1;
    },
  };

  const server = net.createServer({ noDelay: true, pauseOnConnect: false }, (socket) => {
    socket.on('error', () => socket.destroy());
    if (sessions.size >= resolved.maxConnections) {
      metrics.sessionsRejected += 1;
      socket.end(errorResponse({ severity: 'FATAL', code: '53300', message: `sorry, too many clients already (hypershard gateway limit: ${resolved.maxConnections})` }));
      return;
    }
    metrics.sessionsTotal += 1;
    metrics.sessionsActive += 1;
    sessions.add(new Session(ctx, socket));
  });
  const address = await listen(server, resolved.host, resolved.port);
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
      server.close();
      await rewriter?.close();
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
        const stopped = new Promise<void>((resolvePromise) => server.close(() => resolvePromise()));
        metricsServer?.close();
        for (const s of sessions) s.drain();
        const deadline = Date.now() + resolved.drainTimeoutMs;
        while (sessions.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
        for (const s of sessions) s.terminate();
        await stopped;
        await rewriter?.close();
      })();
      return closing;
    },
  });
  return gateway;
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
