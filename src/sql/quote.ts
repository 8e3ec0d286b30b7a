/**
 * The only places where user-supplied text becomes SQL. Everything else (templates, CLI,
 * queries) goes through these.
 *
 * @see https://www.postgresql.org/docs/current/sql-syntax-lexical.html
 */

/** PostgreSQL truncates identifiers longer than NAMEDATALEN - 1 bytes. */
export const MAX_IDENTIFIER_BYTES = 63;

export function byteLength(text: string): number {
  return Buffer.byteLength(text, 'utf8');
}

/**
 * Why `text` cannot be written verbatim into a migration file, or undefined when it can. A line
 * break would let a name break out of a `--` comment; JavaScript's multiline `^` (node-pg-migrate
 * finds its `-- Down Migration` marker with one) also matches after U+2028 and U+2029, so those
 * could fake the marker from inside a quoted name or string literal. C1 controls (U+0085 NEL …)
 * go too: editors may show them as line breaks, hiding SQL from the reviewer.
 */
export function textProblem(text: string): string | undefined {
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f-\u009f]/.test(text)) return 'must not contain control characters (newline, tab, NUL …)';
  if (/[\u2028\u2029]/.test(text)) return 'must not contain a Unicode line or paragraph separator (U+2028, U+2029)';
  // With the u flag a surrogate pair is one code point, so this finds only unpaired halves. They
  // are not Unicode: PostgreSQL would receive U+FFFD, so "a\uD800" and "a\uDBFF" would be one name.
  if (/[\uD800-\uDFFF]/u.test(text)) return 'must not contain a lone surrogate (\\uD800-\\uDFFF), which is not valid Unicode';
  return undefined;
}

/** Why `name` cannot be an identifier, or undefined when it can. */
export function identifierProblem(name: string): string | undefined {
  if (name.length === 0) return 'must not be empty';
  // PostgreSQL accepts control characters in quoted names, but a migration file must not.
  const problem = textProblem(name);
  if (problem !== undefined) return problem;
  const bytes = byteLength(name);
  if (bytes > MAX_IDENTIFIER_BYTES) {
    // PostgreSQL would silently truncate it, and two long names could then collide.
    return `is ${bytes} bytes long; PostgreSQL truncates identifiers to ${MAX_IDENTIFIER_BYTES} bytes`;
  }
  return undefined;
}

/** Double-quotes an identifier, doubling embedded quotes. Rejects names PostgreSQL would mangle. */
export function quoteIdent(name: string): string {
  const problem = identifierProblem(name);
  if (problem !== undefined) throw new TypeError(`invalid identifier ${JSON.stringify(name)}: ${problem}`);
  return `"${name.replaceAll('"', '""')}"`;
}

/** `"schema"."name"` */
export function quoteQualified(schema: string, name: string): string {
  return `${quoteIdent(schema)}.${quoteIdent(name)}`;
}

/**
 * A string literal that means the same under any `standard_conforming_strings`: quotes are
 * doubled, and when a backslash is present the E'' form is used with backslashes doubled.
 * @see node-postgres `escapeLiteral`
 */
export function quoteLiteral(value: string): string {
  if (value.includes('\0')) throw new TypeError('a string literal cannot contain a NUL character');
  const quoted = value.replaceAll("'", "''");
  return value.includes('\\') ? `E'${quoted.replaceAll('\\', '\\\\')}'` : `'${quoted}'`;
}

/**
 * Dollar-quotes a body (for DO blocks and function bodies) with a tag that ends the string only
 * where it should: the closing `$tag$` must not occur in the body, nor straddle its end (a body
 * ending in `$hs` followed by `$hs$` contains `$hs$` one character early).
 */
export function dollarQuote(body: string): string {
  let tag = 'hs';
  for (let n = 0; `${body}$${tag}$`.indexOf(`$${tag}$`) !== body.length; n += 1) tag = `hs${n}`;
  return `$${tag}$${body}$${tag}$`;
}

/** Text safe inside a `--` comment: control characters (a newline would end it) become escapes. */
export function commentText(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u001f\u007f\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
