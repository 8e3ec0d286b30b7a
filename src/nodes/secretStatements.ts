/**
 * Statements that must carry a secret (a user mapping's password, a role's SCRAM verifier), sent
 * so that no place PostgreSQL records statements keeps it:
 *
 * - The statement text never holds the secret. It is a bind parameter of a call to a temporary
 *   PL/pgSQL function that runs the statement (`EXECUTE format(…, secret)`), so pg_stat_activity,
 *   pg_stat_statements (top level) and a logged statement show `SELECT pg_temp.…($1, $2)`. An
 *   error inside is raised again without its context, which would quote the statement.
 * - Every recorder that could still see it, given the node's settings, is switched off for the
 *   transaction: logged statements with their parameters (`log_statement = all`,
 *   `log_min_duration_statement`, sampled statements and transactions, `auto_explain`),
 *   parameters of a failing statement, parse-tree debugging output, and pg_stat_statements when
 *   it also tracks nested statements (`track = all`). A recorder that is on and that this user may
 *   not switch off stops the run before the secret is sent (SecretExposureError).
 *
 * What stays is PostgreSQL's own storage: the password in `pg_user_mapping.umoptions` (and so in
 * WAL and backups), readable by superusers and members of the servers' owner; the verifier in
 * `pg_authid`. See README "Secrets".
 */
import type pg from 'pg';
import { SecretExposureError } from '../errors.js';

/** A statement with `%L` where the secret goes (as a quoted literal); names already quoted. */
export interface SecretStatement {
  readonly template: string;
  readonly secret: string;
}

interface Recorder {
  readonly setting: string;
  /** What it records, for messages. */
  readonly what: string;
  /** Its value that records nothing. */
  readonly off: string;
  /** Whether the current value would record the secret (settings maps every recorder present). */
  readonly records: (value: string, settings: ReadonlyMap<string, string>) => boolean;
}

const number = (v: string | undefined): number => (v === undefined ? Number.NaN : Number(v));

/**
 * Every setting under which a statement, its parameters or its nested statements reach a log or a
 * statistics view. Settings of extensions count only where the extension is loaded.
 */
const RECORDERS: readonly Recorder[] = [
  { setting: 'log_statement', what: 'the server log (log_statement)', off: 'none', records: (v, s) => v === 'all' && number(s.get('log_parameter_max_length')) !== 0 },
  { setting: 'log_min_duration_statement', what: 'the server log (log_min_duration_statement)', off: '-1', records: (v, s) => number(v) >= 0 && number(s.get('log_parameter_max_length')) !== 0 },
  {
    setting: 'log_min_duration_sample',
    what: 'the server log (log_min_duration_sample)',
    off: '-1',
    records: (v, s) => number(v) >= 0 && number(s.get('log_statement_sample_rate')) > 0 && number(s.get('log_parameter_max_length')) !== 0,
  },
  { setting: 'log_transaction_sample_rate', what: 'the server log (log_transaction_sample_rate)', off: '0', records: (v, s) => number(v) > 0 && number(s.get('log_parameter_max_length')) !== 0 },
  { setting: 'log_parameter_max_length_on_error', what: 'the server log (parameters of a failing statement)', off: '0', records: (v) => number(v) !== 0 },
  { setting: 'debug_print_parse', what: 'the server log (debug_print_parse)', off: 'off', records: (v) => v === 'on' },
  { setting: 'debug_print_rewritten', what: 'the server log (debug_print_rewritten)', off: 'off', records: (v) => v === 'on' },
  { setting: 'debug_print_plan', what: 'the server log (debug_print_plan)', off: 'off', records: (v) => v === 'on' },
  { setting: 'auto_explain.log_min_duration', what: 'the server log (auto_explain)', off: '-1', records: (v) => number(v) >= 0 },
  { setting: 'pg_stat_statements.track', what: 'pg_stat_statements (nested statements)', off: 'top', records: (v, s) => v === 'all' && s.get('pg_stat_statements.track_utility') !== 'off' },
  // Not on this project's test machines; switched off where loaded, as their documentation describes them.
  { setting: 'pg_stat_monitor.pgsm_track', what: 'pg_stat_monitor', off: 'none', records: (v) => v !== 'none' },
  { setting: 'pgaudit.log', what: 'the audit log (pgaudit)', off: 'none', records: (v) => v !== 'none' },
];

/**
 * Runs the statements in one transaction with every recorder that would see them off.
 * @throws SecretExposureError (nothing sent) when a recorder is on and this user may not switch it off.
 */
export async function runSecretStatements(client: pg.Client, node: string, statements: readonly SecretStatement[]): Promise<void> {
  if (statements.length === 0) return;
  await client.query('BEGIN');
  try {
    await recordersOff(client, node);
    await client.query(
      `CREATE FUNCTION pg_temp.hypershard_secret(statement text, secret text) RETURNS void LANGUAGE plpgsql AS $fn$
       BEGIN
         EXECUTE pg_catalog.format(statement, secret);
       EXCEPTION WHEN OTHERS THEN
         -- The error's context would quote the statement, secret included: raise it without.
         RAISE EXCEPTION USING ERRCODE = SQLSTATE, MESSAGE = SQLERRM;
       END $fn$`,
    );
    for (const { template, secret } of statements) {
      await client.query('SELECT pg_temp.hypershard_secret($1, $2)', [formatTemplate(template), secret]);
    }
    await client.query('DROP FUNCTION pg_temp.hypershard_secret(text, text)');
    await client.query('COMMIT');
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  }
}

/** `format()` reads `%` as a directive: the template's own `%` (in a quoted name) are doubled, `%L` kept. */
function formatTemplate(template: string): string {
  const parts = template.split('%L');
  if (parts.length !== 2) throw new TypeError('a secret statement has exactly one %L');
  return parts.map((p) => p.replace(/%/g, '%%')).join('%L');
}

/** Switches off, for the transaction, every recorder that is on. */
async function recordersOff(client: pg.Client, node: string): Promise<void> {
  const names = [...RECORDERS.map((r) => r.setting), 'log_parameter_max_length', 'log_statement_sample_rate', 'pg_stat_statements.track_utility'];
  const { rows } = await client.query<{ name: string; setting: string }>('SELECT name, setting FROM pg_catalog.pg_settings WHERE name = ANY($1)', [names]);
  const settings = new Map(rows.map((r) => [r.name, r.setting]));
  for (const recorder of RECORDERS) {
    const value = settings.get(recorder.setting);
    if (value === undefined || !recorder.records(value, settings)) continue;
    await client.query('SAVEPOINT hypershard_recorder');
    try {
      await client.query(`SELECT pg_catalog.set_config($1, $2, true)`, [recorder.setting, recorder.off]);
      await client.query('RELEASE SAVEPOINT hypershard_recorder');
    } catch (error) {
      await client.query('ROLLBACK TO SAVEPOINT hypershard_recorder').catch(() => undefined);
      throw new SecretExposureError(node, recorder.setting, value, recorder.off, recorder.what, error);
    }
  }
}
