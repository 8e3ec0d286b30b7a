/**
 * TimescaleDB's functions as migrations: what the access node's migration creates and drops, the
 * spec's rules for their schema, evolution (turned on, off, moved, and the upgrade of a cluster
 * generated before they existed), and `check`'s comparison with the catalog.
 */
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { CatalogRoutine, CatalogTimescale } from '../../src/drift/catalog/routines.js';
import { compareTimescale } from '../../src/drift/compare/timescaledb.js';
import { SpecError } from '../../src/errors.js';
import { evolve } from '../../src/evolve/diff.js';
import { generateMigrations } from '../../src/migrations/files.js';
import { COMPAT_SCHEMA, planLayout } from '../../src/plan/layout.js';
import { metadataFromLayout } from '../../src/rewrite/metadata.js';
import { rewriteSql } from '../../src/rewrite/rewrite.js';
import { generateSql } from '../../src/sql/generate.js';
import { compatRoutines, createRoutineStatement, timescaleFunctionsStep } from '../../src/sql/timescaledb.js';
import { parseSpec } from '../../src/spec/load.js';

const spec = (timescaledb = ''): string => `version: 1
accessNode: { name: access, url: "postgres://postgres@10.0.0.1:5432/app" }
dataNodes:
  - { name: dn1, url: "postgres://postgres@10.0.0.2:5432/app" }
fdw:
  serviceRole: { password: { env: SVC } }
hypertables:
  - name: metrics
    schema: iot
    columns:
      - { name: time, type: timestamptz, notNull: true }
      - { name: device_id, type: int, notNull: true }
    timeColumn: time
    spaceColumn: device_id
    shards: 2
${timescaledb}`;

const accessSql = (text: string) => generateSql(parseSpec(text)).nodes.find((n) => n.role === 'access')!;
const TSTZ = 'timestamp with time zone';

describe('the access node migration', () => {
  const access = accessSql(spec());

  it('creates TimescaleDB\'s functions by default, last, in public with helpers in their own schema', () => {
    const whats = access.up.map((s) => s.what);
    const first = whats.indexOf(`schema ${COMPAT_SCHEMA}`);
    expect(first).toBeGreaterThan(whats.indexOf('hypertable iot.metrics'));
    expect(whats.slice(first)).toEqual([
      `schema ${COMPAT_SCHEMA}`,
      `usage on schema ${COMPAT_SCHEMA} for every role`,
      ...compatRoutines({ schema: 'public', helpers: COMPAT_SCHEMA }).map((r) => `${r.kind} ${r.routine.schema}.${r.routine.name}(${r.args.join(', ')})`),
    ]);
    const api = access.up.filter((s) => s.what.startsWith('function public.') || s.what.startsWith('aggregate public.')).map((s) => s.what);
    // Every form TimescaleDB has but uuid.
    expect(api).toEqual([
      'function public.time_bucket(interval, timestamp without time zone, timestamp without time zone)',
      'function public.time_bucket(interval, timestamp without time zone)',
      'function public.time_bucket(interval, timestamp without time zone, interval)',
      `function public.time_bucket(interval, ${TSTZ}, ${TSTZ})`,
      `function public.time_bucket(interval, ${TSTZ})`,
      `function public.time_bucket(interval, ${TSTZ}, interval)`,
      'function public.time_bucket(interval, date, date)',
      'function public.time_bucket(interval, date)',
      'function public.time_bucket(interval, date, interval)',
      'function public.time_bucket(smallint, smallint, smallint)',
      'function public.time_bucket(smallint, smallint)',
      'function public.time_bucket(integer, integer, integer)',
      'function public.time_bucket(integer, integer)',
      'function public.time_bucket(bigint, bigint, bigint)',
      'function public.time_bucket(bigint, bigint)',
      `function public.time_bucket(interval, ${TSTZ}, text, ${TSTZ}, interval)`,
      'aggregate public.first(anyelement, anycompatible)',
      'aggregate public.last(anyelement, anycompatible)',
    ]);
  });

  it('never replaces a function a user already has, and marks every one IMMUTABLE and PARALLEL SAFE', () => {
    for (const s of access.up.filter((x) => /^(function|aggregate) /.test(x.what))) {
      expect(s.sql).not.toContain('OR REPLACE');
      if (s.what.startsWith('function')) expect(s.sql).toMatch(/ IMMUTABLE (STRICT )?PARALLEL SAFE\s/);
      else expect(s.sql).toContain('PARALLEL = SAFE');
    }
  });

  it('time_bucket on timestamps and dates is inlinable SQL: not STRICT, no SET, every name and operator qualified', () => {
    const inlined = access.up.filter((x) => /^function public\.time_bucket\(interval, (timestamp|date)/.test(x.what) && !x.what.includes('text'));
    expect(inlined).toHaveLength(9);
    for (const s of inlined) {
      const header = s.sql.slice(0, s.sql.indexOf(' AS $'));
      expect(header).toContain('LANGUAGE sql IMMUTABLE PARALLEL SAFE');
      expect(header).not.toMatch(/STRICT|SET /);
      const body = s.sql.slice(s.sql.indexOf(' AS $'));
      // Outside quoted text, every operator is OPERATOR(pg_catalog.x) and every call schema-qualified.
      const code = body.replace(/'[^']*'/g, "''");
      expect(code.replace(/OPERATOR\(pg_catalog\.[^)]+\)/g, '')).not.toMatch(/[<>=+*/%]|(?<![.\w])-(?!\w)/);
      for (const call of code.matchAll(/([\w".]+)\(/g)) if (!['OPERATOR', 'AS'].includes(call[1]!)) expect(call[1]).toMatch(/\./);
    }
  });

  it('drops exactly what it created, in reverse, by signature and without CASCADE', () => {
    const step = timescaleFunctionsStep({ schema: 'public', helpers: COMPAT_SCHEMA });
    expect(step.down.map((s) => s.what)).toEqual([...step.up].reverse().filter((s) => !s.what.startsWith('usage')).map((s) => s.what));
    expect(step.down[0]!.sql).toBe('DROP AGGREGATE "public"."last"(anyelement, anycompatible);');
    expect(step.down).toContainEqual({
      what: `function public.time_bucket(interval, ${TSTZ}, text, ${TSTZ}, interval)`,
      sql: `DROP FUNCTION "public"."time_bucket"(interval, ${TSTZ}, text, ${TSTZ}, interval);`,
    });
    expect(step.down.at(-1)!.sql).toBe(`DROP SCHEMA IF EXISTS "${COMPAT_SCHEMA}";`);
    for (const s of step.down) expect(s.sql).not.toMatch(/CASCADE/);
  });

  it('quotes a hostile schema name everywhere it appears', () => {
    const hostile = `ts"; DROP TABLE x; -- $hs$`;
    const quoted = `"ts""; DROP TABLE x; -- $hs$"`;
    const step = timescaleFunctionsStep({ schema: hostile, helpers: COMPAT_SCHEMA });
    for (const s of [...step.up, ...step.down].filter((x) => x.sql.includes('ts"'))) {
      expect(s.sql.replaceAll(quoted, '')).not.toContain('ts"');
    }
    // The body's dollar quote is not the tag the name carries.
    const bucket = step.up.find((s) => s.what === `function ${hostile}.time_bucket(interval, ${TSTZ})`)!;
    expect(bucket.sql).toContain(`SELECT ${quoted}.time_bucket(bucket_width, ts,`);
    expect(bucket.sql).toMatch(/AS \$hs0\$\n/);
  });

  it('is left out with timescaledb.functions: false', () => {
    expect(accessSql(spec('timescaledb: { functions: false }')).up.some((s) => s.what.includes('time_bucket'))).toBe(false);
  });

  it('lives in the schema the spec names', () => {
    const up = accessSql(spec('timescaledb: { schema: iot }')).up;
    expect(up.find((s) => s.what === 'aggregate iot.first(anyelement, anycompatible)')!.sql).toContain('CREATE AGGREGATE "iot".first(anyelement, anycompatible)');
  });
});

describe('the spec', () => {
  it.each(['_hypershard', COMPAT_SCHEMA, '_hypershard_x', 'pg_catalog'])('refuses schema %s for the functions', (schema) => {
    const error = (() => {
      try {
        parseSpec(spec(`timescaledb: { schema: ${JSON.stringify(schema)} }`));
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(error).toBeInstanceOf(SpecError);
    expect((error as SpecError).issues).toEqual([{ path: 'timescaledb.schema', message: `schema ${JSON.stringify(schema)} is reserved (line 16)` }]);
  });

  it('refuses a hypertable in the helpers\' schema', () => {
    expect(() => parseSpec(spec().replace('schema: iot', `schema: ${COMPAT_SCHEMA}`))).toThrow(SpecError);
  });
});

describe('evolution', () => {
  const layout = (timescaledb = '') => planLayout(parseSpec(spec(timescaledb)));

  it('turning them on adds them on the access node only, and turning them off drops them', () => {
    const on = evolve(layout('timescaledb: { functions: false }'), layout());
    expect(on.changes).toEqual(['TimescaleDB functions (time_bucket, first, last) added in schema public']);
    expect(on.kinds).toEqual(['timescaledb_functions']);
    expect([...on.steps.keys()]).toEqual(['access']);
    expect(on.destructive).toEqual([]);
    const off = evolve(layout(), layout('timescaledb: { functions: false }'));
    expect(off.changes).toEqual(['TimescaleDB functions dropped from schema public']);
    expect(off.steps.get('access')![0]!.up[0]!.sql).toBe('DROP AGGREGATE "public"."last"(anyelement, anycompatible);');
  });

  it('moving them drops them from the old schema before creating them in the new one', () => {
    const moved = evolve(layout(), layout('timescaledb: { schema: iot }'));
    expect(moved.changes).toEqual(['TimescaleDB functions moved from schema public to iot']);
    const up = moved.steps.get('access')!.flatMap((s) => s.up.map((x) => x.sql));
    expect(up.findIndex((s) => s.startsWith('DROP AGGREGATE "public"."first"'))).toBeLessThan(up.findIndex((s) => s.startsWith('CREATE AGGREGATE "iot".first')));
  });

  describe('a cluster generated before hypershard had them', () => {
    let dir: string;
    afterEach(async () => {
      await rm(dir, { recursive: true, force: true });
    });

    it('gets one new migration that adds them', async () => {
      dir = await mkdtemp(join(tmpdir(), 'hs-compat-'));
      const file = join(dir, 'hypershard.yaml');
      await writeFile(file, spec());
      // Generate with them off, then make the snapshot look like an old one (no key at all).
      await generateMigrations(parseSpec(spec('timescaledb: { functions: false }')), file);
      const snapshot = join(dir, 'migrations', '.hypershard', '0001.json');
      const old = JSON.parse(await readFile(snapshot, 'utf8')) as Record<string, unknown>;
      delete old.timescaledb;
      await writeFile(snapshot, JSON.stringify(old));

      const result = await generateMigrations(parseSpec(spec()), file);
      expect(result.changes).toEqual(['TimescaleDB functions (time_bucket, first, last) added in schema public']);
      expect(await readdir(join(dir, 'migrations', 'access-node'))).toEqual(['0001_hypershard_init.sql', '0002_timescaledb_functions.sql']);
      expect(await readdir(join(dir, 'migrations', 'data-nodes', 'dn1'))).toEqual(['0001_hypershard_init.sql']);
      // And the next generate has nothing left to do.
      expect((await generateMigrations(parseSpec(spec()), file)).changes).toEqual([]);
    });
  });
});

describe('check', () => {
  const layout = planLayout(parseSpec(spec()));
  const routines = compatRoutines(layout.timescaledb!);
  /** The catalog as apply leaves it, from each routine's own statement. */
  const clean = (): CatalogTimescale => ({
    helperSchema: true,
    publicUsage: true,
    routines: routines.map((r): CatalogRoutine => {
      const sql = createRoutineStatement(r).sql;
      const header = sql.slice(0, sql.indexOf(' AS $'));
      return {
        schema: r.routine.schema,
        name: r.routine.name,
        args: r.args,
        kind: r.kind,
        language: r.kind === 'aggregate' ? 'internal' : /LANGUAGE (\w+)/.exec(header)![1]!,
        volatility: 'i',
        strict: r.kind === 'function' && header.includes(' STRICT '),
        parallel: 's',
        body: r.kind === 'aggregate' ? 'aggregate_dummy' : /AS (\$\w*\$)([\s\S]*)\1;$/.exec(sql)![2]!,
        ...(r.kind === 'aggregate' ? { transition: `${COMPAT_SCHEMA}.${r.routine.name}_sfunc`, final: `${COMPAT_SCHEMA}.bookend_final` } : {}),
      };
    }),
  });
  const edit = (name: string, args: readonly string[], change: Partial<CatalogRoutine>): CatalogTimescale => {
    const c = clean();
    return { ...c, routines: c.routines.map((r) => (r.name === name && r.args.join() === args.join() ? { ...r, ...change } : r)) };
  };

  it('finds nothing on a node as apply leaves it', () => {
    expect(compareTimescale(layout, clean())).toEqual([]);
  });

  it('names a missing function, an edited body, a changed marking and a helper nobody generated', () => {
    const c = clean();
    const findings = compareTimescale(layout, {
      ...c,
      routines: [
        ...c.routines
          .filter((r) => !(r.name === 'time_bucket' && r.args.join() === `interval,${TSTZ}`))
          .map((r) => (r.name === 'time_bucket' && r.args.join() === 'interval,date' ? { ...r, body: 'SELECT $2', volatility: 's' } : r)),
        { ...c.routines[0]!, name: 'mine', args: ['integer'] },
      ],
    });
    expect(findings).toEqual([
      { kind: 'missing', object: `function public.time_bucket(interval, ${TSTZ})`, message: `public.time_bucket(interval, ${TSTZ}) does not exist; TimescaleDB SQL that calls it fails` },
      {
        kind: 'different',
        object: 'function public.time_bucket(interval, date)',
        expected: 'body as generated; volatility IMMUTABLE',
        actual: 'body edited; volatility STABLE',
        message: 'public.time_bucket(interval, date) differs from its migration: body, volatility',
      },
      { kind: 'extra', object: `function ${COMPAT_SCHEMA}.mine(integer)`, message: `${COMPAT_SCHEMA}.mine(integer) is in the helpers' schema but not in the spec's migrations` },
    ]);
  });

  it('names an aggregate whose transition function was swapped, and a helpers\' schema nobody may use', () => {
    const swapped = edit('first', ['anyelement', 'anycompatible'], { transition: `${COMPAT_SCHEMA}.last_sfunc` });
    expect(compareTimescale(layout, { ...swapped, publicUsage: false }).map((f) => [f.kind, f.object])).toEqual([
      ['missing', `usage on schema ${COMPAT_SCHEMA}`],
      ['different', 'aggregate public.first(anyelement, anycompatible)'],
    ]);
  });

  it('with the functions turned off, reports their helpers left behind', () => {
    const off = planLayout(parseSpec(spec('timescaledb: { functions: false }')));
    expect(compareTimescale(off, { helperSchema: false, publicUsage: false, routines: [] })).toEqual([]);
    const left = compareTimescale(off, clean());
    expect(left[0]).toMatchObject({ kind: 'extra', object: `schema ${COMPAT_SCHEMA}` });
    // Functions in public are the user's business once the spec no longer makes them.
    expect(left.every((f) => !f.object.includes('public.'))).toBe(true);
  });
});

describe("the rewriter's time_bucket forms (proven equal to the functions in test/integration/timescaledb.test.ts)", () => {
  const metadata = metadataFromLayout(planLayout(parseSpec(spec())));
  const rewrite = (expression: string, timeZone = 'UTC') => rewriteSql(`SELECT ${expression} AS b FROM iot.metrics`, metadata, { timeZone });
  const reasons = (expression: string, timeZone = 'UTC') => rewrite(expression, timeZone).unchanged.filter((u) => u.kind === 'time-bucket').map((u) => u.reason);

  it('bucket a date as a timestamp and cast back, from TimescaleDB\'s Monday, moved by a whole-day offset', () => {
    expect(rewrite(`time_bucket('1 week', time::date)`).sql).toBe(
      `SELECT (date_bin('1 week'::interval, CAST("time"::date AS timestamp), '2000-01-03 00:00:00'::timestamp))::date AS b FROM iot.metrics`,
    );
    expect(rewrite(`time_bucket('1 week', time::date, "offset" => '2 days')`).sql).toContain(`'2000-01-05 00:00:00'::timestamp))::date`);
    expect(rewrite(`time_bucket('1 week', time::date, date '2020-01-01')`).sql).toContain(`date_bin('1 week'::interval, CAST("time"::date AS timestamp), CAST('2020-01-01'::date AS timestamp)))::date`);
  });

  it('take an offset in days on a timestamptz only where a day is always 24 hours', () => {
    expect(rewrite(`time_bucket('1 hour', time, "offset" => '1 day')`, 'Etc/UTC').sql).toContain(`'2000-01-04 00:00:00+00'::timestamptz`);
    expect(rewrite(`time_bucket('1 hour', time, "offset" => '1 day')`, 'Etc/GMT-3').changed).toBe(true);
    expect(reasons(`time_bucket('1 hour', time, "offset" => '1 day')`, 'Europe/Berlin')).toEqual([
      `time_bucket('1 hour', "time", "offset" => '1 day'): an offset in days is applied in the session time zone, and in "Europe/Berlin" a day is not always 24 hours`,
    ]);
    // The same offset written in hours is a fixed shift in any zone.
    expect(rewrite(`time_bucket('1 hour', time, "offset" => '24 hours')`, 'Europe/Berlin').sql).toContain(`'2000-01-04 00:00:00+00'::timestamptz`);
    // On a timestamp (without time zone) a day is 24 hours whatever the session's zone.
    expect(rewrite(`time_bucket('1 hour', time::timestamp, "offset" => '1 day')`, 'Europe/Berlin').changed).toBe(true);
  });

  it('write a call they leave alone so that it parses again ("offset" is a reserved word)', () => {
    const r = rewriteSql(`SELECT time_bucket('1 hour', time, "offset" => '1 day') AS b FROM iot.metrics WHERE time > now() - interval '1 hour'`, metadata, { timeZone: 'Europe/Berlin' });
    expect(r.changed).toBe(true);
    expect(r.sql).toContain(`time_bucket('1 hour', "time", "offset" => '1 day')`);
  });

  it('leave to the function what only it gets exactly right, saying why', () => {
    expect(reasons(`time_bucket('0 minutes', time)`)[0]).toMatch(/not a literal fixed interval/);
    expect(reasons(`time_bucket('-5 minutes', time)`)[0]).toMatch(/a width of zero or less is an error in TimescaleDB/);
    expect(reasons(`time_bucket('12 hours', time::date)`)[0]).toMatch(/date buckets must be whole days/);
    expect(reasons(`time_bucket('1 day', time::date, "offset" => '-1 day')`)[0]).toMatch(/whole days, at least one/);
    expect(reasons(`time_bucket(10, device_id)`)[0]).toMatch(/integer buckets keep TimescaleDB's range errors/);
    expect(reasons(`time_bucket('1 day', time, timezone => 'Europe/Berlin')`)[0]).toMatch(/postgres_fdw never ships/);
    expect(reasons(`time_bucket('1 day', time, 'UTC'::text)`)[0]).toMatch(/postgres_fdw never ships/);
    expect(reasons(`time_bucket('1 month', time)`)[0]).toMatch(/months and years have no fixed width/);
  });
});
