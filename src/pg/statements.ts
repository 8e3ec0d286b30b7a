/**
 * What the wrapper needs to know about a statement before it runs, from PostgreSQL's own grammar:
 * the relations it names (does it touch a hypertable?) and whether it can change the session
 * settings a rewrite depends on (TimeZone, the resolved search_path).
 */
import type { Node } from '@pgsql/types';
import { loadModule, parseSync } from 'pgsql-parser';
import { REWRITE_SETTING } from '../rewrite/session.js';

// Parsing runs on the query path, so it must be synchronous: load the parser once, up front.
await loadModule();

export interface StatementInfo {
  /** False when the text does not parse: it runs as given and the server reports the error. */
  readonly parsed: boolean;
  /** Unqualified names of every relation the text refers to. */
  readonly relations: ReadonlySet<string>;
  /** May change TimeZone or the resolved search_path (SET, RESET, set_config, SET ROLE, DISCARD, schemas created or dropped …). */
  readonly changesSettings: boolean;
  /** Ends a transaction (COMMIT, ROLLBACK, ROLLBACK TO, PREPARE TRANSACTION), reverting SET LOCAL or a rolled-back SET. */
  readonly endsTransaction: boolean;
  /** Holds any transaction control (BEGIN, SAVEPOINT, COMMIT …). */
  readonly transactional: boolean;
  /** May change what a role may see: GRANT/REVOKE, policies, row security, owners, role attributes. */
  readonly changesAccess: boolean;
  /** Names of relations it creates, renames (the new name), moves or drops: an unqualified name may resolve elsewhere after it. */
  readonly definesRelations: ReadonlySet<string>;
  /** May drop this session's prepared statements (DEALLOCATE, DISCARD ALL). */
  readonly dropsStatements: boolean;
  /** Statements in the text. */
  readonly count: number;
}

const UNPARSED: StatementInfo = { parsed: false, relations: new Set(), changesSettings: false, endsTransaction: false, transactional: false, changesAccess: false, definesRelations: new Set(), dropsStatements: false, count: 0 };

/** Statements after which a role may see other rows or columns than before. */
const ACCESS_STATEMENTS = new Set(['GrantStmt', 'GrantRoleStmt', 'AlterRoleStmt', 'DropRoleStmt', 'CreatePolicyStmt', 'AlterPolicyStmt', 'AlterTableStmt', 'AlterOwnerStmt', 'ReassignOwnedStmt', 'DropOwnedStmt', 'DoStmt', 'CallStmt']);

/** Settings whose change changes what a rewrite may do; `role` and `session_authorization` change `$user`. */
const SETTINGS = new Set(['timezone', 'search_path', 'role', 'session_authorization', REWRITE_SETTING]);
const ENDS_TRANSACTION = new Set(['TRANS_STMT_COMMIT', 'TRANS_STMT_ROLLBACK', 'TRANS_STMT_ROLLBACK_TO', 'TRANS_STMT_PREPARE']);

export function statementInfo(sql: string): StatementInfo {
  let stmts: readonly { stmt?: Node }[];
  try {
    stmts = parseSync(sql).stmts ?? [];
  } catch {
    return UNPARSED;
  }
  const relations = new Set<string>();
  let changesSettings = false;
  let endsTransaction = false;
  let transactional = false;
  let changesAccess = false;
  let dropsStatements = false;
  const definesRelations = new Set<string>();
  for (const { stmt } of stmts) {
    if (stmt === undefined) continue;
    const kind = Object.keys(stmt)[0] ?? '';
    if (ACCESS_STATEMENTS.has(kind) || ('DropStmt' in stmt && stmt.DropStmt.removeType === 'OBJECT_POLICY') || ('RenameStmt' in stmt && stmt.RenameStmt.renameType === 'OBJECT_ROLE')) changesAccess = true;
    // A temporary relation puts the session's temporary schema on its search path.
    if (defined(stmt, definesRelations)) changesSettings = true;
    if ('VariableSetStmt' in stmt) {
      const set = stmt.VariableSetStmt;
      if (set.kind === 'VAR_RESET_ALL' || SETTINGS.has((set.name ?? '').toLowerCase())) changesSettings = true;
    } else if ('TransactionStmt' in stmt) {
      transactional = true;
      if (ENDS_TRANSACTION.has(stmt.TransactionStmt.kind ?? '')) endsTransaction = true;
    } else if ('DiscardStmt' in stmt || 'CreateSchemaStmt' in stmt || 'DoStmt' in stmt || 'CallStmt' in stmt) {
      // DISCARD ALL resets settings; current_schemas() lists only schemas that exist; a DO block or
      // a procedure may SET anything.
      changesSettings = true;
    } else if (('DropStmt' in stmt && stmt.DropStmt.removeType === 'OBJECT_SCHEMA') || ('RenameStmt' in stmt && stmt.RenameStmt.renameType === 'OBJECT_SCHEMA')) {
      changesSettings = true;
    }
    if (droppedStatements(stmt) !== undefined) dropsStatements = true;
    if (scan(stmt, relations)) changesSettings = true;
  }
  return { parsed: true, relations, changesSettings, endsTransaction, transactional, changesAccess, definesRelations, dropsStatements, count: stmts.length };
}

/** The prepared statements a statement drops: every one (DEALLOCATE ALL, DISCARD ALL), one by name, or none. */
export function droppedStatements(stmt: Node): { readonly all: true } | { readonly name: string } | undefined {
  if (('DeallocateStmt' in stmt && stmt.DeallocateStmt.isall === true) || ('DiscardStmt' in stmt && stmt.DiscardStmt.target === 'DISCARD_ALL')) return { all: true };
  const name = 'DeallocateStmt' in stmt ? stmt.DeallocateStmt.name : undefined;
  return name === undefined ? undefined : { name };
}

/** Adds the relation names a statement creates, renames, moves or drops; true when it creates a temporary one. */
function defined(stmt: Node, names: Set<string>): boolean {
  const add = (rv: { relname?: string; relpersistence?: string; schemaname?: string } | undefined): boolean => {
    if (rv?.relname !== undefined) names.add(rv.relname);
    return rv?.relpersistence === 't' || rv?.schemaname === 'pg_temp';
  };
  if ('CreateStmt' in stmt) return add(stmt.CreateStmt.relation);
  if ('CreateForeignTableStmt' in stmt) return add(stmt.CreateForeignTableStmt.base?.relation);
  if ('ViewStmt' in stmt) return add(stmt.ViewStmt.view);
  if ('CreateTableAsStmt' in stmt) return add(stmt.CreateTableAsStmt.into?.rel);
  if ('SelectStmt' in stmt) return add(stmt.SelectStmt.intoClause?.rel);
  if ('CreateSeqStmt' in stmt) return add(stmt.CreateSeqStmt.sequence);
  if ('RenameStmt' in stmt) {
    add(stmt.RenameStmt.relation);
    if (stmt.RenameStmt.newname !== undefined) names.add(stmt.RenameStmt.newname);
  }
  if ('AlterObjectSchemaStmt' in stmt) add(stmt.AlterObjectSchemaStmt.relation);
  if ('DropStmt' in stmt) {
    for (const object of stmt.DropStmt.objects ?? []) {
      const parts = 'List' in object ? (object.List.items ?? []) : [];
      const last = parts[parts.length - 1];
      if (last !== undefined && 'String' in last && last.String.sval !== undefined) names.add(last.String.sval);
    }
  }
  return false;
}

/** Collects relation names below `value`; true when it calls set_config. */
function scan(value: unknown, relations: Set<string>): boolean {
  if (Array.isArray(value)) return value.reduce((found: boolean, v) => scan(v, relations) || found, false);
  if (value === null || typeof value !== 'object') return false;
  let setConfig = false;
  const record = value as Record<string, unknown>;
  // RangeVar: wrapped as a FROM item, bare as the target of INSERT, UPDATE, DELETE, COPY, MERGE.
  if (typeof record.relname === 'string') relations.add(record.relname);
  const call = record.FuncCall as { funcname?: Node[] } | undefined;
  if (call !== undefined) {
    const last = call.funcname?.[call.funcname.length - 1];
    if (last !== undefined && 'String' in last && last.String.sval?.toLowerCase() === 'set_config') setConfig = true;
  }
  for (const child of Object.values(record)) if (scan(child, relations)) setConfig = true;
  return setConfig;
}
