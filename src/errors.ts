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

/**
 * A secret was not sent because a node records statements in a way this user may not switch off
 * (e.g. `log_statement = all` for a user that is not a superuser). Nothing was changed.
 */
export class SecretExposureError extends HypershardError {
  readonly node: string;
  readonly setting: string;
  constructor(node: string, setting: string, value: string, off: string, what: string, cause: unknown) {
    super(
      'SECRET_EXPOSURE',
      `node ${node}: a password was not set, because it would reach ${what}: ${setting} is ${value} and this user may not change it ` +
        `(${errorMessage(cause)}). Have a superuser set ${setting} = ${off} for this role (ALTER ROLE … SET), grant it (GRANT SET ON PARAMETER ${setting}, PostgreSQL 15+), or apply as a superuser`,
      { cause },
    );
    this.node = node;
    this.setting = setting;
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

/** What an unresponsive node was doing when it stopped answering. */
export interface Unresponsive {
  /** The node that gave no answer. */
  readonly node: string;
  /** Other nodes that gave none either. */
  readonly also?: readonly string[];
  /** The node whose statement waited on `node` (the access node, through postgres_fdw). */
  readonly via?: string;
  /** The statement that was waiting (shortened). */
  readonly statement: string;
  readonly runningMs: number;
  /** The bound a probe of the node had to answer within. */
  readonly probeTimeoutMs: number;
  /** e.g. `no answer within 10000 ms`. */
  readonly why: string;
  /** Our backend on `via`, and whether it stopped (cancelled, or terminated). */
  readonly backend?: { readonly pid: number; readonly ended: boolean };
}

/**
 * A node stopped answering while a statement waited on it (frozen, overloaded past the bound, or
 * cut off by the network): the statement failed instead of waiting forever.
 */
export class NodeUnresponsiveError extends HypershardError {
  readonly node: string;
  readonly unresponsive: Unresponsive;
  constructor(unresponsive: Unresponsive) {
    super('NODE_UNRESPONSIVE', unresponsiveMessage(unresponsive));
    this.node = unresponsive.node;
    this.unresponsive = unresponsive;
  }

  /** The same error, saying what became of our backend on the node that waited. */
  withBackend(pid: number, ended: boolean): NodeUnresponsiveError {
    return new NodeUnresponsiveError({ ...this.unresponsive, backend: { pid, ended } });
  }
}

function unresponsiveMessage(d: Unresponsive): string {
  const seconds = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;
  const others = d.also === undefined || d.also.length === 0 ? '' : ` (nor did ${d.also.join(', ')})`;
  const ran = d.statement === '' ? 'a statement' : JSON.stringify(d.statement);
  const head =
    d.via === undefined
      ? `node ${d.node}: stopped answering while running ${ran} (running ${seconds(d.runningMs)}; a probe got ${d.why})${others}`
      : `node ${d.node}: stopped answering; ${ran} on ${d.via} waited on it through postgres_fdw for ${seconds(d.runningMs)} (a probe of ${d.node} got ${d.why})${others}`;
  const backend =
    d.backend === undefined || d.via === undefined
      ? ''
      : d.backend.ended
        ? `; that statement was cancelled on ${d.via} (backend pid ${d.backend.pid})`
        : `; that statement's backend on ${d.via} (pid ${d.backend.pid}) could not be stopped: it waits in postgres_fdw until ${d.node} answers or its connection breaks`;
  return `${head}${backend}. The node is frozen, overloaded past the ${seconds(d.probeTimeoutMs)} bound (--timeout), or unreachable`;
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

/** Another apply holds one or more nodes; nothing was rehearsed or applied. */
export class ApplyBusyError extends HypershardError {
  readonly nodes: readonly string[];
  constructor(busy: readonly { readonly node: string; readonly holder: string }[]) {
    super(
      'APPLY_BUSY',
      busy.map((b) => `another apply holds node ${b.node} (${b.holder})`).join('\n') + '\nNothing was applied; run apply again when it has finished.',
    );
    this.nodes = busy.map((b) => b.node);
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
