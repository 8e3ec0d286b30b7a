/**
 * `copyFrom()`: a Writable that takes COPY input (text, CSV or binary, as a client would send it
 * to COPY … FROM STDIN) for a distributed hypertable and writes it straight to the data nodes,
 * committed on all of them when the stream ends, on none when it fails or is destroyed.
 *
 *   const cluster = await IngestCluster.open(spec, specFile);
 *   const stream = copyFrom(cluster, { table: 'metrics', format: 'csv', header: true });
 *   await pipeline(createReadStream('metrics.csv'), stream);
 *   const { rows, perNode } = await stream.result;
 */
import { performance } from 'node:perf_hooks';
import { Writable } from 'node:stream';
import { RoutingError } from '../errors.js';
import type { QualifiedName } from '../plan/layout.js';
import type { ClusterSpec } from '../spec/schema.js';
import type { IngestCluster } from './cluster.js';
import { RoutedCopy, type RoutedCopyOptions } from './copy.js';
import type { CommitOutcome, RoutedTransaction, TransactionOptions } from './transaction.js';

export interface CopyFromOptions extends RoutedCopyOptions, TransactionOptions {
  /** The hypertable: its name or `schema.name`, as in the spec. */
  readonly table: string | QualifiedName;
  /**
   * Write inside this transaction; the caller commits it (several COPYs, or a gateway client's
   * transaction block). @default a transaction of its own, committed when the stream ends
   */
  readonly transaction?: RoutedTransaction;
}

export interface CopyFromResult {
  readonly rows: number;
  readonly bytes: number;
  readonly seconds: number;
  readonly rowsPerSecond: number;
  /** Rows written to each data node. */
  readonly perNode: Readonly<Record<string, number>>;
  /** How it committed; undefined when the caller's transaction commits. */
  readonly commit: CommitOutcome | undefined;
}

export interface CopyFromStream extends Writable {
  /** Settles when the rows are committed (or the load failed: nothing was committed). */
  readonly result: Promise<CopyFromResult>;
  /** Rows read so far. */
  readonly rows: number;
}

/** The spec's hypertable `name` (or `schema.name`) names. @throws RoutingError */
export function resolveHypertable(spec: ClusterSpec, table: string | QualifiedName): QualifiedName {
  if (typeof table !== 'string') return table;
  const h = spec.hypertables.find((x) => x.name === table || `${x.schema}.${x.name}` === table);
  if (h === undefined) {
    throw new RoutingError(`${JSON.stringify(table)} is not a hypertable of the spec (${spec.hypertables.map((x) => `${x.schema}.${x.name}`).join(', ') || 'it has none'})`);
  }
  return { schema: h.schema, name: h.name };
}

export function copyFrom(cluster: IngestCluster, options: CopyFromOptions): CopyFromStream {
  const started = performance.now();
  let tx: RoutedTransaction | undefined;
  let copy: RoutedCopy | undefined;
  let settle: { resolve: (r: CopyFromResult) => void; reject: (e: unknown) => void } | undefined;
  const result = new Promise<CopyFromResult>((resolve, reject) => (settle = { resolve, reject }));
  // Nobody may await it (the stream's own error events report too).
  result.catch(() => undefined);
  const own = options.transaction === undefined;

  const open = async (): Promise<RoutedCopy> => {
    if (copy !== undefined) return copy;
    const table = resolveHypertable(cluster.spec, options.table);
    tx = options.transaction ?? (await cluster.begin(options));
    copy = await RoutedCopy.open(tx, table, options);
    return copy;
  };
  let opening: Promise<RoutedCopy> | undefined;
  const ready = (): Promise<RoutedCopy> => (opening ??= open());

  const stream = new Writable({
    highWaterMark: 1024 * 1024,
    write(chunk: Buffer, _encoding, callback) {
      ready()
        .then((c) => c.write(chunk))
        .then(() => callback(), callback);
    },
    final(callback) {
      (async () => {
        const c = await ready();
        let commit: CommitOutcome | undefined;
        if (own) commit = await (tx as RoutedTransaction).commit();
        else await c.finish();
        const seconds = (performance.now() - started) / 1000;
        const stats = c.stats;
        settle?.resolve({ rows: stats.rows, bytes: stats.bytes, seconds, rowsPerSecond: stats.rows / Math.max(seconds, 1e-9), perNode: stats.perNode, commit });
      })().then(() => callback(), callback);
    },
    destroy(error, callback) {
      void (async () => {
        if (own && tx !== undefined) await tx.abort(error?.message ?? 'the COPY stream was destroyed');
        else if (copy !== undefined) await copy.abandon(error?.message ?? 'the COPY stream was destroyed');
      })().finally(() => {
        settle?.reject(error ?? new RoutingError('the COPY stream was destroyed before it ended; nothing was committed'));
        callback(error);
      });
    },
  });
  Object.defineProperty(stream, 'result', { value: result });
  Object.defineProperty(stream, 'rows', { get: () => copy?.stats.rows ?? 0 });
  return stream as CopyFromStream;
}
