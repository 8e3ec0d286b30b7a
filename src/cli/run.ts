/** The one place that turns errors into messages and exit codes. */
import { HypershardError } from '../errors.js';

/** Exit codes: 0 done, 1 an operation failed on a node, 2 bad input (spec, secrets, migrations, usage). */
export const EXIT = { ok: 0, failed: 1, input: 2 } as const;

/** Errors in what the user gave us, as opposed to failures on the nodes. */
const INPUT_CODES = new Set(['SPEC_INVALID', 'SPEC_NOT_FOUND', 'SECRET_UNRESOLVED', 'MIGRATION_STATE', 'USAGE', 'INIT_EXISTS', 'AUDIT_WRITE', 'AUDIT_PARSE', 'NODE_NOT_EMPTY', 'INGEST_ROW', 'ROUTING']);

export function exitCodeFor(error: unknown): number {
  return error instanceof HypershardError && INPUT_CODES.has(error.code) ? EXIT.input : EXIT.failed;
}

/** Wraps a command: its return value is the exit code; a thrown error is printed once. */
export function command<A extends unknown[]>(fn: (...args: A) => Promise<number>): (...args: A) => Promise<void> {
  return async (...args: A) => {
    try {
      process.exitCode = await fn(...args);
    } catch (error) {
      const known = error instanceof HypershardError;
      process.stderr.write(`hypershard: ${known ? error.message : error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
      process.exitCode = exitCodeFor(error);
    }
  };
}

export function out(text: string): void {
  process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
}

export function json(value: unknown): void {
  out(JSON.stringify(value, null, 2));
}
