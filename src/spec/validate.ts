/**
 * Turns untrusted input into a `ClusterSpec`: schema checks by zod, then the rules that relate
 * fields to each other. Every problem is collected, so a user fixes them all in one pass.
 */
import { SpecError, type SpecIssue } from '../errors.js';
import { identifierProblem } from '../sql/quote.js';
import { isHashable, isTimeType, parseColumnType } from './columnType.js';
import { parseFixedInterval } from './interval.js';
import { clusterSpec, type ClusterSpec } from './schema.js';

type Path = readonly (string | number)[];

export function formatPath(path: Path): string {
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? p : `.${p}`)).join('');
}

/** Names hypershard creates itself; a spec may not claim them. */
export const RESERVED_SCHEMA = '_hypershard';
/** FDW server options hypershard sets from other fields. */
const MANAGED_FDW_OPTIONS = new Set([
  'host', 'hostaddr', 'port', 'dbname', 'user', 'password', 'async_capable', 'fetch_size', 'batch_size',
  'fdw_tuple_cost', 'fdw_startup_cost', 'parallel_commit', 'keep_connections', 'updatable', 'truncatable',
  'use_remote_estimate', 'extensions', 'passfile',
]);

/**
 * Validates `input` and returns the spec with defaults applied.
 * @throws SpecError with every problem found, each with its path.
 */
export function validateSpec(input: unknown, options: { file?: string; locate?: (path: Path) => string | undefined } = {}): ClusterSpec {
  const issues: { path: Path; message: string }[] = [];
  const parsed = clusterSpec.safeParse(input);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) issues.push({ path: issue.path as Path, message: issue.message });
  } else {
    checkRelations(parsed.data, (path, message) => issues.push({ path, message }));
  }
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

function checkRelations(spec: ClusterSpec, report: Report): void {
  const identifier = (path: Path, name: string): void => {
    const problem = identifierProblem(name);
    if (problem !== undefined) report(path, `${JSON.stringify(name)} ${problem}`);
  };

  // Nodes
  const nodeNames = new Map<string, Path>();
  const nodes = [
    { path: ['accessNode'] as Path, node: spec.accessNode },
    ...spec.dataNodes.map((node, i) => ({ path: ['dataNodes', i] as Path, node })),
  ];
  for (const { path, node } of nodes) {
    identifier([...path, 'name'], node.name);
    const first = nodeNames.get(node.name);
    if (first !== undefined) report([...path, 'name'], `duplicate node name ${JSON.stringify(node.name)} (also at ${formatPath(first)})`);
    else nodeNames.set(node.name, path);
    checkUrl([...path, 'url'], node.url, report);
  }
  const urls = new Map<string, string>();
  for (const { path, node } of nodes) {
    const key = normalizeUrl(node.url);
    const other = urls.get(key);
    if (other !== undefined) report([...path, 'url'], `same database as node ${JSON.stringify(other)}; every node needs its own database`);
    else urls.set(key, node.name);
  }
  const dataNodeNames = new Set(spec.dataNodes.map((n) => n.name));
  spec.dataNodes.forEach((node, i) => {
    for (const key of Object.keys(node.fdw?.options ?? {})) checkFdwOption(['dataNodes', i, 'fdw', 'options', key], key, report);
  });
  for (const key of Object.keys(spec.fdw.connectionOptions)) checkFdwOption(['fdw', 'connectionOptions', key], key, report);

  // Roles
  const service = spec.fdw.serviceRole.name;
  identifier(['fdw', 'serviceRole', 'name'], service);
  checkRoleName(['fdw', 'serviceRole', 'name'], service, report);
  const roleNames = new Set<string>();
  spec.roles.forEach((role, i) => {
    const path: Path = ['roles', i, 'name'];
    identifier(path, role.name);
    checkRoleName(path, role.name, report);
    if (role.name === service) report(path, `${JSON.stringify(role.name)} is the FDW service role; declare another name`);
    if (roleNames.has(role.name)) report(path, `duplicate role ${JSON.stringify(role.name)}`);
    roleNames.add(role.name);
  });
  const tableNames = new Set(spec.hypertables.map((t) => t.name));
  spec.roles.forEach((role, i) => {
    role.memberOf.forEach((parent, j) => {
      if (parent === role.name) report(['roles', i, 'memberOf', j], 'a role cannot be a member of itself');
      else if (!roleNames.has(parent)) report(['roles', i, 'memberOf', j], `unknown role ${JSON.stringify(parent)}; declare it under roles`);
    });
    role.grants.forEach((grant, j) => {
      if (!tableNames.has(grant.on)) report(['roles', i, 'grants', j, 'on'], `unknown hypertable ${JSON.stringify(grant.on)}`);
    });
    if (role.password !== undefined && !role.login) report(['roles', i, 'password'], 'a password is only useful with login: true');
  });

  // Hypertables
  const qualified = new Set<string>();
  const indexNames = new Set<string>();
  spec.hypertables.forEach((table, t) => {
    const at = (...rest: (string | number)[]): Path => ['hypertables', t, ...rest];
    identifier(at('name'), table.name);
    identifier(at('schema'), table.schema);
    if (table.schema === RESERVED_SCHEMA || table.schema.startsWith('pg_')) {
      report(at('schema'), `schema ${JSON.stringify(table.schema)} is reserved`);
    }
    // Table names are unique across schemas: shard tables on data nodes share one schema.
    if (qualified.has(table.name)) report(at('name'), `duplicate hypertable name ${JSON.stringify(table.name)}`);
    qualified.add(table.name);

    const columns = new Map<string, ReturnType<typeof parseColumnType>>();
    table.columns.forEach((column, c) => {
      identifier(at('columns', c, 'name'), column.name);
      if (columns.has(column.name)) report(at('columns', c, 'name'), `duplicate column ${JSON.stringify(column.name)}`);
      const type = parseColumnType(column.type);
      if (typeof type === 'string') report(at('columns', c, 'type'), type);
      columns.set(column.name, type);
    });
    const timeType = columns.get(table.timeColumn);
    if (timeType === undefined) report(at('timeColumn'), `no column named ${JSON.stringify(table.timeColumn)}`);
    else if (typeof timeType !== 'string' && !isTimeType(timeType)) {
      report(at('timeColumn'), `column ${JSON.stringify(table.timeColumn)} is ${timeType.sql}; the time column must be timestamptz or timestamp`);
    }
    const spaceType = columns.get(table.spaceColumn);
    if (spaceType === undefined) report(at('spaceColumn'), `no column named ${JSON.stringify(table.spaceColumn)}`);
    else if (typeof spaceType !== 'string' && !isHashable(spaceType)) {
      report(at('spaceColumn'), `column ${JSON.stringify(table.spaceColumn)} is ${spaceType.sql}, which cannot be hash-partitioned`);
    }
    if (table.spaceColumn === table.timeColumn) report(at('spaceColumn'), 'the space column must differ from the time column');
    for (const key of [table.timeColumn, table.spaceColumn]) {
      const column = table.columns.find((col) => col.name === key);
      if (column !== undefined && !column.notNull) {
        report(at('columns', table.columns.indexOf(column), 'notNull'), `partitioning column ${JSON.stringify(key)} must be notNull: true`);
      }
    }
    const interval = parseFixedInterval(table.chunkInterval);
    if (typeof interval === 'string') report(at('chunkInterval'), interval);
    else if (interval.seconds % 60 !== 0) report(at('chunkInterval'), 'must be a whole number of minutes');

    const seen = new Set<string>();
    (table.dataNodes ?? []).forEach((name, n) => {
      if (!dataNodeNames.has(name)) report(at('dataNodes', n), `unknown data node ${JSON.stringify(name)}`);
      if (seen.has(name)) report(at('dataNodes', n), `data node ${JSON.stringify(name)} listed twice`);
      seen.add(name);
    });

    table.indexes.forEach((index, x) => {
      index.columns.forEach((entry, c) => {
        const name = typeof entry === 'string' ? entry : entry.column;
        if (!columns.has(name)) report(at('indexes', x, 'columns', c), `no column named ${JSON.stringify(name)}`);
      });
      if (index.name !== undefined) {
        identifier(at('indexes', x, 'name'), index.name);
        if (indexNames.has(index.name)) report(at('indexes', x, 'name'), `duplicate index name ${JSON.stringify(index.name)}`);
        indexNames.add(index.name);
      }
    });
  });
}

function checkRoleName(path: Path, name: string, report: Report): void {
  if (name.startsWith('pg_')) report(path, `role names starting with "pg_" are reserved by PostgreSQL`);
  if (['public', 'none', 'current_user', 'session_user', 'current_role'].includes(name.toLowerCase())) {
    report(path, `${JSON.stringify(name)} is a reserved role name`);
  }
}

function checkFdwOption(path: Path, key: string, report: Report): void {
  if (!/^[a-z_]+$/.test(key)) report(path, `${JSON.stringify(key)} is not a libpq option name`);
  else if (MANAGED_FDW_OPTIONS.has(key)) report(path, `option ${JSON.stringify(key)} is set by hypershard from other fields`);
}

function checkUrl(path: Path, url: string, report: Report): void {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    report(path, `not a URL: write it like postgres://user@host:5432/dbname`);
    return;
  }
  if (parsed.protocol !== 'postgres:' && parsed.protocol !== 'postgresql:') {
    report(path, `scheme must be postgres:// or postgresql://, not ${parsed.protocol}//`);
  }
  if (parsed.password !== '') report(path, 'contains a password; put it in `password: { env: VARIABLE }` instead');
  if (parsed.hostname === '') report(path, 'has no host');
}

function normalizeUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.hostname}:${u.port || '5432'}/${decodeURIComponent(u.pathname.slice(1)) || 'postgres'}`;
  } catch {
    return url;
  }
}
