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
  }
  // Cross-field rules run on the raw input, skipping whatever zod already rejected, so one run
  // reports every problem (a bad shard count does not hide a missing time column).
  checkRelations(input, (path, message) => {
    if (!issues.some((i) => formatPath(i.path) === formatPath(path))) issues.push({ path, message });
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

// Readers for input that may not have the declared shape (zod reports those problems).
const obj = (v: unknown): Record<string, unknown> => (v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {});
const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
const text = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

function checkRelations(input: unknown, report: Report): void {
  const spec = obj(input);
  const identifier = (path: Path, name: unknown): void => {
    if (typeof name !== 'string') return;
    const problem = identifierProblem(name);
    if (problem !== undefined) report(path, `${JSON.stringify(name)} ${problem}`);
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
    if (checkUrl([...path, 'url'], url, report)) {
      const key = normalizeUrl(url);
      const other = urls.get(key);
      if (other !== undefined) report([...path, 'url'], `same database as node ${JSON.stringify(other)}; every node needs its own database`);
      else urls.set(key, name ?? '?');
    }
  }
  const dataNodeNames = new Set(list(spec.dataNodes).map((n) => text(obj(n).name)));
  list(spec.dataNodes).forEach((node, i) => {
    for (const key of Object.keys(obj(obj(obj(node).fdw).options))) checkFdwOption(['dataNodes', i, 'fdw', 'options', key], key, report);
  });
  const fdw = obj(spec.fdw);
  for (const key of Object.keys(obj(fdw.connectionOptions))) checkFdwOption(['fdw', 'connectionOptions', key], key, report);

  // Roles
  const service = text(obj(fdw.serviceRole).name) ?? 'hypershard_fdw';
  identifier(['fdw', 'serviceRole', 'name'], service);
  checkRoleName(['fdw', 'serviceRole', 'name'], service, report);
  const roles = list(spec.roles).map(obj);
  const roleNames = new Set<string>();
  roles.forEach((role, i) => {
    const name = text(role.name);
    if (name === undefined) return;
    const path: Path = ['roles', i, 'name'];
    identifier(path, name);
    checkRoleName(path, name, report);
    if (name === service) report(path, `${JSON.stringify(name)} is the FDW service role; declare another name`);
    if (roleNames.has(name)) report(path, `duplicate role ${JSON.stringify(name)}`);
    roleNames.add(name);
  });
  const tables = list(spec.hypertables).map(obj);
  const tableNames = new Set(tables.map((t) => text(t.name)));
  roles.forEach((role, i) => {
    list(role.memberOf).forEach((parent, j) => {
      if (typeof parent !== 'string') return;
      if (parent === role.name) report(['roles', i, 'memberOf', j], 'a role cannot be a member of itself');
      else if (!roleNames.has(parent)) report(['roles', i, 'memberOf', j], `unknown role ${JSON.stringify(parent)}; declare it under roles`);
      identifier(['roles', i, 'memberOf', j], parent);
    });
    list(role.grants).forEach((grant, j) => {
      const on = text(obj(grant).on);
      if (on !== undefined && !tableNames.has(on)) report(['roles', i, 'grants', j, 'on'], `unknown hypertable ${JSON.stringify(on)}`);
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
    if (schema === RESERVED_SCHEMA || schema.startsWith('pg_')) report(at('schema'), `schema ${JSON.stringify(schema)} is reserved`);
    const name = text(table.name);
    // Table names are unique across schemas: shard tables on data nodes share one schema.
    if (name !== undefined && seenTables.has(name)) report(at('name'), `duplicate hypertable name ${JSON.stringify(name)}`);
    if (name !== undefined) seenTables.add(name);

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

    list(table.indexes).map(obj).forEach((index, x) => {
      list(index.columns).forEach((entry, c) => {
        const columnName = typeof entry === 'string' ? entry : text(obj(entry).column);
        if (columnName !== undefined && !columns.has(columnName)) report(at('indexes', x, 'columns', c), `no column named ${JSON.stringify(columnName)}`);
      });
      const indexName = text(index.name);
      if (indexName !== undefined) {
        identifier(at('indexes', x, 'name'), indexName);
        if (indexNames.has(indexName)) report(at('indexes', x, 'name'), `duplicate index name ${JSON.stringify(indexName)}`);
        indexNames.add(indexName);
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

/** Reports what is wrong with a node URL; true when it is usable. */
function checkUrl(path: Path, url: string, report: Report): boolean {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    report(path, `not a URL: write it like postgres://user@host:5432/dbname`);
    return false;
  }
  const problems = [
    parsed.protocol !== 'postgres:' && parsed.protocol !== 'postgresql:' ? `scheme must be postgres:// or postgresql://, not ${parsed.protocol}//` : undefined,
    parsed.password !== '' ? 'contains a password; put it in `password: { env: VARIABLE }` instead' : undefined,
    parsed.hostname === '' ? 'has no host' : undefined,
  ].filter((p): p is string => p !== undefined);
  for (const problem of problems) report(path, problem);
  return problems.length === 0;
}

function normalizeUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.hostname}:${u.port || '5432'}/${decodeURIComponent(u.pathname.slice(1)) || 'postgres'}`;
  } catch {
    return url;
  }
}
