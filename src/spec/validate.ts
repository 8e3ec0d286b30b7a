/**
 * Turns untrusted input into a `ClusterSpec`: schema checks by zod, then the rules that relate
 * fields to each other. Every problem is collected, so a user fixes them all in one pass.
 */
import { SpecError, type SpecIssue } from '../errors.js';
import { identifierProblem, textProblem } from '../sql/quote.js';
import { isHashable, isTimeType, parseColumnType } from './columnType.js';
import { parseFixedInterval } from './interval.js';
import { standbySlotName } from '../ha/names.js';
import { clusterSpec, type ClusterSpec } from './schema.js';
import { urlDatabase } from './url.js';

type Path = readonly (string | number)[];

export function formatPath(path: Path): string {
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? p : `.${p}`)).join('');
}

/** PostgreSQL's limit on the columns of a table (MaxHeapAttributeNumber). */
export const MAX_COLUMNS = 1600;

/** Names hypershard creates itself; a spec may not claim them. */
export const RESERVED_SCHEMA = '_hypershard';

/** `_hypershard`, the TimescaleDB helpers' `_hypershard_compat`, and PostgreSQL's `pg_*`. */
function reservedSchema(schema: string): boolean {
  return schema === RESERVED_SCHEMA || schema.startsWith(`${RESERVED_SCHEMA}_`) || schema.startsWith('pg_');
}
/** FDW server options hypershard sets from other fields. */
const MANAGED_FDW_OPTIONS = new Set([
  'host', 'hostaddr', 'port', 'dbname', 'user', 'password', 'async_capable', 'fetch_size', 'batch_size',
  'fdw_tuple_cost', 'fdw_startup_cost', 'parallel_commit', 'keep_connections', 'updatable', 'truncatable',
  'use_remote_estimate', 'extensions', 'passfile', 'target_session_attrs',
  'connect_timeout', 'keepalives', 'keepalives_idle', 'keepalives_interval', 'keepalives_count', 'tcp_user_timeout',
]);
/** Managed options that fdw.timeouts sets, with the field that sets each. */
const TIMEOUT_OPTIONS: Readonly<Record<string, string>> = {
  connect_timeout: 'connect', keepalives: 'keepalivesIdle', keepalives_idle: 'keepalivesIdle', keepalives_interval: 'keepalivesInterval',
  keepalives_count: 'keepalivesCount', tcp_user_timeout: 'tcpUserTimeout',
};

/**
 * Validates `input` and returns the spec with defaults applied.
 * @throws SpecError with every problem found, each with its path.
 */
export function validateSpec(input: unknown, options: { file?: string; locate?: (path: Path) => string | undefined } = {}): ClusterSpec {
  const issues: { path: Path; message: string }[] = [];
  const parsed = clusterSpec.safeParse(input);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      // zod reports unknown keys on the enclosing object; each key's own path gives its own line.
      if (issue.code === 'unrecognized_keys') {
        for (const key of issue.keys) issues.push({ path: [...(issue.path as Path), key], message: `Unrecognized key: ${JSON.stringify(key)}` });
      } else if (issue.code === 'invalid_type' && issue.path.length > 0 && valueAt(input, issue.path as Path) === undefined) {
        // zod says "expected number, received undefined"; say which key is missing.
        const key = issue.path.at(-1);
        issues.push({ path: issue.path as Path, message: `required key ${JSON.stringify(typeof key === 'number' ? `[${key}]` : key)} is missing (expected ${issue.expected})` });
      } else {
        issues.push({ path: issue.path as Path, message: issue.message });
      }
    }
  }
  // Cross-field rules run on the raw input, so one run reports every problem (a bad shard count
  // does not hide a missing time column); a problem already reported is not repeated.
  checkRelations(input, (path, message) => {
    if (!issues.some((i) => formatPath(i.path) === formatPath(path) && i.message === message)) issues.push({ path, message });
  });
  if (issues.length > 0 || !parsed.success) {
    throw new SpecError(
      issues.map(({ path, message }): SpecIssue => {
        const line = options.locate?.(path);
        return { path: formatPath(path), message: line === undefined ? message : `${message} (${line})` };
      }),
      options.file,
    );
  }
  return parsed.data;
}

type Report = (path: Path, message: string) => void;

/** The raw input at a path, undefined where any step is missing. */
function valueAt(input: unknown, path: Path): unknown {
  let value = input;
  for (const step of path) {
    if (value === null || typeof value !== 'object') return undefined;
    value = (value as Record<string | number, unknown>)[step];
  }
  return value;
}

/** A value in a message: JSON, with the characters JSON leaves raw but a terminal hides escaped too. */
function show(value: string): string {
  return JSON.stringify(value).replace(/[\u007f-\u009f\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

// Readers for input that may not have the declared shape (zod reports those problems).
const obj = (v: unknown): Record<string, unknown> => (v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {});
const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
const text = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

function checkRelations(input: unknown, report: Report): void {
  const spec = obj(input);
  const identifier = (path: Path, name: unknown): void => {
    // zod reports a name that is not a string, or empty.
    if (typeof name !== 'string' || name === '') return;
    const problem = identifierProblem(name);
    if (problem !== undefined) report(path, `${show(name)} ${problem}`);
  };

  // Nodes
  const nodes = [
    { path: ['accessNode'] as Path, node: obj(spec.accessNode) },
    ...list(spec.dataNodes).map((node, i) => ({ path: ['dataNodes', i] as Path, node: obj(node) })),
  ];
  const nodeNames = new Map<string, Path>();
  const urls = new Map<string, string>();
  for (const { path, node } of nodes) {
    const name = text(node.name);
    if (name !== undefined) {
      const first = nodeNames.get(name);
      if (first !== undefined) report([...path, 'name'], `duplicate node name ${JSON.stringify(name)} (also at ${formatPath(first)})`);
      else nodeNames.set(name, path);
    }
    const url = text(node.url);
    if (url === undefined) continue;
    if (checkUrl([...path, 'url'], url, report) && checkUrlDatabase(path, node, url, report)) {
      const key = normalizeUrl(url);
      const other = urls.get(key);
      if (other !== undefined) report([...path, 'url'], `same database as node ${JSON.stringify(other)}; every node needs its own database`);
      else urls.set(key, name ?? '?');
    }
  }
  checkStandbys(spec, nodeNames, urls, report);
  const dataNodeNames = new Set(list(spec.dataNodes).map((n) => text(obj(n).name)));
  list(spec.dataNodes).forEach((node, i) => {
    const fdw = obj(obj(node).fdw);
    for (const key of ['host', 'dbname']) checkFdwValue(['dataNodes', i, 'fdw', key], fdw[key], report);
    for (const [key, value] of Object.entries(obj(fdw.options))) checkFdwOption(['dataNodes', i, 'fdw', 'options', key], key, value, report);
  });
  const fdw = obj(spec.fdw);
  for (const [key, value] of Object.entries(obj(fdw.connectionOptions))) checkFdwOption(['fdw', 'connectionOptions', key], key, value, report);

  const timescaledb = obj(spec.timescaledb);
  identifier(['timescaledb', 'schema'], timescaledb.schema);
  const compatSchema = text(timescaledb.schema);
  if (compatSchema !== undefined && reservedSchema(compatSchema)) report(['timescaledb', 'schema'], `schema ${JSON.stringify(compatSchema)} is reserved`);

  // Roles
  const service = text(obj(fdw.serviceRole).name) ?? 'hypershard_fdw';
  identifier(['fdw', 'serviceRole', 'name'], service);
  checkRoleName(['fdw', 'serviceRole', 'name'], service, report);
  const roles = list(spec.roles).map(obj);
  const roleNames = new Set<string>();
  const replicator = obj(obj(spec.replication).role).name;
  const replicationRole = spec.replication === undefined ? undefined : (text(replicator) ?? 'hypershard_replication');
  if (replicationRole !== undefined) {
    identifier(['replication', 'role', 'name'], replicationRole);
    checkRoleName(['replication', 'role', 'name'], replicationRole, report);
    if (replicationRole === service) report(['replication', 'role', 'name'], `${JSON.stringify(replicationRole)} is the FDW service role; the replication role needs a name of its own`);
  }
  roles.forEach((role, i) => {
    const name = text(role.name);
    if (name === undefined) return;
    const path: Path = ['roles', i, 'name'];
    identifier(path, name);
    checkRoleName(path, name, report);
    if (name === service) report(path, `${JSON.stringify(name)} is the FDW service role; declare another name`);
    if (name === replicationRole) report(path, `${JSON.stringify(name)} is the replication role; declare another name`);
    if (roleNames.has(name)) report(path, `duplicate role ${JSON.stringify(name)}`);
    roleNames.add(name);
  });
  const tables = list(spec.hypertables).map(obj);
  const referenceTables = list(spec.referenceTables).map(obj);
  const tableNames = new Set([...tables, ...referenceTables].map((t) => text(t.name)));
  roles.forEach((role, i) => {
    list(role.memberOf).forEach((parent, j) => {
      if (typeof parent !== 'string') return;
      if (parent === role.name) report(['roles', i, 'memberOf', j], 'a role cannot be a member of itself');
      else if (!roleNames.has(parent)) report(['roles', i, 'memberOf', j], `unknown role ${JSON.stringify(parent)}; declare it under roles`);
      identifier(['roles', i, 'memberOf', j], parent);
    });
    list(role.grants).forEach((grant, j) => {
      const on = text(obj(grant).on);
      if (on !== undefined && !tableNames.has(on)) report(['roles', i, 'grants', j, 'on'], `unknown hypertable or reference table ${JSON.stringify(on)}`);
    });
    if (role.password !== undefined && role.login !== true) report(['roles', i, 'password'], 'a password is only useful with login: true');
  });

  // Hypertables
  const seenTables = new Set<string>();
  const indexNames = new Set<string>();
  tables.forEach((table, t) => {
    const at = (...rest: (string | number)[]): Path => ['hypertables', t, ...rest];
    identifier(at('name'), table.name);
    identifier(at('schema'), table.schema);
    const schema = text(table.schema) ?? 'public';
    if (reservedSchema(schema)) report(at('schema'), `schema ${JSON.stringify(schema)} is reserved`);
    const name = text(table.name);
    // Table names are unique across schemas: shard tables on data nodes share one schema.
    if (name !== undefined && seenTables.has(name)) report(at('name'), `duplicate hypertable name ${JSON.stringify(name)}`);
    if (name !== undefined) seenTables.add(name);

    checkColumnCount(at('columns'), table.columns, report);
    const columns = new Map<string, { index: number; type: ReturnType<typeof parseColumnType> | undefined; notNull: boolean }>();
    list(table.columns).map(obj).forEach((column, c) => {
      const columnName = text(column.name);
      identifier(at('columns', c, 'name'), columnName);
      if (columnName !== undefined && columns.has(columnName)) report(at('columns', c, 'name'), `duplicate column ${JSON.stringify(columnName)}`);
      const rawType = text(column.type);
      const type = rawType === undefined ? undefined : parseColumnType(rawType);
      if (typeof type === 'string') report(at('columns', c, 'type'), type);
      if (columnName !== undefined) columns.set(columnName, { index: c, type, notNull: column.notNull === true });
    });
    const partitionColumn = (key: 'timeColumn' | 'spaceColumn'): ReturnType<typeof columns.get> => {
      const columnName = text(table[key]);
      if (columnName === undefined) return undefined;
      const column = columns.get(columnName);
      if (column === undefined) report(at(key), `no column named ${JSON.stringify(columnName)}`);
      else if (!column.notNull) report(at('columns', column.index, 'notNull'), `partitioning column ${JSON.stringify(columnName)} must be notNull: true`);
      return column;
    };
    const time = partitionColumn('timeColumn');
    if (time !== undefined && typeof time.type === 'object' && !isTimeType(time.type)) {
      report(at('timeColumn'), `column ${JSON.stringify(table.timeColumn)} is ${time.type.sql}; the time column must be timestamptz or timestamp`);
    }
    const space = partitionColumn('spaceColumn');
    if (space !== undefined && typeof space.type === 'object' && !isHashable(space.type)) {
      report(at('spaceColumn'), `column ${JSON.stringify(table.spaceColumn)} is ${space.type.sql}, which cannot be hash-partitioned`);
    }
    if (text(table.spaceColumn) !== undefined && table.spaceColumn === table.timeColumn) report(at('spaceColumn'), 'the space column must differ from the time column');

    const interval = parseFixedInterval(text(table.chunkInterval) ?? '1 day');
    if (typeof interval === 'string') report(at('chunkInterval'), interval);
    else if (interval.seconds % 60 !== 0) report(at('chunkInterval'), 'must be a whole number of minutes');

    const retention = text(table.retention);
    if (retention !== undefined) {
      const parsed = parseFixedInterval(retention);
      if (typeof parsed === 'string') report(at('retention'), parsed);
      else if (typeof interval !== 'string' && parsed.seconds < interval.seconds) {
        report(at('retention'), `is shorter than chunkInterval (${interval.sql}); retention drops whole chunks`);
      }
    }

    const seen = new Set<string>();
    list(table.dataNodes).forEach((node, n) => {
      if (typeof node !== 'string') return;
      if (!dataNodeNames.has(node)) report(at('dataNodes', n), `unknown data node ${JSON.stringify(node)}`);
      if (seen.has(node)) report(at('dataNodes', n), `data node ${JSON.stringify(node)} listed twice`);
      seen.add(node);
    });

    const shardCount = typeof table.shards === 'number' ? table.shards : undefined;
    for (const [index, node] of Object.entries(obj(table.placement))) {
      if (shardCount !== undefined && /^[0-9]+$/.test(index) && Number(index) >= shardCount) report(at('placement', index), `no shard ${index}: the hypertable has ${shardCount} shards (0-${shardCount - 1})`);
      if (typeof node === 'string' && !dataNodeNames.has(node)) report(at('placement', index), `unknown data node ${JSON.stringify(node)}`);
    }

    list(table.indexes).map(obj).forEach((index, x) => {
      const method = text(index.method) ?? 'btree';
      list(index.columns).forEach((entry, c) => {
        const columnName = typeof entry === 'string' ? entry : text(obj(entry).column);
        const column = columnName === undefined ? undefined : columns.get(columnName);
        if (columnName !== undefined && column === undefined) report(at('indexes', x, 'columns', c), `no column named ${JSON.stringify(columnName)}`);
        // gin has default operator classes for arrays (of types with equality, so not json) and jsonb only.
        const type = column?.type;
        const ginIndexable = typeof type === 'object' && (type.arrayDepth > 0 ? type.base !== 'json' : type.base === 'jsonb');
        if (method === 'gin' && typeof type === 'object' && !ginIndexable) {
          report(at('indexes', x, 'columns', c), `a gin index needs array or jsonb columns; ${JSON.stringify(columnName)} is ${type.sql}`);
        }
        // PostgreSQL: access method "brin" does not support ASC/DESC options.
        if (method !== 'btree' && obj(entry).order === 'desc') {
          report(at('indexes', x, 'columns', c, 'order'), `a ${method} index has no column order; only btree indexes take order: desc`);
        }
      });
      const count = list(index.columns).length;
      if (index.unique === true) {
        // Each level of partitioning on a data node (shards by space, chunks by time) must see the key.
        const named = new Set(list(index.columns).map((entry) => (typeof entry === 'string' ? entry : text(obj(entry).column))));
        if (method !== 'btree') report(at('indexes', x, 'unique'), `a unique index must use btree, not ${method}`);
        for (const need of [text(table.spaceColumn), text(table.timeColumn)]) {
          if (need !== undefined && !named.has(need)) report(at('indexes', x, 'columns'), `a unique index must include the space and time columns; add ${JSON.stringify(need)}`);
        }
      }
      if (method === 'hash' && count > 1) report(at('indexes', x, 'columns'), `a hash index takes exactly one column, not ${count}`);
      const indexName = text(index.name);
      if (indexName !== undefined) {
        identifier(at('indexes', x, 'name'), indexName);
        if (indexNames.has(indexName)) report(at('indexes', x, 'name'), `duplicate index name ${JSON.stringify(indexName)}`);
        indexNames.add(indexName);
      }
    });
  });

  referenceTables.forEach((table, t) => checkReferenceTable(table, ['referenceTables', t], seenTables, identifier, report));
}

/**
 * A reference table: its names, columns and primary key. `seenTables` holds the names taken so
 * far (hypertables first): copies on the data nodes and hypertables' local parents share schemas.
 */
function checkReferenceTable(table: Record<string, unknown>, path: Path, seenTables: Set<string>, identifier: (path: Path, name: unknown) => void, report: Report): void {
  const at = (...rest: (string | number)[]): Path => [...path, ...rest];
  identifier(at('name'), table.name);
  identifier(at('schema'), table.schema);
  const schema = text(table.schema) ?? 'public';
  if (reservedSchema(schema)) report(at('schema'), `schema ${JSON.stringify(schema)} is reserved`);
  const name = text(table.name);
  if (name !== undefined && seenTables.has(name)) report(at('name'), `duplicate table name ${JSON.stringify(name)}; hypertables and reference tables need names of their own`);
  if (name !== undefined) seenTables.add(name);

  checkColumnCount(at('columns'), table.columns, report);
  const columns = new Map<string, { index: number; type: ReturnType<typeof parseColumnType> | undefined; notNull: boolean }>();
  list(table.columns).map(obj).forEach((column, c) => {
    const columnName = text(column.name);
    identifier(at('columns', c, 'name'), columnName);
    if (column.renamedFrom !== undefined) identifier(at('columns', c, 'renamedFrom'), column.renamedFrom);
    if (columnName !== undefined && columns.has(columnName)) report(at('columns', c, 'name'), `duplicate column ${JSON.stringify(columnName)}`);
    const rawType = text(column.type);
    const type = rawType === undefined ? undefined : parseColumnType(rawType);
    if (typeof type === 'string') report(at('columns', c, 'type'), type);
    if (columnName !== undefined) columns.set(columnName, { index: c, type, notNull: column.notNull === true });
  });
  const key = new Set<string>();
  list(table.primaryKey).forEach((entry, k) => {
    if (typeof entry !== 'string') return;
    identifier(at('primaryKey', k), entry);
    const column = columns.get(entry);
    if (key.has(entry)) report(at('primaryKey', k), `column ${JSON.stringify(entry)} is listed twice`);
    key.add(entry);
    if (column === undefined) {
      report(at('primaryKey', k), `no column named ${JSON.stringify(entry)}`);
      return;
    }
    // PostgreSQL makes key columns NOT NULL anyway; saying so keeps the spec and the catalogs alike.
    if (!column.notNull) report(at('columns', column.index, 'notNull'), `primary key column ${JSON.stringify(entry)} must be notNull: true`);
    // json has no equality operator, so no btree index and no key (jsonb has both).
    if (typeof column.type === 'object' && column.type.base === 'json') report(at('primaryKey', k), `column ${JSON.stringify(entry)} is ${column.type.sql}, which cannot be in a primary key (jsonb can)`);
  });
}

/**
 * Standbys: names unique among all nodes (and their slots among each other), URLs that reach
 * another server but the primary's database, an FDW address, and the replication role they need.
 */
function checkStandbys(spec: Record<string, unknown>, nodeNames: Map<string, Path>, urls: Map<string, string>, report: Report): void {
  const slots = new Map<string, Path>();
  let any = false;
  list(spec.dataNodes).forEach((raw, i) => {
    const node = obj(raw);
    const primaryDb = text(node.url) === undefined ? undefined : urlDatabase(text(node.url) as string);
    list(node.standbys).forEach((rawStandby, s) => {
      any = true;
      const standby = obj(rawStandby);
      const path: Path = ['dataNodes', i, 'standbys', s];
      const name = text(standby.name);
      if (name !== undefined) {
        const first = nodeNames.get(name);
        if (first !== undefined) report([...path, 'name'], `duplicate node name ${JSON.stringify(name)} (also at ${formatPath(first)})`);
        else nodeNames.set(name, path);
        const slot = standbySlotName(name);
        const other = slots.get(slot);
        if (other !== undefined && nodeNames.get(name) === path) report([...path, 'name'], `its replication slot ${slot} would be the one of ${formatPath(other)}; names must differ in more than case and "-" or "_"`);
        else slots.set(slot, path);
      }
      const url = text(standby.url);
      if (url !== undefined && checkUrl([...path, 'url'], url, report)) {
        const database = urlDatabase(url);
        if (database !== primaryDb) report([...path, 'url'], `names database ${JSON.stringify(database ?? '')}; a standby is a copy of its primary, so it must name ${JSON.stringify(primaryDb ?? '')} like the data node's url`);
        const key = normalizeUrl(url);
        const taken = urls.get(key);
        if (taken !== undefined) report([...path, 'url'], `same server as node ${JSON.stringify(taken)}; a standby runs on a server of its own`);
        else urls.set(key, name ?? '?');
      }
      checkFdwValue([...path, 'fdw', 'host'], obj(standby.fdw).host, report);
    });
  });
  if (any && spec.replication === undefined) {
    const first = list(spec.dataNodes).findIndex((n) => list(obj(n).standbys).length > 0);
    report(['dataNodes', first, 'standbys'], 'standbys need the replication role: add `replication: { role: { name: hypershard_replication, password: { env: … } } }` at the top level');
  }
}

function checkColumnCount(path: Path, columns: unknown, report: Report): void {
  const count = list(columns).length;
  if (count > MAX_COLUMNS) report(path, `${count} columns; PostgreSQL allows at most ${MAX_COLUMNS} in a table`);
}

function checkRoleName(path: Path, name: string, report: Report): void {
  if (name.startsWith('pg_')) report(path, `role names starting with "pg_" are reserved by PostgreSQL`);
  if (['public', 'none', 'current_user', 'session_user', 'current_role'].includes(name.toLowerCase())) {
    report(path, `${JSON.stringify(name)} is a reserved role name`);
  }
}

/**
 * Names that hold a secret: libpq's `password` and `sslpassword`, and anything named like one in a
 * query string or an `options` string. Secrets are references (`password: { env | file }`); a
 * literal one would be written into the migrations and snapshots that are committed to git.
 */
const SECRET_NAME = /pass(word|wd|phrase)|secret|token|credential/i;

/** The settings an `options` string (`-c name=value`, `--name=value`) sets whose names hold a secret. */
function secretSettings(options: string): string[] {
  return [...options.matchAll(/(?:^|\s)(?:-c\s*|--)([A-Za-z0-9_.-]+)=/g)].map((m) => m[1] ?? '').filter((name) => SECRET_NAME.test(name));
}

function checkFdwOption(path: Path, key: string, value: unknown, report: Report): void {
  if (SECRET_NAME.test(key)) report(path, `option ${JSON.stringify(key)} is a secret, which the spec never holds literally (it would be written into the migrations)`);
  else if (key === 'options' && typeof value === 'string' && secretSettings(value).length > 0) report(path, `the options string sets ${secretSettings(value).join(', ')}, a secret, which the spec never holds literally`);
  else if (!/^[a-z_]+$/.test(key)) report(path, `${JSON.stringify(key)} is not a libpq option name`);
  else if (TIMEOUT_OPTIONS[key] !== undefined) report(path, `option ${JSON.stringify(key)} is set by hypershard from fdw.timeouts.${TIMEOUT_OPTIONS[key]}`);
  else if (MANAGED_FDW_OPTIONS.has(key)) report(path, `option ${JSON.stringify(key)} is set by hypershard from other fields`);
  else checkFdwValue(path, value, report);
}

/** FDW option values are string literals in the access node's migration; see `textProblem`. */
function checkFdwValue(path: Path, value: unknown, report: Report): void {
  if (typeof value !== 'string') return;
  const problem = textProblem(value);
  if (problem !== undefined) report(path, `${show(value)} ${problem}`);
}

/**
 * The database of a node URL: named (without one, the CLI would connect to PGDATABASE or the
 * user's database, which the access node cannot know), and for a data node without fdw.dbname
 * usable as the FDW server's dbname. True when it is.
 */
function checkUrlDatabase(path: Path, node: Record<string, unknown>, url: string, report: Report): boolean {
  const database = urlDatabase(url);
  if (database === undefined) {
    report([...path, 'url'], 'names no database; write it like postgres://user@host:5432/dbname');
    return false;
  }
  const problem = path[0] === 'dataNodes' && obj(node.fdw).dbname === undefined ? textProblem(database) : undefined;
  if (problem !== undefined) report([...path, 'url'], `database ${show(database)} ${problem}`);
  return problem === undefined;
}

/** Reports what is wrong with a node URL; true when it is usable. */
function checkUrl(path: Path, url: string, report: Report): boolean {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    report(path, `not a URL: write it like postgres://user@host:5432/dbname`);
    return false;
  }
  const keys = [...new Set(parsed.searchParams.keys())];
  const problems = [
    parsed.protocol !== 'postgres:' && parsed.protocol !== 'postgresql:' ? `scheme must be postgres:// or postgresql://, not ${parsed.protocol}//` : undefined,
    parsed.password !== '' ? 'contains a password; put it in `password: { env: VARIABLE }` instead' : undefined,
    ...keys.filter((k) => SECRET_NAME.test(k)).map((k) => `its query string holds a secret (${k}); put the password in \`password: { env: VARIABLE }\` instead`),
    ...parsed.searchParams.getAll('options').flatMap(secretSettings).map((name) => `its options parameter sets ${name}, a secret, which the spec never holds literally`),
    parsed.hostname === '' ? 'has no host' : undefined,
  ].filter((p): p is string => p !== undefined);
  for (const problem of problems) report(path, problem);
  return problems.length === 0;
}

/** host:port/database as the CLI connects (checkUrl and checkUrlDatabase passed). */
function normalizeUrl(url: string): string {
  const u = new URL(url);
  return `${u.hostname}:${u.port || '5432'}/${urlDatabase(url) ?? ''}`;
}
