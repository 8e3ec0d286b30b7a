/**
 * Every statement hypershard sends is bounded by the node answering, not by how long it runs: a
 * shard copy may take an hour, a frozen node must not take forever. While a statement is
 * outstanding for longer than the probe interval, the node is probed on a fresh connection, asking
 * what our backend is doing. A node whose probe gets no answer within the connect timeout is
 * declared unresponsive: the statement fails with `NodeUnresponsiveError`, naming the node, what
 * ran and for how long, and the connection is dropped.
 *
 * On the access node a statement may instead wait on a data node through postgres_fdw (a query, an
 * INSERT routed to a shard, ANALYZE of a hypertable, a shard copy). The access node then answers
 * its probe; when it shows our backend waiting in an extension (postgres_fdw's waits) or in a
 * blocking libpq call, the data nodes (`peers`) are probed too, and one that does not answer is
 * named. Our statement on the access node is then cancelled (terminated if that does not stop
 * it), so it stops holding locks; the error says whether it stopped.
 */
import pg from 'pg';
import { HypershardError, NodeConnectionError, NodeUnresponsiveError } from '../errors.js';
import type { NodeTarget } from './targets.js';

/** How long a statement runs before its node is probed, and then between probes. */
export const DEFAULT_PROBE_INTERVAL_MS = 5_000;
/** How long `end()` waits for the server to close the connection before dropping it. */
const END_GRACE_MS = 2_000;
/** How long a cancelled (then terminated) backend on the access node is given to stop. */
const STOP_WAIT_MS = 2_000;
const TICK_MS = 1_000;

export interface LivenessOptions {
  /** A probe that gets no answer within this declares the node unresponsive (the connect timeout). */
  readonly probeTimeoutMs: number;
  /** @default 5000 */
  readonly intervalMs?: number;
  /** Nodes this node's statements may wait on (the data nodes, for the access node). */
  readonly peers?: readonly NodeTarget[];
  /** Connection settings for probes (the URL, password and TLS of the supervised client). */
  readonly config: (target: NodeTarget) => pg.ClientConfig;
}

interface Outstanding {
  readonly text: string;
  readonly since: number;
}

type ProbeAnswer =
  | { readonly kind: 'silent'; readonly why: string }
  | { readonly kind: 'answered'; readonly backend?: { readonly state: string | null; readonly waitEventType: string | null; readonly waitEvent: string | null } };

/**
 * Supervises `client` (connected to `target`): its `query` rejects with NodeUnresponsiveError once
 * the node (or a peer it waits on) stops answering, and its `end` is bounded. Returns the stop
 * function (also called by `end`).
 */
export function superviseClient(client: pg.Client, target: NodeTarget, options: LivenessOptions): () => void {
  const intervalMs = options.intervalMs ?? DEFAULT_PROBE_INTERVAL_MS;
  const outstanding = new Set<Outstanding>();
  let failure: NodeUnresponsiveError | undefined;
  /** Set while a trip is under way: the final error, once our backend's fate is known. */
  let tripping: Promise<NodeUnresponsiveError> | undefined;
  let probing = false;
  let lastProbe = 0;

  const send = client.query.bind(client) as (...args: unknown[]) => unknown;
  const track = (args: unknown[]): unknown => {
    if (failure !== undefined) return rejectWith(args, failure);
    if (tripping !== undefined) return rejectWith(args, tripping);
    const entry: Outstanding = { text: statementText(args[0]), since: Date.now() };
    outstanding.add(entry);
    const done = (): void => void outstanding.delete(entry);
    // Callback style: the callback is the last function argument.
    const callbackAt = args.findIndex((a, i) => i > 0 && typeof a === 'function');
    if (callbackAt > 0) {
      const callback = args[callbackAt] as (error: unknown, result?: unknown) => void;
      args[callbackAt] = (error: unknown, result?: unknown) => {
        done();
        if (error === null || error === undefined || failure !== undefined || tripping === undefined) callback(error === null || error === undefined ? error : (failure ?? lost(error, entry)), result);
        else void tripping.then((final) => callback(final));
      };
    }
    const result = send(...args);
    if (result instanceof Promise) {
      return result.then(
        (value: unknown) => {
          done();
          return value;
        },
        async (error: unknown) => {
          done();
          throw failure ?? (tripping === undefined ? lost(error, entry) : await tripping);
        },
      );
    }
    // A Submittable (cursor, COPY stream) ends with 'end' or 'error'.
    const events = result as { once?: (event: string, listener: () => void) => void } | undefined;
    if (callbackAt < 0 && typeof events?.once === 'function') {
      events.once('end', done);
      events.once('error', done);
      events.once('finish', done);
    } else if (callbackAt < 0) {
      done();
    }
    return result;
  };
  (client as unknown as { query: (...args: unknown[]) => unknown }).query = (...args: unknown[]) => track(args);
  /** A connection that broke under a statement (the node crashed, was killed or restarted) names the node. */
  const lost = (error: unknown, entry: Outstanding): unknown =>
    connectionLost(error) ? new NodeConnectionError(target.name, `connection lost while running "${entry.text}" (after ${((Date.now() - entry.since) / 1000).toFixed(1)} s): ${(error as Error).message}`, { cause: error }) : error;

  const trip = async (error: NodeUnresponsiveError, terminate: boolean): Promise<void> => {
    if (failure !== undefined || tripping !== undefined) return;
    // Terminating our backend breaks the connection: statements failing meanwhile wait for the final error.
    tripping = (async () => {
      const pid = backendPid(client);
      const ended = terminate ? await stopBackend(options.config(target), pid, options.probeTimeoutMs) : undefined;
      return ended === undefined || pid === undefined ? error : error.withBackend(pid, ended);
    })();
    failure = await tripping;
    dropConnection(client);
  };

  const tick = async (): Promise<void> => {
    if (probing || failure !== undefined || outstanding.size === 0) return;
    const oldest = Math.min(...[...outstanding].map((o) => o.since));
    const now = Date.now();
    if (now - oldest < intervalMs || now - lastProbe < intervalMs) return;
    probing = true;
    try {
      const statement = [...outstanding].find((o) => o.since === oldest) ?? { text: '', since: oldest };
      const answer = await probe(options.config(target), options.probeTimeoutMs, backendPid(client));
      if (outstanding.size === 0) return;
      if (answer.kind === 'silent') {
        await trip(new NodeUnresponsiveError({ node: target.name, statement: statement.text, runningMs: Date.now() - statement.since, probeTimeoutMs: options.probeTimeoutMs, why: answer.why }), false);
        return;
      }
      const backend = answer.backend;
      const mayWaitOnPeer = backend !== undefined && backend.state === 'active' && (backend.waitEventType === null || backend.waitEventType === 'Extension');
      if (!mayWaitOnPeer || options.peers === undefined || options.peers.length === 0) return;
      const peers = await Promise.all(options.peers.map(async (peer) => ({ peer, answer: await probe(options.config(peer), options.probeTimeoutMs, null) })));
      const silent = peers.filter((p) => p.answer.kind === 'silent');
      const first = silent[0];
      if (first === undefined || outstanding.size === 0) return;
      await trip(
        new NodeUnresponsiveError({
          node: first.peer.name,
          also: silent.slice(1).map((p) => p.peer.name),
          via: target.name,
          statement: statement.text,
          runningMs: Date.now() - statement.since,
          probeTimeoutMs: options.probeTimeoutMs,
          why: first.answer.kind === 'silent' ? first.answer.why : '',
        }),
        true,
      );
    } finally {
      lastProbe = Date.now();
      probing = false;
    }
  };

  const timer = setInterval(() => void tick().catch(() => undefined), Math.min(TICK_MS, intervalMs));
  timer.unref();
  const stop = (): void => clearInterval(timer);

  const end = client.end.bind(client) as () => Promise<void>;
  (client as unknown as { end: () => Promise<void> }).end = async () => {
    stop();
    // A node that froze after the last statement never closes its side; do not wait for it.
    let timeout: NodeJS.Timeout | undefined;
    await Promise.race([
      end().catch(() => undefined),
      new Promise<void>((resolve) => {
        timeout = setTimeout(() => {
          dropConnection(client);
          resolve();
        }, END_GRACE_MS);
        timeout.unref();
      }),
    ]);
    clearTimeout(timeout);
  };
  return stop;
}

/** The server process of a connection (pg keeps it from the BackendKeyData message, untyped). */
function backendPid(client: pg.Client): number | undefined {
  return (client as unknown as { processID?: number | null }).processID ?? undefined;
}

/** The statement of a `query` call, for messages (shortened). */
function statementText(config: unknown): string {
  const text = typeof config === 'string' ? config : typeof (config as { text?: unknown } | null)?.text === 'string' ? (config as { text: string }).text : '';
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > 120 ? `${flat.slice(0, 117)}...` : flat;
}

/** Fails a `query` call at once, in the style it was made (callback, Submittable or promise). */
function rejectWith(args: unknown[], failure: Error | Promise<Error>): unknown {
  const error = Promise.resolve(failure);
  const callback = args.find((a, i) => i > 0 && typeof a === 'function') as ((error: unknown) => void) | undefined;
  if (callback !== undefined) {
    void error.then((e) => callback(e));
    return undefined;
  }
  const submittable = args[0] as { handleError?: (error: Error) => void; submit?: unknown } | undefined;
  if (typeof submittable?.submit === 'function' && typeof submittable.handleError === 'function') {
    void error.then((e) => submittable.handleError?.(e));
    return submittable;
  }
  return error.then((e) => Promise.reject(e));
}

/** Drops the socket without a goodbye: a frozen peer would never acknowledge one. */
export function dropConnection(client: pg.Client): void {
  const stream = (client as unknown as { connection?: { stream?: { destroy?: () => void } } }).connection?.stream;
  stream?.destroy?.();
}

/**
 * Connects afresh and, given our backend's pid, reads what it is doing. `silent` only when the
 * node gives no answer at all within the bound (or cannot be reached); an error from a live
 * server (too many connections, authentication) is an answer.
 */
async function probe(config: pg.ClientConfig, timeoutMs: number, pid: number | null | undefined): Promise<ProbeAnswer> {
  const client = new pg.Client({ ...config, connectionTimeoutMillis: timeoutMs, application_name: 'hypershard probe' });
  client.on('error', () => undefined);
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<ProbeAnswer>((resolve) => {
    timer = setTimeout(() => resolve({ kind: 'silent', why: `no answer within ${timeoutMs} ms` }), timeoutMs);
  });
  const work = (async (): Promise<ProbeAnswer> => {
    try {
      await client.connect();
      if (pid === null || pid === undefined) {
        await client.query('SELECT 1');
        return { kind: 'answered' };
      }
      const { rows } = await client.query<{ state: string | null; wait_event_type: string | null; wait_event: string | null }>(
        'SELECT state, wait_event_type, wait_event FROM pg_catalog.pg_stat_activity WHERE pid = $1',
        [pid],
      );
      const row = rows[0];
      return { kind: 'answered', ...(row === undefined ? {} : { backend: { state: row.state, waitEventType: row.wait_event_type, waitEvent: row.wait_event } }) };
    } catch (error) {
      const e = error as { code?: string; message?: string };
      if (e.message?.includes('timeout') === true) return { kind: 'silent', why: `no answer within ${timeoutMs} ms` };
      if (['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'ETIMEDOUT', 'ECONNRESET'].includes(e.code ?? '')) return { kind: 'silent', why: `${e.code ?? ''} when connecting` };
      return { kind: 'answered' };
    }
  })();
  try {
    return await Promise.race([work, deadline]);
  } finally {
    clearTimeout(timer);
    dropConnection(client);
  }
}

/**
 * Stops our backend on the access node from waiting on the silent data node (and holding its
 * locks): cancelled first, which ends the statement on every version; terminated only if it is
 * still active after that. True when it stopped, false when it did not, undefined when the access
 * node could not be asked.
 */
async function stopBackend(config: pg.ClientConfig, pid: number | null | undefined, timeoutMs: number): Promise<boolean | undefined> {
  if (pid === null || pid === undefined) return undefined;
  const client = new pg.Client({ ...config, connectionTimeoutMillis: timeoutMs, application_name: 'hypershard probe' });
  client.on('error', () => undefined);
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), timeoutMs + 2 * STOP_WAIT_MS);
  });
  const stillActive = async (): Promise<boolean> =>
    (await client.query(`SELECT 1 FROM pg_catalog.pg_stat_activity WHERE pid = $1 AND state = 'active'`, [pid])).rows.length > 0;
  const work = (async (): Promise<boolean | undefined> => {
    try {
      await client.connect();
      await client.query('SELECT pg_catalog.pg_cancel_backend($1)', [pid]);
      for (let waited = 0; waited < STOP_WAIT_MS && (await stillActive()); waited += 100) await new Promise((r) => setTimeout(r, 100));
      if (!(await stillActive())) return true;
      // pg_terminate_backend(pid, timeout) waits for the exit (PostgreSQL 14+).
      const { rows } = await client.query<{ ended: boolean }>('SELECT pg_catalog.pg_terminate_backend($1, $2) AS ended', [pid, STOP_WAIT_MS]);
      return rows[0]?.ended === true;
    } catch {
      return undefined;
    }
  })();
  try {
    return await Promise.race([work, deadline]);
  } finally {
    clearTimeout(timer);
    dropConnection(client);
  }
}

/**
 * The session itself broke: no SQLSTATE (the socket closed or reset), or the server ending it
 * (57P01 administrator command, 57P02 crash of another process, 57P03 cannot connect now). Errors
 * the access node raises about a data node (08xxx from postgres_fdw) name its FDW server already.
 */
function connectionLost(error: unknown): boolean {
  if (!(error instanceof Error) || error instanceof HypershardError) return false;
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code)) return ['57P01', '57P02', '57P03'].includes(code);
  return code === undefined ? /terminated|closed|ended|not queryable/i.test(error.message) : typeof code === 'string' && ['ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ECONNREFUSED'].includes(code);
}

