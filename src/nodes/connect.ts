/**
 * Connecting to a node and checking, before anything runs, that it can take hypershard:
 * PostgreSQL 14 or later, postgres_fdw on the access node, and enough privileges.
 */
import pg from 'pg';
import { parseIntoClientConfig } from 'pg-connection-string';
import { ClusterConnectionError, NodeConnectionError, NodeUnsupportedError } from '../errors.js';
import { DEFAULT_FDW_TIMEOUTS } from '../spec/schema.js';
import { DEFAULT_PROBE_INTERVAL_MS, superviseClient } from './liveness.js';
import type { NodeTarget } from './targets.js';

export const MIN_SERVER_VERSION = 140000;
export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;

export interface NodeInfo {
  readonly serverVersionNum: number;
  readonly serverVersion: string;
  readonly database: string;
  readonly user: string;
  readonly superuser: boolean;
  /**
   * Can create roles and owns the database: what managed PostgreSQL gives its admin user
   * (rds_superuser, cloudsqlsuperuser, azure_pg_admin) instead of a superuser.
   */
  readonly manager: boolean;
  readonly fdwInstalled: boolean;
}

export interface NodeConnection {
  readonly target: NodeTarget;
  readonly client: pg.Client;
  readonly info: NodeInfo;
}

export interface ConnectOptions {
  /** Bound on reaching the node and logging in. @default 10000 */
  readonly timeoutMs?: number;
  /** Only read (plan, audit): any user will do, no superuser needed. @default false */
  readonly readOnly?: boolean;
  /**
   * How long a statement runs before the node (and, on the access node, the data nodes it may
   * wait on) is probed, and then between probes; a probe unanswered within `timeoutMs` fails the
   * statement with NodeUnresponsiveError. @default 5000
   */
  readonly probeIntervalMs?: number;
}

/**
 * @throws NodeConnectionError (unreachable, refused, authentication) or NodeUnsupportedError, naming the node.
 */
export async function connectNode(target: NodeTarget, options: ConnectOptions = {}): Promise<NodeConnection> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  const client = new pg.Client({
    ...clientConfig(target.url, target.password),
    connectionTimeoutMillis: timeoutMs,
    keepAlive: true,
    keepAliveInitialDelayMillis: DEFAULT_FDW_TIMEOUTS.keepalivesIdle * 1000,
  });
  // A dropped connection must not crash the process; the next query reports it.
  client.on('error', () => undefined);
  try {
    await client.connect();
  } catch (error) {
    await client.end().catch(() => undefined);
    throw new NodeConnectionError(target.name, describeConnectError(error, target.url, timeoutMs), { cause: error });
  }
  superviseClient(client, target, {
    probeTimeoutMs: timeoutMs,
    intervalMs: options.probeIntervalMs ?? DEFAULT_PROBE_INTERVAL_MS,
    ...(target.peers === undefined ? {} : { peers: target.peers }),
    config: (t) => clientConfig(t.url, t.password),
  });
  try {
    await keepaliveSession(client);
    const info = await inspect(client);
    const fdw = target.role !== 'access' || info.fdwInstalled || (await fdwAvailable(client));
    const problem = fitnessProblem(target.role, info, fdw, options.readOnly !== true);
    if (problem !== undefined) throw new NodeUnsupportedError(target.name, problem);
    return { target, client, info };
  } catch (error) {
    await client.end().catch(() => undefined);
    if (error instanceof NodeUnsupportedError) throw error;
    throw new NodeConnectionError(target.name, `checking the server failed: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
}

/**
 * pg settings for a URL plus a separate password. (Passing `connectionString` and `password`
 * together would not do: pg lets the parsed URL override the password with none.)
 */
export function clientConfig(url: string, password?: string): pg.ClientConfig {
  return {
    ...parseIntoClientConfig(url),
    ...(password === undefined ? {} : { password }),
    application_name: 'hypershard',
  };
}

/**
 * The server drops our session within about half a minute when the network to us breaks, instead
 * of keeping its transaction and locks open for the kernel's two hours (ignored over unix
 * sockets). The same figures as the FDW servers' defaults.
 */
async function keepaliveSession(client: pg.Client): Promise<void> {
  await client.query(
    `SELECT pg_catalog.set_config('tcp_keepalives_idle', $1, false), pg_catalog.set_config('tcp_keepalives_interval', $2, false),
            pg_catalog.set_config('tcp_keepalives_count', $3, false), pg_catalog.set_config('tcp_user_timeout', $4, false)`,
    [String(DEFAULT_FDW_TIMEOUTS.keepalivesIdle), String(DEFAULT_FDW_TIMEOUTS.keepalivesInterval), String(DEFAULT_FDW_TIMEOUTS.keepalivesCount), String(DEFAULT_FDW_TIMEOUTS.tcpUserTimeout)],
  );
}

async function inspect(client: pg.Client): Promise<NodeInfo> {
  const { rows } = await client.query<{
    num: string; version: string; database: string; user: string; superuser: boolean; manager: boolean; fdw: boolean;
  }>(`SELECT current_setting('server_version_num') AS num, current_setting('server_version') AS version,
            current_database() AS database, current_user AS "user",
            (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user) AS superuser,
            (SELECT rolcreaterole FROM pg_catalog.pg_roles WHERE rolname = current_user)
              AND pg_catalog.pg_has_role((SELECT datdba FROM pg_catalog.pg_database WHERE datname = current_database()), 'USAGE') AS manager,
            EXISTS (SELECT FROM pg_catalog.pg_extension WHERE extname = 'postgres_fdw') AS fdw`);
  const row = rows[0];
  if (row === undefined) throw new Error('no answer to the version query');
  return {
    serverVersionNum: Number(row.num),
    serverVersion: row.version,
    database: row.database,
    user: row.user,
    superuser: row.superuser,
    manager: row.manager,
    fdwInstalled: row.fdw,
  };
}

async function fdwAvailable(client: pg.Client): Promise<boolean> {
  const { rows } = await client.query(`SELECT FROM pg_catalog.pg_available_extensions WHERE name = 'postgres_fdw'`);
  return rows.length > 0;
}

/** Why a node cannot take hypershard, or undefined when it can. */
export function fitnessProblem(role: NodeTarget['role'], info: NodeInfo, fdwPresent: boolean, needsSuperuser = true): string | undefined {
  if (info.serverVersionNum < MIN_SERVER_VERSION) {
    return `PostgreSQL ${info.serverVersion} is too old; hypershard needs PostgreSQL 14 or later`;
  }
  if (role === 'access' && !fdwPresent) {
    return "the postgres_fdw extension is not available (install PostgreSQL's contrib package on the access node)";
  }
  if (needsSuperuser && !info.superuser && !info.manager) {
    // Roles, FDW servers and ALTER DATABASE need these rights; with fewer, a migration would fail
    // halfway instead of here (the rehearsal catches what is left, e.g. CREATE EXTENSION).
    return `user ${info.user} is neither a superuser nor a role manager owning database ${info.database}; hypershard applies migrations as one of them (the service role it creates is least-privileged)`;
  }
  return undefined;
}

function describeConnectError(error: unknown, url: string, timeoutMs: number): string {
  const where = safeAddress(url);
  const e = error as { code?: string; message?: string };
  if (e.message?.includes('timeout')) return `no answer from ${where} within ${timeoutMs} ms`;
  // pg's words when the server asks for a password and none was given.
  if (e.message?.includes('client password must be a string')) {
    return `${where} asks for a password and the spec gives this node none: add password: { env: VARIABLE } or { file: path } to it`;
  }
  switch (e.code) {
    case 'ECONNREFUSED': return `connection refused at ${where} (is PostgreSQL running and listening there?)`;
    case 'ENOTFOUND': case 'EAI_AGAIN': return `host of ${where} cannot be resolved`;
    case 'EHOSTUNREACH': case 'ENETUNREACH': return `${where} is unreachable`;
    case '28P01': return `password authentication failed at ${where}`;
    case '28000': return `${where} rejected the connection: ${e.message ?? ''}`;
    case '3D000': return `${e.message ?? 'database does not exist'} at ${where}`;
    default: return `cannot connect to ${where}: ${e.message ?? String(error)}`;
  }
}

/** host:port/db of a URL, for messages (never credentials). */
export function safeAddress(url: string): string {
  try {
    const u = new URL(url);
    return `${u.username === '' ? '' : `${decodeURIComponent(u.username)}@`}${u.hostname}:${u.port || '5432'}${u.pathname}`;
  } catch {
    return '(invalid URL)';
  }
}

/**
 * Connects to every node at once. Either all connect and pass the checks, or none is kept:
 * every failure is reported, and the connections that did succeed are closed.
 */
export async function connectAll(targets: readonly NodeTarget[], options: ConnectOptions = {}): Promise<NodeConnection[]> {
  const settled = await Promise.allSettled(targets.map((t) => connectNode(t, options)));
  const failures = settled.filter((s): s is PromiseRejectedResult => s.status === 'rejected').map((s) => s.reason as Error);
  const [only] = failures;
  if (only !== undefined) {
    await Promise.all(settled.flatMap((s) => (s.status === 'fulfilled' ? [s.value.client.end().catch(() => undefined)] : [])));
    throw failures.length === 1 ? only : new ClusterConnectionError(failures);
  }
  return settled.map((s) => (s as PromiseFulfilledResult<NodeConnection>).value);
}

export async function closeAll(connections: readonly NodeConnection[]): Promise<void> {
  await Promise.all(connections.map((c) => c.client.end().catch(() => undefined)));
}
