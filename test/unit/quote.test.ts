import { describe, expect, it } from 'vitest';
import {
  byteLength,
  commentText,
  dollarQuote,
  identifierProblem,
  MAX_IDENTIFIER_BYTES,
  quoteIdent,
  quoteLiteral,
  quoteQualified,
  textProblem,
} from '../../src/sql/quote.js';

describe('quoteIdent', () => {
  it('double-quotes a plain name', () => {
    expect(quoteIdent('metrics')).toBe('"metrics"');
  });

  it('keeps case, so Metrics and metrics stay different tables', () => {
    expect(quoteIdent('Metrics')).toBe('"Metrics"');
  });

  it('doubles embedded double quotes', () => {
    expect(quoteIdent('a"b')).toBe('"a""b"');
    expect(quoteIdent('"')).toBe('""""');
    expect(quoteIdent('x"; DROP TABLE canary; --')).toBe('"x""; DROP TABLE canary; --"');
  });

  it('leaves single quotes, backslashes and dollars alone (they mean nothing inside "")', () => {
    expect(quoteIdent("it's")).toBe(`"it's"`);
    expect(quoteIdent('back\\slash')).toBe('"back\\slash"');
    expect(quoteIdent('$hs$')).toBe('"$hs$"');
  });

  it('quotes reserved words', () => {
    expect(quoteIdent('select')).toBe('"select"');
    expect(quoteIdent('user')).toBe('"user"');
  });

  it('keeps unicode as is', () => {
    expect(quoteIdent('température')).toBe('"température"');
    expect(quoteIdent('数据')).toBe('"数据"');
  });

  it('accepts a name of exactly 63 bytes', () => {
    expect(quoteIdent('a'.repeat(63))).toBe(`"${'a'.repeat(63)}"`);
    // 31 two-byte characters + 1 = 63 bytes.
    expect(quoteIdent(`${'é'.repeat(31)}a`)).toBe(`"${'é'.repeat(31)}a"`);
  });

  it('counts the 63-byte limit in UTF-8 bytes, not characters', () => {
    // 32 characters but 64 bytes: PostgreSQL would silently cut it to 31 characters.
    const name = 'é'.repeat(32);
    expect(name.length).toBe(32);
    expect(() => quoteIdent(name)).toThrow(TypeError);
    expect(() => quoteIdent(name)).toThrow('is 64 bytes long; PostgreSQL truncates identifiers to 63 bytes');
    expect(() => quoteIdent('a'.repeat(64))).toThrow('is 64 bytes long');
    expect(() => quoteIdent(`${'a'.repeat(62)}é`)).toThrow('is 64 bytes long');
  });

  it('rejects the empty name', () => {
    expect(() => quoteIdent('')).toThrow('must not be empty');
  });

  it.each([
    ['newline', 'a\nb'],
    ['carriage return', 'a\rb'],
    ['tab', 'a\tb'],
    ['NUL', 'a\0b'],
    ['DEL', 'a\u007fb'],
    ['escape', 'a\u001bb'],
    ['NEL', 'a\u0085b'],
  ])('rejects a control character (%s)', (_label, name) => {
    expect(() => quoteIdent(name)).toThrow('must not contain control characters');
  });

  // JavaScript's multiline ^ matches after them, so node-pg-migrate would see a marker there.
  it.each([
    ['line separator', 'a\u2028-- Down Migration'],
    ['paragraph separator', 'a\u2029-- Down Migration'],
  ])('rejects a Unicode %s', (_label, name) => {
    expect(() => quoteIdent(name)).toThrow('must not contain a Unicode line or paragraph separator (U+2028, U+2029)');
  });

  it('names the offending identifier in the error', () => {
    expect(() => quoteIdent('a\nb')).toThrow('invalid identifier "a\\nb"');
  });
});

describe('identifierProblem', () => {
  it('is undefined for a valid name', () => {
    expect(identifierProblem('x"; DROP TABLE canary; --')).toBeUndefined();
  });

  it('reports the byte length', () => {
    expect(identifierProblem('数'.repeat(22))).toBe('is 66 bytes long; PostgreSQL truncates identifiers to 63 bytes');
  });

  // A lone surrogate (YAML "\uD800") is not UTF-8: it reaches PostgreSQL as U+FFFD, so
  // "a\uD800" and "a\uDBFF" become the same name without any collision check seeing it.
  it('rejects a lone surrogate, high or low', () => {
    expect(identifierProblem('a\uD800')).toMatch(/^must not contain a lone surrogate/);
    expect(identifierProblem('\uDBFFa')).toMatch(/^must not contain a lone surrogate/);
    expect(identifierProblem('a\uDC00\uD800')).toMatch(/^must not contain a lone surrogate/);
  });

  it('accepts a character outside the BMP (a surrogate pair)', () => {
    expect(identifierProblem('a\u{1F600}')).toBeUndefined();
  });

  it('uses the NAMEDATALEN - 1 limit', () => {
    expect(MAX_IDENTIFIER_BYTES).toBe(63);
    expect(byteLength('é')).toBe(2);
    expect(byteLength('数')).toBe(3);
  });
});

describe('textProblem', () => {
  it('is undefined for text that can go into a migration file as it is', () => {
    expect(textProblem('')).toBeUndefined();
    expect(textProblem(`verify-full 'x' "y" \\ 数据 \u{1F600}`)).toBeUndefined();
  });

  it.each([
    ['a newline', 'x\n-- Down Migration', 'must not contain control characters (newline, tab, NUL …)'],
    ['a C1 control', 'x\u009b', 'must not contain control characters (newline, tab, NUL …)'],
    ['U+2028', 'x\u2028-- Down Migration', 'must not contain a Unicode line or paragraph separator (U+2028, U+2029)'],
    ['a lone surrogate', 'x\uDFFF', 'must not contain a lone surrogate (\\uD800-\\uDFFF), which is not valid Unicode'],
  ])('reports %s', (_label, text, problem) => {
    expect(textProblem(text)).toBe(problem);
  });
});

describe('quoteQualified', () => {
  it('quotes schema and name separately', () => {
    expect(quoteQualified('my schema', 'a.b')).toBe('"my schema"."a.b"');
    expect(quoteQualified('s"', 't"')).toBe('"s"""."t"""');
  });
});

describe('quoteLiteral', () => {
  it('single-quotes plain text', () => {
    expect(quoteLiteral('hello')).toBe(`'hello'`);
    expect(quoteLiteral('')).toBe(`''`);
  });

  it('doubles single quotes', () => {
    expect(quoteLiteral("it's")).toBe(`'it''s'`);
    expect(quoteLiteral("'; DROP TABLE canary; --")).toBe(`'''; DROP TABLE canary; --'`);
  });

  it('leaves double quotes and dollars alone', () => {
    expect(quoteLiteral('"$hs$"')).toBe(`'"$hs$"'`);
  });

  it('uses the E form with doubled backslashes when there is a backslash', () => {
    // Means the same whether standard_conforming_strings is on or off.
    expect(quoteLiteral('a\\b')).toBe(`E'a\\\\b'`);
    expect(quoteLiteral("\\'")).toBe(`E'\\\\'''`);
    expect(quoteLiteral('\\')).toBe(`E'\\\\'`);
  });

  it('keeps unicode and newlines inside the literal', () => {
    expect(quoteLiteral('数据\nx')).toBe(`'数据\nx'`);
  });

  it('rejects NUL, which PostgreSQL text cannot hold', () => {
    expect(() => quoteLiteral('a\0b')).toThrow(TypeError);
    expect(() => quoteLiteral('a\0b')).toThrow('a string literal cannot contain a NUL character');
  });
});

describe('dollarQuote', () => {
  it('uses $hs$ when the body does not contain it', () => {
    expect(dollarQuote('BEGIN NULL; END')).toBe('$hs$BEGIN NULL; END$hs$');
  });

  it('picks another tag when the body contains $hs$', () => {
    expect(dollarQuote('x $hs$ y')).toBe('$hs0$x $hs$ y$hs0$');
  });

  it('skips every tag that occurs in the body', () => {
    expect(dollarQuote('x $hs$ $hs0$ y')).toBe('$hs1$x $hs$ $hs0$ y$hs1$');
    expect(dollarQuote('$hs$$hs0$$hs1$$hs2$')).toBe('$hs3$$hs$$hs0$$hs1$$hs2$$hs3$');
  });

  it('keeps quotes and backslashes of the body as they are', () => {
    expect(dollarQuote(`'it''s' \\ "x"`)).toBe(`$hs$'it''s' \\ "x"$hs$`);
  });

  // A body ending in "$hs" makes "...$hs" + "$hs$" contain "$hs$" one character early, so
  // PostgreSQL ends the string there: `SELECT $hs$a$hs$hs$` returns 'a' aliased as hs$.
  // The templates' bodies end with fixed text ("END\n"), so no generated SQL hits this today.
  it.each(['a$hs', '$hs', 'a$hs0', 'x $hs$ y$hs0', '$'])('ends the string only at its end for a body %j', (body) => {
    const quoted = dollarQuote(body);
    const tag = quoted.slice(0, quoted.indexOf('$', 1) + 1);
    // The first occurrence of the closing tag after the opening one must be the real end.
    expect(quoted.indexOf(tag, tag.length)).toBe(quoted.length - tag.length);
    expect(quoted.slice(tag.length, quoted.length - tag.length)).toBe(body);
  });

  it('skips a tag that the end of the body would complete', () => {
    expect(dollarQuote('a$hs')).toBe('$hs0$a$hs$hs0$');
    expect(dollarQuote('a$')).toBe('$hs$a$$hs$');
  });
});

describe('commentText', () => {
  it('leaves ordinary text alone', () => {
    expect(commentText('shard 0 of "s".t on dn1 -- ok')).toBe('shard 0 of "s".t on dn1 -- ok');
  });

  it('escapes characters that would end a -- comment', () => {
    expect(commentText('a\nb')).toBe('a\\u000ab');
    expect(commentText('a\r\nb')).toBe('a\\u000d\\u000ab');
    expect(commentText('a\u2028b\u2029c')).toBe('a\\u2028b\\u2029c');
  });

  it('escapes every control character', () => {
    expect(commentText('\0\t\u001f\u007f')).toBe('\\u0000\\u0009\\u001f\\u007f');
  });

  it('keeps unicode', () => {
    expect(commentText('température 数据')).toBe('température 数据');
  });

  it('cannot fake node-pg-migrate\'s Down Migration marker', () => {
    const text = commentText('x\n-- Down Migration');
    expect(`-- ${text}`).not.toMatch(/^\s*--[\s-]*down\s+migration/im);
  });
});
