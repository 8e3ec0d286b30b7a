/**
 * Runs the statements extracted from TimescaleDB's regression tests (`test/fixtures/timescaledb/`)
 * through psql against a real PostgreSQL, the way TimescaleDB's runner does, and pairs what psql
 * printed for each with what TimescaleDB's expected output says.
 *
 * As TimescaleDB's runner: psql reads the script on stdin with every line echoed, terse errors,
 * the settings pg_regress makes (PGTZ, PGDATESTYLE, intervalstyle in PGOPTIONS), and `(N rows)` footers
 * removed. Differences from it, each because of where the functions live rather than what they
 * return: errors never stop the script (a case that fails must not hide the next), psql prints
 * no CONTEXT lines (TimescaleDB raises its errors from C, which adds none; ours are raised by a
 * PL/pgSQL helper), and the `psql:<file>:<line>:` prefix of statements TimescaleDB ran from an
 * included file is dropped.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';

export interface Fixture {
  readonly source: string;
  readonly commit: string;
  readonly files: readonly string[];
  readonly cases: readonly FixtureCase[];
}

export interface FixtureCase {
  readonly line: number;
  readonly sql: string;
  readonly expected: string;
  readonly skip?: string;
}

export interface CaseResult {
  readonly line: number;
  readonly sql: string;
  readonly expected: string;
  readonly actual: string;
}

export const FIXTURES_DIR = join(import.meta.dirname, '..', 'fixtures', 'timescaledb');

export function readFixture(name: string): Fixture {
  return JSON.parse(readFileSync(join(FIXTURES_DIR, `${name}.json`), 'utf8')) as Fixture;
}

const PSQL = process.env.HYPERSHARD_TEST_PSQL ?? 'psql';

/** Why psql cannot be run here, or undefined when it can. */
export async function psqlUnavailable(): Promise<string | undefined> {
  try {
    await promisify(execFile)(PSQL, ['--version']);
    return undefined;
  } catch (error) {
    return `no psql (${error instanceof Error ? error.message.split('\n')[0] : String(error)}); install postgresql-client or set HYPERSHARD_TEST_PSQL`;
  }
}

const MARKER = '@@hypershard-case';

/** The fixture's statements (not skipped) in one psql session, each result paired with its expected output. */
export async function runCases(fixture: Fixture, url: string, password?: string): Promise<CaseResult[]> {
  const cases = fixture.cases.filter((c) => c.skip === undefined);
  const script = [
    '\\set ON_ERROR_STOP 0',
    '\\set VERBOSITY terse',
    '\\set SHOW_CONTEXT never',
    '\\set ECHO all',
    ...cases.flatMap((c, i) => [`\\echo ${MARKER} ${i}`, c.sql]),
    `\\echo ${MARKER} end`,
    '',
  ].join('\n');
  const transcript = await psql(url, ['-X', '-q'], {
    input: script,
    // One stream for stdout and stderr keeps errors where psql printed them, as pg_regress's 2>&1.
    mergeStderr: true,
    env: { PGTZ: 'PST8PDT', PGDATESTYLE: 'Postgres, MDY', PGOPTIONS: '-c intervalstyle=postgres_verbose -c lc_messages=C' },
    ...(password === undefined ? {} : { password }),
  });
  return parse(transcript, cases);
}

/** psql on `url` with `args`, its output; a failure (exit code, two minutes) rejects with psql's message. */
export function psql(
  url: string,
  args: readonly string[],
  options: { readonly input?: string; readonly mergeStderr?: boolean; readonly env?: NodeJS.ProcessEnv; readonly password?: string } = {},
): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    const child = execFile('/bin/sh', ['-c', `exec "$0" "$@"${options.mergeStderr === true ? ' 2>&1' : ''}`, PSQL, ...args, '-d', url], {
      env: { ...process.env, ...options.env, ...(options.password === undefined ? {} : { PGPASSWORD: options.password }) },
      maxBuffer: 256 * 1024 * 1024,
      timeout: 120_000,
    }, (error, stdout, stderr) => (error !== null ? reject(new Error(`psql ${args.join(' ')}: ${stderr || error.message}`)) : resolve(stdout)));
    child.stdin?.end(options.input ?? '');
  });
}

function parse(transcript: string, cases: readonly FixtureCase[]): CaseResult[] {
  const lines = transcript.split('\n');
  const results: CaseResult[] = [];
  cases.forEach((c, i) => {
    const start = lines.indexOf(`${MARKER} ${i}`);
    const end = lines.indexOf(`\\echo ${MARKER} ${i + 1 === cases.length ? 'end' : i + 1}`, start);
    if (start < 0 || end < 0) throw new Error(`psql's output has no case ${i} (line ${c.line}); it stopped early:\n${lines.slice(-20).join('\n')}`);
    const segment = lines.slice(start + 1, end);
    // psql echoes the statement's lines first (all but empty ones).
    const echoed = c.sql.split('\n').filter((l) => l !== '');
    for (const line of echoed) {
      if (segment[0] !== line) throw new Error(`case at line ${c.line}: expected psql to echo ${JSON.stringify(line)}, got ${JSON.stringify(segment[0])}`);
      segment.shift();
    }
    results.push({ line: c.line, sql: c.sql, expected: normalize(c.expected.split('\n')), actual: normalize(segment) });
  });
  return results;
}

function normalize(lines: readonly string[]): string {
  return lines
    .filter((l) => !/^ ?\(\d+ rows?\)$/.test(l))
    .map((l) => l.replace(/^psql:[^:]+:\d+: /, ''))
    .join('\n')
    .replace(/\n+$/, '');
}
