/**
 * Handlebars set up for SQL: compiled with `noEscape` (HTML escaping is wrong for SQL) and
 * `strict` (a missing field throws instead of rendering as empty). Every interpolation goes
 * through a helper below; `test/unit/templates.lint.test.ts` fails on any that does not.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Handlebars from 'handlebars';
import { TemplateError } from '../errors.js';
import type { ColumnType } from '../spec/columnType.js';
import { commentText, dollarQuote, quoteIdent, quoteLiteral, quoteQualified, textProblem } from './quote.js';

/** `templates/` at the package root, from `src/sql` and from `dist/sql` alike. */
export const TEMPLATES_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'templates');

/** Words a template may emit verbatim through `{{keyword x}}`; anything else is an error. */
const KEYWORDS = new Set([
  'SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER',
  'ASC', 'DESC', 'asc', 'desc', 'btree', 'brin', 'hash', 'gin',
  'LOGIN', 'NOLOGIN', 'INHERIT', 'NOINHERIT',
  'enable_partitionwise_aggregate', 'enable_partitionwise_join', 'enable_async_append',
  'on', 'off', 'SET', 'ADD', 'DROP',
]);

/** Helpers that make a value safe to place in SQL. The template lint allows exactly these. */
export const QUOTING_HELPERS = ['ident', 'qualified', 'literal', 'int', 'keyword', 'type', 'regclass', 'comment'] as const;
/** Block helpers a template may use. */
export const BLOCK_HELPERS = ['each', 'if', 'unless', 'ifEqual', 'dollarQuoted'] as const;

const env = Handlebars.create();

/** A block helper's arguments, with the options Handlebars passes last split off. */
function blockArguments(name: string, args: unknown[]): { params: unknown[]; options: Handlebars.HelperOptions } {
  const options = args.at(-1) as Handlebars.HelperOptions & { loc?: { start: { line: number; column: number } } };
  const params = args.slice(0, -1);
  // Only undefined is missing: false, 0 and [] are values.
  if (params.some((p) => p === undefined)) {
    const at = options.loc === undefined ? '' : ` at ${options.loc.start.line}:${options.loc.start.column}`;
    throw new TypeError(`{{#${name}}}${at}: a field is missing`);
  }
  return { params, options };
}

// Strict mode throws for a missing {{name}}, not for a missing helper argument: without this,
// {{#if login}} with no `login` would render as false (create-role would make a NOLOGIN role).
for (const name of ['if', 'unless', 'each'] as const) {
  const builtin = env.helpers[name] as Handlebars.HelperDelegate;
  env.registerHelper(name, function (this: unknown, ...args: unknown[]) {
    blockArguments(name, args);
    return Reflect.apply(builtin, this, args) as unknown;
  });
}

/** `{{#ifEqual a "b"}}…{{else}}…{{/ifEqual}}`: the block when both are the same value. */
env.registerHelper('ifEqual', function (this: unknown, ...args: unknown[]) {
  const { params, options } = blockArguments('ifEqual', args);
  if (params.length !== 2) throw new TypeError('{{#ifEqual}} takes two arguments');
  return params[0] === params[1] ? options.fn(this) : options.inverse(this);
});

interface Qualified {
  schema: string;
  name: string;
}

function isQualified(value: unknown): value is Qualified {
  return typeof value === 'object' && value !== null && typeof (value as Qualified).schema === 'string' && typeof (value as Qualified).name === 'string';
}

env.registerHelper('ident', (name: unknown) => {
  if (typeof name !== 'string') throw new TypeError(`ident expects a string, got ${typeof name}`);
  return quoteIdent(name);
});
env.registerHelper('qualified', (name: unknown) => {
  if (!isQualified(name)) throw new TypeError('qualified expects {schema, name}');
  return quoteQualified(name.schema, name.name);
});
env.registerHelper('regclass', (name: unknown) => {
  if (!isQualified(name)) throw new TypeError('regclass expects {schema, name}');
  return `${quoteLiteral(quoteQualified(name.schema, name.name))}::regclass`;
});
env.registerHelper('literal', (value: unknown) => {
  if (typeof value === 'string') {
    // The spec validator rejects such values; this keeps any other caller from faking a marker.
    const problem = textProblem(value);
    if (problem !== undefined) throw new TypeError(`literal ${JSON.stringify(value)} ${problem}`);
    return quoteLiteral(value);
  }
  if (typeof value === 'number' && Number.isFinite(value)) return quoteLiteral(String(value));
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  throw new TypeError(`literal expects a string, finite number or boolean, got ${String(value)}`);
});
env.registerHelper('int', (value: unknown) => {
  if (typeof value !== 'number' || !Number.isSafeInteger(value)) throw new TypeError(`int expects an integer, got ${String(value)}`);
  return String(value);
});
env.registerHelper('keyword', (word: unknown) => {
  if (typeof word !== 'string' || !KEYWORDS.has(word)) throw new TypeError(`keyword ${JSON.stringify(word)} is not allowed`);
  return word;
});
env.registerHelper('type', (type: unknown) => {
  const sql = (type as ColumnType | undefined)?.sql;
  // Types were parsed against a closed grammar; re-check the shape as a second line of defence.
  if (typeof sql !== 'string' || !/^[a-z][a-z ]*(\(\d+(,\d+)?\))?(\[\])*$/.test(sql)) throw new TypeError(`not a column type: ${String(sql)}`);
  return sql;
});
env.registerHelper('comment', (text: unknown) => commentText(String(text)));
env.registerHelper('dollarQuoted', function (this: unknown, options: Handlebars.HelperOptions) {
  return dollarQuote(options.fn(this));
});

const cache = new Map<string, Handlebars.TemplateDelegate>();

function compiled(name: string): Handlebars.TemplateDelegate {
  let template = cache.get(name);
  if (template === undefined) {
    const source = readFileSync(join(TEMPLATES_DIR, `${name}.sql.hbs`), 'utf8');
    template = env.compile(source, { noEscape: true, strict: true, knownHelpersOnly: false });
    cache.set(name, template);
  }
  return template;
}

/**
 * Renders one statement from `templates/<name>.sql.hbs`. The output is not post-processed:
 * quoted names may legitimately contain newlines, so templates control their own whitespace.
 * @throws TemplateError naming the template when data is missing or a value cannot be quoted.
 */
export function render(name: string, data: object): string {
  try {
    return compiled(name)(data).trim();
  } catch (error) {
    throw new TemplateError(name, error instanceof Error ? error.message : String(error), { cause: error });
  }
}
