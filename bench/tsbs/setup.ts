/**
 * The two targets of the benchmark, on one dev cluster:
 *
 *   distributed  `public.cpu`, a distributed hypertable made by hypershard itself: a spec like
 *                `dev up` writes, `generateMigrations`, `apply`. Shards = 2 × data nodes.
 *   single       `single.cpu`, a plain table on the access node: same server, same machine,
 *                same indexes, so the ratio isolates what distribution costs or gains.
 *
 * Both get a plain `tags` table (`public.tags` and `single.tags`): hypershard has no reference
 * tables yet, so TSBS's host lookups run on the access node either way.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import type pg from 'pg';
import { stringify } from 'yaml';
import type { DevCluster } from '../../src/dev/cluster.js';
import { generateMigrations } from '../../src/migrations/files.js';
import { apply } from '../../src/nodes/apply.js';
import { planLayout, type ClusterLayout } from '../../src/plan/layout.js';
import { loadSpec } from '../../src/spec/load.js';
import type { ClusterSpec } from '../../src/spec/schema.js';
import { METRICS, TAG_COLUMNS, tagRows } from './generate.js';

export interface Tables {
  readonly cpu: string;
  readonly tags: string;
}

export const SINGLE: Tables = { cpu: 'single.cpu', tags: 'single.tags' };
export const DISTRIBUTED: Tables = { cpu: 'public.cpu', tags: 'public.tags' };

export interface Topology {
  readonly spec: ClusterSpec;
  readonly specFile: string;
  readonly layout: ClusterLayout;
  readonly shards: number;
}

const SECRETS_DIR = '.secrets';

/**
 * Writes the spec (data nodes reached through `fdwEndpoints` when given: the latency proxies),
 * generates its migrations and applies them.
 */
export async function createDistributedHypertable(
  cluster: DevCluster,
  workDir: string,
  options: {
    hours: number;
    /** Shards of each hypertable; default 2 × data nodes. */
    shards?: number;
    /** About how many chunks the data spans per shard (interval = hours / chunks, to the nearest minute); default 1-day chunks. */
    chunks?: number;
    fdwEndpoints?: readonly { host: string; port: number }[];
    /** Also the spec's `url` of each data node goes through its endpoint: routed loads then pay the latency too. */
    loaderThroughEndpoints?: boolean;
    /** More hypertables shaped like `cpu` (routed and gateway ingest targets, compared with it shard by shard). */
    twins?: readonly string[];
    /** `public.tags` as a hypershard reference table (copied to every data node) instead of a plain table. */
    referenceTags?: boolean;
    /** Per-shard lastpoint views (`lastpoint: true`) on the hypertables. */
    lastpoint?: boolean;
    /** Node views (`nodeViews: true`) on the hypertables. */
    nodeViews?: boolean;
  },
): Promise<Topology> {
  const specDir = path.join(workDir, 'spec');
  await fs.mkdir(path.join(specDir, SECRETS_DIR), { recursive: true, mode: 0o700 });
  const secretFile = path.join(SECRETS_DIR, 'fdw-service-password');
  await fs.writeFile(path.join(specDir, secretFile), `${randomBytes(18).toString('base64url')}\n`, { mode: 0o600 });

  const shards = options.shards ?? 2 * cluster.dataNodes.length;
  // Chunk intervals are whole minutes: about `chunks` of them span the data.
  const chunkSeconds = options.chunks === undefined ? 86_400 : 60 * Math.max(1, Math.round((options.hours * 60) / options.chunks));
  const spec = {
    version: 1,
    accessNode: { name: cluster.accessNode.name, url: cluster.accessNode.url },
    dataNodes: cluster.dataNodes.map((n, i) => {
      const endpoint = options.fdwEndpoints?.[i];
      const url = endpoint !== undefined && options.loaderThroughEndpoints === true ? `postgres://${n.user}@${endpoint.host}:${endpoint.port}/${n.database}` : n.url;
      return { name: n.name, url, ...(endpoint === undefined ? {} : { fdw: { host: endpoint.host, port: endpoint.port } }) };
    }),
    fdw: {
      serviceRole: { name: 'hypershard_fdw', password: { file: secretFile } },
      fetchSize: 10_000,
      batchSize: 1_000,
    },
    hypertables: ['cpu', ...(options.twins ?? [])].map((name) => ({
        name,
        columns: [
          { name: 'time', type: 'timestamptz', notNull: true },
          { name: 'tags_id', type: 'integer', notNull: true },
          ...METRICS.map((m) => ({ name: m, type: 'double precision' })),
        ],
        timeColumn: 'time',
        chunkInterval: `${chunkSeconds} seconds`,
        // Chunks are made around the apply time; the data ends now, so cover all of it, plus
        // one for a boundary. Anything outside would land in the default chunk.
        chunks: { behind: Math.ceil((options.hours * 3600) / chunkSeconds) + 1, ahead: 1 },
        spaceColumn: 'tags_id',
        shards,
        // TSBS's default indexes (--partition-index, --time-index).
        indexes: [{ columns: ['tags_id', { column: 'time', order: 'desc' }] }, { columns: [{ column: 'time', order: 'desc' }] }],
        ...(options.lastpoint === true ? { lastpoint: true } : {}),
        ...(options.nodeViews === true ? { nodeViews: true } : {}),
      })),
    ...(options.referenceTags === true
      ? { referenceTables: [{ name: 'tags', columns: [{ name: 'id', type: 'integer', notNull: true }, ...TAG_COLUMNS.map((c) => ({ name: c, type: 'text', notNull: true }))], primaryKey: ['id'] }] }
      : {}),
  };
  const file = path.join(specDir, 'hypershard.yaml');
  await fs.writeFile(file, `# TSBS benchmark cluster, written by bench/tsbs/setup.ts\n${stringify(spec)}`);

  const loaded = await loadSpec(file);
  await generateMigrations(loaded.spec, loaded.file);
  const result = await apply(loaded.spec, loaded.file);
  if (!result.ok) {
    throw new Error(
      `apply failed: ${result.nodes.map((n) => `${n.node} ${n.status}${n.error === undefined ? '' : `: ${n.error.message}${n.error.statement === undefined ? '' : ` (${n.error.statement})`}`}`).join('; ')}`,
    );
  }
  return { spec: loaded.spec, specFile: loaded.file, layout: planLayout(loaded.spec), shards };
}

const CPU_COLUMNS_DDL = ['time timestamptz NOT NULL', 'tags_id integer NOT NULL', ...METRICS.map((m) => `${m} double precision`)].join(', ');

/** The single-node table, with the indexes the data nodes get from the spec (before loading, as TSBS). */
export async function createSingleNodeTable(access: pg.Client): Promise<void> {
  await access.query(`CREATE SCHEMA single`);
  await access.query(`CREATE TABLE ${SINGLE.cpu} (${CPU_COLUMNS_DDL})`);
  await access.query(`CREATE INDEX ON ${SINGLE.cpu} (tags_id, time DESC)`);
  await access.query(`CREATE INDEX ON ${SINGLE.cpu} (time DESC)`);
}

/** TSBS's `tags` table, in both schemas, with the same rows (`public.tags` made by apply when a reference table). */
export async function createTags(access: pg.Client, hosts: number, seed: number, options: { referenceTags?: boolean } = {}): Promise<void> {
  const rows = tagRows(hosts, seed);
  for (const t of [SINGLE, DISTRIBUTED]) {
    if (!(options.referenceTags === true && t === DISTRIBUTED)) await access.query(`CREATE TABLE ${t.tags} (id integer PRIMARY KEY, ${TAG_COLUMNS.map((c) => `${c} text NOT NULL`).join(', ')})`);
    await access.query(`CREATE INDEX ON ${t.tags} (hostname)`);
    await access.query(
      `INSERT INTO ${t.tags} (id, ${TAG_COLUMNS.join(', ')})
       SELECT * FROM unnest($1::int[], ${TAG_COLUMNS.map((_, i) => `$${i + 2}::text[]`).join(', ')})`,
      [rows.map((r) => r.id), ...TAG_COLUMNS.map((c) => rows.map((r) => r.values[c]))],
    );
  }
}
