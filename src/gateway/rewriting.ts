/**
 * What the gateway's sessions share to rewrite statements: hypershard/pg's RewriteContext (the
 * same parser, rewriter, caches and per-role access facts), read from the access node's catalogs
 * over the gateway's own connection (which asks about each client's role by name), and a cheap
 * test that keeps statements naming no distributed hypertable off the parser altogether.
 */
import pg from 'pg';
import { RewriteContext, type RewriteFailure } from '../pg/context.js';
import type { StatementInfo } from '../pg/statements.js';
import type { ClusterMetadata, RewriteResult } from '../rewrite/model.js';
import type { SessionSettings } from '../rewrite/session.js';

export interface GatewayRewriterOptions {
  /** How the gateway itself reaches the access node (the spec's access-node credentials). */
  readonly admin: pg.ClientConfig;
  /** The catalogs are read again this often (ms), so new hypertables and moved shards are seen. @default 60000 */
  readonly refreshMs?: number;
  /** Bound on each catalog read. */
  readonly statementTimeoutMs: number;
  readonly cacheSize?: number;
}

/** Keywords of every statement that can change a setting a rewrite depends on (SET, RESET, set_config, DISCARD, DO, CALL, schemas, temporary tables …). */
const SETTINGS_HINT = /\b(set|reset|set_config|discard|do|call|schema|role|authorization|temp|temporary)\b/i;
/** Keywords of every statement that can change what a role may see (GRANT, REVOKE, policies, row security, owners, roles …). */
const ACCESS_HINT = /\b(grant|revoke|policy|security|owner|role|do|call|alter|drop|reassign|create|rename)\b/i;

export class GatewayRewriter {
  readonly context: RewriteContext;
  readonly #pool: pg.Pool;
  readonly #refreshMs: number;
  #names: RegExp | undefined;
  #timer: NodeJS.Timeout | undefined;
  #lastError: string | undefined;

  constructor(options: GatewayRewriterOptions) {
    this.#refreshMs = options.refreshMs ?? 60_000;
    // The timer keeps the reading fresh in the background; a session reads it itself only when the
    // timer's reads have failed for a whole period (the reading is then twice as old).
    this.context = new RewriteContext({ refreshMs: 2 * this.#refreshMs, ...(options.cacheSize === undefined ? {} : { cacheSize: options.cacheSize }) });
    this.#pool = new pg.Pool({
      ...options.admin,
      max: 2,
      idleTimeoutMillis: 30_000,
      connectionTimeoutMillis: options.statementTimeoutMs,
      statement_timeout: options.statementTimeoutMs,
      application_name: 'hypershard gateway',
    });
    this.#pool.on('error', () => undefined);
  }

  /** Reads the catalogs now and then every refreshMs. A failed read leaves statements unrewritten until one succeeds. */
  async start(): Promise<void> {
    await this.refresh();
    if (this.#refreshMs > 0) {
      this.#timer = setInterval(() => void this.refresh(), this.#refreshMs);
      this.#timer.unref();
    }
  }

  /** Reads the catalogs and the roles' access again; sessions keep the current reading until the new one is in. */
  async refresh(): Promise<void> {
    try {
      await this.context.refresh(this.#pool);
      const metadata = this.context.metadata;
      if (metadata !== undefined) this.#use(metadata);
      this.#lastError = undefined;
    } catch (error) {
      this.#lastError = error instanceof Error ? error.message : String(error);
    }
  }

  /** Why statements are not being rewritten, when the catalogs could not be read. */
  get unavailable(): string | undefined {
    return this.#names === undefined ? (this.#lastError ?? 'the catalogs have not been read yet') : undefined;
  }

  /**
   * Could `text` name a distributed hypertable? A substring test on the names, so a statement that
   * cannot is never parsed. (A false positive only costs a parse.)
   */
  mentionsHypertable(text: string): boolean {
    return this.#names !== undefined && this.#names.test(text);
  }

  /**
   * What a statement about to run may make stale: the session's settings (`settings`: they must
   * be read again) and, shared by all sessions, what roles may see and what a name means
   * (`names`: a relation named like a hypertable was defined, see RewriteContext.noteExecuted).
   * Keyword tests first, so most statements are never parsed here.
   */
  noteStatement(text: string): { readonly settings: boolean; readonly names: boolean } {
    const settings = SETTINGS_HINT.test(text);
    if (!settings && !ACCESS_HINT.test(text)) return { settings: false, names: false };
    const info = this.context.statement(text);
    const names = this.context.noteExecuted(info);
    return { settings: info.changesSettings, names };
  }

  statement(text: string): StatementInfo {
    return this.context.statement(text);
  }

  mayTouch(info: StatementInfo): boolean {
    return this.context.mayTouch(info);
  }

  /** Reads what a rewrite for `role` in `timeZone` needs (metadata, the role's access, the zone's grid) over the gateway's connection. False when it cannot. */
  async ready(role: string, timeZone: string): Promise<boolean> {
    if (this.context.ready(role, timeZone)) return true;
    try {
      const before = this.context.metadata;
      await this.context.prepare(this.#pool, role, timeZone);
      if (before === undefined && this.context.metadata !== undefined) this.#use(this.context.metadata);
      return this.context.ready(role, timeZone);
    } catch (error) {
      this.#lastError = error instanceof Error ? error.message : String(error);
      return false;
    }
  }

  rewrite(text: string, settings: SessionSettings): { readonly result: RewriteResult | RewriteFailure; readonly cached: boolean } {
    const before = this.context.stats.hits;
    const result = this.context.rewrite(text, settings);
    return { result, cached: this.context.stats.hits > before };
  }

  async close(): Promise<void> {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    await this.#pool.end().catch(() => undefined);
  }

  #use(metadata: ClusterMetadata): void {
    const names = [...new Set(metadata.hypertables.map((t) => t.table.name))];
    // No hypertable yet: nothing can match (the empty alternation would match everything).
    this.#names = names.length === 0 ? /$^/ : new RegExp(names.map(escapeRegExp).join('|'), 'i');
  }
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
