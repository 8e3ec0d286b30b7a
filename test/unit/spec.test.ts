import { describe, expect, it } from 'vitest';
import { SpecError } from '../../src/errors.js';
import { isHashable, isTimeType, parseColumnType, type ColumnType } from '../../src/spec/columnType.js';
import { exampleSpecYaml } from '../../src/spec/example.js';
import { parseFixedInterval } from '../../src/spec/interval.js';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadSpec, parseSpec } from '../../src/spec/load.js';
import { resolveSecret } from '../../src/spec/secrets.js';
import { invalidUtf8 } from '../../src/spec/utf8.js';
import { formatPath, validateSpec } from '../../src/spec/validate.js';

/** The SpecError `fn` throws; fails the test when it throws nothing or something else. */
function specError(fn: () => unknown): SpecError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(SpecError);
    return error as SpecError;
  }
  throw new Error('expected a SpecError, nothing was thrown');
}

const example = exampleSpecYaml({
  accessNode: { name: 'access', url: 'postgres://postgres@127.0.0.1:5432/postgres' },
  dataNodes: [
    { name: 'dn1', url: 'postgres://postgres@127.0.0.1:5433/postgres' },
    { name: 'dn2', url: 'postgres://postgres@127.0.0.1:5434/postgres', password: { env: 'DN2_PASSWORD' }, fdw: { host: 'dn2.internal', port: 5432 } },
  ],
  servicePassword: { file: '.secrets/service' },
  readerPassword: { env: 'READER_PASSWORD' },
});

/** A small valid spec as an object, for validateSpec. */
const minimal = () => ({
  version: 1,
  accessNode: { name: 'access', url: 'postgres://postgres@a/app' },
  dataNodes: [{ name: 'dn1', url: 'postgres://postgres@b/app' }],
  fdw: { serviceRole: { password: { env: 'SVC' } } },
  hypertables: [
    {
      name: 'm',
      columns: [
        { name: 't', type: 'timestamptz', notNull: true },
        { name: 'k', type: 'int', notNull: true },
      ],
      timeColumn: 't',
      spaceColumn: 'k',
      shards: 2,
    },
  ],
});

describe('parseSpec on the example spec', () => {
  it('validates and fills in every default', () => {
    expect(parseSpec(example)).toEqual({
      version: 1,
      accessNode: { name: 'access', url: 'postgres://postgres@127.0.0.1:5432/postgres' },
      dataNodes: [
        { name: 'dn1', url: 'postgres://postgres@127.0.0.1:5433/postgres', standbys: [] },
        {
          name: 'dn2',
          url: 'postgres://postgres@127.0.0.1:5434/postgres',
          password: { env: 'DN2_PASSWORD' },
          standbys: [],
          fdw: { host: 'dn2.internal', port: 5432 },
        },
      ],
      fdw: {
        serviceRole: { name: 'hypershard_fdw', password: { file: '.secrets/service' } },
        fetchSize: 10_000,
        batchSize: 1_000,
        fdwTupleCost: 0.2,
        fdwStartupCost: 100,
        asyncCapable: true,
        parallelCommit: true,
        connectionOptions: {},
        timeouts: { connect: 10, keepalivesIdle: 10, keepalivesInterval: 5, keepalivesCount: 3, tcpUserTimeout: 30_000 },
      },
      roles: [
        {
          name: 'metrics_reader',
          login: true,
          password: { env: 'READER_PASSWORD' },
          connectionLimit: -1,
          inherit: true,
          memberOf: [],
          grants: [{ on: 'metrics', privileges: ['SELECT'] }],
        },
        {
          name: 'metrics_writer',
          login: false,
          connectionLimit: -1,
          inherit: true,
          memberOf: [],
          grants: [{ on: 'metrics', privileges: ['SELECT', 'INSERT'] }],
        },
      ],
      hypertables: [
        {
          name: 'metrics',
          schema: 'public',
          columns: [
            { name: 'time', type: 'timestamptz', notNull: true },
            { name: 'device_id', type: 'integer', notNull: true },
            { name: 'cpu', type: 'double precision', notNull: false },
            { name: 'memory', type: 'double precision', notNull: false },
            { name: 'temperature', type: 'double precision', notNull: false },
          ],
          timeColumn: 'time',
          chunkInterval: '1 day',
          chunks: { behind: 7, ahead: 7 },
          spaceColumn: 'device_id',
          shards: 4,
          indexes: [
            { columns: ['device_id', { column: 'time', order: 'desc' }], method: 'btree' },
            { columns: [{ column: 'time', order: 'desc' }], method: 'btree' },
          ],
        },
      ],
      referenceTables: [],
      timescaledb: { functions: true, schema: 'public' },
    });
  });

  it('defaults serviceRole.name, schema, chunks and index order when absent', () => {
    const spec = validateSpec({
      ...minimal(),
      hypertables: [{ ...minimal().hypertables[0]!, indexes: [{ columns: [{ column: 'k' }] }] }],
    });
    expect(spec.fdw.serviceRole.name).toBe('hypershard_fdw');
    expect(spec.roles).toEqual([]);
    expect(spec.hypertables[0]).toMatchObject({
      schema: 'public',
      chunkInterval: '1 day',
      chunks: { behind: 7, ahead: 7 },
      indexes: [{ columns: [{ column: 'k', order: 'asc' }], method: 'btree' }],
    });
  });
});

describe('parseSpec on an invalid spec', () => {
  const lines = [
    /*  1 */ 'version: 1',
    /*  2 */ 'accessNode:',
    /*  3 */ '  name: access',
    /*  4 */ '  url: postgres://postgres@db0/app',
    /*  5 */ 'dataNodes:',
    /*  6 */ '  - name: dn1',
    /*  7 */ '    url: postgres://postgres:hunter2@db1/app',
    /*  8 */ '  - name: dn1',
    /*  9 */ '    url: postgres://postgres@db2/app',
    /* 10 */ 'fdw:',
    /* 11 */ '  serviceRole: { password: { env: SVC } }',
    /* 12 */ 'roles:',
    /* 13 */ '  - name: pg_x',
    /* 14 */ '    memberOf: [nobody]',
    /* 15 */ '    grants:',
    /* 16 */ '      - { on: nothere, privileges: [SELECT] }',
    /* 17 */ '  - name: "line\\nbreak"',
    /* 18 */ 'hypertables:',
    /* 19 */ `  - name: ${'t'.repeat(64)}`,
    /* 20 */ '    columns:',
    /* 21 */ '      - { name: time, type: timestamptz, notNull: true }',
    /* 22 */ '      - { name: device, type: "varchar(10); drop table x", notNull: true }',
    /* 23 */ '      - { name: d2, type: integer }',
    /* 24 */ '    timeColumn: tim',
    /* 25 */ '    spaceColumn: d2',
    /* 26 */ '    shards: 2',
    /* 27 */ '    chunkInterval: 1 month',
    /* 28 */ '    dataNodes: [dn9]',
  ];
  const error = specError(() => parseSpec(`${lines.join('\n')}\n`, 'bad.yaml'));

  it('reports every problem at once, each with its path', () => {
    expect(error.issues.map((i) => i.path)).toEqual([
      'dataNodes[0].url',
      'dataNodes[1].name',
      'roles[0].name',
      'roles[1].name',
      'roles[0].memberOf[0]',
      'roles[0].grants[0].on',
      'hypertables[0].name',
      'hypertables[0].columns[1].type',
      'hypertables[0].timeColumn',
      'hypertables[0].columns[2].notNull',
      'hypertables[0].chunkInterval',
      'hypertables[0].dataNodes[0]',
    ]);
  });

  it('says what is wrong with each, and on which line', () => {
    const message = (path: string): string => error.issues.find((i) => i.path === path)?.message ?? '';
    expect(message('dataNodes[0].url')).toBe('contains a password; put it in `password: { env: VARIABLE }` instead (line 7)');
    expect(message('dataNodes[1].name')).toBe('duplicate node name "dn1" (also at dataNodes[0]) (line 8)');
    expect(message('roles[0].name')).toBe('role names starting with "pg_" are reserved by PostgreSQL (line 13)');
    expect(message('roles[1].name')).toBe('"line\\nbreak" must not contain control characters (newline, tab, NUL …) (line 17)');
    expect(message('roles[0].memberOf[0]')).toBe('unknown role "nobody"; declare it under roles (line 14)');
    expect(message('roles[0].grants[0].on')).toBe('unknown hypertable or reference table "nothere" (line 16)');
    expect(message('hypertables[0].name')).toBe(`"${'t'.repeat(64)}" is 64 bytes long; PostgreSQL truncates identifiers to 63 bytes (line 19)`);
    expect(message('hypertables[0].columns[1].type')).toMatch(/^unsupported column type "varchar\(10\); drop table x"; use a built-in type .* \(line 22\)$/);
    expect(message('hypertables[0].timeColumn')).toBe('no column named "tim" (line 24)');
    // The column has no notNull key, so the line is the column's own.
    expect(message('hypertables[0].columns[2].notNull')).toBe('partitioning column "d2" must be notNull: true (line 23)');
    expect(message('hypertables[0].chunkInterval')).toMatch(/^invalid interval "1 month": unit "month" is not fixed-width .* \(line 27\)$/);
    expect(message('hypertables[0].dataNodes[0]')).toBe('unknown data node "dn9" (line 28)');
  });

  it('is a SPEC_INVALID error naming the file and listing every problem', () => {
    expect(error.code).toBe('SPEC_INVALID');
    expect(error.file).toBe('bad.yaml');
    expect(error.message.split('\n')[0]).toBe('bad.yaml: 12 problems:');
    expect(error.message).toContain('\n  - hypertables[0].dataNodes[0]: unknown data node "dn9" (line 28)');
  });
});

describe('parseSpec on schema problems', () => {
  const text = [
    /* 1 */ 'version: 2',
    /* 2 */ 'accessNode: { name: access, url: "postgres://p@a/app" }',
    /* 3 */ 'dataNodes: [ { name: "dn 1", url: "postgres://p@b/app" } ]',
    /* 4 */ 'fdw:',
    /* 5 */ '  serviceRole: { password: { env: SVC } }',
    /* 6 */ '  bogus: 1',
    /* 7 */ 'roles: [ { name: r, grants: [ { on: m, privileges: [SELEC] } ] } ]',
  ].join('\n');
  const error = specError(() => parseSpec(text));

  it('reports schema problems and cross-field problems together', () => {
    expect(error.issues.map((i) => i.path)).toEqual([
      'version',
      'dataNodes[0].name',
      'fdw.bogus',
      'roles[0].grants[0].privileges[0]',
      'roles[0].grants[0].on',
    ]);
    expect(error.issues[0]!.message).toMatch(/expected 1/);
    expect(error.issues[1]!.message).toMatch(/^a node name is 1-40 letters, digits, "_" or "-"/);
    expect(error.issues[2]!.message).toMatch(/^Unrecognized key: "bogus"/);
    expect(error.issues[3]!.message).toMatch(/"SELECT"/);
    expect(error.issues[4]!.message).toBe('unknown hypertable or reference table "m" (line 7)');
  });

  it('does not hide a cross-field problem behind an unknown key', () => {
    const both = specError(() =>
      validateSpec({ ...minimal(), bogus: true, dataNodes: [{ name: 'dn1', url: 'postgres://u:secret@b/app' }] }),
    );
    expect(both.issues.map((i) => i.path)).toEqual(['bogus', 'dataNodes[0].url']);
  });

  // zod puts an unknown key's issue on the enclosing object (line 5, where `fdw`'s value starts).
  it('reports an unknown key on its own path and line', () => {
    expect(error.issues[2]).toEqual({ path: 'fdw.bogus', message: 'Unrecognized key: "bogus" (line 6)' });
  });

  it('names a missing required key instead of "received undefined"', () => {
    const { shards: _, ...table } = minimal().hypertables[0]!;
    const { accessNode: __, ...rest } = minimal();
    const missing = specError(() => validateSpec({ ...rest, hypertables: [table] }));
    expect(missing.issues).toEqual([
      { path: 'accessNode', message: 'required key "accessNode" is missing (expected object)' },
      { path: 'hypertables[0].shards', message: 'required key "shards" is missing (expected number)' },
    ]);
    // A value of the wrong type keeps zod's message.
    expect(specError(() => validateSpec({ ...minimal(), hypertables: [{ ...table, shards: 'four' }] })).issues[0]?.message).toMatch(/expected number, received string/);
  });

  it('reports each unknown key of an object on its own', () => {
    const two = specError(() => validateSpec({ ...minimal(), fdw: { ...minimal().fdw, bogus: 1, other: 2 } }));
    expect(two.issues).toEqual([
      { path: 'fdw.bogus', message: 'Unrecognized key: "bogus"' },
      { path: 'fdw.other', message: 'Unrecognized key: "other"' },
    ]);
  });
});

describe('hostile input', () => {
  it('refuses a YAML alias bomb with a clear issue, quickly', () => {
    const levels = ['a: &a [x, x, x, x, x, x, x, x, x, x]', ...'bcdefghi'.split('').map((l, i) => `${l}: &${l} [${Array(10).fill(`*${'abcdefghi'[i]}`).join(', ')}]`)];
    const started = performance.now();
    const error = specError(() => parseSpec(`${levels.join('\n')}\n`, 'bomb.yaml'));
    expect(performance.now() - started).toBeLessThan(2_000);
    expect(error.issues).toEqual([{ path: 'line 2', message: 'YAML aliases expand more than 100 times (an alias bomb?); write the values out' }]);
  });

  it('accepts a few anchors and aliases', () => {
    const yaml = example
      .replace('      - { on: metrics, privileges: [SELECT] }', '      - &read { on: metrics, privileges: [SELECT] }')
      .replace('      - { on: metrics, privileges: [SELECT, INSERT] }', '      - *read');
    expect(parseSpec(yaml).roles[1]?.grants).toEqual([{ on: 'metrics', privileges: ['SELECT'] }]);
  });

  it(`refuses more than 1600 columns, once`, () => {
    const columns = [{ name: 't', type: 'timestamptz', notNull: true }, { name: 'k', type: 'int', notNull: true }, ...Array.from({ length: 4998 }, (_, i) => ({ name: `c${i}`, type: 'int' }))];
    const error = specError(() => validateSpec({ ...minimal(), hypertables: [{ ...minimal().hypertables[0]!, columns }] }));
    expect(error.issues).toEqual([{ path: 'hypertables[0].columns', message: '5000 columns; PostgreSQL allows at most 1600 in a table' }]);
  });

  it('finds every invalid UTF-8 sequence and nothing in valid text', () => {
    expect(invalidUtf8(Buffer.from('plain ascii, é, 日本, 😀', 'utf8'))).toEqual([]);
    // A lone continuation byte, an overlong "/", a surrogate, a code point past U+10FFFF, a cut sequence.
    expect(invalidUtf8(Buffer.from([0x61, 0x80, 0x62, 0xc0, 0xaf, 0xed, 0xa0, 0x80, 0xf4, 0x90, 0x80, 0x80, 0xe6, 0x97]))).toEqual([1, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13]);
  });

  it('refuses a spec whose names hold bytes that are not UTF-8, naming the path and line', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hs-utf8-'));
    try {
      const file = join(dir, 'hypershard.yaml');
      const text = Buffer.from(example.replace('{ name: cpu, type: double precision }', '{ name: "cpu\u0000", type: double precision }'), 'utf8');
      // The NUL stands where the bad byte goes (Latin-1 "ÿ" as a single byte).
      await writeFile(file, Buffer.from(text.toString('latin1').replace('\u0000', '\u00ff'), 'latin1'));
      const error = await loadSpec(file).then(() => undefined, (e: unknown) => e as SpecError);
      expect(error).toBeInstanceOf(SpecError);
      expect(error!.issues).toEqual([{ path: 'hypertables[0].columns[2].name', message: expect.stringMatching(/^holds bytes that are not UTF-8 \(0xFF at line \d+, column \d+\); save the file as UTF-8$/) }]);
      await writeFile(join(dir, 'secret'), Buffer.from([0x70, 0x77, 0xff, 0x0a]));
      await expect(resolveSecret({ file: 'secret' }, dir, 'fdw.serviceRole.password')).rejects.toThrow(/secret file .*secret holds bytes that are not UTF-8/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('parseSpec on YAML that does not parse', () => {
  it('throws a SpecError for a syntax error', () => {
    const error = specError(() => parseSpec('version: 1\naccessNode: [\n', 'broken.yaml'));
    expect(error.file).toBe('broken.yaml');
    expect(error.issues).toHaveLength(1);
    expect(error.issues[0]!.message).toMatch(/^Flow sequence in block collection must be sufficiently indented and end with a \]/);
  });

  it('throws a SpecError for a duplicate key', () => {
    const error = specError(() => parseSpec('version: 1\nversion: 1\n'));
    expect(error.issues.map((i) => i.message)).toEqual(['Map keys must be unique']);
  });

  // load.ts parses with prettyErrors: false, so YAMLError.linePos is never set and the issue's
  // path is '' instead of `line 3:1`; lineCounter.linePos(e.pos[0]) would give it.
  it('names the line and column of a syntax error', () => {
    expect(specError(() => parseSpec('version: 1\nversion: 1\n')).issues[0]!.path).toBe('line 2:1');
    expect(specError(() => parseSpec('version: 1\naccessNode: [\n', 'broken.yaml')).issues[0]!.path).toMatch(/^line \d+:\d+$/);
  });
});

describe('validateSpec', () => {
  it('returns the spec with defaults for a valid object', () => {
    expect(validateSpec(minimal()).hypertables[0]!.shards).toBe(2);
  });

  it.each([
    ['a schema starting with pg_', { schema: 'pg_data' }, 'hypertables[0].schema', 'schema "pg_data" is reserved'],
    ['the internal schema', { schema: '_hypershard' }, 'hypertables[0].schema', 'schema "_hypershard" is reserved'],
    ['a json space column', { columns: [{ name: 't', type: 'timestamptz', notNull: true }, { name: 'k', type: 'json', notNull: true }] }, 'hypertables[0].spaceColumn', 'column "k" is json, which cannot be hash-partitioned'],
    ['a date time column', { columns: [{ name: 't', type: 'date', notNull: true }, { name: 'k', type: 'int', notNull: true }] }, 'hypertables[0].timeColumn', 'column "t" is date; the time column must be timestamptz or timestamp'],
    ['the same space and time column', { spaceColumn: 't' }, 'hypertables[0].spaceColumn', 'the space column must differ from the time column'],
    ['a chunk interval of seconds', { chunkInterval: '90 seconds' }, 'hypertables[0].chunkInterval', 'must be a whole number of minutes'],
    ['an index on an unknown column', { indexes: [{ columns: ['nope'] }] }, 'hypertables[0].indexes[0].columns[0]', 'no column named "nope"'],
    ['a data node listed twice', { dataNodes: ['dn1', 'dn1'] }, 'hypertables[0].dataNodes[1]', 'data node "dn1" listed twice'],
  ])('rejects %s', (_label, table, path, message) => {
    const error = specError(() => validateSpec({ ...minimal(), hypertables: [{ ...minimal().hypertables[0]!, ...table }] }));
    expect(error.issues).toEqual([{ path, message }]);
  });

  it.each([
    ['host', 'option "host" is set by hypershard from other fields'],
    ['password', 'option "password" is a secret, which the spec never holds literally (it would be written into the migrations)'],
    ['sslpassword', 'option "sslpassword" is a secret, which the spec never holds literally (it would be written into the migrations)'],
    ['keepalives_idle', 'option "keepalives_idle" is set by hypershard from fdw.timeouts.keepalivesIdle'],
    ['tcp_user_timeout', 'option "tcp_user_timeout" is set by hypershard from fdw.timeouts.tcpUserTimeout'],
    ['Bad-Key', '"Bad-Key" is not a libpq option name'],
  ])('rejects FDW connection option %s', (key, message) => {
    const error = specError(() => validateSpec({ ...minimal(), fdw: { ...minimal().fdw, connectionOptions: { [key]: 'x' } } }));
    expect(error.issues).toEqual([{ path: `fdw.connectionOptions.${key}`, message }]);
  });

  it('rejects an options string that sets a secret, in FDW options and node URLs, without repeating it', () => {
    const error = specError(() =>
      validateSpec({
        ...minimal(),
        fdw: { ...minimal().fdw, connectionOptions: { options: '-c statement_timeout=5s -c app.password=hunter2' } },
        dataNodes: [{ name: 'dn1', url: 'postgres://u@h:5432/app?options=--my.secret_token%3Dhunter2', fdw: { options: { options: '-capp.passphrase=hunter2' } } }],
      }),
    );
    expect(error.issues).toEqual([
      { path: 'dataNodes[0].url', message: 'its options parameter sets my.secret_token, a secret, which the spec never holds literally' },
      { path: 'dataNodes[0].fdw.options.options', message: 'the options string sets app.passphrase, a secret, which the spec never holds literally' },
      { path: 'fdw.connectionOptions.options', message: 'the options string sets app.password, a secret, which the spec never holds literally' },
    ]);
    expect(error.message).not.toContain('hunter2');
  });

  it.each(['password', 'PASSWORD', 'sslpassword', 'pass%77ord'])('rejects a URL whose query string holds a secret (%s), without repeating it', (key) => {
    const error = specError(() => validateSpec({ ...minimal(), dataNodes: [{ name: 'dn1', url: `postgres://u@h:5432/app?sslmode=require&${key}=hunter2` }] }));
    const name = decodeURIComponent(key);
    expect(error.issues).toEqual([{ path: 'dataNodes[0].url', message: `its query string holds a secret (${name}); put the password in \`password: { env: VARIABLE }\` instead` }]);
    expect(error.message).not.toContain('hunter2');
  });

  it('rejects two nodes on the same database', () => {
    const error = specError(() => validateSpec({ ...minimal(), dataNodes: [{ name: 'dn1', url: 'postgres://other@a:5432/app' }] }));
    expect(error.issues).toEqual([{ path: 'dataNodes[0].url', message: 'same database as node "access"; every node needs its own database' }]);
  });

  // The CLI (pg-connection-string) decodes the path with decodeURI: %23 stays "%23", %25 becomes
  // "%". So a%23b and a%2523b are one database, named "a%23b", for the CLI and for the FDW.
  it('compares databases as the CLI reads them from the URL', () => {
    const nodes = (a: string, b: string) => ({
      ...minimal(),
      dataNodes: [{ name: 'dn1', url: `postgres://u@h/${a}` }, { name: 'dn2', url: `postgres://u@h/${b}` }],
    });
    expect(specError(() => validateSpec(nodes('a%23b', 'a%2523b'))).issues).toEqual([
      { path: 'dataNodes[1].url', message: 'same database as node "dn1"; every node needs its own database' },
    ]);
    expect(validateSpec(nodes('a%23b', 'a%2324b')).dataNodes).toHaveLength(2);
  });

  it('rejects a URL that names no database', () => {
    for (const url of ['postgres://u@h', 'postgres://u@h:5432/', 'postgres://u@h/?sslmode=require']) {
      const error = specError(() => validateSpec({ ...minimal(), dataNodes: [{ name: 'dn1', url }] }));
      expect(error.issues).toEqual([{ path: 'dataNodes[0].url', message: 'names no database; write it like postgres://user@host:5432/dbname' }]);
    }
  });

  it('reports every problem of one URL, not only the first', () => {
    const error = specError(() => validateSpec({ ...minimal(), dataNodes: [{ name: 'dn1', url: 'mysql://u:secret@h/app' }] }));
    expect(error.issues).toEqual([
      { path: 'dataNodes[0].url', message: 'scheme must be postgres:// or postgresql://, not mysql://' },
      { path: 'dataNodes[0].url', message: 'contains a password; put it in `password: { env: VARIABLE }` instead' },
    ]);
  });

  // They end up as string literals in the access node's migration, where a line break (or
  // U+2028, which JavaScript's multiline ^ also honours) could fake node-pg-migrate's Down marker.
  it('rejects FDW option values that could break out of the migration\'s lines', () => {
    const error = specError(() =>
      validateSpec({
        ...minimal(),
        dataNodes: [
          { name: 'dn1', url: 'postgres://u@b/app', fdw: { host: 'h\n-- Down Migration', options: { sslmode: 'require\u0085' } } },
          { name: 'dn2', url: 'postgres://u@c/a%0Ab' },
          { name: 'dn3', url: 'postgres://u@d/app', fdw: { dbname: 'x\uD800' } },
        ],
        fdw: { ...minimal().fdw, connectionOptions: { application_name: 'x\u2028-- Down Migration' } },
      }),
    );
    expect(error.issues).toEqual([
      { path: 'dataNodes[1].url', message: 'database "a\\nb" must not contain control characters (newline, tab, NUL …)' },
      { path: 'dataNodes[0].fdw.host', message: '"h\\n-- Down Migration" must not contain control characters (newline, tab, NUL …)' },
      { path: 'dataNodes[0].fdw.options.sslmode', message: '"require\\u0085" must not contain control characters (newline, tab, NUL …)' },
      { path: 'dataNodes[2].fdw.dbname', message: '"x\\ud800" must not contain a lone surrogate (\\uD800-\\uDFFF), which is not valid Unicode' },
      {
        path: 'fdw.connectionOptions.application_name',
        message: '"x\\u2028-- Down Migration" must not contain a Unicode line or paragraph separator (U+2028, U+2029)',
      },
    ]);
  });

  it.each([
    ['order: desc on a brin index', { method: 'brin', columns: [{ column: 't', order: 'desc' }] }, 'hypertables[0].indexes[0].columns[0].order', 'a brin index has no column order; only btree indexes take order: desc'],
    ['order: desc on a hash index', { method: 'hash', columns: [{ column: 'k', order: 'desc' }] }, 'hypertables[0].indexes[0].columns[0].order', 'a hash index has no column order; only btree indexes take order: desc'],
    ['a gin index on a scalar column', { method: 'gin', columns: ['k'] }, 'hypertables[0].indexes[0].columns[0]', 'a gin index needs array or jsonb columns; "k" is integer'],
    ['a hash index on two columns', { method: 'hash', columns: ['k', 't'] }, 'hypertables[0].indexes[0].columns', 'a hash index takes exactly one column, not 2'],
  ])('rejects %s', (_label, index, path, message) => {
    const error = specError(() => validateSpec({ ...minimal(), hypertables: [{ ...minimal().hypertables[0]!, indexes: [index] }] }));
    expect(error.issues).toEqual([{ path, message }]);
  });

  it('accepts order: asc (the default, written nowhere) on any index method', () => {
    const spec = validateSpec({
      ...minimal(),
      hypertables: [{ ...minimal().hypertables[0]!, indexes: [{ method: 'brin', columns: [{ column: 't', order: 'asc' }] }, { method: 'hash', columns: ['k'] }] }],
    });
    expect(spec.hypertables[0]!.indexes.map((i) => i.method)).toEqual(['brin', 'hash']);
  });

  it('reports a non-string or empty name once, in zod\'s words', () => {
    const error = specError(() => validateSpec({ ...minimal(), roles: [{ name: '' }] }));
    expect(error.issues.map((i) => i.path)).toEqual(['roles[0].name']);
  });

  it('rejects reserved role names and the service role as a declared role', () => {
    const error = specError(() =>
      validateSpec({ ...minimal(), roles: [{ name: 'PUBLIC' }, { name: 'hypershard_fdw' }, { name: 'r', password: { env: 'P' } }] }),
    );
    expect(error.issues).toEqual([
      { path: 'roles[0].name', message: '"PUBLIC" is a reserved role name' },
      { path: 'roles[1].name', message: '"hypershard_fdw" is the FDW service role; declare another name' },
      { path: 'roles[2].password', message: 'a password is only useful with login: true' },
    ]);
  });

  it('accepts hostile text in names: it is quoted, not checked against a pattern', () => {
    const spec = validateSpec({
      ...minimal(),
      hypertables: [{ ...minimal().hypertables[0]!, schema: `s"; DROP SCHEMA public; --`, name: `it's $hs$ 数据` }],
    });
    expect(spec.hypertables[0]!.name).toBe(`it's $hs$ 数据`);
  });
});

describe('formatPath', () => {
  it('writes indexes in brackets and keys with dots', () => {
    expect(formatPath(['hypertables', 0, 'columns', 2, 'type'])).toBe('hypertables[0].columns[2].type');
    expect(formatPath([])).toBe('');
  });
});

describe('parseColumnType', () => {
  it.each([
    ['integer', 'integer'],
    ['int', 'integer'],
    ['INT4', 'integer'],
    ['int8', 'bigint'],
    ['smallint', 'smallint'],
    ['float8', 'double precision'],
    ['float', 'double precision'],
    ['double   precision', 'double precision'],
    ['float4', 'real'],
    ['NUMERIC( 12 , 2 )', 'numeric(12,2)'],
    ['decimal(10)', 'numeric(10)'],
    ['text', 'text'],
    ['text[]', 'text[]'],
    ['int[][]', 'integer[][]'],
    ['character varying(20)', 'varchar(20)'],
    ['varchar (255)', 'varchar(255)'],
    ['bool', 'boolean'],
    ['timestamp with time zone', 'timestamptz'],
    ['timestamp without time zone', 'timestamp'],
    ['timestamptz(3)', 'timestamptz(3)'],
    ['jsonb', 'jsonb'],
    ['  uuid  ', 'uuid'],
  ])('accepts %j as %j', (input, sql) => {
    expect((parseColumnType(input) as ColumnType).sql).toBe(sql);
  });

  it('splits a type into base, modifier and array depth', () => {
    expect(parseColumnType('Numeric (12, 2)[]')).toEqual({ base: 'numeric', modifier: '(12,2)', arrayDepth: 1, sql: 'numeric(12,2)[]' });
  });

  it.each([
    'serial',
    'int; drop',
    'varchar(10); drop table x',
    'point',
    'int4range',
    '"char"',
    'public.my_type',
    'text[1]',
    'numeric(12345)',
    'int /* x */',
    '',
    // PostgreSQL's spelling with the modifier in the middle is not in the grammar; timestamptz(3) is.
    'timestamp(3) with time zone',
  ])('rejects %j', (input) => {
    expect(parseColumnType(input)).toBe(
      `unsupported column type ${JSON.stringify(input)}; use a built-in type such as integer, bigint, text, double precision, numeric(12,2), timestamptz, jsonb or text[]`,
    );
  });

  it('rejects a modifier on a type that takes none', () => {
    expect(parseColumnType('integer(5)')).toBe('type integer takes no modifier (5)');
    expect(parseColumnType('text(10)')).toBe('type text takes no modifier (10)');
  });

  it('knows time and hashable types', () => {
    const t = (s: string): ColumnType => parseColumnType(s) as ColumnType;
    expect([t('timestamptz'), t('timestamp'), t('timestamptz[]'), t('date')].map(isTimeType)).toEqual([true, true, false, false]);
    expect([t('json'), t('json[]'), t('jsonb'), t('integer')].map(isHashable)).toEqual([false, false, true, true]);
  });
});

describe('parseFixedInterval', () => {
  it.each([
    ['1 day', 86_400, '1 day'],
    ['6 hours', 21_600, '6 hours'],
    ['1 week', 604_800, '1 week'],
    ['7 days', 604_800, '1 week'],
    ['90 minutes', 5_400, '90 minutes'],
    ['2 h', 7_200, '2 hours'],
    ['1 day 12 hours', 129_600, '36 hours'],
    ['  1   DAY ', 86_400, '1 day'],
    ['30 seconds', 30, '30 seconds'],
    ['1 hour 1 second', 3_601, '3601 seconds'],
    ['3650 days', 315_360_000, '3650 days'],
    // Glued as PostgreSQL reads them (Grafana's $__interval).
    ['5m', 300, '5 minutes'],
    ['1h30m', 5_400, '90 minutes'],
    ['2d', 172_800, '2 days'],
    ['1w 1h', 608_400, '169 hours'],
    ['10min', 600, '10 minutes'],
  ])('accepts %j as %d seconds, %j', (input, seconds, sql) => {
    expect(parseFixedInterval(input)).toEqual({ seconds, sql, days: /(^|[\s\d])(d|days?|w|weeks?)(?![a-z])/i.test(input) });
  });

  it.each([
    ['1 month', 'invalid interval "1 month": unit "month" is not fixed-width (use seconds, minutes, hours, days or weeks; months and years vary in length)'],
    ['1 year', 'invalid interval "1 year": unit "year" is not fixed-width (use seconds, minutes, hours, days or weeks; months and years vary in length)'],
    ['1.5 hours', 'invalid interval "1.5 hours": 1.5 is not a positive whole number'],
    ['0 days', 'invalid interval "0 days": 0 is not a positive whole number'],
    ['-1 day', 'invalid interval "-1 day": -1 is not a positive whole number'],
    ['day', 'invalid interval "day"; write it like "1 day", "6 hours" or "1 week"'],
    ['', 'invalid interval ""; write it like "1 day", "6 hours" or "1 week"'],
    ['1 day; drop', 'invalid interval "1 day; drop"; write it like "1 day", "6 hours" or "1 week"'],
    ['1 day;drop', 'invalid interval "1 day;drop": unit "day;drop" is not fixed-width (use seconds, minutes, hours, days or weeks; months and years vary in length)'],
    ['0x10 days', 'invalid interval "0x10 days": 0x10 is not a positive whole number'],
    ['1e3 days', 'invalid interval "1e3 days": 1e3 is not a positive whole number'],
    // Past 2^53 a number is not exact any more; long before that it is no sensible interval.
    ['99999999999999999999999 weeks', 'invalid interval "99999999999999999999999 weeks": longer than 36500 days (about 100 years)'],
    ['36501 days', 'invalid interval "36501 days": longer than 36500 days (about 100 years)'],
    ['36500 days 1 second', 'invalid interval "36500 days 1 second": longer than 36500 days (about 100 years)'],
  ])('rejects %j', (input, message) => {
    expect(parseFixedInterval(input)).toBe(message);
  });
});
