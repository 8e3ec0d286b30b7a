/**
 * Extracts query / expected-output pairs from TimescaleDB's own regression tests (the files its
 * CI compares psql's output with) into `test/fixtures/timescaledb/*.json`, which
 * `test/integration/timescaledbCases.test.ts` runs against hypershard's functions.
 *
 *   npx jiti scripts/extract-timescaledb-cases.ts <timescaledb git dir> [commit]
 *
 * A `.out` file is psql's transcript with every input line echoed (`ECHO all`), so aligning it with
 * the input (the `.sql`, its `\ir` includes spliced in) splits it into each statement and the
 * output it printed. Statements that need TimescaleDB itself (hypertables, its catalog, its GUCs,
 * its C test functions, EXPLAIN of its plans) are kept with a `skip` reason, so the fixture says
 * what was left out and why. The files are facts to test against; nothing here runs them.
 *
 * agg_bookends has one expected output per PostgreSQL version (16–19); they differ only in the
 * EXPLAIN part, so -18's serves for every version (its results part equals the others' line for
 * line at the commit extracted).
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, posix } from 'node:path';
import { fileURLToPath } from 'node:url';

interface Source {
  readonly name: string;
  readonly sql: string;
  readonly out: string;
  /** psql variables the `\ir` lines name. */
  readonly includes?: Readonly<Record<string, string>>;
}

const SOURCES: readonly Source[] = [
  { name: 'timestamp', sql: 'test/sql/timestamp.sql', out: 'test/expected/timestamp.out' },
  {
    name: 'agg_bookends',
    sql: 'test/sql/agg_bookends.sql.in',
    out: 'test/expected/agg_bookends-18.out',
    includes: { TEST_LOAD_NAME: 'include/agg_bookends_load.sql', TEST_QUERY_NAME: 'include/agg_bookends_query.sql' },
  },
];

/** Why a statement cannot run without TimescaleDB, by what it contains. */
const SKIP_RULES: readonly (readonly [RegExp, string])[] = [
  [/create_hypertable/, 'creates a hypertable (the table stays a plain table here)'],
  [/_timescaledb_|timescaledb_information|timescaledb\.|test\.interval_to_internal|:MODULE_PATHNAME/, "uses TimescaleDB's internal functions, catalog or settings"],
  [/^\\c\b|:ROLE_|AUTHORIZATION/, "TimescaleDB's test roles and reconnections"],
  [/\bFROM ONLY\b/, "reads a hypertable's parent alone, which TimescaleDB keeps empty (its rows are in chunks)"],
  [/^\\(ir|o|gset)\b|^:DIFF_CMD|^\\set (TEST_BASE_NAME|ON_ERROR_STOP)\b|\\gset$/, "the test runner's own plumbing"],
];

export interface Case {
  /** Line of the `.out` file where the statement is echoed. */
  readonly line: number;
  readonly sql: string;
  /** What psql printed after it (results, errors), as TimescaleDB's CI expects it. */
  readonly expected: string;
  readonly skip?: string;
}

interface InputLine {
  readonly text: string;
  /** Ends a statement (a `;` outside quotes and parentheses, or a backslash command). */
  readonly ends: boolean;
  /** A line psql echoes (psql skips empty lines outside quotes). */
  readonly echoed: boolean;
}

function git(dir: string, ...args: string[]): string {
  return execFileSync('git', ['--git-dir', dir, ...args], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
}

/** The input psql reads: the file with each `\ir` replaced by the included lines after it. */
function expand(read: (path: string) => string, path: string, includes: Readonly<Record<string, string>>): string[] {
  const lines: string[] = [];
  for (const line of read(path).replace(/\n$/, '').split('\n')) {
    lines.push(line);
    const include = /^\\ir\s+:?(\S+)/.exec(line);
    if (include !== null) {
      const target = includes[include[1] ?? ''] ?? include[1] ?? '';
      lines.push(...expand(read, posix.join(posix.dirname(path), target), includes));
    }
  }
  return lines;
}

/** Marks statement ends with a small lexer: quotes, dollar quotes, comments, parentheses. */
function lex(lines: readonly string[]): InputLine[] {
  let quote: string | undefined; // "'", '"', a $tag$, or '/*'
  let depth = 0;
  return lines.map((text) => {
    const startsInQuote = quote !== undefined;
    if (!startsInQuote && (/^\s*\\/.test(text) || /^:[A-Za-z_]+$/.test(text))) {
      // A backslash command ends what is in progress (\gexec, \g) or stands alone; so does a
      // variable holding one (`:DIFF_CMD`).
      depth = 0;
      return { text, ends: true, echoed: true };
    }
    let last = '';
    for (let i = 0; i < text.length; i++) {
      const rest = text.slice(i);
      const c = text[i] ?? '';
      if (quote === '/*') {
        if (rest.startsWith('*/')) {
          quote = undefined;
          i++;
        }
      } else if (quote !== undefined) {
        if (rest.startsWith(quote)) {
          // '' and "" inside quotes are escaped quotes.
          if ((quote === "'" || quote === '"') && text[i + 1] === quote) i++;
          else {
            i += quote.length - 1;
            quote = undefined;
            last = c;
          }
        }
      } else if (rest.startsWith('--')) {
        break;
      } else if (rest.startsWith('/*')) {
        quote = '/*';
        i++;
      } else if (c === "'" || c === '"') {
        quote = c;
      } else if (/^\$[A-Za-z_]*\$/.test(rest) && !/\w/.test(text[i - 1] ?? '')) {
        quote = /^\$[A-Za-z_]*\$/.exec(rest)?.[0] ?? '$$';
        i += quote.length - 1;
      } else if (!/\s/.test(c)) {
        if (c === '(') depth++;
        if (c === ')') depth--;
        last = c;
      }
    }
    return { text, ends: quote === undefined && depth === 0 && last === ';', echoed: text !== '' || startsInQuote };
  });
}

/** Statements of the input with the output each printed, from aligning the transcript with it. */
export function split(input: readonly InputLine[], out: readonly string[]): Case[] {
  const echoed = input.filter((l) => l.echoed);
  // Statement of each echoed line: comment lines join the statement after them.
  const statementOf: number[] = [];
  let n = 0;
  for (const line of echoed) {
    statementOf.push(n);
    if (line.ends) n++;
  }
  const cases = new Map<number, { line: number; sql: string[]; expected: string[] }>();
  let j = 0;
  out.forEach((text, i) => {
    const next = echoed[j];
    if (next !== undefined && text === next.text) {
      const s = statementOf[j] ?? n;
      const c = cases.get(s) ?? { line: i + 1, sql: [], expected: [] };
      cases.set(s, c);
      c.sql.push(text);
      j++;
      return;
    }
    const c = cases.get(statementOf[j - 1] ?? -1);
    if (c === undefined) throw new Error(`line ${i + 1}: output before any statement: ${text}`);
    c.expected.push(text);
  });
  if (j !== echoed.length) throw new Error(`alignment stopped at input line ${JSON.stringify(echoed[j]?.text)}`);
  return [...cases.values()].map((c) => ({ line: c.line, sql: c.sql.join('\n'), expected: c.expected.join('\n') }));
}

/** The statement without its leading comment lines, as psql runs it. */
function statementText(sql: string): string {
  return sql
    .split('\n')
    .filter((l) => !/^\s*--/.test(l))
    .join('\n')
    .trim();
}

/**
 * Skip reasons, and the statements `\gexec` generated (echoed in its output, each followed by its
 * own output) as cases of their own.
 */
export function classify(cases: readonly Case[]): Case[] {
  const result: Case[] = [];
  let prefix = '';
  let redirected = false;
  for (const c of cases) {
    const text = statementText(c.sql);
    const setPrefix = /^\\set PREFIX '(.*)'$/.exec(text);
    if (setPrefix !== null) prefix = setPrefix[1] ?? '';
    if (/^\\o\s+\S/.test(text)) redirected = true;
    else if (/^\\o$/.test(text)) redirected = false;
    const rule = SKIP_RULES.find(([pattern]) => text.split('\n').some((l) => pattern.test(l.trim())));
    let skip = rule?.[1];
    if (skip === undefined && redirected) skip = "output written to a file for TimescaleDB's optimized / unoptimized diff";
    if (skip === undefined && text.includes(':PREFIX') && prefix !== '') skip = "EXPLAIN of TimescaleDB's plan";
    if (skip === undefined && /^EXPLAIN\b/i.test(text)) skip = "EXPLAIN of TimescaleDB's plan";
    if (text.endsWith('\\gexec')) {
      result.push({ ...c, expected: '', skip: 'generates the statements that follow, each a case of its own' });
      result.push(...generated(c));
      continue;
    }
    result.push(skip === undefined ? c : { ...c, skip });
  }
  return result;
}

/** `\gexec` echoes each statement it runs (one line, ending in `;`) before its output. */
function generated(c: Case): Case[] {
  const cases: { line: number; sql: string; expected: string[] }[] = [];
  const start = c.line + c.sql.split('\n').length;
  c.expected.split('\n').forEach((text, i) => {
    if (/^SELECT .*;$/.test(text)) {
      cases.push({ line: start + i, sql: text, expected: [] });
      return;
    }
    const last = cases.at(-1);
    if (last === undefined) throw new Error(`line ${start + i}: \\gexec output before its first statement`);
    last.expected.push(text);
  });
  return cases.map((g) => ({ line: g.line, sql: g.sql, expected: g.expected.join('\n') }));
}

function main(): void {
  const [gitDir, commitArg] = process.argv.slice(2);
  if (gitDir === undefined) throw new Error('usage: extract-timescaledb-cases.ts <timescaledb git dir> [commit]');
  const commit = (commitArg ?? git(gitDir, 'rev-parse', 'HEAD')).trim();
  const read = (path: string): string => git(gitDir, 'show', `${commit}:${path}`);
  const root = join(dirname(fileURLToPath(import.meta.url)), '..', 'test', 'fixtures', 'timescaledb');
  mkdirSync(root, { recursive: true });
  for (const source of SOURCES) {
    const input = lex(expand(read, source.sql, source.includes ?? {}));
    const cases = classify(split(input, read(source.out).replace(/\n$/, '').split('\n')));
    const fixture = {
      source: 'https://github.com/timescale/timescaledb',
      commit,
      files: [source.sql, source.out],
      license: "TimescaleDB's test files are Apache-2.0; these are its statements and psql's expected output, unchanged",
      extractedBy: 'scripts/extract-timescaledb-cases.ts',
      cases,
    };
    writeFileSync(join(root, `${source.name}.json`), `${JSON.stringify(fixture, null, 2)}\n`);
    const kept = cases.filter((c) => c.skip === undefined);
    console.log(`${source.name}: ${cases.length} statements, ${kept.length} kept, ${kept.filter((c) => c.expected !== '').length} with output`);
  }
}

if (process.argv[1]?.endsWith('extract-timescaledb-cases.ts') === true) main();
