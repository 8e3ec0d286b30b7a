/**
 * The database a node URL names, read the way the CLI reads it: `clientConfig`
 * (src/nodes/connect.ts) parses URLs with pg-connection-string, which decodes the path with
 * decodeURI, so `a%23b` stays `a%23b` where decodeURIComponent would give `a#b`. The FDW dbname
 * and the same-database check use this too, so the access node and the CLI mean one database.
 */
import { parse } from 'pg-connection-string';

/** The database `url` names, or undefined when it names none (the CLI would then pick PGDATABASE or the user's name). */
export function urlDatabase(url: string): string | undefined {
  // parse() reads the files named by sslcert, sslkey and sslrootcert, and interprets SSL settings;
  // neither touches the path. Renaming those query parameters keeps reading a spec free of side
  // effects while leaving every other character, and so parse()'s reading of the path, as it is.
  const query = url.indexOf('?');
  const inert = query < 0 ? url : url.slice(0, query) + url.slice(query).replace(/([?&])(sslcert|sslkey|sslrootcert|uselibpqcompat)=/gi, '$1_$2=');
  let database: string | null | undefined;
  try {
    database = parse(inert).database;
  } catch {
    return undefined;
  }
  return database === null || database === undefined || database === '' ? undefined : database;
}
