/**
 * node-postgres' Pool whose clients are hypershard Clients sharing one context: the metadata is
 * discovered once per Pool, and a statement is parsed and rewritten once for all its clients.
 */
import pg from 'pg';
import { HypershardError } from '../errors.js';
import { safeAddress } from '../nodes/connect.js';
import type { ClusterMetadata } from '../rewrite/model.js';
import { Client, CONTEXT, type RewriteEvent } from './client.js';
import { RewriteContext, type HypershardOptions } from './context.js';

export interface PoolConfig extends pg.PoolConfig {
  readonly hypershard?: HypershardOptions;
}

/** A client checked out of the Pool. */
export type PoolClient = Client & { release(err?: Error | boolean): void };

/**
 * How long a catalog read ahead of need may wait for the access node, connecting included (or the
 * pool's `query_timeout`, if shorter): the application's own settings may bound nothing.
 */
export const READ_AHEAD_TIMEOUT_MS = 10_000;

export class Pool extends pg.Pool {
  /** The last statement any client of this Pool ran that names a distributed hypertable. */
  lastRewrite: RewriteEvent | undefined;
  readonly #context: RewriteContext;

  constructor(config: PoolConfig = {}) {
    const context = new RewriteContext(config.hypershard);
    // pg-pool creates each client with (a copy of) these options, so each finds the context.
    super({ ...config, Client: Client, [CONTEXT]: context } as pg.PoolConfig);
    this.#context = context;
    // Refresh-ahead reads the catalogs on any idle connection of this pool, off the statements' path.
    const node = accessNodeOf(config);
    const boundMs = Math.min(READ_AHEAD_TIMEOUT_MS, config.query_timeout ?? Infinity);
    context.readAheadThrough({
      query: async <R extends pg.QueryResultRow>(text: string, values?: unknown[]) => {
        // pg's per-query read timeout (not in its types) makes the pool close a connection that
        // stopped answering; the deadline also covers waiting for a connection to open.
        const bounded = { text, values, query_timeout: boundMs } as pg.QueryConfig;
        let timer: NodeJS.Timeout | undefined;
        const deadline = new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`no answer within ${boundMs} ms`)), boundMs);
        });
        try {
          return await Promise.race([this.query<R>(bounded), deadline]);
        } catch (error) {
          const why = error instanceof Error ? error.message : String(error);
          throw new HypershardError('CATALOG_READ', `access node ${node}: reading its catalogs ahead of need failed (${why}); statements read them for themselves when due`, { cause: error });
        } finally {
          clearTimeout(timer);
        }
      },
    });
    super.on('connect', (client) =>
      (client as unknown as Client).on('rewrite', (event) => {
        this.lastRewrite = event;
        this.emit('rewrite', event, client);
      }),
    );
  }

  /** The metadata rewrites use; undefined before the first statement that names a relation (or when due for a refresh). */
  get metadata(): ClusterMetadata | undefined {
    return this.#context.metadata;
  }

  /** Why the last background read of the catalogs failed (naming the node); undefined once one succeeds. */
  get refreshError(): Error | undefined {
    return this.#context.aheadError;
  }

  /** Reads the catalogs again before the next statement that names a relation (after DDL, say). */
  refreshMetadata(): void {
    this.#context.invalidate();
  }

  override connect(): Promise<PoolClient>;
  override connect(callback: (err: Error | undefined, client: PoolClient | undefined, done: (release?: any) => void) => void): void;
  override connect(callback?: (err: Error | undefined, client: PoolClient | undefined, done: (release?: any) => void) => void): Promise<PoolClient> | void {
    // oxlint-disable-next-line typescript/no-unsafe-class-instance-assignment -- the pool's Client option is our Client, so pg hands back ours
    if (callback === undefined) return super.connect() as Promise<PoolClient>;
    super.connect(callback as (err: Error | undefined, client: pg.PoolClient | undefined, done: (release?: any) => void) => void);
  }

  override on(event: 'rewrite', listener: (event: RewriteEvent, client: PoolClient) => void): this;
  override on(event: 'error' | 'release', listener: (err: Error, client: PoolClient) => void): this;
  override on(event: 'connect' | 'acquire' | 'remove', listener: (client: PoolClient) => void): this;
  override on(event: string | symbol, listener: (...args: any[]) => void): this;
  override on(event: string | symbol, listener: (...args: any[]) => void): this {
    return super.on(event as 'connect', listener);
  }
}

/** The access node the pool connects to, for errors (never credentials). */
function accessNodeOf(config: pg.PoolConfig): string {
  if (config.connectionString !== undefined && URL.canParse(config.connectionString)) return safeAddress(config.connectionString);
  return `${config.host ?? process.env['PGHOST'] ?? 'localhost'}:${config.port ?? process.env['PGPORT'] ?? '5432'}`;
}
