/**
 * One error taxonomy for the whole toolkit. Library code throws these (or returns them inside
 * per-node results); the CLI maps them to messages and exit codes.
 */
export class HypershardError extends Error {
  /** Stable machine-readable code, e.g. `SPEC_INVALID`. */
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

export interface SpecIssue {
  /** Path inside the spec, e.g. `hypertables[0].columns[2].type`. */
  readonly path: string;
  readonly message: string;
}

/** The cluster spec is invalid. Carries every problem found, not just the first. */
export class SpecError extends HypershardError {
  readonly issues: readonly SpecIssue[];
  readonly file: string | undefined;
  constructor(issues: readonly SpecIssue[], file?: string) {
    const where = file === undefined ? 'spec' : file;
    super(
      'SPEC_INVALID',
      `${where}: ${issues.length} problem${issues.length === 1 ? '' : 's'}:\n` +
        issues.map((i) => `  - ${i.path || '(root)'}: ${i.message}`).join('\n'),
    );
    this.issues = issues;
    this.file = file;
  }
}

/** A secret reference (env var or file) could not be resolved. */
export class SecretError extends HypershardError {
  constructor(message: string) {
    super('SECRET_UNRESOLVED', message);
  }
}

/** A template was rendered with bad data or bypasses the quoting helpers. */
export class TemplateError extends HypershardError {
  readonly template: string;
  constructor(template: string, message: string, options?: { cause?: unknown }) {
    super('TEMPLATE', `${template}: ${message}`, options);
    this.template = template;
  }
}

/** A node could not be reached, or is not fit for hypershard (version, postgres_fdw). */
export class NodeConnectionError extends HypershardError {
  readonly node: string;
  constructor(node: string, message: string, options?: { cause?: unknown }) {
    super('NODE_CONNECTION', `node ${node}: ${message}`, options);
    this.node = node;
  }
}

export class NodeUnsupportedError extends HypershardError {
  readonly node: string;
  constructor(node: string, message: string) {
    super('NODE_UNSUPPORTED', `node ${node}: ${message}`);
    this.node = node;
  }
}

/** Several nodes failed their connection checks; each error names its node. */
export class ClusterConnectionError extends HypershardError {
  readonly errors: readonly Error[];
  constructor(errors: readonly Error[]) {
    super('NODE_CONNECTION', errors.map((e) => e.message).join('\n'));
    this.errors = errors;
  }
}

/** A migration failed on a node; names the node, the migration file and the failing statement. */
export class MigrationFailedError extends HypershardError {
  readonly node: string;
  readonly migration: string;
  readonly statement: string | undefined;
  constructor(node: string, migration: string, statement: string | undefined, message: string, options?: { cause?: unknown }) {
    super(
      'MIGRATION_FAILED',
      `node ${node}: migration ${migration} failed: ${message}` +
        (statement === undefined ? '' : `\n    in statement: ${statement}`),
      options,
    );
    this.node = node;
    this.migration = migration;
    this.statement = statement;
  }
}

/** Migrations on disk do not match what the spec generates, or were edited after being applied. */
export class MigrationStateError extends HypershardError {
  constructor(message: string) {
    super('MIGRATION_STATE', message);
  }
}

/** The embedded development cluster could not be started or stopped. */
export class DevClusterError extends HypershardError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('DEV_CLUSTER', message, options);
  }
}

/**
 * A node name that is not in the spec. Its code is `USAGE`: it is bad input, caught before any
 * node is contacted.
 */
export class UnknownNodeError extends HypershardError {
  readonly nodes: readonly string[];
  readonly known: readonly string[];
  constructor(nodes: readonly string[], known: readonly string[]) {
    super('USAGE', `unknown node${nodes.length === 1 ? '' : 's'} ${nodes.join(', ')}; the spec has ${known.join(', ')}`);
    this.nodes = nodes;
    this.known = known;
  }
}

/**
 * A write cannot be routed straight to the data nodes as the access node would route it: the table
 * is not a distributed hypertable, its key or placement is not what routing reads, or a check the
 * access node would make (privileges, triggers, defaults) cannot be reproduced. Nothing was written.
 */
export class RoutingError extends HypershardError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ROUTING', message, options);
  }
}

/**
 * A row of a routed load was refused, by the input's format, the router or a data node: its line
 * as PostgreSQL counts them (the header counted) and the reason in PostgreSQL's words. Nothing of
 * the load was committed anywhere.
 */
export class IngestRowError extends HypershardError {
  readonly line: number;
  readonly reason: string;
  readonly column: string | undefined;
  readonly node: string | undefined;
  constructor(line: number, reason: string, extra: { column?: string | undefined; node?: string | undefined; cause?: unknown } = {}) {
    super(
      'INGEST_ROW',
      `line ${line}: ${reason}${extra.column === undefined ? '' : ` (column ${extra.column})`}${extra.node === undefined ? '' : ` on data node ${extra.node}`}; nothing was committed`,
      { cause: extra.cause },
    );
    this.line = line;
    this.reason = reason;
    this.column = extra.column;
    this.node = extra.node;
  }
}

/**
 * A routed transaction could not commit. `inDoubt` lists prepared transactions whose outcome is
 * recorded but not yet applied on their node (the node stopped answering at COMMIT PREPARED):
 * `hypershard recover` finishes them; everything else was rolled back.
 */
export class CommitError extends HypershardError {
  readonly node: string | undefined;
  readonly inDoubt: readonly { readonly node: string; readonly gid: string }[];
  constructor(message: string, extra: { node?: string | undefined; inDoubt?: readonly { node: string; gid: string }[]; cause?: unknown } = {}) {
    super('COMMIT_FAILED', message, { cause: extra.cause });
    this.node = extra.node;
    this.inDoubt = extra.inDoubt ?? [];
  }
}

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
