/**
 * What the server prints, read back: identifiers quoted the way `quote_ident` does (only when
 * needed), hash partition bounds, and a shard's bounds CHECK. Parsing the printed form avoids
 * re-implementing PostgreSQL's keyword list to print the expected side the same way.
 */

/** `public.metrics`, `"My Schema"."we""ird"` → its parts, unquoted. Undefined when malformed. */
export function parseQualifiedIdent(text: string): string[] | undefined {
  const parts: string[] = [];
  let i = 0;
  while (i <= text.length) {
    if (text[i] === '"') {
      let part = '';
      i += 1;
      for (;;) {
        if (i >= text.length) return undefined;
        if (text[i] === '"') {
          if (text[i + 1] !== '"') break;
          i += 1;
        }
        part += text[i];
        i += 1;
      }
      i += 1;
      parts.push(part);
    } else {
      const end = text.indexOf('.', i);
      const part = text.slice(i, end < 0 ? text.length : end);
      if (part === '' || part.includes('"')) return undefined;
      parts.push(part);
      i += part.length;
    }
    if (i === text.length) return parts;
    if (text[i] !== '.') return undefined;
    i += 1;
  }
  return undefined;
}

export interface HashBound {
  readonly modulus: number;
  readonly remainder: number;
}

/** As pg_get_expr(relpartbound) prints it: `FOR VALUES WITH (modulus 4, remainder 0)`. */
export function formatHashBound(bound: HashBound): string {
  return `FOR VALUES WITH (modulus ${bound.modulus}, remainder ${bound.remainder})`;
}

export interface BoundsCheck {
  /** The parent the hash is computed for: [schema, name] (the session prints it qualified). */
  readonly parent: readonly string[];
  readonly modulus: number;
  readonly remainder: number;
  readonly column: string;
}

/**
 * `satisfies_hash_partition(('public.metrics'::regclass)::oid, 4, 0, device_id)`, as
 * pg_get_expr prints the CHECK hypershard adds to each shard; undefined for any other expression.
 */
export function parseBoundsCheck(expression: string): BoundsCheck | undefined {
  const m = /^(?:pg_catalog\.)?satisfies_hash_partition\(\(?'((?:[^']|'')*)'::regclass\)?(?:::oid)?, (\d+), (\d+), (.+)\)$/.exec(expression);
  if (m === null) return undefined;
  const parent = parseQualifiedIdent((m[1] ?? '').replaceAll("''", "'"));
  const column = parseQualifiedIdent(m[4] ?? '');
  if (parent === undefined || column?.length !== 1) return undefined;
  return { parent, modulus: Number(m[2]), remainder: Number(m[3]), column: column[0] as string };
}
