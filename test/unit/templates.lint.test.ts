/**
 * Every value a template puts into SQL goes through a quoting helper. Checked on the Handlebars
 * AST, so no spelling of a mustache (whitespace, `~`, `&`, comments) gets past it.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import Handlebars from 'handlebars';
import { describe, expect, it } from 'vitest';
import { TemplateError } from '../../src/errors.js';
import { BLOCK_HELPERS, QUOTING_HELPERS, render, TEMPLATES_DIR } from '../../src/sql/templates.js';

type Node = hbs.AST.Node;

/** Every problem in a template's source, as `line:column message`. */
function lint(source: string): string[] {
  const problems: string[] = [];
  const at = (node: Node, message: string): void => {
    problems.push(`${node.loc.start.line}:${node.loc.start.column} ${message}`);
  };
  const name = (path: hbs.AST.PathExpression | hbs.AST.Literal): string =>
    path.type === 'PathExpression' ? (path as hbs.AST.PathExpression).original : `literal ${(path as hbs.AST.StringLiteral).original}`;
  const isPlainName = (path: hbs.AST.PathExpression | hbs.AST.Literal): path is hbs.AST.PathExpression =>
    path.type === 'PathExpression' && !(path as hbs.AST.PathExpression).data && (path as hbs.AST.PathExpression).parts.length === 1;

  const expression = (node: Node): void => {
    if (node.type === 'SubExpression') {
      at(node, `sub-expression (${name((node as hbs.AST.SubExpression).path)} …) is not allowed`);
      const sub = node as hbs.AST.SubExpression;
      arguments_(sub.params, sub.hash);
    }
  };
  const arguments_ = (params: readonly hbs.AST.Expression[], hash: hbs.AST.Hash | undefined): void => {
    for (const param of params) expression(param);
    for (const pair of hash?.pairs ?? []) expression(pair.value);
  };
  const program = (node: hbs.AST.Program | undefined): void => {
    for (const statement of node?.body ?? []) visit(statement);
  };
  const visit = (node: Node): void => {
    switch (node.type) {
      case 'ContentStatement':
      case 'CommentStatement':
        return;
      case 'MustacheStatement': {
        const m = node as hbs.AST.MustacheStatement;
        if (!m.escaped) at(m, `unescaped {{{${name(m.path)}}}} is not allowed`);
        const helper = name(m.path);
        if (!isPlainName(m.path) || !(QUOTING_HELPERS as readonly string[]).includes(helper)) {
          at(m, `{{${helper}}} must be a call of a quoting helper (${QUOTING_HELPERS.join(', ')})`);
        } else if (m.params.length === 0) {
          at(m, `{{${helper}}} has nothing to quote`);
        }
        arguments_(m.params, m.hash);
        return;
      }
      case 'BlockStatement': {
        const b = node as hbs.AST.BlockStatement;
        if (!isPlainName(b.path) || !(BLOCK_HELPERS as readonly string[]).includes(b.path.original)) {
          at(b, `block {{#${name(b.path)}}} is not one of ${BLOCK_HELPERS.join(', ')}`);
        }
        arguments_(b.params, b.hash);
        program(b.program);
        program(b.inverse);
        return;
      }
      case 'PartialStatement':
      case 'PartialBlockStatement':
        at(node, 'partials are not allowed');
        return;
      default:
        // Decorators, and anything a later Handlebars adds.
        at(node, `${node.type} is not allowed`);
    }
  };

  program(Handlebars.parse(source));
  return problems;
}

function templateFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true })
    .flatMap((entry) => (entry.isDirectory() ? templateFiles(join(dir, entry.name)) : [join(dir, entry.name)]))
    .sort();
}

describe('template lint', () => {
  const files = templateFiles(TEMPLATES_DIR);

  it('finds the templates', () => {
    expect(files.length).toBeGreaterThanOrEqual(29);
    expect(files.every((f) => f.endsWith('.sql.hbs'))).toBe(true);
  });

  it.each(files.map((f) => [relative(TEMPLATES_DIR, f), f]))('%s only interpolates through quoting helpers', (_name, file) => {
    expect(lint(readFileSync(file, 'utf8'))).toEqual([]);
  });

  it('accepts the allowed forms', () => {
    expect(
      lint('{{! note }}{{!-- long note --}}X {{ident name}} {{~literal a.b~}} {{#each xs}}{{keyword this}}{{#unless @last}},{{/unless}}{{/each}}' +
        '{{#if on}}{{int n}}{{else}}{{type t}}{{/if}}{{#dollarQuoted}}{{qualified q}}{{/dollarQuoted}}{{#ifEqual m "btree"}}{{keyword o}}{{/ifEqual}}'),
    ).toEqual([]);
  });

  it('catches a bare {{name}}', () => {
    expect(lint('DROP TABLE {{name}};')).toEqual(['1:11 {{name}} must be a call of a quoting helper (ident, qualified, literal, int, keyword, type, regclass, comment)']);
  });

  it('catches a bare {{this}} and a data variable', () => {
    expect(lint('{{#each xs}}{{this}}{{@index}}{{/each}}')).toEqual([
      '1:12 {{this}} must be a call of a quoting helper (ident, qualified, literal, int, keyword, type, regclass, comment)',
      '1:20 {{@index}} must be a call of a quoting helper (ident, qualified, literal, int, keyword, type, regclass, comment)',
    ]);
  });

  it('catches a triple-stash and the & form', () => {
    expect(lint('{{{name}}}')).toEqual([
      '1:0 unescaped {{{name}}} is not allowed',
      '1:0 {{name}} must be a call of a quoting helper (ident, qualified, literal, int, keyword, type, regclass, comment)',
    ]);
    expect(lint('{{{ident name}}}')).toEqual(['1:0 unescaped {{{ident}}} is not allowed']);
    expect(lint('{{& ident name}}')).toEqual(['1:0 unescaped {{{ident}}} is not allowed']);
  });

  it('catches a quoting helper with nothing to quote', () => {
    expect(lint('{{ident}}')).toEqual(['1:0 {{ident}} has nothing to quote']);
  });

  it('catches a helper reached through a path', () => {
    expect(lint('{{x.ident name}}')).toEqual([
      '1:0 {{x.ident}} must be a call of a quoting helper (ident, qualified, literal, int, keyword, type, regclass, comment)',
    ]);
  });

  it('catches a block helper outside the list', () => {
    expect(lint('{{#with x}}{{ident y}}{{/with}}')).toEqual(['1:0 block {{#with}} is not one of each, if, unless, ifEqual, dollarQuoted']);
    expect(lint('{{^x}}{{/x}}')).toEqual(['1:0 block {{#x}} is not one of each, if, unless, ifEqual, dollarQuoted']);
  });

  it('looks inside blocks and their else branch', () => {
    expect(lint('{{#if a}}{{ident b}}{{else}}{{c}}{{/if}}')).toEqual([
      '1:28 {{c}} must be a call of a quoting helper (ident, qualified, literal, int, keyword, type, regclass, comment)',
    ]);
    expect(lint('{{#if a}}{{else if b}}{{c}}{{/if}}')).toEqual([
      '1:22 {{c}} must be a call of a quoting helper (ident, qualified, literal, int, keyword, type, regclass, comment)',
    ]);
  });

  it('catches partials', () => {
    expect(lint('{{> other}}')).toEqual(['1:0 partials are not allowed']);
    expect(lint('{{#> layout}}x{{/layout}}')).toEqual(['1:0 partials are not allowed']);
  });

  it('catches sub-expressions, in mustaches, blocks and hashes', () => {
    expect(lint('{{ident (lookup a b)}}')).toEqual(['1:8 sub-expression (lookup …) is not allowed']);
    expect(lint('{{#each (lookup a b)}}{{/each}}')).toEqual(['1:8 sub-expression (lookup …) is not allowed']);
    expect(lint('{{ident a x=(raw b)}}')).toEqual(['1:12 sub-expression (raw …) is not allowed']);
  });

  it('catches decorators', () => {
    expect(lint('{{* deco}}')).toEqual(['1:0 Decorator is not allowed']);
    expect(lint('{{#* inline "p"}}x{{/inline}}')).toEqual(['1:0 DecoratorBlock is not allowed']);
  });
});

describe('render', () => {
  it('renders a template with its values quoted', () => {
    expect(render('common/grant-table', { privileges: ['SELECT', 'INSERT'], table: { schema: 's"x', name: "t'y" }, role: 'r"' })).toBe(
      `GRANT SELECT, INSERT ON TABLE "s""x"."t'y" TO "r""";`,
    );
  });

  it('throws a TemplateError naming the template when a field is missing', () => {
    expect(() => render('common/drop-role', {})).toThrow(TemplateError);
    expect(() => render('common/drop-role', {})).toThrow('common/drop-role: ident expects a string, got undefined');
    expect(() => render('common/grant-table', { privileges: ['SELECT'], role: 'r' })).toThrow('common/grant-table: qualified expects {schema, name}');
  });

  it('throws a TemplateError for a value that cannot be quoted', () => {
    expect(() => render('common/drop-role', { name: 'a\nb' })).toThrow('common/drop-role: invalid identifier "a\\nb": must not contain control characters');
    expect(() => render('common/drop-role', { name: 42 })).toThrow('common/drop-role: ident expects a string, got number');
    expect(() => render('data/create-chunks', { schema: 's', shard: { table: { schema: 'a', name: 'b' }, chunkPrefix: 'b' }, strideSeconds: 1.5, behind: 1, ahead: 1, utc: true })).toThrow(
      'data/create-chunks: int expects an integer, got 1.5',
    );
    expect(() => render('common/create-hash-parent', { table: { schema: 's', name: 't' }, columns: [{ name: 'a', type: { sql: 'int; drop' }, notNull: false }], spaceColumn: 'a' })).toThrow(
      'common/create-hash-parent: not a column type: int; drop',
    );
  });

  it('refuses a keyword outside the allow-list', () => {
    const grant = (privilege: string): string => render('common/grant-table', { privileges: [privilege], table: { schema: 's', name: 't' }, role: 'r' });
    expect(() => grant('SELECT; DROP TABLE t')).toThrow(TemplateError);
    expect(() => grant('SELECT; DROP TABLE t')).toThrow('common/grant-table: keyword "SELECT; DROP TABLE t" is not allowed');
    // The allow-list is exact: no case folding.
    expect(() => grant('select')).toThrow('keyword "select" is not allowed');
    expect(() => grant('ALL')).toThrow('keyword "ALL" is not allowed');
  });

  it('throws a TemplateError for an unknown template', () => {
    expect(() => render('common/nope', {})).toThrow(TemplateError);
  });

  // Handlebars' strict mode checks plain lookups like {{name}}, but not the parameters of helpers
  // such as {{#if login}}: without the wrapped block helpers a missing boolean rendered as false,
  // and create-role without `login` silently made a NOLOGIN role.
  it('throws for a missing field used only by a block helper', () => {
    expect(() => render('common/create-role', { name: 'r', inherit: true, connectionLimit: -1 })).toThrow(TemplateError);
    expect(() => render('common/create-role', { name: 'r', inherit: true, connectionLimit: -1 })).toThrow('common/create-role: {{#if}} at 8:33: a field is missing');
    expect(() => render('common/grant-table', { table: { schema: 's', name: 't' }, role: 'r' })).toThrow('common/grant-table: {{#each}} at 1:6: a field is missing');
    expect(() => render('common/create-hash-parent', { table: { schema: 's', name: 't' }, columns: [{ name: 'c', type: { sql: 'integer' } }], spaceColumn: 'c' })).toThrow(
      'common/create-hash-parent: {{#if}} at 3:',
    );
  });

  it('renders false, 0 and empty lists as the values they are', () => {
    expect(render('common/set-not-null', { table: { schema: 's', name: 't' }, name: 'c', notNull: false })).toBe('ALTER TABLE "s"."t" ALTER COLUMN "c" DROP NOT NULL;');
    expect(render('access/create-server', { name: 's', options: [] })).toBe('CREATE SERVER "s" FOREIGN DATA WRAPPER postgres_fdw OPTIONS (\n);');
  });

  it('writes a value for SET and ADD, even an empty one, and none for DROP', () => {
    expect(
      render('access/alter-server-options', {
        name: 's',
        changes: [
          { action: 'SET', key: 'a', value: '' },
          { action: 'ADD', key: 'b', value: 'x' },
          { action: 'DROP', key: 'c', value: false },
        ],
      }),
    ).toBe(`ALTER SERVER "s" OPTIONS (\n  SET "a" '',\n  ADD "b" 'x',\n  DROP "c"\n);`);
  });
});
