/**
 * INSERT routing: an INSERT into a distributed hypertable written straight to the data nodes that
 * own its rows, as the access node would have written them, inside a RoutedTransaction (so it
 * commits on every node or on none). The gateway and hypershard/pg call it; anything it refuses
 * goes through the access node as written.
 *
 *   const plan = await planRoutedInsert(cluster, sql, params, settings);
 *   if (!plan.routable) { send sql to the access node; log plan.reason }
 *   else {
 *     const tx = await cluster.begin({ settings, access });   // access: the client's session in a
 *     const rows = await plan.run(tx);                         // transaction block, or omit it
 *     await tx.commit();                                       // or prepare() / writeCommitRecord()
 *   }                                                          // / COMMIT / commitPrepared()
 *   // command tag: `INSERT 0 ${rows}`
 *
 * Routable (everything else is refused with the reason):
 * - `INSERT INTO hypertable [AS a] [(cols)] VALUES (…), (…)` whose values are constants,
 *   parameters, or casts of them (no function calls: now() would be read on another node's clock);
 * - `INSERT INTO hypertable [(cols)] SELECT unnest($1::t[]), unnest($2::u[]) …` or
 *   `… SELECT * FROM unnest($1::t[], $2::u[])`, arrays of equal length;
 * - either with `ON CONFLICT DO NOTHING`, or `ON CONFLICT (cols) DO NOTHING / DO UPDATE SET …
 *   [WHERE …]` when the spec declares a unique index on exactly those columns (it includes the
 *   space and time columns, so each shard enforces it alone) and the update changes neither;
 * - by a role with the table privileges the statement needs, on a table without row-level
 *   security or triggers on the access node (routing would skip them), whose unlisted columns
 *   have no default there.
 * RETURNING, WITH, OVERRIDING and ON CONFLICT ON CONSTRAINT are refused.
 *
 * Exactness: the key is read from the value's text as the column's input function reads it (a
 * constant of another type is refused rather than converted); parameters go to the data nodes in
 * the format and with the built-in type the client declared; the data nodes read every value in
 * the client's TimeZone, DateStyle and IntervalStyle.
 */
import type { InsertStmt, Node, OnConflictClause, SelectStmt } from '@pgsql/types';
import pg from 'pg';
import { HypershardError, RoutingError } from '../errors.js';
import type { QualifiedName } from '../plan/layout.js';
import { deparse, parseStatements } from '../rewrite/parser.js';
import type { HypertableRoute, Partition } from '../route/placement.js';
import { TYPE_OID } from '../route/keyType.js';
import { KeyValueError } from '../route/serverHash.js';
import { binaryToText } from '../codec/binaryText.js';
import { quoteIdent, quoteLiteral } from '../sql/quote.js';
import type { IngestCluster } from './cluster.js';
import { canonicalEncoding, keyDecoder, type ClientSettings } from './settings.js';
import type { RoutedTransaction } from './transaction.js';
import { RoutedCopy } from './copy.js';
import { exactValues, readValuesInsert, type ValuesText } from './valuesText.js';

/** A bind parameter: text (a string, or bytes in the client encoding) or binary, with the type the client declared (0: unspecified). */
export type InsertParam = string | null | { readonly value: string | Uint8Array | null; readonly format?: 'text' | 'binary'; readonly typeOid?: number };

export interface InsertSettings extends Partial<ClientSettings> {
  /** The session's search_path as SHOW prints it; resolves an unqualified table name. @default the access node's */
  readonly searchPath?: string;
  /** The session's current role: its privileges are checked. @default the spec's user */
  readonly role?: string;
  /** standard_conforming_strings is on (a backslash in '…' is literal). @default false: strings with a backslash take the exact path */
  readonly standardConformingStrings?: boolean;
}

export interface PlanOptions {
  /**
   * Whether a statement the fast reading does not take (src/ingest/valuesText.ts) is parsed:
   * false refuses it instead (the gateway sends plain INSERTs on rather than pay the parser).
   * @default true
   */
  readonly parse?: boolean;
  /** Fewer rows than this are refused (routing costs round trips a few rows do not repay). @default 1 */
  readonly minRows?: number;
}

export interface Refusal {
  readonly routable: false;
  readonly reason: string;
}

export interface RoutedInsert {
  readonly routable: true;
  readonly table: QualifiedName;
  /** Rows the statement inserts (or attempts to, with ON CONFLICT). */
  readonly rows: number;
  /**
   * Writes the rows on their data nodes in `tx` (not committed: the caller commits tx).
   * @returns the row count of the command tag (`INSERT 0 n`)
   * @throws RoutingError when the table changed since planning; a data node's error naming it
   */
  run(tx: RoutedTransaction): Promise<number>;
}

/** A parameter as sent on: a string (text) or a Buffer (binary), with its built-in type or 0. */
interface Bound {
  readonly value: string | Buffer | null;
  readonly type: number;
}

/** A value of a row: how to read its key text, and the ParamRef nodes to renumber. */
type Source =
  | { kind: 'const'; text: string | null; numeric: 'int' | 'float' | 'text' | 'other'; cast?: string[] }
  | { kind: 'param'; index: number; cast?: string[] }
  | { kind: 'refused'; reason: string };

/** Built-in type OIDs are the same on every node; a user type's OID is not. */
const FIRST_USER_OID = 16_384;
const PRIVILEGES_TTL_MS = 5_000;
const RESOLVE_TTL_MS = 10_000;

const refuse = (reason: string): Refusal => ({ routable: false, reason });

/**
 * Decides whether `sql` (one INSERT statement) can be routed, and plans it.
 * @throws the access node's error when it cannot be asked (a refusal otherwise never throws)
 */
export async function planRoutedInsert(cluster: IngestCluster, sql: string, params: readonly InsertParam[] = [], settings: InsertSettings = {}, options: PlanOptions = {}): Promise<RoutedInsert | Refusal> {
  // Constants only, in UTF-8 (the text is a JS string; another client encoding is re-encoded by the exact path).
  if (params.length === 0 && canonicalEncoding(settings.clientEncoding ?? 'UTF8') === 'UTF8') {
    const values = readValuesInsert(sql, { standardStrings: settings.standardConformingStrings ?? false });
    if (values !== undefined) {
      if (values.rows < (options.minRows ?? 1)) return refuse(`${values.rows} row${values.rows === 1 ? '' : 's'}: through the access node is cheaper`);
      return planValuesText(cluster, values, settings);
    }
  }
  if (options.parse === false) return refuse('not a multi-row INSERT … VALUES of plain constants');
  return planParsed(cluster, sql, [params], settings, options);
}

/**
 * One INSERT executed once per parameter set (a driver's batch: JDBC's executeBatch, asyncpg's and
 * psycopg's executemany), planned as one routed write of all their rows: the statement is parsed
 * once and its VALUES rows repeated for each set. Plain INSERT … VALUES only: an ON CONFLICT
 * clause is refused for more than one set (its row counts are per execution, and DO UPDATE of two
 * rows with one key is legal across executions but not within one statement), as is unnest.
 */
export async function planRoutedBatch(cluster: IngestCluster, sql: string, sets: readonly (readonly InsertParam[])[], settings: InsertSettings = {}, options: PlanOptions = {}): Promise<RoutedInsert | Refusal> {
  if (sets.length === 0) return refuse('no parameter sets');
  if (sets.length === 1) return planRoutedInsert(cluster, sql, sets[0], settings, options);
  const width = (sets[0] as readonly InsertParam[]).length;
  if (sets.some((s) => s.length !== width)) return refuse('the parameter sets differ in length');
  return planParsed(cluster, sql, sets, settings, options);
}

async function planParsed(cluster: IngestCluster, sql: string, sets: readonly (readonly InsertParam[])[], settings: InsertSettings, options: PlanOptions): Promise<RoutedInsert | Refusal> {
  const batch = sets.length > 1;
  let parsed;
  try {
    parsed = parsedInsert(sql);
  } catch (error) {
    return refuse(`not parsed: ${error instanceof Error ? error.message : String(error)}`);
  }
  const [only] = parsed;
  if (parsed.length !== 1 || only === undefined || !('InsertStmt' in only.stmt)) return refuse('not a single INSERT statement');
  const stmt = only.stmt.InsertStmt;
  if (stmt.withClause !== undefined) return refuse('WITH is not routed');
  // The parser's versions name it returningList or returningClause.
  const returning = stmt as { returningList?: unknown[]; returningClause?: unknown };
  if ((returning.returningList?.length ?? 0) > 0 || returning.returningClause !== undefined) return refuse('RETURNING is not routed (its rows come from the access node)');
  if (stmt.override !== undefined && stmt.override !== 'OVERRIDING_NOT_SET') return refuse('OVERRIDING is not routed');
  const relation = stmt.relation;
  if (relation?.relname === undefined) return refuse('no target table');
  if (relation.catalogname !== undefined) return refuse('a database-qualified name is not routed');
  const target = await hypertableTarget(cluster, relation.schemaname, relation.relname, settings);
  if ('routable' in target) return target;
  const { table, spec, route } = target;
  const columns = (stmt.cols ?? []).map((c) => ('ResTarget' in c ? c.ResTarget.name : undefined));
  if (columns.some((c) => c === undefined) || (stmt.cols ?? []).some((c) => 'ResTarget' in c && (c.ResTarget.indirection?.length ?? 0) > 0)) {
    return refuse('a target column with a subscript or field is not routed');
  }
  const names = columns.length > 0 ? (columns as string[]) : route.columns.map((c) => c.name);
  const bound = bindParams(sets.flat(), settings);

  const select = stmt.selectStmt === undefined ? undefined : 'SelectStmt' in stmt.selectStmt ? stmt.selectStmt.SelectStmt : undefined;
  if (select === undefined) return refuse('DEFAULT VALUES is not routed');
  if (batch) {
    if (select.valuesLists === undefined) return refuse('a batch of INSERT … SELECT is not routed (one execution with arrays is)');
    if (stmt.onConflictClause !== undefined) return refuse('a batch of INSERT … ON CONFLICT is not routed (its row counts are per execution)');
  }
  const once = select.valuesLists !== undefined ? cachedValuesShape(select, names.length) : unnestShape(select);
  if (typeof once === 'string') return refuse(once);
  const shape = batch && once.kind === 'values' ? repeatRows(once, sets.length, (sets[0] as readonly InsertParam[]).length) : once;
  if (shape.width > names.length) return refuse('INSERT has more expressions than target columns');
  const listed = names.slice(0, shape.width);
  const checked = checkColumns(route, listed);
  if (checked !== undefined) return refuse(checked);

  const conflict = checkConflict(stmt.onConflictClause, spec, relation.alias?.aliasname ?? relation.relname);
  if (typeof conflict === 'object') return conflict;
  const access = await accessFacts(cluster, route.oid, settings.role, listed, conflict);
  if (access !== undefined) return refuse(access);

  const keyAt = listed.indexOf(route.key.name);
  if (keyAt === -1) return refuse(`the statement gives no value for ${route.key.name}, the space column`);
  const keyType = route.key;
  const columnType = (i: number): number => route.columns.find((c) => c.name === listed[i])?.typeOid ?? 0;

  const fewer = (rows: number): Refusal | undefined => (rows < (options.minRows ?? 1) ? refuse(`${rows} row${rows === 1 ? '' : 's'}: through the access node is cheaper`) : undefined);
  if (shape.kind === 'values') {
    const few = fewer(shape.rows.length);
    if (few !== undefined) return few;
    if (batch && once.kind === 'values' && once.rows.some((r) => r.sources.some((src) => src.kind === 'param' && src.index > (sets[0] as readonly InsertParam[]).length))) return refuse('the statement refers to a parameter the batch does not give');
    const keys: (string | null)[] = [];
    for (const row of shape.rows) {
      const source = row.sources[keyAt] as Source;
      const key = keyText(source, bound, keyType.typeOid, keyType.typeSql);
      if (typeof key === 'object' && key !== null) return refuse(key.reason);
      keys.push(key);
      // A binary parameter with no declared type is read by the type its column gives it.
      for (let i = 0; i < row.sources.length; i += 1) {
        const s = row.sources[i] as Source;
        if (s.kind === 'refused') return refuse(s.reason);
        if (s.kind === 'param' && bound[s.index - 1] === undefined) return refuse(`there is no parameter $${s.index}`);
        if (s.kind === 'param' && Buffer.isBuffer(bound[s.index - 1]?.value) && (bound[s.index - 1] as Bound).type === 0 && !row.direct[i]) {
          return refuse(`binary parameter $${s.index} has no declared type`);
        }
      }
    }
    const paramTypes = (index: number, column: number): number => {
      const b = bound[index - 1] as Bound;
      return b.type !== 0 ? b.type : Buffer.isBuffer(b.value) ? columnType(column) : 0;
    };
    // Rows of parameters the columns read as they are go as COPY lines: no statement to build.
    const lines = conflict === 'none' ? copyLines(shape.rows, bound, shape.rows[0]?.sources.map((_, i) => columnType(i)) ?? []) : undefined;
    if (lines !== undefined) {
      return {
        routable: true,
        table,
        rows: shape.rows.length,
        run: async (tx) => {
          const copy = await RoutedCopy.open(tx, table, { format: 'text', columns: listed });
          assertSameColumns(copy.route, route, table);
          await copy.write(Buffer.from(lines, 'utf8'));
          await copy.finish();
          return shape.rows.length;
        },
      };
    }
    return {
      routable: true,
      table,
      rows: shape.rows.length,
      run: async (tx) => {
        const router = await tx.router(table);
        assertSameColumns(router.route, route, table);
        const shards = chunked(await partitionRows(router, keys), statementRows(shape.rows));
        return writeShards(tx, router.route, shards, (partition, rowIndexes) => valuesStatement(stmt, router.route.partitions[partition] as Partition, shape.rows, rowIndexes, bound, paramTypes));
      },
    };
  }

  // unnest: the arrays split by the key array's elements.
  const arrays: string[][] = [];
  for (const [i, a] of shape.arrays.entries()) {
    const b = bound[a.param - 1];
    if (b === undefined) return refuse(`there is no parameter $${a.param}`);
    if (b.value === null) return refuse(`parameter $${a.param} is NULL`);
    const text = Buffer.isBuffer(b.value) ? (b.type === 0 ? undefined : binaryToText(b.type, b.value)) : b.value;
    if (text === undefined) return refuse(`binary parameter $${a.param} has no declared type`);
    const elements = parseArrayText(text);
    if (typeof elements === 'string') return refuse(`parameter $${a.param}: ${elements}`);
    if (a.type[a.type.length - 1] === 'box') return refuse('box arrays use another delimiter');
    if (i === keyAt && !sameType(a.type, keyType.typeSql)) return refuse(`the space column's array is cast to ${a.type.join('.')}, not its column type`);
    arrays.push(elements as string[]);
  }
  const length = arrays[0]?.length ?? 0;
  if (arrays.some((a) => a.length !== length)) return refuse('the unnest arrays differ in length');
  const few = fewer(length);
  if (few !== undefined) return few;
  const keys = (arrays[keyAt] as (string | null)[]);
  return {
    routable: true,
    table,
    rows: length,
    run: async (tx) => {
      const router = await tx.router(table);
      assertSameColumns(router.route, route, table);
      const shards = await partitionRows(router, keys);
      return writeShards(tx, router.route, shards, (partition, rowIndexes) => {
        const text = retarget(stmt, router.route.partitions[partition] as Partition, (s) => s);
        const values = shape.arrays.map((_, i) => arrayText((arrays[i] as (string | null)[]), rowIndexes));
        const types = shape.arrays.map((a) => {
          const t = (bound[a.param - 1] as Bound).type;
          return t < FIRST_USER_OID ? t : 0;
        });
        // The statement's $n are the arrays' own numbers; every parameter is one of them.
        const out: Bound[] = bound.map((b, i) => {
          const at = shape.arrays.findIndex((a) => a.param === i + 1);
          return at === -1 ? b : { value: values[at] as string, type: types[at] as number };
        });
        return { text, values: out };
      });
    },
  };
}

/**
 * An INSERT … VALUES of plain constants, read without the parser: its rows go as COPY text lines
 * to their shards (RoutedCopy), which parses each once and reads only its key.
 */
async function planValuesText(cluster: IngestCluster, values: ValuesText, settings: InsertSettings): Promise<RoutedInsert | Refusal> {
  const target = await hypertableTarget(cluster, values.schema, values.name, settings);
  if ('routable' in target) return target;
  const { table, route } = target;
  if (values.width > route.columns.length) return refuse('INSERT has more expressions than target columns');
  const listed = (values.columns ?? route.columns.map((c) => c.name)).slice(0, values.width);
  const checked = checkColumns(route, listed);
  if (checked !== undefined) return refuse(checked);
  if (!listed.includes(route.key.name)) return refuse(`the statement gives no value for ${route.key.name}, the space column`);
  const inexact = exactValues(values, listed.map((c) => route.columns.find((rc) => rc.name === c)?.typeOid ?? 0));
  if (inexact !== undefined) return refuse(inexact);
  const access = await accessFacts(cluster, route.oid, settings.role, listed, 'none');
  if (access !== undefined) return refuse(access);
  return {
    routable: true,
    table,
    rows: values.rows,
    run: async (tx) => {
      const copy = await RoutedCopy.open(tx, table, { format: 'text', columns: listed });
      assertSameColumns(copy.route, route, table);
      await copy.write(Buffer.from(values.copyText, 'utf8'));
      await copy.finish();
      return values.rows;
    },
  };
}

/** The distributed hypertable an INSERT names (as the session's search_path resolves it), its spec and its route; or a refusal. */
async function hypertableTarget(cluster: IngestCluster, schema: string | undefined, name: string, settings: InsertSettings) {
  const table = await resolveTable(cluster, schema, name, settings);
  if (table === undefined) return refuse(`${name} is not a distributed hypertable of the spec`);
  const spec = cluster.spec.hypertables.find((h) => h.schema === table.schema && h.name === table.name);
  if (spec === undefined) return refuse(`${table.schema}.${table.name} is not a distributed hypertable of the spec`);
  const route = await cluster.withAccess((client) => cluster.route(client, table));
  return { table, spec, route };
}

/** The hypertable an INSERT names, resolved as the session's search_path would. */
async function resolveTable(cluster: IngestCluster, schema: string | undefined, name: string, settings: InsertSettings): Promise<QualifiedName | undefined> {
  if (schema !== undefined) return { schema, name };
  // Only a name some hypertable has can resolve to one.
  if (!cluster.spec.hypertables.some((h) => h.name === name)) return undefined;
  const path = (settings.searchPath ?? '').replace(/"\$user"|\$user/g, settings.role === undefined ? '' : quoteIdent(settings.role)).replace(/^\s*,|,\s*,/g, ',').replace(/^,|,$/g, '');
  const key = `${path}\u0000${name}`;
  const cache = resolveCache(cluster);
  const hit = cache.get(key);
  if (hit !== undefined && hit.at > Date.now() - RESOLVE_TTL_MS) return hit.table;
  const table = await cluster.withAccess(async (client) => {
    // One implicit transaction: the search_path reverts when it ends.
    const results = (await client.query(
      (settings.searchPath === undefined ? '' : `SELECT pg_catalog.set_config('search_path', ${quoteLiteral(path)}, true); `) +
        `SELECT n.nspname AS schema, c.relname AS name FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = pg_catalog.to_regclass(${quoteLiteral(quoteIdent(name))})`,
    )) as unknown as pg.QueryResult<QualifiedName> | pg.QueryResult<QualifiedName>[];
    const last = Array.isArray(results) ? results[results.length - 1] : results;
    const row = last?.rows[0];
    return row === undefined ? undefined : { schema: row.schema, name: row.name };
  });
  cache.set(key, { at: Date.now(), table });
  return table;
}

const resolveCaches = new WeakMap<IngestCluster, Map<string, { at: number; table: QualifiedName | undefined }>>();
function resolveCache(cluster: IngestCluster): Map<string, { at: number; table: QualifiedName | undefined }> {
  let cache = resolveCaches.get(cluster);
  if (cache === undefined) resolveCaches.set(cluster, (cache = new Map<string, { at: number; table: QualifiedName | undefined }>()));
  return cache;
}

function bindParams(params: readonly InsertParam[], settings: InsertSettings): Bound[] {
  const decode = keyDecoder(canonicalEncoding(settings.clientEncoding ?? 'UTF8'));
  return params.map((p) => {
    if (p === null || typeof p === 'string') return { value: p, type: 0 };
    const type = p.typeOid !== undefined && p.typeOid < FIRST_USER_OID ? p.typeOid : 0;
    if (p.value === null) return { value: null, type };
    // A Buffer is used as it is (a gateway's, a slice of the client's message); other bytes are copied into one.
    if (p.format === 'binary') return { value: Buffer.isBuffer(p.value) ? p.value : p.value instanceof Uint8Array ? Buffer.from(p.value) : Buffer.from(p.value, 'utf8'), type };
    return { value: typeof p.value === 'string' ? p.value : decode(p.value), type };
  });
}

interface ValuesRow {
  /** The row's expressions, and the ParamRef nodes in them (renumbered per shard statement): only the statement path reads them. */
  readonly items: Node[];
  readonly sources: Source[];
  /** Whether each item is the value itself (a constant or $n), not inside a cast. */
  readonly direct: boolean[];
  readonly paramRefs: { number: number }[];
}

/** A statement's VALUES shape by its (cached, read-only) parse tree: a driver executes one statement many times. */
const shapes = new WeakMap<SelectStmt, Map<number, Shape | string>>();

function cachedValuesShape(select: SelectStmt, columns: number): Shape | string {
  let byColumns = shapes.get(select);
  if (byColumns === undefined) shapes.set(select, (byColumns = new Map<number, Shape | string>()));
  let shape = byColumns.get(columns);
  if (shape === undefined) byColumns.set(columns, (shape = valuesShape(select, columns)));
  return shape;
}

type Shape = { kind: 'values'; width: number; rows: ValuesRow[] } | { kind: 'unnest'; width: number; arrays: { param: number; type: string[] }[] };

function valuesShape(select: SelectStmt, columns: number): Shape | string {
  if (otherClauses(select)) return 'VALUES with other clauses is not routed';
  const rows: ValuesRow[] = [];
  let width = -1;
  for (const list of select.valuesLists ?? []) {
    const items = 'List' in list ? (list.List.items ?? []) : undefined;
    if (items === undefined) return 'unexpected VALUES row';
    if (width === -1) width = items.length;
    if (items.length !== width) return 'VALUES lists must all be the same length';
    const paramRefs: { number: number }[] = [];
    const sources = items.map((item) => sourceOf(item, paramRefs));
    rows.push({ items, sources, direct: items.map((i) => 'A_Const' in i || 'ParamRef' in i), paramRefs });
  }
  if (width > columns) return 'INSERT has more expressions than target columns';
  return { kind: 'values', width, rows };
}

function otherClauses(s: SelectStmt): boolean {
  return (s.distinctClause?.length ?? 0) > 0 || s.whereClause !== undefined || (s.groupClause?.length ?? 0) > 0 || s.havingClause !== undefined ||
    (s.sortClause?.length ?? 0) > 0 || s.limitCount !== undefined || s.limitOffset !== undefined || s.withClause !== undefined || (s.lockingClause?.length ?? 0) > 0 ||
    (s.windowClause?.length ?? 0) > 0 || s.intoClause !== undefined || (s.op !== undefined && s.op !== 'SETOP_NONE');
}

/** A value the data node computes exactly as the access node would, and how to read it as a key. */
function sourceOf(item: Node, paramRefs: { number: number }[]): Source {
  if ('A_Const' in item) {
    const c = item.A_Const;
    if (c.isnull === true) return { kind: 'const', text: null, numeric: 'other' };
    if (c.ival !== undefined) return { kind: 'const', text: String(c.ival.ival ?? 0), numeric: 'int' };
    if (c.fval !== undefined) return { kind: 'const', text: c.fval.fval ?? '0', numeric: 'float' };
    if (c.sval !== undefined) return { kind: 'const', text: c.sval.sval ?? '', numeric: 'text' };
    // A boolean or bit string: never NULL (keyText refuses it as a key).
    const other = c as { boolval?: { boolval?: boolean }; bsval?: { bsval?: string } };
    return { kind: 'const', text: other.boolval !== undefined ? String(other.boolval.boolval === true) : (other.bsval?.bsval ?? ''), numeric: 'other' };
  }
  if ('ParamRef' in item) {
    paramRefs.push(item.ParamRef as { number: number });
    return { kind: 'param', index: item.ParamRef.number ?? 0 };
  }
  if ('TypeCast' in item) {
    const arg = item.TypeCast.arg;
    if (arg === undefined) return { kind: 'refused', reason: 'unexpected cast' };
    const inner = sourceOf(arg, paramRefs);
    if (inner.kind === 'refused') return inner;
    const { typeName } = item.TypeCast;
    // The outermost cast decides the type; a typmod or array makes it another one.
    const names = (typeName?.typmods?.length ?? 0) > 0 || (typeName?.arrayBounds?.length ?? 0) > 0 ? ['?'] : (typeName?.names ?? []).map((n) => ('String' in n ? (n.String.sval ?? '') : '?'));
    return { ...inner, cast: inner.cast ?? names };
  }
  const kind = Object.keys(item)[0] ?? 'expression';
  return { kind: 'refused', reason: `a VALUES item that is not a constant, a parameter or a cast of one (${kind}) is computed on the access node` };
}

/** The key's text from a row's source, or a refusal. */
function keyText(source: Source, bound: readonly Bound[], keyType: number, keyTypeSql: string): string | null | Refusal {
  if (source.kind === 'refused') return refuse(source.reason);
  if (source.cast !== undefined && !sameType(source.cast, keyTypeSql)) return refuse(`the space column's value is cast to ${source.cast.join('.')}, which the access node would convert`);
  if (source.kind === 'param') {
    const b = bound[source.index - 1];
    if (b === undefined) return refuse(`there is no parameter $${source.index}`);
    if (b.type !== 0 && b.type !== keyType && !(sameFamily(b.type, keyType))) return refuse(`parameter $${source.index} is declared as type ${b.type}, which the access node would convert to the space column's type`);
    if (b.value === null) return null;
    if (Buffer.isBuffer(b.value)) return binaryToText(b.type !== 0 ? b.type : keyType, b.value);
    return b.value;
  }
  if (source.cast !== undefined) return source.text;
  const numericKey = [20, 21, 23, 1700].includes(keyType);
  if (source.numeric === 'int' && !(numericKey || [25, 1043].includes(keyType))) return refuse(`an integer constant for the ${keyTypeSql} space column would be converted by the access node`);
  if (source.numeric === 'float' && !(keyType === 1700 || keyType === 700 || keyType === 701)) return refuse(`a numeric constant for the ${keyTypeSql} space column would be converted by the access node`);
  if (source.numeric === 'other' && source.text !== null) return refuse('a boolean or bit-string constant for the space column is not routed');
  return source.text;
}

function unnestShape(select: SelectStmt): Shape | string {
  if (otherClauses(select)) return 'INSERT … SELECT other than unnest of parameters is computed on the access node';
  const arrays: { param: number; type: string[] }[] = [];
  const arrayArg = (arg: Node | undefined): string | undefined => {
    if (arg === undefined || !('TypeCast' in arg)) return 'unnest of something other than a parameter cast to an array type';
    const { typeName } = arg.TypeCast;
    const inner = arg.TypeCast.arg;
    if (inner === undefined || !('ParamRef' in inner)) return 'unnest of something other than a parameter';
    if ((typeName?.arrayBounds?.length ?? 0) !== 1 || (typeName?.typmods?.length ?? 0) > 0) return 'unnest of a parameter not cast to a one-dimensional array type without a typmod';
    arrays.push({ param: inner.ParamRef.number ?? 0, type: (typeName?.names ?? []).map((n) => ('String' in n ? (n.String.sval ?? '') : '')) });
    return undefined;
  };
  const isUnnest = (f: Node | undefined): f is { FuncCall: NonNullable<Extract<Node, { FuncCall: unknown }>['FuncCall']> } =>
    f !== undefined && 'FuncCall' in f && (f.FuncCall.funcname ?? []).map((n) => ('String' in n ? n.String.sval : '')).join('.').replace(/^pg_catalog\./, '') === 'unnest' &&
    f.FuncCall.agg_order === undefined && f.FuncCall.over === undefined && f.FuncCall.agg_filter === undefined;
  const from = select.fromClause ?? [];
  if (from.length === 0) {
    for (const t of select.targetList ?? []) {
      const val = 'ResTarget' in t ? t.ResTarget.val : undefined;
      if (!isUnnest(val) || (val.FuncCall.args?.length ?? 0) !== 1) return 'INSERT … SELECT other than unnest($n::type[]), … is computed on the access node';
      const bad = arrayArg(val.FuncCall.args?.[0]);
      if (bad !== undefined) return bad;
    }
  } else {
    const [rf] = from;
    const star = select.targetList?.length === 1 && 'ResTarget' in (select.targetList[0] as Node) && JSON.stringify((select.targetList[0] as { ResTarget: { val?: Node } }).ResTarget.val) === '{"ColumnRef":{"fields":[{"A_Star":{}}],"location":' + String(((select.targetList[0] as { ResTarget: { val?: { ColumnRef?: { location?: number } } } }).ResTarget.val?.ColumnRef?.location ?? 0)) + '}}';
    if (from.length !== 1 || rf === undefined || !('RangeFunction' in rf) || !star) return 'INSERT … SELECT other than SELECT * FROM unnest($1::t[], …) is computed on the access node';
    const r = rf.RangeFunction;
    if (r.ordinality === true || r.lateral === true || r.is_rowsfrom === true || (r.functions?.length ?? 0) !== 1 || (r.coldeflist?.length ?? 0) > 0) return 'unnest with ORDINALITY, ROWS FROM or a column definition list is not routed';
    const pair = r.functions?.[0];
    const fn = pair !== undefined && 'List' in pair ? pair.List.items?.[0] : undefined;
    if (!isUnnest(fn)) return 'INSERT … SELECT * FROM a function other than unnest is computed on the access node';
    for (const a of fn.FuncCall.args ?? []) {
      const bad = arrayArg(a);
      if (bad !== undefined) return bad;
    }
  }
  if (arrays.length === 0) return 'no unnest arrays';
  if (new Set(arrays.map((a) => a.param)).size !== arrays.length) return 'a parameter unnested twice is not routed';
  return { kind: 'unnest', width: arrays.length, arrays };
}

/** Integer types read each other's text alike, as do text and varchar: a declared parameter of one reads as the other. */
function sameFamily(a: number, b: number): boolean {
  const families = [[20, 21, 23], [25, 1043]];
  return families.some((f) => f.includes(a) && f.includes(b));
}

/** Whether a cast's type names the key's type (`"pg_catalog"."int4"`): the same input function reads it. */
function sameType(names: readonly string[], typeSql: string): boolean {
  const [, schema, type] = /^"((?:[^"]|"")*)"\."((?:[^"]|"")*)"$/.exec(typeSql) ?? [];
  if (type === undefined) return false;
  const last = names[names.length - 1];
  const aliases: Record<string, string> = { int: 'int4', integer: 'int4', bigint: 'int8', smallint: 'int2', timestamptz: 'timestamptz', varchar: 'varchar' };
  const name = last === undefined ? undefined : (aliases[last] ?? last);
  if (name !== type) return false;
  return names.length === 1 ? schema === 'pg_catalog' || schema === 'public' : names[0] === schema;
}

/** Columns the routed rows must name: exist, not twice, no generated, unlisted ones without a default. */
function checkColumns(route: HypertableRoute, listed: readonly string[]): string | undefined {
  const name = `${route.table.schema}.${route.table.name}`;
  const seen = new Set<string>();
  for (const c of listed) {
    if (!route.columns.some((rc) => rc.name === c)) return `column "${c}" of ${name} does not exist (the access node reports it)`;
    if (seen.has(c)) return `column "${c}" specified more than once`;
    seen.add(c);
  }
  const generated = route.columns.filter((c) => c.generated);
  if (generated.length > 0) return `${name} has generated columns on the access node (${generated.map((c) => c.name).join(', ')})`;
  const defaulted = route.columns.filter((c) => !seen.has(c.name) && c.default !== undefined);
  if (defaulted.length > 0) return `unlisted columns of ${name} have defaults on the access node (${defaulted.map((c) => c.name).join(', ')}) that routing cannot evaluate`;
  return undefined;
}

type Conflict = 'none' | 'nothing' | 'update';

/** An ON CONFLICT a shard enforces exactly as the whole table would. */
function checkConflict(clause: OnConflictClause | undefined, spec: { spaceColumn: string; timeColumn: string; indexes: readonly { unique?: boolean | undefined; columns: readonly (string | { column: string })[] }[] }, alias: string): Conflict | Refusal {
  if (clause === undefined) return 'none';
  const infer = clause.infer;
  if (infer?.conname !== undefined) return refuse('ON CONFLICT ON CONSTRAINT is not routed (constraint names differ per shard); name the columns');
  const action = clause.action === 'ONCONFLICT_UPDATE' ? 'update' : 'nothing';
  if (infer === undefined) return action === 'nothing' ? 'nothing' : refuse('ON CONFLICT DO UPDATE needs a conflict target');
  if (infer.whereClause !== undefined) return refuse('ON CONFLICT with an index predicate is not routed');
  const target: string[] = [];
  for (const e of infer.indexElems ?? []) {
    const el = 'IndexElem' in e ? e.IndexElem : undefined;
    if (el?.name === undefined || el.expr !== undefined || el.collation !== undefined || el.opclass !== undefined) return refuse('ON CONFLICT on an expression, collation or operator class is not routed');
    target.push(el.name);
  }
  const match = spec.indexes.find((i) => i.unique === true && sameSet(i.columns.map((c) => (typeof c === 'string' ? c : c.column)), target));
  if (match === undefined) return refuse(`ON CONFLICT (${target.join(', ')}) is routed only onto a unique index the spec declares on exactly those columns (with the space and time columns)`);
  if (action === 'nothing') return 'nothing';
  for (const t of clause.targetList ?? []) {
    const r = 'ResTarget' in t ? t.ResTarget : undefined;
    if (r?.name === undefined || (r.indirection?.length ?? 0) > 0 || r.val === undefined) return refuse('ON CONFLICT DO UPDATE with a multi-column or subscripted assignment is not routed');
    if (r.name === spec.spaceColumn || r.name === spec.timeColumn) return refuse(`ON CONFLICT DO UPDATE of ${r.name} would move the row to another shard or chunk`);
    const bad = updateExpression(r.val, alias);
    if (bad !== undefined) return refuse(bad);
  }
  if (clause.whereClause !== undefined) {
    const bad = updateExpression(clause.whereClause, alias);
    if (bad !== undefined) return refuse(bad);
  }
  return 'update';
}

function sameSet(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x) => b.includes(x));
}

/** DO UPDATE expressions the data node evaluates as the access node would: columns, EXCLUDED, constants, parameters, operators. */
function updateExpression(node: Node, alias: string): string | undefined {
  if ('A_Const' in node || 'ParamRef' in node) return undefined;
  if ('ColumnRef' in node) {
    const fields = (node.ColumnRef.fields ?? []).map((f) => ('String' in f ? f.String.sval : undefined));
    if (fields.some((f) => f === undefined)) return 'a * in ON CONFLICT DO UPDATE is not routed';
    if (fields.length === 2 && fields[0] !== 'excluded' && fields[0] !== alias) return `ON CONFLICT DO UPDATE refers to ${fields.join('.')}`;
    if (fields.length > 2) return `ON CONFLICT DO UPDATE refers to ${fields.join('.')}`;
    return undefined;
  }
  if ('TypeCast' in node) return node.TypeCast.arg === undefined ? 'unexpected cast' : updateExpression(node.TypeCast.arg, alias);
  if ('A_Expr' in node) {
    const e = node.A_Expr;
    if (e.kind !== 'AEXPR_OP' && e.kind !== 'AEXPR_DISTINCT' && e.kind !== 'AEXPR_NOT_DISTINCT') return 'an ON CONFLICT DO UPDATE expression other than operators is not routed';
    const opSchema = (e.name ?? []).length > 1 ? 'qualified' : undefined;
    if (opSchema !== undefined) return 'a schema-qualified operator is not routed';
    return (e.lexpr === undefined ? undefined : updateExpression(e.lexpr, alias)) ?? (e.rexpr === undefined ? undefined : updateExpression(e.rexpr, alias));
  }
  if ('BoolExpr' in node) {
    for (const a of node.BoolExpr.args ?? []) {
      const bad = updateExpression(a, alias);
      if (bad !== undefined) return bad;
    }
    return undefined;
  }
  if ('NullTest' in node) return node.NullTest.arg === undefined ? undefined : updateExpression(node.NullTest.arg, alias);
  if ('CoalesceExpr' in node || 'MinMaxExpr' in node) {
    const args = 'CoalesceExpr' in node ? node.CoalesceExpr.args : node.MinMaxExpr.args;
    for (const a of args ?? []) {
      const bad = updateExpression(a, alias);
      if (bad !== undefined) return bad;
    }
    return undefined;
  }
  return `an ON CONFLICT DO UPDATE expression (${Object.keys(node)[0] ?? '?'}) that may compute differently on a data node is not routed`;
}

interface Facts {
  at: number;
  verdict: string | undefined;
}
const factCaches = new WeakMap<IngestCluster, Map<string, Facts>>();

/** Privileges, row-level security and triggers: what the access node checks or fires that routing would skip. */
async function accessFacts(cluster: IngestCluster, oid: number, role: string | undefined, columns: readonly string[], conflict: Conflict): Promise<string | undefined> {
  let cache = factCaches.get(cluster);
  if (cache === undefined) factCaches.set(cluster, (cache = new Map<string, Facts>()));
  const key = `${oid}\u0000${role ?? ''}\u0000${conflict}\u0000${columns.join('\u0000')}`;
  const hit = cache.get(key);
  if (hit !== undefined && hit.at > Date.now() - PRIVILEGES_TTL_MS) return hit.verdict;
  const verdict = await cluster.withAccess(async (client) => {
    const { rows } = await client.query<{ insert: boolean; update: boolean; select: boolean; rls: boolean; triggers: boolean }>(
      `SELECT pg_catalog.bool_and(pg_catalog.has_column_privilege(r, $1::oid, c, 'INSERT')) AS insert,
              pg_catalog.has_table_privilege(r, $1::oid, 'UPDATE') AS update,
              pg_catalog.has_table_privilege(r, $1::oid, 'SELECT') AS select,
              (SELECT relrowsecurity FROM pg_catalog.pg_class WHERE oid = $1::oid) AS rls,
              EXISTS (SELECT 1 FROM pg_catalog.pg_trigger t WHERE NOT t.tgisinternal AND (t.tgrelid = $1::oid
                      OR t.tgrelid IN (SELECT inhrelid FROM pg_catalog.pg_inherits WHERE inhparent = $1::oid))) AS triggers
       FROM pg_catalog.unnest($2::text[]) AS c, (SELECT COALESCE($3::text, current_user::text) AS r) AS who
       GROUP BY r`,
      [oid, columns, role ?? null],
    );
    const f = rows[0];
    if (f === undefined) return 'no columns';
    if (f.rls) return 'the table has row-level security on the access node';
    if (f.triggers) return 'the table or its partitions have triggers on the access node';
    if (!f.insert) return 'the role lacks INSERT on a column (the access node reports it)';
    if (conflict === 'update' && !(f.update && f.select)) return 'ON CONFLICT DO UPDATE needs UPDATE and SELECT on the table (the access node reports it)';
    return undefined;
  });
  cache.set(key, { at: Date.now(), verdict });
  return verdict;
}

function assertSameColumns(now: HypertableRoute, planned: HypertableRoute, table: QualifiedName): void {
  if (now.signature !== planned.signature && JSON.stringify(now.columns) !== JSON.stringify(planned.columns)) {
    throw new RoutingError(`${table.schema}.${table.name} changed on the access node since the INSERT was planned; nothing was written`);
  }
}

/** Row indexes per partition index. */
async function partitionRows(router: import('../route/router.js').ShardRouter, keys: readonly (string | null)[]): Promise<Map<number, number[]>> {
  const partitions = await router.partitionsOf(keys);
  const shards = new Map<number, number[]>();
  partitions.forEach((p, i) => {
    if (p instanceof KeyValueError) throw new HypershardError('INVALID_VALUE', `row ${i + 1}: ${p.message}; nothing was written`);
    if (p === -1) throw new RoutingError(`no partition of relation "${router.route.table.name}" found for row ${i + 1}`);
    let list = shards.get(p);
    if (list === undefined) shards.set(p, (list = []));
    list.push(i);
  });
  return shards;
}

/** Types a parameter's text reads the same as: its own, or an integer of another width (the access node converts exactly). */
const CAST_TYPES: Readonly<Record<string, number>> = {
  bool: TYPE_OID.bool, int2: TYPE_OID.int2, int4: TYPE_OID.int4, int: TYPE_OID.int4, integer: TYPE_OID.int4, int8: TYPE_OID.int8, bigint: TYPE_OID.int8,
  smallint: TYPE_OID.int2, float8: TYPE_OID.float8, float4: TYPE_OID.float4, numeric: TYPE_OID.numeric, text: TYPE_OID.text, varchar: TYPE_OID.varchar,
  timestamptz: TYPE_OID.timestamptz, timestamp: TYPE_OID.timestamp, date: TYPE_OID.date, uuid: TYPE_OID.uuid, jsonb: TYPE_OID.jsonb, interval: TYPE_OID.interval,
};

/**
 * The rows as COPY text lines when every value is a parameter (or NULL) that its column reads from
 * the same text as the INSERT would: declared as the column's type (or an integer into an integer
 * column, or undeclared), cast to nothing or to the column's own type, text or a binary value this
 * can print. Otherwise undefined: the rows go as statements.
 */
function copyLines(rows: readonly ValuesRow[], bound: readonly Bound[], columnTypes: readonly number[]): string | undefined {
  let out = '';
  for (const row of rows) {
    for (let i = 0; i < row.sources.length; i += 1) {
      const source = row.sources[i] as Source;
      if (i > 0) out += '\t';
      const column = columnTypes[i] ?? 0;
      if (source.kind === 'const' && source.text === null && source.cast === undefined) {
        out += '\\N';
        continue;
      }
      if (source.kind !== 'param' || column === 0) return undefined;
      if (source.cast !== undefined && CAST_TYPES[source.cast[source.cast.length - 1] ?? ''] !== column) return undefined;
      const b = bound[source.index - 1];
      if (b === undefined || (b.type !== 0 && b.type !== column && !(sameFamily(b.type, column) && [20, 21, 23].includes(column)))) return undefined;
      if (b.value === null) {
        out += '\\N';
        continue;
      }
      let text: string;
      if (Buffer.isBuffer(b.value)) {
        try {
          text = binaryToText(b.type !== 0 ? b.type : column, b.value);
        } catch {
          return undefined;
        }
      } else text = b.value;
      out += copyEscape(text);
    }
    out += '\n';
  }
  return out;
}

/** A value as a COPY text field. */
function copyEscape(text: string): string {
  return /[\\\t\n\r]/.test(text) ? text.replace(/[\\\t\n\r]/g, (c) => (c === '\\' ? '\\\\' : c === '\t' ? '\\t' : c === '\n' ? '\\n' : '\\r')) : text;
}

/**
 * Parsed INSERTs by text: a driver repeats one statement, parsing a 1,000-row one costs ~100 ms,
 * and the gateway's test for an upsert parses what the planner then reads. Read-only to callers.
 */
const parsedCache = new Map<string, ReturnType<typeof parseStatements>>();
const PARSED_CACHE_SIZE = 32;

export function parsedInsert(sql: string): ReturnType<typeof parseStatements> {
  const hit = parsedCache.get(sql);
  if (hit !== undefined) {
    // Most recently used last.
    parsedCache.delete(sql);
    parsedCache.set(sql, hit);
    return hit;
  }
  const parsed = parseStatements(sql);
  parsedCache.set(sql, parsed);
  if (parsedCache.size > PARSED_CACHE_SIZE) parsedCache.delete(parsedCache.keys().next().value as string);
  return parsed;
}

/** A statement has at most 65,535 parameters: a shard's rows go in as many statements as that takes. */
const MAX_PARAMETERS = 65_535;

/** Rows per statement that keep within the parameter limit. */
function statementRows(rows: readonly ValuesRow[]): number {
  const widest = rows.reduce((most, r) => Math.max(most, r.sources.reduce((n, src) => n + (src.kind === 'param' ? 1 : 0), 0)), 0);
  return widest === 0 ? Number.POSITIVE_INFINITY : Math.max(1, Math.floor(MAX_PARAMETERS / widest));
}

/** Each partition's rows in runs of at most `size`: one statement each. */
function chunked(shards: ReadonlyMap<number, number[]>, size: number): [number, number[]][] {
  const out: [number, number[]][] = [];
  for (const [partition, rows] of shards) {
    if (rows.length <= size) out.push([partition, rows]);
    else for (let i = 0; i < rows.length; i += size) out.push([partition, rows.slice(i, i + size)]);
  }
  return out;
}

/**
 * The VALUES rows repeated once per parameter set, each copy's $n moved past the sets before it.
 * A copy's expressions are cloned only when a statement is built from them (COPY lines read the sources).
 */
function repeatRows(shape: Extract<Shape, { kind: 'values' }>, sets: number, width: number): Shape {
  const rows: ValuesRow[] = [...shape.rows];
  for (let k = 1; k < sets; k += 1) {
    const offset = k * width;
    for (const base of shape.rows) {
      let cloned: { items: Node[]; paramRefs: { number: number }[] } | undefined;
      const clone = (): { items: Node[]; paramRefs: { number: number }[] } => {
        if (cloned === undefined) {
          const items = structuredClone(base.items);
          const paramRefs: { number: number }[] = [];
          collectParams(items, paramRefs);
          for (const ref of paramRefs) ref.number += offset;
          cloned = { items, paramRefs };
        }
        return cloned;
      };
      rows.push({
        sources: base.sources.map((src) => (src.kind === 'param' ? { ...src, index: src.index + offset } : src)),
        direct: base.direct,
        get items() {
          return clone().items;
        },
        get paramRefs() {
          return clone().paramRefs;
        },
      });
    }
  }
  return { kind: 'values', width: shape.width, rows };
}

/** Each shard's statements on its data node: a node's statements one after another, nodes in parallel. */
async function writeShards(tx: RoutedTransaction, route: HypertableRoute, shards: Iterable<readonly [number, readonly number[]]>, statement: (partition: number, rows: readonly number[]) => { text: string; values: readonly Bound[] }): Promise<number> {
  const byNode = new Map<string, (readonly [number, readonly number[]])[]>();
  for (const entry of shards) {
    const node = (route.partitions[entry[0]] as Partition).dataNode;
    byNode.set(node, [...(byNode.get(node) ?? []), entry]);
  }
  // Settled, not all: after one node fails the others finish their statement before the caller
  // aborts, so no statement runs (and no participant joins) behind the abort.
  const settled = await Promise.allSettled(
    [...byNode].map(async ([node, partitions]) => {
      const participant = await tx.participant(node, 0);
      let n = 0;
      for (const [partition, rows] of partitions) {
        const { text, values } = statement(partition, rows);
        const types = Object.assign(values.map((v) => v.type), { getTypeParser: pg.types.getTypeParser });
        try {
          const result = await participant.client.query({ text, values: values.map((v) => v.value), types } as unknown as pg.QueryConfig);
          n += result.rowCount ?? 0;
        } catch (error) {
          throw new HypershardError('NODE_WRITE', `data node ${node}: ${error instanceof Error ? error.message : String(error)}; nothing was written`, { cause: error });
        }
      }
      return n;
    }),
  );
  const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed !== undefined) throw failed.reason;
  return settled.reduce((sum, r) => sum + (r.status === 'fulfilled' ? r.value : 0), 0);
}

/** The INSERT with its relation switched to a shard's remote table (aliased as the original, so `t.col` still reads). */
function retarget(stmt: InsertStmt, partition: Partition, edit: (s: InsertStmt) => InsertStmt): string {
  const relation = stmt.relation;
  const alias = relation?.alias ?? { aliasname: relation?.relname ?? '' };
  const renamed = (stmt.cols ?? []).map((c) => ('ResTarget' in c && c.ResTarget.name !== undefined ? { ResTarget: { ...c.ResTarget, name: partition.remoteColumns.get(c.ResTarget.name) ?? c.ResTarget.name } } : c));
  const copy: InsertStmt = { ...stmt, relation: { ...relation, schemaname: partition.remote.schema, relname: partition.remote.name, alias, inh: true, relpersistence: 'p' }, ...(stmt.cols === undefined ? {} : { cols: renamed }) };
  return deparse({ InsertStmt: edit(copy) });
}

function valuesStatement(stmt: InsertStmt, partition: Partition, rows: readonly ValuesRow[], indexes: readonly number[], bound: readonly Bound[], paramType: (index: number, column: number) => number): { text: string; values: Bound[] } {
  // Parameters renumbered in the order the shard's rows use them; each once.
  const numbers = new Map<number, number>();
  const values: Bound[] = [];
  const saved: [ { number: number }, number][] = [];
  for (const i of indexes) {
    const row = rows[i] as ValuesRow;
    row.sources.forEach((s, column) => {
      if (s.kind !== 'param' || numbers.has(s.index)) return;
      numbers.set(s.index, numbers.size + 1);
      const b = bound[s.index - 1] as Bound;
      values.push({ value: b.value, type: paramType(s.index, column) });
    });
    for (const ref of row.paramRefs) {
      saved.push([ref, ref.number]);
      ref.number = numbers.get(ref.number) as number;
    }
  }
  // ON CONFLICT … DO UPDATE may use parameters too: they keep their place after the rows'.
  const conflictRefs: { number: number }[] = [];
  collectParams(stmt.onConflictClause as Node | undefined, conflictRefs);
  for (const ref of conflictRefs) {
    if (!numbers.has(ref.number)) {
      numbers.set(ref.number, numbers.size + 1);
      const b = bound[ref.number - 1];
      values.push(b ?? { value: null, type: 0 });
    }
    saved.push([ref, ref.number]);
    ref.number = numbers.get(ref.number) as number;
  }
  try {
    const select = { SelectStmt: { ...(stmt.selectStmt as { SelectStmt: SelectStmt }).SelectStmt, valuesLists: indexes.map((i) => ({ List: { items: (rows[i] as ValuesRow).items } })) } };
    return { text: retarget(stmt, partition, (s) => ({ ...s, selectStmt: select })), values };
  } finally {
    // Restored in reverse: a node shared by two rows was renumbered once per use.
    for (let k = saved.length - 1; k >= 0; k -= 1) {
      const [ref, n] = saved[k] as [{ number: number }, number];
      ref.number = n;
    }
  }
}

function collectParams(node: unknown, out: { number: number }[]): void {
  if (node === null || typeof node !== 'object') return;
  if (Array.isArray(node)) {
    for (const n of node) collectParams(n, out);
    return;
  }
  const o = node as Record<string, unknown>;
  if ('ParamRef' in o) {
    out.push(o.ParamRef as { number: number });
    return;
  }
  for (const v of Object.values(o)) collectParams(v, out);
}

/** A one-dimensional array's elements from its text (`{a,"b c",NULL}`), or why it is not read. */
export function parseArrayText(text: string): (string | null)[] | string {
  const s = text.trim();
  if (s.startsWith('[')) return 'an array with explicit bounds is not routed';
  if (!s.startsWith('{') || !s.endsWith('}')) return 'not an array literal';
  const out: (string | null)[] = [];
  let i = 1;
  const end = s.length - 1;
  const ws = (c: string | undefined): boolean => c === ' ' || c === '\t' || c === '\n' || c === '\r' || c === '\v' || c === '\f';
  while (ws(s[i])) i += 1;
  if (i === end) return out;
  for (;;) {
    while (ws(s[i])) i += 1;
    let value = '';
    let quoted = false;
    if (s[i] === '{') return 'a multidimensional array is not routed';
    if (s[i] === '"') {
      quoted = true;
      i += 1;
      while (i < end && s[i] !== '"') {
        if (s[i] === '\\') i += 1;
        value += s[i] ?? '';
        i += 1;
      }
      if (s[i] !== '"') return 'an unterminated quoted element';
      i += 1;
      while (ws(s[i])) i += 1;
    } else {
      let trailing = '';
      while (i < end && s[i] !== ',') {
        const c = s[i] as string;
        if (c === '"' || c === '{' || c === '}') return 'a malformed array element';
        if (c === '\\') {
          i += 1;
          value += trailing + (s[i] ?? '');
          trailing = '';
        } else if (ws(c)) {
          trailing += c;
        } else {
          value += trailing + c;
          trailing = '';
        }
        i += 1;
      }
      if (value === '') return 'an empty array element';
    }
    out.push(!quoted && value.toUpperCase() === 'NULL' ? null : value);
    if (i === end) return out;
    if (s[i] !== ',') return 'a malformed array';
    i += 1;
  }
}

/** The array text of the elements at `indexes`, every element quoted. */
function arrayText(elements: readonly (string | null)[], indexes: readonly number[]): string {
  const parts = indexes.map((i) => {
    const e = elements[i] ?? null;
    return e === null ? 'NULL' : `"${e.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
  });
  return `{${parts.join(',')}}`;
}
