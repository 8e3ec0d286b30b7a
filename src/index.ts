/**
 * hypershard: distributed hypertables for vanilla PostgreSQL, built from declarative
 * partitioning and postgres_fdw, as migrations a DBA reviews.
 *
 * spec → layout → SQL → migrations → nodes.
 */
export {
  ClusterConnectionError,
  DevClusterError,
  HypershardError,
  MigrationFailedError,
  MigrationStateError,
  NodeConnectionError,
  NodeUnsupportedError,
  CommitError,
  IngestRowError,
  RoutingError,
  SecretError,
  SpecError,
  TemplateError,
  UnknownNodeError,
} from './errors.js';
export type { SpecIssue } from './errors.js';

export { clusterSpec, clusterSpecJsonSchema } from './spec/schema.js';
export type { ClusterSpec, ClusterSpecInput, DataNodeSpec, HypertableSpec, ReferenceTableSpec, RoleSpec, SecretRef } from './spec/schema.js';
export { loadSpec, parseSpec } from './spec/load.js';
export type { LoadedSpec } from './spec/load.js';
export { validateSpec } from './spec/validate.js';
export { exampleSpecYaml } from './spec/example.js';
export type { ExampleSpecOptions } from './spec/example.js';

export { planLayout, INTERNAL_SCHEMA, ACCESS_NODE_SETTINGS } from './plan/layout.js';
export type { ClusterLayout, FdwServer, Hypertable, ReferenceCopy, ReferenceTable, Shard } from './plan/layout.js';

export { generateSql } from './sql/generate.js';
export type { ClusterSql, NodeRole, NodeSql } from './sql/generate.js';
export type { Statement } from './sql/statement.js';
export { quoteIdent, quoteLiteral, quoteQualified } from './sql/quote.js';

export { checkMigrationsCurrent, defaultMigrationsDir, generateMigrations, migrationFiles, readMigrations } from './migrations/files.js';
export type { GenerateOptions, GenerateResult, MigrationFile, WriteResult } from './migrations/files.js';
export { evolve } from './evolve/diff.js';
export type { Evolution } from './evolve/diff.js';

export { apply } from './nodes/apply.js';
export type { ApplyOptions, ApplyResult, NodeApplyResult, NodeApplyStatus } from './nodes/apply.js';
export { plan } from './nodes/plan.js';
export type { NodePlan, PlanOptions } from './nodes/plan.js';
export { check } from './drift/check.js';
export type { CheckOptions } from './drift/check.js';
export type { CheckResult, DriftItem, DriftKind, NodeCheck } from './drift/model.js';
export { connectNode, MIN_SERVER_VERSION } from './nodes/connect.js';
export type { NodeConnection, NodeInfo } from './nodes/connect.js';

export { exec } from './ops/exec.js';
export type { ExecOptions } from './ops/exec.js';
export type { ExecCommit, ExecError, ExecNodeStatus, ExecResult, NodeExecResult } from './ops/execResult.js';
export type { StatementResult } from './ops/runStatements.js';
export type { NodeSelection } from './ops/select.js';
export { status } from './ops/status.js';
export type { AccessHypertableStatus, AccessNodeStatus, DataNodeStatus, HypertableTotals, NodeStatus, ShardStatus, StatusOptions, StatusResult, StrayShard } from './ops/status.js';
export type { Skew } from './ops/skew.js';

export { maintain, SKIPPED_REASON } from './maintain/maintain.js';
export type { MaintainOptions } from './maintain/maintain.js';
export type { ChunkAction, CreatedChunk, MaintainError, MaintainNodeResult, MaintainNodeStatus, MaintainProgress, MaintainResult, MaintainStep } from './maintain/result.js';
export { listChunks } from './maintain/chunks.js';
export type { ChunkInfo, ChunksOptions, ChunksResult, NodeChunks } from './maintain/chunks.js';
export { MAINTAIN_LOCK_KEY } from './maintain/lock.js';
export { syncReferenceTables } from './reference/sync.js';
export type { ReferenceSyncNodeResult, ReferenceSyncOptions, ReferenceSyncResult, ReferenceSyncStatus, ReferenceTableSync } from './reference/sync.js';
export { addDataNode, addDataNodeToSpec } from './cluster/addDataNode.js';
export type { AddDataNodeOptions, AddDataNodeOutcome, AddDataNodeResult, NewDataNode } from './cluster/addDataNode.js';
export { rebalance } from './rebalance/rebalance.js';
export type { RebalanceOptions } from './rebalance/rebalance.js';
export { planMoves } from './rebalance/plan.js';
export type { MoveResult, MoveStatus, NodeBalance, PlannedMove, RebalanceProgress, RebalanceResult, RecoveredMove, ShardLoad } from './rebalance/result.js';

export { readDevCluster, startDevCluster, stopDevCluster, withDevCluster } from './dev/cluster.js';
export type { DevCluster, DevNode, StartDevClusterOptions, StopNodeResult } from './dev/cluster.js';
export type { PostgresSource } from './dev/binaries.js';
export { writeDevSpec, DEV_SPEC_FILE } from './dev/devSpec.js';

export { discoverMetadata } from './rewrite/discover.js';
export type { Queryable } from './rewrite/discover.js';
export { readRoleAccess, isGuardError } from './rewrite/access.js';
export { sessionSettings } from './rewrite/session.js';
export type { SessionSettings } from './rewrite/session.js';

export { ShardRouter } from './route/router.js';
export type { RoutingSession } from './route/router.js';
export { readRoute, partitionForHash } from './route/placement.js';
export type { HypertableRoute, KeyColumn, Partition, RouteColumn } from './route/placement.js';
export { KeyValueError } from './route/serverHash.js';
export { shardLockKey } from './route/lock.js';

export { IngestCluster } from './ingest/cluster.js';
export type { IngestOptions } from './ingest/cluster.js';
export { RoutedTransaction } from './ingest/transaction.js';
export type { CommitOutcome, Participant, PreparedTransaction, TransactionOptions } from './ingest/transaction.js';
export { RoutedCopy } from './ingest/copy.js';
export type { CopyStats, RoutedCopyOptions } from './ingest/copy.js';
export type { CopyFormat } from './ingest/formats/rows.js';
export { copyFrom } from './ingest/copyFrom.js';
export type { CopyFromOptions, CopyFromResult, CopyFromStream } from './ingest/copyFrom.js';
export { planRoutedBatch, planRoutedInsert, parseArrayText } from './ingest/insert.js';
export type { InsertParam, InsertSettings, Refusal, RoutedInsert } from './ingest/insert.js';
export { load } from './ingest/load.js';
export type { LoadInput, LoadOptions, LoadProgress, LoadResult } from './ingest/load.js';
export { recover, recoverWith } from './ingest/recover.js';
export type { RecoverAction, RecoverNodeResult, RecoverOptions, RecoverResult, RecoveredTransaction } from './ingest/recover.js';
export { DEFAULT_SETTINGS } from './ingest/settings.js';
export type { ClientSettings } from './ingest/settings.js';
export { binaryToText } from './codec/binaryText.js';
