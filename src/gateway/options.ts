/**
 * The gateway's settings: the spec's `gateway:` section, overridden by what the caller passes
 * (the CLI's flags), with defaults filled in. Paths in the spec are relative to the spec file.
 */
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { HypershardError } from '../errors.js';
import type { ClusterSpec } from '../spec/schema.js';

export interface GatewayOptions {
  /** Address to listen on. @default the spec's, else 127.0.0.1 */
  readonly host?: string;
  /** Port to listen on; 0 picks a free one. @default the spec's, else 6432 */
  readonly port?: number;
  /** Serve Prometheus text metrics at http://host:metricsPort/metrics; undefined: no endpoint. */
  readonly metricsPort?: number;
  /** Rewrite statements that read distributed hypertables (false: a pure pass-through). @default true */
  readonly rewrite?: boolean;
  /**
   * Route `COPY hypertable FROM STDIN` straight to the data nodes owning the rows, committed on all
   * of them or none (two-phase commit; needs max_prepared_transactions > 0 there). false: through
   * the access node. @default true
   */
  readonly route?: boolean;
  /**
   * A SELECT whose rewrite reads one shard (and reference copies next to it) is sent straight to
   * that shard's data node and its answer relayed, when that is provably the access node's answer
   * (src/route/reads.ts). Needs routed writes' data-node connections (`route`). Measured
   * faster than the access node's path on the TSBS single-host types (docs/gateway.md). @default `route`
   */
  readonly routerReads?: boolean;
  /** Client sessions at once; one more gets "too many connections" and is closed. @default 1000 */
  readonly maxConnections?: number;
  /** Largest message a client may send (a Query, a Bind, a CopyData). @default 64 MiB */
  readonly maxMessageBytes?: number;
  /** A client must finish TLS, startup and authentication within this. @default 60000 */
  readonly startupTimeoutMs?: number;
  /** A client that stops sending in the middle of a message is closed after this. @default 60000 */
  readonly messageTimeoutMs?: number;
  /** A session idle outside a transaction for this long is closed; 0 never. @default 0 */
  readonly idleTimeoutMs?: number;
  /** Bound on reaching the access node for a new session or a cancel. @default 10000 */
  readonly connectTimeoutMs?: number;
  /** Bound on the gateway's own reads (catalogs, a session's settings). @default 10000 */
  readonly statementTimeoutMs?: number;
  /** How long SIGTERM waits for sessions to finish before closing them. @default 30000 */
  readonly drainTimeoutMs?: number;
  /**
   * How often the gateway checks that the access node answers (a new connection and SELECT 1,
   * bounded by statementTimeoutMs); after two checks without an answer every session is closed
   * with an error naming it, and new ones are refused until it answers again. 0 turns it off. @default 10000
   */
  readonly healthCheckMs?: number;
}

export interface ResolvedGatewayOptions {
  readonly host: string;
  readonly port: number;
  readonly metricsPort: number | undefined;
  readonly rewrite: boolean;
  readonly route: boolean;
  readonly routerReads: boolean;
  readonly maxConnections: number;
  readonly maxMessageBytes: number;
  readonly startupTimeoutMs: number;
  readonly messageTimeoutMs: number;
  readonly idleTimeoutMs: number;
  readonly connectTimeoutMs: number;
  readonly statementTimeoutMs: number;
  readonly drainTimeoutMs: number;
  readonly healthCheckMs: number;
  /** TLS for clients that ask for it (SSLRequest), from the spec's `gateway.tls`. */
  readonly tls: { readonly cert: Buffer; readonly key: Buffer } | undefined;
}

export const DEFAULT_GATEWAY_PORT = 6432;

export async function resolveGatewayOptions(spec: ClusterSpec, specFile: string, options: GatewayOptions): Promise<ResolvedGatewayOptions> {
  const section = spec.gateway;
  const base = dirname(specFile);
  let tls: ResolvedGatewayOptions['tls'];
  if (section?.tls !== undefined) {
    const read = async (what: 'cert' | 'key', path: string): Promise<Buffer> => {
      try {
        return await readFile(resolve(base, path));
      } catch (error) {
        throw new HypershardError('USAGE', `gateway.tls.${what}: cannot read ${resolve(base, path)}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`, { cause: error });
      }
    };
    tls = { cert: await read('cert', section.tls.cert), key: await read('key', section.tls.key) };
  }
  return {
    host: options.host ?? section?.host ?? '127.0.0.1',
    port: options.port ?? section?.port ?? DEFAULT_GATEWAY_PORT,
    metricsPort: options.metricsPort ?? section?.metricsPort,
    rewrite: options.rewrite ?? section?.rewrite ?? true,
    route: options.route ?? true,
    // They use routed writes' data-node connections: without those, none is tried.
    routerReads: options.routerReads ?? (options.route ?? true),
    maxConnections: options.maxConnections ?? section?.maxConnections ?? 1000,
    maxMessageBytes: options.maxMessageBytes ?? section?.maxMessageBytes ?? 64 * 1024 * 1024,
    startupTimeoutMs: options.startupTimeoutMs ?? section?.startupTimeoutMs ?? 60_000,
    messageTimeoutMs: options.messageTimeoutMs ?? section?.messageTimeoutMs ?? 60_000,
    idleTimeoutMs: options.idleTimeoutMs ?? section?.idleTimeoutMs ?? 0,
    connectTimeoutMs: options.connectTimeoutMs ?? section?.connectTimeoutMs ?? 10_000,
    statementTimeoutMs: options.statementTimeoutMs ?? 10_000,
    drainTimeoutMs: options.drainTimeoutMs ?? 30_000,
    healthCheckMs: options.healthCheckMs ?? section?.healthCheckMs ?? 10_000,
    tls,
  };
}
