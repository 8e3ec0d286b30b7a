/**
 * The failure every guard of a rewrite ends in (access.ts, referenceKeys.ts, dates.ts): a cast of
 * its name to a relation, which fails with 42P01 `relation "<name>" does not exist`, the error
 * hypershard/pg and the gateway recognize and run the statement as written after.
 */
import { quoteLiteral } from '../sql/quote.js';

/** A regclass expression that fails naming `name` when evaluated (`name` at most 63 bytes: PostgreSQL truncates longer ones in its message). */
export function guardFailure(name: string): string {
  // left(current_user, 0) is '', but keeps the cast from being evaluated while planning.
  return `(${quoteLiteral(`"${name}"`)} || pg_catalog.left(current_user, 0))::regclass`;
}
