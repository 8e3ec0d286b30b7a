/**
 * `load`: files (or streams) into a distributed hypertable through routed COPY, all of them in one
 * routed transaction: every row is committed on its shard's data node, or none anywhere.
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { performance } from 'node:perf_hooks';
import type { Readable } from 'node:stream';
import { HypershardError, IngestRowError } from '../errors.js';
import type { ClusterSpec } from '../spec/schema.js';
import { IngestCluster, type IngestOptions } from './cluster.js';
import { RoutedCopy, type RoutedCopyOptions } from './copy.js';
import { resolveHypertable } from './copyFrom.js';
import type { ClientSettings } from './settings.js';
import type { CommitOutcome } from './transaction.js';

export interface LoadInput {
  /** For messages: a file path, or `-` / a label for a stream. */
  readonly name: string;
  /** A path to read, or a stream of the input's bytes. */
  readonly source: string | Readable;
}

export interface LoadProgress {
  readonly rows: number;
  readonly bytes: number;
  /** Sum of the input files' sizes; undefined when a stream is read. */
  readonly totalBytes: number | undefined;
}

export interface LoadOptions extends RoutedCopyOptions, IngestOptions {
  /** The hypertable: its name or `schema.name`, as in the spec. */
  readonly table: string;
  readonly inputs: readonly LoadInput[];
  /** The session settings values are read under. @default the access node's defaults for the spec's user */
  readonly settings?: Partial<ClientSettings>;
  /** Called as input is read, at most a few times a second. */
  readonly onProgress?: (progress: LoadProgress) => void;
}

export interface LoadResult {
  readonly rows: number;
  readonly seconds: number;
  readonly rowsPerSecond: number;
  /** Rows per data node. */
  readonly perNode: Readonly<Record<string, number>>;
  readonly commit: CommitOutcome;
}

/**
 * @throws IngestRowError (a bad row: its file, line and reason; nothing committed), RoutingError
 * (the table cannot be routed), CommitError, NodeConnectionError, SecretError.
 */
export async function load(spec: ClusterSpec, specFile: string, options: LoadOptions): Promise<LoadResult> {
  const started = performance.now();
  const table = resolveHypertable(spec, options.table);
  if (options.inputs.length === 0) throw new HypershardError('USAGE', 'no input to load');
  const sizes = await Promise.all(options.inputs.map(async (i) => (typeof i.source === 'string' ? (await stat(i.source)).size : undefined)));
  const totalBytes = sizes.every((s): s is number => s !== undefined) ? sizes.reduce((a, b) => a + b, 0) : undefined;
  const cluster = await IngestCluster.open(spec, specFile, { ...options, applicationName: 'hypershard-load' });
  try {
    const tx = await cluster.begin(options.settings === undefined ? {} : { settings: options.settings });
    try {
      let bytes = 0;
      let rows = 0;
      let last = 0;
      const perNode: Record<string, number> = {};
      for (const input of options.inputs) {
        const copy = await RoutedCopy.open(tx, table, options);
        const stream = typeof input.source === 'string' ? createReadStream(input.source, { highWaterMark: 256 * 1024 }) : input.source;
        try {
          for await (const chunk of stream) {
            const buf = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer);
            await copy.write(buf);
            bytes += buf.length;
            const now = performance.now();
            if (options.onProgress !== undefined && now - last > 200) {
              last = now;
              options.onProgress({ rows: rows + copy.stats.rows, bytes, totalBytes });
            }
          }
          await copy.finish();
        } catch (error) {
          throw options.inputs.length > 1 && error instanceof IngestRowError ? new IngestRowError(error.line, `${input.name}: ${error.reason}`, { column: error.column, node: error.node, cause: error }) : error;
        }
        rows += copy.stats.rows;
        for (const [node, n] of Object.entries(copy.stats.perNode)) perNode[node] = (perNode[node] ?? 0) + n;
      }
      options.onProgress?.({ rows, bytes, totalBytes });
      const commit = await tx.commit();
      const seconds = (performance.now() - started) / 1000;
      return { rows, seconds, rowsPerSecond: rows / Math.max(seconds, 1e-9), perNode, commit };
    } catch (error) {
      await tx.abort(error instanceof Error ? error.message : String(error));
      throw error;
    }
  } finally {
    await cluster.close();
  }
}
