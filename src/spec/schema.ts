/**
 * The cluster spec (`hypershard.yaml`). This zod schema is the single source for the validator
 * and for the published JSON Schema (`schema/hypershard.schema.json`), so editors autocomplete
 * exactly what the validator accepts. Cross-field rules live in `validate.ts`.
 */
import { z } from 'zod';

const identifier = z
  .string()
  .min(1)
  .describe('A PostgreSQL identifier, used verbatim (case-sensitive, quoted in generated SQL), at most 63 bytes.');

export const secretRef = z
  .union([
    z.strictObject({ env: z.string().min(1).describe('Name of the environment variable holding the secret.') }),
    z.strictObject({ file: z.string().min(1).describe('Path of a file holding the secret (relative to the spec file).') }),
  ])
  .describe('A reference to a secret. Secrets are never written literally in the spec or in anything hypershard writes.');

const postgresUrl = z
  .string()
  .describe('libpq URL without a password, e.g. postgres://admin@db1.internal:5432/metrics?sslmode=require');

const nodeName = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$/, 'a node name is 1-40 letters, digits, "_" or "-" (it names a migrations folder and FDW servers)')
  .describe('Node name, used in messages, migration folders and FDW server names.');

const nodeBase = {
  name: nodeName,
  url: postgresUrl.describe('How the hypershard CLI reaches this node (libpq URL without a password).'),
  password: secretRef.optional().describe('Password for the CLI connection, when the server asks for one.'),
};

export const accessNodeSpec = z.strictObject(nodeBase);

/** A physical standby of a data node, streaming from its primary (see src/ha/). */
export const standbySpec = z.strictObject({
  name: nodeName.describe('Standby name: its application_name on the primary (synchronous_standby_names) and its replication slot hypershard_<name>.'),
  url: postgresUrl.describe('How the hypershard CLI reaches this standby (libpq URL without a password); the same database as the primary\'s url.'),
  password: secretRef.optional().describe('Password for the CLI connection, when the server asks for one.'),
  fdw: z
    .strictObject({
      host: z.string().min(1).optional(),
      port: z.number().int().min(1).max(65_535).optional(),
    })
    .optional()
    .describe('How the access node reaches this standby once promoted. Defaults to host and port of `url`.'),
});

export const replicationSpec = z
  .strictObject({
    synchronous: z
      .boolean()
      .default(true)
      .describe('Commits on the primary wait until a standby has flushed them (synchronous_standby_names = ANY 1 (standbys)), so an acknowledged commit survives the loss of the primary.'),
    maxLagBytes: z.number().int().min(0).default(16 * 1024 * 1024).describe('`check` reports a standby whose replay is further behind than this many bytes of WAL.'),
    maxLagSeconds: z.number().min(0).default(30).describe('`check` reports a standby whose replay lags by more than this many seconds.'),
    manager: z
      .enum(['hypershard', 'external'])
      .default('hypershard')
      .describe('Who fails over: hypershard (`apply` keeps slots and synchronous_standby_names, `failover` promotes) or an external manager such as Patroni or a cloud provider (hypershard only lists the members, reports their state and records a promotion the manager made).'),
  })
  .describe('Streaming replication to this data node\'s standbys.');

export const dataNodeSpec = z.strictObject({
  ...nodeBase,
  standbys: z
    .array(standbySpec)
    .default([])
    .describe('Physical standbys of this data node. The access node\'s FDW servers list the primary first, then each standby, with target_session_attrs=read-write; `hypershard failover` promotes one.'),
  replication: replicationSpec.optional(),
  fdw: z
    .strictObject({
      host: z.string().min(1).optional(),
      port: z.number().int().min(1).max(65_535).optional(),
      dbname: z.string().min(1).optional(),
      options: z
        .record(z.string(), z.string())
        .optional()
        .describe('Extra libpq options for this node\'s FDW servers (e.g. sslmode), merged over fdw.connectionOptions.'),
    })
    .optional()
    .describe('How the access node reaches this data node. Defaults to host, port and database of `url`.'),
});

/**
 * How soon the access node gives up on a data node that stopped answering (a network partition,
 * a host that died without closing its connections), as libpq options of every FDW server.
 * Measured under a real partition: bench/partition.ts, README "When a node stops answering".
 */
export const DEFAULT_FDW_TIMEOUTS = { connect: 10, keepalivesIdle: 10, keepalivesInterval: 5, keepalivesCount: 3, tcpUserTimeout: 30_000 } as const;

const fdwTimeouts = z
  .union([
    z.literal(false).describe('Set none: libpq and the kernel decide (a query can then wait on an unreachable node for hours).'),
    z.strictObject({
      connect: z.number().int().min(0).default(DEFAULT_FDW_TIMEOUTS.connect).describe('Seconds to connect (libpq connect_timeout; 0: no bound). postgres_fdw honours it up to PostgreSQL 16; from 17 it connects without it and tcpUserTimeout bounds the connect.'),
      keepalivesIdle: z.number().int().min(0).default(DEFAULT_FDW_TIMEOUTS.keepalivesIdle).describe('Seconds of silence before the first TCP keepalive.'),
      keepalivesInterval: z.number().int().min(0).default(DEFAULT_FDW_TIMEOUTS.keepalivesInterval).describe('Seconds between TCP keepalives.'),
      keepalivesCount: z.number().int().min(0).default(DEFAULT_FDW_TIMEOUTS.keepalivesCount).describe('Unanswered keepalives before the connection is dropped (where tcpUserTimeout is not supported).'),
      tcpUserTimeout: z.number().int().min(0).default(DEFAULT_FDW_TIMEOUTS.tcpUserTimeout).describe('Milliseconds sent data (or keepalives) may stay unacknowledged before the connection is dropped (Linux; 0: the kernel\'s ~15 minutes).'),
    }),
  ])
  .default({ ...DEFAULT_FDW_TIMEOUTS })
  .describe('How soon a query through the access node fails when a data node stops answering (network partition, host down); false sets no options.');

export const fdwSpec = z.strictObject({
  serviceRole: z
    .strictObject({
      name: identifier.default('hypershard_fdw'),
      password: secretRef.describe('Password of the service role; set on data nodes and in the access node\'s user mappings by `apply`.'),
    })
    .describe('The least-privileged role the access node uses on the data nodes.'),
  fetchSize: z.number().int().min(1).default(10_000).describe('Rows per round trip when reading from a shard.'),
  batchSize: z.number().int().min(1).default(1_000).describe('Rows per INSERT round trip when writing through the access node.'),
  fdwTupleCost: z.number().min(0).default(0.2).describe('Planner cost per shipped row; 0.2 is PostgreSQL 17\'s default, set on every version for the same plans.'),
  fdwStartupCost: z.number().min(0).default(100),
  asyncCapable: z.boolean().default(true).describe('Scan shards concurrently (async Append).'),
  parallelCommit: z.boolean().default(true).describe('Commit on data nodes in parallel (PostgreSQL 15+; ignored on 14).'),
  connectionOptions: z.record(z.string(), z.string()).default({}).describe('Extra libpq options for every FDW server (e.g. sslmode).'),
  timeouts: fdwTimeouts,
});

export const columnSpec = z.strictObject({
  name: identifier,
  type: z.string().min(1).describe('A built-in type: integer, bigint, text, double precision, numeric(12,2), timestamptz, jsonb, text[] …'),
  notNull: z.boolean().default(false),
  renamedFrom: identifier
    .optional()
    .describe('The column\'s previous name: `generate` then renames it instead of dropping one column and adding another.'),
});

const indexColumn = z.union([
  identifier,
  z.strictObject({ column: identifier, order: z.enum(['asc', 'desc']).default('asc') }),
]);

export const indexSpec = z.strictObject({
  name: identifier.optional().describe('Defaults to <table>_<columns>_idx.'),
  columns: z.array(indexColumn).min(1),
  method: z.enum(['btree', 'brin', 'hash', 'gin']).default('btree'),
  unique: z
    .boolean()
    .optional()
    .describe('A unique btree index; its columns must include the space and time columns (each shard enforces it). Makes INSERT … ON CONFLICT on these columns routable.'),
});

const privilege = z.enum(['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER']);

export const grantSpec = z.strictObject({
  on: identifier.describe('Name of a distributed hypertable or a reference table declared in this spec.'),
  privileges: z.array(privilege).min(1),
});

export const roleSpec = z.strictObject({
  name: identifier,
  login: z.boolean().default(false),
  password: secretRef.optional().describe('Set identically (same SCRAM verifier) on every node by `apply`.'),
  connectionLimit: z.number().int().min(-1).default(-1),
  inherit: z.boolean().default(true),
  memberOf: z.array(identifier).default([]).describe('Roles declared in this spec that this role is a member of.'),
  grants: z.array(grantSpec).default([]),
});

export const hypertableSpec = z.strictObject({
  name: identifier,
  schema: identifier.default('public'),
  columns: z.array(columnSpec).min(1),
  timeColumn: identifier.describe('The time dimension; data nodes partition each shard by range on it.'),
  chunkInterval: z.string().default('1 day').describe('Width of a time chunk on the data nodes: seconds, minutes, hours, days or weeks.'),
  chunks: z
    .strictObject({
      behind: z.number().int().min(0).default(7).describe('Chunks created before the apply time.'),
      ahead: z.number().int().min(1).default(7).describe('Chunks created after the apply time.'),
    })
    .default({ behind: 7, ahead: 7 })
    .describe('Chunks made when the hypertable is created (and kept ahead by `maintain`); rows outside them land in a default chunk.'),
  retention: z
    .string()
    .optional()
    .describe('Drop chunks whose whole range is older than this (e.g. "90 days"); applied by `maintain`. Default: keep everything.'),
  spaceColumn: identifier.describe('The space dimension: rows are hash-partitioned on it into shards.'),
  shards: z.number().int().min(1).max(1024).describe('Number of hash shards (space partitions).'),
  dataNodes: z.array(nodeName).min(1).optional().describe('Data nodes holding the shards, round-robin; default all.'),
  placement: z
    .record(z.string().regex(/^(0|[1-9][0-9]*)$/, 'a shard index'), nodeName)
    .optional()
    .describe('Shards placed on another data node than round-robin says, by shard index; written by `hypershard rebalance`.'),
  indexes: z.array(indexSpec).default([]),
  lastpoint: z
    .boolean()
    .optional()
    .describe(
      'Per-shard lastpoint views (the newest row of each space key, by a loose index scan on each data node) and their foreign tables on the access node, which the rewriter reads for `SELECT DISTINCT ON (space) … ORDER BY space, time DESC` and its LATERAL form. Wants a btree index on (space, time DESC). Default false.',
    ),
  nodeViews: z
    .boolean()
    .optional()
    .describe(
      'Per-data-node views (on each data node, the UNION ALL of its shards of this hypertable) and their foreign tables on the access node: the rewriter asks each data node once instead of each shard, which saves about 1 ms per shard asked. Default false.',
    ),
});

export const referenceTableSpec = z
  .strictObject({
    name: identifier.describe('Name of the table; unique across hypertables and reference tables.'),
    schema: identifier.default('public'),
    columns: z.array(columnSpec).min(1),
    primaryKey: z
      .array(identifier)
      .min(1)
      .describe('Columns of the primary key, on the access node and on every copy; changes are applied to the copies by key.'),
  })
  .describe(
    'A small table (devices, regions …) written on the access node and copied to every data node in the same transaction, so joins with a hypertable can run next to each shard.',
  );

export const gatewaySpec = z
  .strictObject({
    host: z.string().min(1).optional().describe('Address the gateway listens on. Default 127.0.0.1.'),
    port: z.number().int().min(0).max(65_535).optional().describe('Port the gateway listens on. Default 6432.'),
    metricsPort: z.number().int().min(0).max(65_535).optional().describe('Serve Prometheus metrics on this port (same host). Default: none.'),
    rewrite: z.boolean().optional().describe('Rewrite statements that read distributed hypertables. Default true; false makes a pure pass-through.'),
    tls: z
      .strictObject({
        cert: z.string().min(1).describe('PEM certificate file (relative to the spec file).'),
        key: z.string().min(1).describe('PEM private key file (relative to the spec file).'),
      })
      .optional()
      .describe('Answer clients\' SSLRequest with TLS. Without it the gateway declines TLS (clients with sslmode=require then refuse to connect).'),
    maxConnections: z.number().int().min(1).optional().describe('Client sessions at once. Default 1000.'),
    maxMessageBytes: z.number().int().min(1024).optional().describe('Largest message a client may send. Default 64 MiB.'),
    startupTimeoutMs: z.number().int().min(1).optional().describe('Bound on TLS, startup and authentication. Default 60000.'),
    messageTimeoutMs: z.number().int().min(1).optional().describe('A client stalled mid-message is closed after this. Default 60000.'),
    idleTimeoutMs: z.number().int().min(0).optional().describe('Close sessions idle outside a transaction this long; 0 never. Default 0.'),
    connectTimeoutMs: z.number().int().min(1).optional().describe('Bound on reaching the access node. Default 10000.'),
    healthCheckMs: z.number().int().min(0).optional().describe('How often to check that the access node answers; after two checks without an answer sessions are closed with an error naming it. 0 off. Default 10000.'),
  })
  .describe('The wire-protocol gateway (`hypershard gateway`): clients connect here instead of the access node.');

export const timescaledbSpec = z
  .strictObject({
    functions: z.boolean().default(true).describe('Create time_bucket (every TimescaleDB form but uuid) and the first/last aggregates on the access node.'),
    schema: identifier.default('public').describe('Schema of time_bucket, first and last; TimescaleDB users call them unqualified, so it must be on their search_path.'),
  })
  .default({ functions: true, schema: 'public' })
  .describe('TimescaleDB-compatible functions on the access node, with TimescaleDB\'s semantics, so queries written for TimescaleDB run from any client.');

export const clusterSpec = z.strictObject({
  $schema: z.string().optional(),
  version: z.literal(1).describe('Spec format version.'),
  accessNode: accessNodeSpec,
  dataNodes: z.array(dataNodeSpec).min(1),
  fdw: fdwSpec,
  roles: z.array(roleSpec).default([]),
  hypertables: z.array(hypertableSpec).default([]),
  referenceTables: z.array(referenceTableSpec).default([]).describe('Tables replicated to every data node and kept in sync by triggers on the access node.'),
  replication: z
    .strictObject({
      role: z
        .strictObject({
          name: identifier.default('hypershard_replication'),
          password: secretRef.describe('Password of the replication role; set on data nodes by `apply`, used by standbys and `node rebuild`.'),
        })
        .describe('The role standbys stream WAL as (LOGIN REPLICATION, nothing else).'),
    })
    .optional()
    .describe('Required when a data node declares standbys.'),
  gateway: gatewaySpec.optional(),
  timescaledb: timescaledbSpec,
});

/** The spec as written by the user. */
export type ClusterSpecInput = z.input<typeof clusterSpec>;
/** The spec after validation, with defaults filled in. */
export type ClusterSpec = z.output<typeof clusterSpec>;
export type DataNodeSpec = z.output<typeof dataNodeSpec>;
export type StandbySpec = z.output<typeof standbySpec>;
export type ReplicationSpec = z.output<typeof replicationSpec>;
export type AccessNodeSpec = z.output<typeof accessNodeSpec>;
export type HypertableSpec = z.output<typeof hypertableSpec>;
export type ReferenceTableSpec = z.output<typeof referenceTableSpec>;
export type RoleSpec = z.output<typeof roleSpec>;
export type IndexSpec = z.output<typeof indexSpec>;
export type SecretRef = z.output<typeof secretRef>;
export type Privilege = z.output<typeof privilege>;
export type GatewaySpec = z.output<typeof gatewaySpec>;

/** JSON Schema for editors, generated from the same zod schema the validator uses. */
export function clusterSpecJsonSchema(): Record<string, unknown> {
  return {
    ...z.toJSONSchema(clusterSpec, { io: 'input', target: 'draft-2020-12' }),
    $id: 'https://hypershard.dev/schema/hypershard.schema.json',
    title: 'hypershard cluster spec',
  };
}
