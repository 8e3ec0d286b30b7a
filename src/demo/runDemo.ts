/**
 * `demo`: the whole path on a fresh machine. Starts an embedded cluster, generates and applies
 * the example hypertable, loads device metrics through the access node, asks typical questions
 * and reports their answers and where the work ran (from EXPLAIN), then tears everything down.
 */
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import pg from 'pg';
import { startDevCluster, stopDevCluster, type DevCluster } from '../dev/cluster.js';
import type { PostgresSource } from '../dev/binaries.js';
import { writeDevSpec } from '../dev/devSpec.js';
import { HypershardError } from '../errors.js';
import { auditQuery, type AuditedQuery } from '../audit/audit.js';
import { generateMigrations } from '../migrations/files.js';
import { apply, type ApplyResult } from '../nodes/apply.js';
import { clientConfig } from '../nodes/connect.js';
import { planLayout } from '../plan/layout.js';
import { loadSpec } from '../spec/load.js';
import type { ClusterSpec, SecretRef } from '../spec/schema.js';
import { deviceMetrics, rowCount } from './devices.js';
import { metadataFromLayout } from '../rewrite/metadata.js';
import type { Rewrite } from '../rewrite/model.js';
import { rewriteSql } from '../rewrite/rewrite.js';
import { sessionSettings } from '../rewrite/session.js';
import { demoQueries } from './queries.js';

export interface DemoOptions {
  readonly dataNodes?: number;
  readonly devices?: number;
  readonly hours?: number;
  readonly intervalSeconds?: number;
  readonly postgres?: PostgresSource;
  /** Cluster folder; default a new temporary one, removed at the end. */
  readonly dir?: string;
  /** Leave the cluster running (then `dev down --dir` stops it). */
  readonly keep?: boolean;
  readonly onEvent?: (event: DemoEvent) => void;
}

export type DemoEvent =
  | { readonly type: 'step'; readonly message: string }
  | { readonly type: 'load-start'; readonly total: number }
  | { readonly type: 'load'; readonly done: number; readonly total: number };

export interface DemoQueryResult {
  readonly title: string;
  readonly sql: string;
  readonly rows: readonly Record<string, unknown>[];
  readonly ms: number;
  /** Where the work ran and what blocked pushdown, from EXPLAIN ANALYZE. */
  readonly audit: AuditedQuery;
  /** The same query through hypershard's rewriter, when a rewrite applied. */
  readonly rewritten?: {
    readonly sql: string;
    readonly rewrites: readonly Rewrite[];
    readonly ms: number;
    readonly audit: AuditedQuery;
    /** Run in the same transaction as the original (one now()), and compared. */
    readonly sameAnswer: boolean;
  };
}

export interface DemoReport {
  readonly cluster: {
    readonly postgres: string;
    readonly accessNode: string;
    readonly dataNodes: readonly string[];
    readonly dir: string;
    readonly kept: boolean;
    /** How to reach the cluster left running (`keep`), and how to stop it. */
    readonly connect?: DemoConnection;
  };
  readonly apply: ApplyResult;
  readonly load: { readonly rows: number; readonly seconds: number; readonly rowsPerSecond: number };
  readonly queries: readonly DemoQueryResult[];
}

/** What a person needs to use a cluster the demo left running. */
export interface DemoConnection {
  readonly specFile: string;
  /** Every node as the CLI reaches it: the superuser `postgres`, no password on loopback. */
  readonly nodes: readonly { readonly name: string; readonly role: 'access' | 'data'; readonly url: string }[];
  /** The spec's roles on the access node: a login role's URL and the file holding its password. */
  readonly roles: readonly { readonly name: string; readonly login: boolean; readonly url?: string; readonly passwordFile?: string }[];
  /** Every secret file the spec references (mode 0600), and whose password it is. */
  readonly secrets: readonly { readonly file: string; readonly of: string }[];
  /** The gateway in front of the access node (any client gets the rewrites), and a login role's URL through it. */
  readonly gateway: { readonly command: string; readonly url: string; readonly passwordFile?: string };
  /** The command that stops every server and removes the data. */
  readonly stop: string;
}

/** The port the demo's gateway line suggests: the gateway's own default. */
const GATEWAY_PORT = 6432;

const BATCH_ROWS = 5000;

export async function runDemo(options: DemoOptions = {}): Promise<DemoReport> {
  const step = (message: string): void => options.onEvent?.({ type: 'step', message });
  const dir = options.dir ?? (await mkdtemp(join(tmpdir(), 'hypershard-demo-')));
  // As root the servers run as an unprivileged user, who must be able to enter the folder.
  if (options.dir === undefined) await chmod(dir, 0o755);
  const clusterDir = join(dir, 'cluster');
  let cluster: DevCluster | undefined;
  try {
    step(`starting an access node and ${options.dataNodes ?? 2} data nodes`);
    cluster = await startDevCluster({ dir: clusterDir, dataNodes: options.dataNodes ?? 2, postgres: options.postgres ?? { kind: 'embedded' } });
    for (const note of cluster.notes) step(`note: ${note}`);
    const hours = options.hours ?? 24;
    const specFile = await writeDevSpec(cluster, { chunksBehind: Math.ceil(hours / 24) + 1 });
    const { spec, file } = await loadSpec(specFile);
    step('generating migrations');
    await generateMigrations(spec, file);
    step('applying: data nodes, then the access node');
    const applied = await apply(spec, file);
    if (!applied.ok) throw new HypershardError('DEMO', `apply failed: ${applied.nodes.map((n) => `${n.node} ${n.status}${n.error === undefined ? '' : `: ${n.error.message}`}`).join('; ')}`);

    const client = new pg.Client(clientConfig(cluster.accessNode.url));
    await client.connect();
    try {
      const intervalSeconds = options.intervalSeconds ?? 10;
      const end = new Date(Math.floor(Date.now() / (intervalSeconds * 1000)) * intervalSeconds * 1000);
      const window = { start: new Date(end.getTime() - hours * 3600_000), end };
      const load = await loadMetrics(client, { devices: options.devices ?? 100, ...window, intervalSeconds }, options.onEvent);
      step('analyzing (foreign tables get statistics only from ANALYZE)');
      await client.query('ANALYZE metrics');
      const layout = planLayout(spec);
      const metadata = metadataFromLayout(layout);
      const { timeZone, searchPath } = await sessionSettings(client);
      const queries: DemoQueryResult[] = [];
      for (const q of demoQueries(options.devices ?? 100)) {
        step(`query: ${q.title}`);
        const params = q.params(window);
        const rewrite = rewriteSql(q.sql, metadata, { timeZone, searchPath });
        await client.query('BEGIN READ ONLY');
        const original = await timedQuery(client, q.sql, params);
        const rewritten = rewrite.changed ? await timedQuery(client, rewrite.sql, params) : undefined;
        await client.query('COMMIT');
        const audit = await auditQuery(client, q.sql, { params, analyze: true, layout });
        queries.push({
          title: q.title,
          sql: q.sql,
          rows: original.rows,
          ms: original.ms,
          audit,
          ...(rewritten === undefined
            ? {}
            : {
                rewritten: {
                  sql: rewrite.sql,
                  rewrites: rewrite.rewrites,
                  ms: rewritten.ms,
                  audit: await auditQuery(client, rewrite.sql, { params, analyze: true, layout }),
                  sameAnswer: isDeepStrictEqual(original.rows, rewritten.rows),
                },
              }),
        });
      }
      return {
        cluster: {
          postgres: `PostgreSQL ${cluster.postgres.version} (${cluster.postgres.source})`,
          accessNode: cluster.accessNode.url,
          dataNodes: cluster.dataNodes.map((n) => n.name),
          dir: clusterDir,
          kept: options.keep === true,
          ...(options.keep === true ? { connect: connection(cluster, spec, file) } : {}),
        },
        apply: applied,
        load,
        queries,
      };
    } finally {
      await client.end();
    }
  } finally {
    if (options.keep !== true) {
      step('stopping the cluster');
      await stopDevCluster(clusterDir);
      if (options.dir === undefined) await rm(dir, { recursive: true, force: true });
    }
  }
}

function connection(cluster: DevCluster, spec: ClusterSpec, specFile: string): DemoConnection {
  const secretFile = (ref: SecretRef | undefined): string | undefined => (ref !== undefined && 'file' in ref ? resolve(dirname(specFile), ref.file) : undefined);
  const asRole = (role: string, port?: number): string => {
    const url = new URL(cluster.accessNode.url);
    url.username = role;
    if (port !== undefined) url.port = String(port);
    return url.toString();
  };
  const login = spec.roles.find((r) => r.login);
  const loginPassword = secretFile(login?.password);
  return {
    specFile,
    nodes: [{ name: cluster.accessNode.name, role: 'access', url: cluster.accessNode.url }, ...cluster.dataNodes.map((n) => ({ name: n.name, role: 'data' as const, url: n.url }))],
    roles: spec.roles.map((r) => {
      const passwordFile = secretFile(r.password);
      return { name: r.name, login: r.login, ...(r.login ? { url: asRole(r.name) } : {}), ...(passwordFile === undefined ? {} : { passwordFile }) };
    }),
    secrets: [
      { file: secretFile(spec.fdw.serviceRole.password), of: `the FDW service role ${spec.fdw.serviceRole.name} (the access node logs in to the data nodes with it)` },
      ...spec.roles.map((r) => ({ file: secretFile(r.password), of: `role ${r.name}` })),
    ].filter((s): s is { file: string; of: string } => s.file !== undefined),
    gateway: {
      command: `hypershard gateway -c ${specFile} --port ${GATEWAY_PORT}`,
      url: asRole(login?.name ?? 'postgres', GATEWAY_PORT),
      ...(loginPassword === undefined ? {} : { passwordFile: loginPassword }),
    },
    stop: `hypershard dev down --dir ${cluster.dir}`,
  };
}

async function timedQuery(client: pg.Client, sql: string, params: unknown[]): Promise<{ rows: Record<string, unknown>[]; ms: number }> {
  const started = performance.now();
  const { rows } = await client.query<Record<string, unknown>>(sql, params);
  return { rows, ms: performance.now() - started };
}

/** Batched INSERTs through the access node (one array per column), as an application would write. */
async function loadMetrics(
  client: pg.Client,
  data: { devices: number; start: Date; end: Date; intervalSeconds: number },
  onEvent: DemoOptions['onEvent'],
): Promise<DemoReport['load']> {
  const total = rowCount({ ...data, batchRows: BATCH_ROWS });
  onEvent?.({ type: 'load-start', total });
  const started = performance.now();
  let done = 0;
  for (const batch of deviceMetrics({ ...data, batchRows: BATCH_ROWS })) {
    await client.query(
      `INSERT INTO metrics (time, device_id, cpu, memory, temperature)
       SELECT * FROM unnest($1::timestamptz[], $2::int[], $3::float8[], $4::float8[], $5::float8[])`,
      [batch.time, batch.deviceId, batch.cpu, batch.memory, batch.temperature],
    );
    done += batch.time.length;
    onEvent?.({ type: 'load', done, total });
  }
  const seconds = (performance.now() - started) / 1000;
  return { rows: done, seconds, rowsPerSecond: Math.round(done / seconds) };
}
