/**
 * Column types are written into DDL as-is, so they are checked against a closed grammar:
 * a known built-in type name, an optional numeric modifier and array brackets. Nothing else
 * (user-defined types, expressions) can reach the generated SQL through a type.
 */
const BASE_TYPES = new Map<string, string>([
  ['smallint', 'smallint'], ['int2', 'smallint'],
  ['integer', 'integer'], ['int', 'integer'], ['int4', 'integer'],
  ['bigint', 'bigint'], ['int8', 'bigint'],
  ['real', 'real'], ['float4', 'real'],
  ['double precision', 'double precision'], ['float8', 'double precision'], ['float', 'double precision'],
  ['numeric', 'numeric'], ['decimal', 'numeric'],
  ['boolean', 'boolean'], ['bool', 'boolean'],
  ['text', 'text'], ['varchar', 'varchar'], ['character varying', 'varchar'],
  ['char', 'char'], ['character', 'char'],
  ['uuid', 'uuid'], ['json', 'json'], ['jsonb', 'jsonb'], ['bytea', 'bytea'],
  ['date', 'date'], ['time', 'time'], ['timetz', 'timetz'],
  ['timestamp', 'timestamp'], ['timestamp without time zone', 'timestamp'],
  ['timestamptz', 'timestamptz'], ['timestamp with time zone', 'timestamptz'],
  ['interval', 'interval'], ['inet', 'inet'], ['cidr', 'cidr'], ['macaddr', 'macaddr'],
]);

const TAKES_MODIFIER = new Set(['numeric', 'varchar', 'char', 'time', 'timetz', 'timestamp', 'timestamptz', 'interval']);
const TIME_TYPES = new Set(['timestamptz', 'timestamp']);
/** Types with a default hash operator class (needed by PARTITION BY HASH). */
const UNHASHABLE = new Set(['json']);

export interface ColumnType {
  /** Canonical base type, e.g. `double precision`. */
  readonly base: string;
  /** e.g. `(10,2)`; empty when absent. */
  readonly modifier: string;
  readonly arrayDepth: number;
  /** The type as written into DDL. */
  readonly sql: string;
}

const GRAMMAR = /^([a-z][a-z0-9 ]*?)\s*(\(\s*\d{1,4}\s*(?:,\s*\d{1,4}\s*)?\))?\s*((?:\[\])*)$/;

export function parseColumnType(input: string): ColumnType | string {
  const normalized = input.trim().toLowerCase().replace(/\s+/g, ' ');
  const match = GRAMMAR.exec(normalized);
  const base = match?.[1] === undefined ? undefined : BASE_TYPES.get(match[1]);
  if (match === null || base === undefined) {
    return `unsupported column type ${JSON.stringify(input)}; use a built-in type such as integer, bigint, text, double precision, numeric(12,2), timestamptz, jsonb or text[]`;
  }
  const modifier = (match[2] ?? '').replace(/\s+/g, '');
  if (modifier !== '' && !TAKES_MODIFIER.has(base)) return `type ${base} takes no modifier ${modifier}`;
  const arrayDepth = (match[3] ?? '').length / 2;
  return { base, modifier, arrayDepth, sql: `${base}${modifier}${'[]'.repeat(arrayDepth)}` };
}

export function isTimeType(type: ColumnType): boolean {
  return type.arrayDepth === 0 && TIME_TYPES.has(type.base);
}

export function isHashable(type: ColumnType): boolean {
  return !UNHASHABLE.has(type.base);
}
