/**
 * Splits a file of SQL statements with PostgreSQL's own grammar (pgsql-parser, the server's
 * parser compiled to WebAssembly), so semicolons in strings, dollar quotes and comments are right.
 */
import { parse } from 'pgsql-parser';
import { HypershardError } from '../errors.js';

export async function splitStatements(text: string): Promise<string[]> {
  let result: { stmts?: { stmt_location?: number; stmt_len?: number }[] };
  try {
    result = (await parse(text)) as typeof result;
  } catch (error) {
    throw new HypershardError('AUDIT_PARSE', `cannot parse the statements: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
  // Locations are byte offsets into the UTF-8 text.
  const bytes = Buffer.from(text, 'utf8');
  return (result.stmts ?? [])
    .map((s) => {
      const start = s.stmt_location ?? 0;
      const end = !s.stmt_len ? bytes.length : start + s.stmt_len;
      return bytes.subarray(start, end).toString('utf8').trim();
    })
    .filter((s) => s !== '');
}
