/** A gateway in front of a test cluster's access node, and the ways tests reach it. */
import { spawn } from 'node:child_process';
import net from 'node:net';
import type pg from 'pg';
import { startGateway, type Gateway } from '../../src/gateway/gateway.js';
import type { GatewayOptions } from '../../src/gateway/options.js';
import type { GatewayRewriteEvent } from '../../src/gateway/session.js';
import type { AppliedCluster } from './appliedCluster.js';

export interface TestGateway {
  readonly gateway: Gateway;
  readonly host: string;
  readonly port: number;
  /** Every rewrite event since the gateway started. */
  readonly events: GatewayRewriteEvent[];
  /** A pg config for the gateway, as `config` reaches the access node. */
  through(config: pg.ClientConfig): pg.ClientConfig;
  /** A libpq URL for the gateway (password not included: pass it in PGPASSWORD). */
  url(config: pg.ClientConfig): string;
  close(): Promise<void>;
}

export async function startTestGateway(applied: AppliedCluster, options: GatewayOptions = {}): Promise<TestGateway> {
  const gateway = await startGateway(applied.spec, applied.specFile, { port: 0, ...options });
  const events: GatewayRewriteEvent[] = [];
  gateway.on('rewrite', (e) => events.push(e));
  const [host, port] = splitAddress(gateway.address);
  return {
    gateway,
    host,
    port,
    events,
    through: (config) => ({ ...config, host, port }),
    url: (config) => `postgres://${encodeURIComponent(config.user ?? '')}@${host}:${port}/${encodeURIComponent(config.database ?? '')}`,
    close: () => gateway.close(),
  };
}

export function splitAddress(address: string): [string, number] {
  const i = address.lastIndexOf(':');
  return [address.slice(0, i).replace(/^\[|\]$/g, ''), Number(address.slice(i + 1))];
}

/** The URL libpq clients use for the access node itself. */
export function directUrl(config: pg.ClientConfig): string {
  return `postgres://${encodeURIComponent(config.user ?? '')}@${config.host}:${config.port}/${encodeURIComponent(config.database ?? '')}`;
}

export interface RunResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs a program to its end (bounded), feeding it `input`. */
export function run(command: string, args: readonly string[], options: { env?: NodeJS.ProcessEnv; input?: string; timeoutMs?: number } = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env: { ...process.env, ...options.env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    // Decoded as a stream: a character whose bytes two chunks share is read whole.
    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8');
    child.stdout.on('data', (d: string) => (stdout += d));
    child.stderr.on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 60_000);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.end(options.input ?? '');
  });
}

/** psql, unaligned and quiet, stopping at the first error. */
export function psql(url: string, password: string | undefined, args: readonly string[], input?: string): Promise<RunResult> {
  return run('psql', ['-X', '-q', '-A', '-v', 'ON_ERROR_STOP=1', '-d', url, ...args], {
    env: { PGPASSWORD: password ?? '', PGCONNECT_TIMEOUT: '10', PGSSLMODE: process.env.PGSSLMODE ?? 'prefer' },
    ...(input === undefined ? {} : { input }),
  });
}

/** A raw connection speaking bytes to the gateway, for protocol tests a driver would never send. */
export function rawConnection(host: string, port: number): Promise<RawConnection> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port }, () => resolve(new RawConnection(socket)));
    socket.once('error', reject);
  });
}

export class RawConnection {
  #received = Buffer.alloc(0);
  #closed = false;
  readonly #waiters: (() => void)[] = [];
  constructor(readonly socket: net.Socket) {
    socket.on('data', (d: Buffer) => {
      this.#received = Buffer.concat([this.#received, d]);
      this.#wake();
    });
    socket.on('close', () => {
      this.#closed = true;
      this.#wake();
    });
    socket.on('error', () => undefined);
  }
  get closed(): boolean {
    return this.#closed;
  }
  write(bytes: Buffer): void {
    this.socket.write(bytes);
  }
  /** Backend messages received so far, by type letter, and the bytes. */
  messages(): { type: string; body: Buffer }[] {
    const out: { type: string; body: Buffer }[] = [];
    let offset = 0;
    while (this.#received.length - offset >= 5) {
      const length = this.#received.readInt32BE(offset + 1);
      if (this.#received.length - offset < length + 1) break;
      out.push({ type: String.fromCharCode(this.#received[offset] as number), body: this.#received.subarray(offset + 5, offset + 1 + length) });
      offset += length + 1;
    }
    return out;
  }
  /** Waits until `done` holds for the messages received, or the connection closes, or the time is up. */
  async until(done: (messages: { type: string; body: Buffer }[]) => boolean, timeoutMs = 10_000): Promise<{ type: string; body: Buffer }[]> {
    const deadline = Date.now() + timeoutMs;
    while (!done(this.messages()) && !this.#closed && Date.now() < deadline) {
      await new Promise<void>((r) => {
        const t = setTimeout(r, Math.max(1, deadline - Date.now()));
        this.#waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
    return this.messages();
  }
  close(): void {
    this.socket.destroy();
  }
  #wake(): void {
    for (const w of this.#waiters.splice(0)) w();
  }
}
