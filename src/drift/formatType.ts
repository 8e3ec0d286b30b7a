/**
 * A spec column type as PostgreSQL's `format_type()` prints it, so the catalog can be compared
 * with the spec as text: `timestamptz` is `timestamp with time zone`, `varchar(64)` is
 * `character varying(64)`, `char` is `character(1)`, `numeric(10)` is `numeric(10,0)`, and an
 * array of any depth is one `[]` (PostgreSQL does not keep the number of dimensions).
 */
import type { ColumnType } from '../spec/columnType.js';

const NAMES: Readonly<Record<string, string>> = {
  varchar: 'character varying',
  char: 'character',
  timestamp: 'timestamp without time zone',
  timestamptz: 'timestamp with time zone',
  time: 'time without time zone',
  timetz: 'time with time zone',
};

export function formatType(type: ColumnType): string {
  return `${baseName(type.base, normalizedModifier(type))}${type.arrayDepth > 0 ? '[]' : ''}`;
}

function normalizedModifier(type: ColumnType): string {
  if (type.base === 'char' && type.modifier === '') return '(1)';
  if (type.base === 'numeric' && /^\(\d+\)$/.test(type.modifier)) return `${type.modifier.slice(0, -1)},0)`;
  return type.modifier;
}

function baseName(base: string, modifier: string): string {
  const name = NAMES[base] ?? base;
  // The precision goes between the name and the time zone words: `timestamp(3) with time zone`.
  const zone = / with(out)? time zone$/.exec(name);
  if (zone === null || modifier === '') return `${name}${modifier}`;
  return `${name.slice(0, zone.index)}${modifier}${zone[0]}`;
}
