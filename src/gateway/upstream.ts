/**
 * The access node, as the gateway reaches it: host and port from the spec's access-node URL, and
 * TLS when that URL asks for it (`sslmode`, `sslrootcert`, as libpq reads them). Sessions connect
 * with the client's own startup packet; only the address and the transport are the gateway's.
 */
import { readFileSync } from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import { parse as parseConnectionString } from 'pg-connection-string';
import { HypershardError } from '../errors.js';
import { cancelRequest, sslRequest } from './protocol/messages.js';

export type SslMode = 'disable' | 'allow' | 'prefer' | 'require' | 'verify-ca' | 'verify-full';

export interface Upstream {
  readonly host: string;
  readonly port: number;
  readonly sslMode: SslMode;
  readonly ca: Buffer | undefined;
  /** `host:port`, for messages. */
  readonly address: string;
}

const SSL_MODES = new Set<SslMode>(['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full']);

/** @throws HypershardError (USAGE) for an sslmode libpq would not accept, or an unreadable sslrootcert. */
export function upstreamFromUrl(url: string): Upstream {
  const parsed = parseConnectionString(url) as { host?: string | null; port?: string | null; sslmode?: string; sslrootcert?: string };
  const host = parsed.host ?? 'localhost';
  if (host.startsWith('/')) throw new HypershardError('USAGE', `the gateway reaches the access node over TCP; its URL names a unix socket directory (${host})`);
  const port = Number(parsed.port ?? 5432);
  const mode = (new URL(url).searchParams.get('sslmode') ?? 'prefer') as SslMode;
  if (!SSL_MODES.has(mode)) throw new HypershardError('USAGE', `accessNode.url: invalid sslmode ${JSON.stringify(mode)}`);
  const rootCert = new URL(url).searchParams.get('sslrootcert');
  let ca: Buffer | undefined;
  if (rootCert !== null && rootCert !== 'system') {
    try {
      ca = readFileSync(rootCert);
    } catch (error) {
      throw new HypershardError('USAGE', `accessNode.url: cannot read sslrootcert ${rootCert}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`, { cause: error });
    }
  }
  return { host, port, sslMode: mode, ca, address: `${host}:${port}` };
}

/** A connection that could not be made; the message names the access node's address. */
export class UpstreamError extends Error {}

/**
 * Opens a connection to the access node, negotiating TLS as `sslMode` says, within `timeoutMs`.
 * Resolves with the socket to send the startup packet on.
 */
export async function connectUpstream(upstream: Upstream, timeoutMs: number): Promise<{ socket: net.Socket; tls: boolean }> {
  const deadline = Date.now() + timeoutMs;
  const raw = await openSocket(upstream, timeoutMs);
  if (upstream.sslMode === 'disable' || upstream.sslMode === 'allow') return { socket: raw, tls: false };
  try {
    const answer = await requestSsl(raw, Math.max(1, deadline - Date.now()));
    if (answer === 'N') {
      if (upstream.sslMode === 'prefer') return { socket: raw, tls: false };
      throw new UpstreamError(`the access node at ${upstream.address} does not accept TLS, and its URL says sslmode=${upstream.sslMode}`);
    }
    const secure = await startTls(raw, upstream, Math.max(1, deadline - Date.now()));
    return { socket: secure, tls: true };
  } catch (error) {
    raw.destroy();
    throw error;
  }
}

/**
 * Forwards a client's cancel to a backend (the access node's, or a data node's answering a router
 * read or a routed write) as its real key; bounded, never fails.
 * @returns when the server closed the connection (it has signalled the backend then) or gave up
 */
export function sendCancel(upstream: Pick<Upstream, 'host' | 'port'>, pid: number, key: Buffer, timeoutMs: number): Promise<void> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: upstream.host, port: upstream.port });
    socket.setTimeout(timeoutMs, () => socket.destroy());
    socket.on('error', () => socket.destroy());
    socket.on('close', () => resolve());
    socket.on('connect', () => socket.end(cancelRequest(pid, key)));
  });
}

function openSocket(upstream: Upstream, timeoutMs: number): Promise<net.Socket> {
  return new Promise((resolvePromise, reject) => {
    const socket = net.connect({ host: upstream.host, port: upstream.port });
    socket.setNoDelay(true);
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new UpstreamError(`no answer from the access node at ${upstream.address} within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.removeAllListeners('error');
      resolvePromise(socket);
    });
    socket.once('error', (error: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(new UpstreamError(`cannot reach the access node at ${upstream.address}: ${error.code ?? error.message}`));
    });
  });
}

function requestSsl(socket: net.Socket, timeoutMs: number): Promise<'S' | 'N'> {
  return new Promise((resolvePromise, reject) => {
    const timer = setTimeout(() => done(new UpstreamError(`the access node did not answer the TLS request within ${timeoutMs} ms`)), timeoutMs);
    const onData = (chunk: Buffer): void => {
      if (chunk.length !== 1 || (chunk[0] !== 0x53 && chunk[0] !== 0x4e)) {
        done(new UpstreamError('the access node answered the TLS request with something else than S or N'));
        return;
      }
      done(undefined, chunk[0] === 0x53 ? 'S' : 'N');
    };
    const onError = (error: Error): void => done(new UpstreamError(`TLS request to the access node failed: ${error.message}`));
    const done = (error: Error | undefined, answer?: 'S' | 'N'): void => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('error', onError);
      if (error !== undefined) reject(error);
      else resolvePromise(answer as 'S' | 'N');
    };
    socket.on('data', onData);
    socket.on('error', onError);
    socket.write(sslRequest());
  });
}

function startTls(socket: net.Socket, upstream: Upstream, timeoutMs: number): Promise<tls.TLSSocket> {
  const verify = upstream.sslMode === 'verify-ca' || upstream.sslMode === 'verify-full';
  return new Promise((resolvePromise, reject) => {
    const secure = tls.connect({
      socket,
      ...(net.isIP(upstream.host) === 0 ? { servername: upstream.host } : {}),
      ...(upstream.ca === undefined ? {} : { ca: upstream.ca }),
      rejectUnauthorized: verify,
      // verify-ca checks the chain only; verify-full also the host name (Node's default check).
      ...(upstream.sslMode === 'verify-ca' ? { checkServerIdentity: () => undefined } : {}),
    });
    const timer = setTimeout(() => {
      secure.destroy();
      reject(new UpstreamError(`TLS handshake with the access node at ${upstream.address} did not finish within ${timeoutMs} ms`));
    }, timeoutMs);
    secure.once('secureConnect', () => {
      clearTimeout(timer);
      secure.removeAllListeners('error');
      resolvePromise(secure);
    });
    secure.once('error', (error: Error) => {
      clearTimeout(timer);
      reject(new UpstreamError(`TLS with the access node at ${upstream.address} failed: ${error.message}`));
    });
  });
}
