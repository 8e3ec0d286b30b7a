/**
 * A statement's bind parameters written into its text as typed literals, so that a router read
 * (src/route/reads.ts) can be made of an extended-protocol execution with values: the rewriter and the
 * router see constants, as in a simple query. Only where the literal means what the parameter
 * does: a value in text format of a declared built-in type becomes `('value'::type)` (an integer
 * `((n)::type)`, so a space key pins its shard as a written one does), an undeclared one (type 0)
 * an untyped literal where PostgreSQL resolves it from its context as it resolves the parameter;
 * NULL stays NULL of that type. Each text is parsed once (its `$n` positions kept); an execution
 * splices its values in.
 */
import type { Node } from '@pgsql/types';
import { binaryToText } from '../codec/binaryText.js';
import { Lru } from '../pg/lru.js';
import { quoteLiteral } from '../sql/quote.js';
import { walk } from '../rewrite/ast.js';
import { parseStatements } from '../rewrite/parser.js';

/** Built-in types whose text form a literal of them reads back unchanged, by OID. */
const TYPE_NAMES: ReadonlyMap<number, string> = new Map([
  [16, 'bool'], [17, 'bytea'], [18, '"char"'], [19, 'name'], [20, 'int8'], [21, 'int2'], [23, 'int4'], [25, 'text'], [26, 'oid'],
  [114, 'json'], [700, 'float4'], [701, 'float8'], [1042, 'bpchar'], [1043, 'varchar'], [1082, 'date'], [1083, 'time'],
  [1114, 'timestamp'], [1184, 'timestamptz'], [1186, 'interval'], [1266, 'timetz'], [1700, 'numeric'], [2950, 'uuid'], [3802, 'jsonb'],
  [1000, 'bool[]'], [1005, 'int2[]'], [1007, 'int4[]'], [1016, 'int8[]'], [1009, 'text[]'], [1015, 'varchar[]'], [1021, 'float4[]'],
  [1022, 'float8[]'], [1231, 'numeric[]'], [1115, 'timestamp[]'], [1185, 'timestamptz[]'], [1182, 'date[]'], [2951, 'uuid[]'],
]);

const INTEGER_TYPES: ReadonlySet<string> = new Set(['int2', 'int4', 'int8']);

/** Whether a parameter declared with this type (0: undeclared) may be written as a literal. */
export function inlinableType(oid: number): boolean {
  return oid === 0 || TYPE_NAMES.has(oid);
}

/** A statement text with where its `$n` are (UTF-8 byte offsets, as the parser reports them). */
interface Template {
  readonly bytes: Buffer;
  readonly params: readonly { readonly at: number; readonly end: number; readonly number: number }[];
  /** How many values it takes: its declared types, or its highest `$n` when higher (as the server counts). */
  readonly count: number;
}

const templates = new Lru<string, Template | null>(1024);

/**
 * Whether each parameter of undeclared type stands where an untyped literal resolves to the type
 * the parameter would: cast (`$1::int`), a LIMIT or OFFSET, or an operand of an operator, IN,
 * BETWEEN or ANY whose other side is neither a literal nor such a parameter. Elsewhere (a
 * function's argument, the select list, `$1 = $2`) the two may resolve differently, or the
 * parameter not at all.
 */
function untypedInPlace(stmt: Node, types: readonly number[]): boolean {
  const untyped = (n: Node | undefined): n is { ParamRef: { number?: number } } => n !== undefined && 'ParamRef' in n && (types[(n.ParamRef.number ?? 0) - 1] ?? 0) === 0;
  const loose = (n: Node | undefined): boolean => n === undefined || untyped(n) || 'A_Const' in n;
  const items = (n: Node | undefined): Node[] => (n === undefined ? [] : 'List' in n ? (n.List.items ?? []) : [n]);
  const all: object[] = [];
  const placed = new Set<object>();
  // The statement itself too (its LIMIT): walk visits what is below its root.
  walk([stmt], (node) => {
    if (untyped(node)) all.push(node.ParamRef);
    if ('TypeCast' in node && untyped(node.TypeCast.arg)) placed.add(node.TypeCast.arg.ParamRef);
    // LIMIT and OFFSET read an untyped literal as a bigint, as they do the parameter.
    if ('SelectStmt' in node) for (const n of [node.SelectStmt.limitCount, node.SelectStmt.limitOffset]) if (untyped(n)) placed.add(n.ParamRef);
    if ('A_Expr' in node) {
      const left = items(node.A_Expr.lexpr);
      const right = items(node.A_Expr.rexpr);
      if (left.length === 1 && !loose(left[0])) for (const n of right) if (untyped(n)) placed.add(n.ParamRef);
      if (right.length > 0 && right.every((n) => !loose(n))) for (const n of left) if (untyped(n)) placed.add(n.ParamRef);
    }
  });
  return all.every((p) => placed.has(p));
}

/** The template of one statement with these declared types; undefined when not one statement or an untyped `$n` is out of place. */
function templateOf(text: string, types: readonly number[]): Template | undefined {
  const key = `${types.join(',')}\0${text}`;
  const known = templates.get(key);
  if (known !== undefined) return known ?? undefined;
  let template: Template | null = null;
  try {
    const statements = parseStatements(text);
    const statement = statements.length === 1 ? statements[0]?.stmt : undefined;
    if (statement !== undefined && untypedInPlace(statement, types)) {
      const params: { at: number; end: number; number: number }[] = [];
      walk(statement, (node) => {
        if (!('ParamRef' in node)) return;
        const number = node.ParamRef.number ?? 0;
        const at = node.ParamRef.location ?? -1;
        params.push({ at, end: at + `$${number}`.length, number });
      });
      const bytes = Buffer.from(text, 'utf8');
      // Each where the parser says, as `$n` there: else the text is not spliced.
      const placed = params.every((p) => p.number >= 1 && p.at >= 0 && bytes.toString('utf8', p.at, p.end) === `$${p.number}`);
      if (placed) {
        params.sort((a, b) => a.at - b.at);
        template = { bytes, params, count: Math.max(types.length, ...params.map((p) => p.number)) };
      }
    }
  } catch {
    template = null;
  }
  templates.set(key, template);
  return template ?? undefined;
}

/**
 * `text` (one statement) with each `$n` replaced by its value as a literal.
 * @returns undefined when a value cannot be one: a type not known to read back unchanged, a
 *   value that is not text (binary format, or not valid UTF-8), a NUL, an undeclared type out of
 *   place (untypedInPlace), not as many values as the statement takes (the server's error to give)
 */
export function inlineParameters(text: string, types: readonly number[], values: readonly (string | Buffer | null)[]): string | undefined {
  if (!types.every(inlinableType)) return undefined;
  const template = templateOf(text, types);
  if (template === undefined || values.length !== template.count) return undefined;
  const literals: string[] = [];
  for (const [i, value] of values.entries()) {
    if (Buffer.isBuffer(value) || value?.includes('\0')) return undefined;
    const type = TYPE_NAMES.get(types[i] ?? 0);
    const literal = value === null ? 'NULL' : type !== undefined && INTEGER_TYPES.has(type) && /^-?[0-9]{1,18}$/.test(value) ? `(${value})` : quoteLiteral(value);
    // In parentheses: a cast spliced where `$n` stood binds as `$n` did (`$1[1]`, `-$1`).
    literals.push(type === undefined ? literal : `(${literal}::pg_catalog.${type})`);
  }
  const parts: Buffer[] = [];
  let from = 0;
  for (const p of template.params) {
    parts.push(template.bytes.subarray(from, p.at), Buffer.from(literals[p.number - 1] as string, 'utf8'));
    from = p.end;
  }
  parts.push(template.bytes.subarray(from));
  return Buffer.concat(parts).toString('utf8');
}

const UTF8 = new TextDecoder('utf-8', { fatal: true });

/**
 * A Bind's values as text: a value in binary format (asyncpg, pgx and JDBC send some) as its type's
 * text, which reads back as the same value (src/codec/binaryText.ts).
 * @returns undefined when a value cannot be: binary of an undeclared type or one without a decoder,
 *   malformed, or text that is not UTF-8
 */
export function textValues(types: readonly number[], formats: readonly number[], values: readonly (string | Buffer | null)[]): (string | null)[] | undefined {
  const out: (string | null)[] = [];
  for (const [i, value] of values.entries()) {
    if (value === null || typeof value === 'string') {
      out.push(value);
      continue;
    }
    const type = types[i] ?? 0;
    if (formats[i] !== 1 || type === 0) return undefined;
    try {
      out.push(binaryToText(type, value, (b) => UTF8.decode(b)));
    } catch {
      return undefined;
    }
  }
  return out;
}
