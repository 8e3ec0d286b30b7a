/**
 * The example spec: a device-metrics hypertable, a read-only and a writing role. `init` writes it
 * for a user's own cluster and `dev up` for the embedded one, so `generate` and `apply` work at once.
 */
import type { SecretRef } from './schema.js';

export interface ExampleNode {
  readonly name: string;
  readonly url: string;
  readonly password?: SecretRef;
  /** How the access node reaches this node, when it differs from `url`. */
  readonly fdw?: { readonly host: string; readonly port: number };
  /** Streaming standbys of a data node. */
  readonly standbys?: readonly ExampleNode[];
}

export interface ExampleSpecOptions {
  readonly accessNode: ExampleNode;
  readonly dataNodes: readonly ExampleNode[];
  readonly servicePassword: SecretRef;
  readonly readerPassword: SecretRef;
  /** The replication role's password; needed when a data node has standbys. */
  readonly replicationPassword?: SecretRef;
  /** @default 2 × the number of data nodes */
  readonly shards?: number;
  /** Chunks made behind the apply time. @default 7 */
  readonly chunksBehind?: number;
  /** Leading comment lines (without `#`). */
  readonly header?: readonly string[];
}

// JSON scalars are valid YAML, and quote anything a user could put in a name or URL.
const q = (value: string | number): string => JSON.stringify(value);
const secret = (ref: SecretRef): string => ('env' in ref ? `{ env: ${q(ref.env)} }` : `{ file: ${q(ref.file)} }`);
const node = (n: ExampleNode, indent: string): string =>
  [
    `name: ${q(n.name)}`,
    `url: ${q(n.url)}`,
    ...(n.password === undefined ? [] : [`password: ${secret(n.password)}`]),
    ...(n.fdw === undefined ? [] : [`fdw: { host: ${q(n.fdw.host)}, port: ${q(n.fdw.port)} }`]),
    ...(n.standbys === undefined || n.standbys.length === 0
      ? []
      : ['standbys:', ...n.standbys.map((s) => `  - { name: ${q(s.name)}, url: ${q(s.url)} }`), 'replication: { synchronous: true }']),
  ].join(`\n${indent}`);

export function exampleSpecYaml(options: ExampleSpecOptions): string {
  const shards = options.shards ?? 2 * options.dataNodes.length;
  return `${(options.header ?? []).map((line) => `# ${line}`.trimEnd()).join('\n')}${options.header === undefined ? '' : '\n'}version: 1

# The access node holds the distributed hypertables (partitioned tables whose partitions are
# postgres_fdw foreign tables); applications connect to it.
accessNode:
  ${node(options.accessNode, '  ')}

# Data nodes hold the rows. \`url\` is how the hypershard CLI reaches a node; add
# \`fdw: { host, port, dbname }\` when the access node reaches it by another address.
dataNodes:
${options.dataNodes.map((n) => `  - ${node(n, '    ')}`).join('\n')}

${
  options.replicationPassword === undefined
    ? ''
    : `# Standbys stream WAL from their primary as this role (LOGIN REPLICATION only).
replication:
  role:
    name: hypershard_replication
    password: ${secret(options.replicationPassword)}

`
}fdw:
  # The least-privileged role the access node logs in as on the data nodes.
  serviceRole:
    name: hypershard_fdw
    password: ${secret(options.servicePassword)}
  fetchSize: 10000
  batchSize: 1000

# Roles are created identically on every node, with their grants.
roles:
  - name: metrics_reader
    login: true
    password: ${secret(options.readerPassword)}
    grants:
      - { on: metrics, privileges: [SELECT] }
  - name: metrics_writer
    grants:
      - { on: metrics, privileges: [SELECT, INSERT] }

hypertables:
  - name: metrics
    columns:
      - { name: time, type: timestamptz, notNull: true }
      - { name: device_id, type: integer, notNull: true }
      - { name: cpu, type: double precision }
      - { name: memory, type: double precision }
      - { name: temperature, type: double precision }
    timeColumn: time
    chunkInterval: 1 day
    chunks: { behind: ${q(options.chunksBehind ?? 7)}, ahead: 7 }
    spaceColumn: device_id
    shards: ${q(shards)}
    # Per device, newest first; and newest first across devices (ORDER BY time DESC LIMIT n),
    # as TimescaleDB creates by default: each lets a data node read only the newest chunks.
    indexes:
      - columns: [device_id, { column: time, order: desc }]
      - columns: [{ column: time, order: desc }]

# TimescaleDB's time_bucket, first and last on the access node, so SQL written for TimescaleDB
# runs from any client (docs/coming-from-timescaledb.md).
timescaledb:
  functions: true
  schema: public
`;
}
