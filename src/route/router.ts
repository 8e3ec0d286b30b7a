/**
 * The one shard router: the gateway, the loader and hypershard/pg all ask it which partition of
 * a distributed hypertable (and so which data node and remote table) a row belongs to.
 *
 * A key written in a form the hashers read exactly is routed here, synchronously; any other
 * (a zone name, an interval, an array, a collation routing cannot reproduce) is read and hashed
 * by the server under the session's settings, in one round trip per batch, and remembered.
 */
import type { Queryable } from '../rewrite/discover.js';
import { rowHash, type Hash64 } from './hash.js';
import { textHasher, type TextHasher } from './keyType.js';
import { partitionForHash, type HypertableRoute, type Partition } from './placement.js';
import { KeyValueError, serverHashes } from './serverHash.js';

/** Session settings that change how a key's text is read. */
export interface RoutingSession {
  /** The session's TimeZone (a timestamptz without an offset is local to it). */
  readonly timeZone: string;
}

/** Distinct values remembered from the server, per router. */
const SERVER_CACHE_SIZE = 100_000;

export class ShardRouter {
  readonly route: HypertableRoute;
  readonly #hash: TextHasher;
  readonly #server: Queryable | undefined;
  readonly #cache = new Map<string, Hash64 | KeyValueError>();

  /**
   * `server`: a connection with the session's DateStyle, TimeZone and IntervalStyle, for keys the
   * hashers cannot read; without one, such keys are errors.
   */
  constructor(route: HypertableRoute, session: RoutingSession, server?: Queryable) {
    this.route = route;
    this.#hash = textHasher(route.key, session.timeZone);
    this.#server = server;
  }

  /**
   * The partition index of a key (null: SQL NULL), -1 when no partition takes it, or undefined
   * when only the server can read the value (call resolve()).
   */
  partitionOf(key: string | null): number | undefined {
    if (key === null) return partitionForHash(this.route, rowHash(null));
    const h = this.#hash(key) ?? this.#cached(key);
    if (h === undefined) return undefined;
    if (h instanceof KeyValueError) return undefined;
    return partitionForHash(this.route, rowHash(h));
  }

  #cached(key: string): Hash64 | KeyValueError | undefined {
    return this.#cache.get(key);
  }

  /**
   * Partition indexes for keys, asking the server once for every value the hashers cannot read.
   * A value the server rejects comes back as its KeyValueError.
   */
  async partitionsOf(keys: readonly (string | null)[]): Promise<(number | KeyValueError)[]> {
    const out: (number | KeyValueError | undefined)[] = keys.map((k) => this.partitionOf(k));
    const missing = [...new Set(keys.filter((k, i): k is string => out[i] === undefined && k !== null && !this.#cache.has(k)))];
    if (missing.length > 0) await this.#ask(missing);
    return out.map((p, i) => {
      if (p !== undefined) return p;
      const h = this.#cache.get(keys[i] as string);
      if (h === undefined) throw new TypeError('a key was neither hashed nor asked');
      return h instanceof KeyValueError ? h : partitionForHash(this.route, rowHash(h));
    });
  }

  async #ask(values: readonly string[]): Promise<void> {
    if (this.#server === undefined) {
      for (const v of values) this.#remember(v, new KeyValueError(v, `cannot read ${JSON.stringify(v)} as ${this.route.key.typeSql} without a connection to the server`, undefined));
      return;
    }
    const hashes = await serverHashes(this.#server, this.route.key, values);
    values.forEach((v, i) => this.#remember(v, hashes[i] as Hash64 | KeyValueError));
  }

  #remember(value: string, h: Hash64 | KeyValueError): void {
    if (this.#cache.size >= SERVER_CACHE_SIZE) {
      // Map keeps insertion order: the oldest entry goes.
      const oldest = this.#cache.keys().next();
      if (oldest.done !== true) this.#cache.delete(oldest.value);
    }
    this.#cache.set(value, h);
  }

  partition(index: number): Partition {
    const p = this.route.partitions[index];
    if (p === undefined) throw new RangeError(`no partition ${index}`);
    return p;
  }
}
