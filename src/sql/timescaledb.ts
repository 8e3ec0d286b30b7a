/**
 * TimescaleDB's query functions on the access node, so SQL written for TimescaleDB runs from any
 * client: `time_bucket` in every form TimescaleDB has (but `uuid`) and the `first`/`last`
 * aggregates, with TimescaleDB's results, errors and markings (IMMUTABLE, PARALLEL SAFE).
 *
 * The functions users call live in the spec's schema (`public` by default: TimescaleDB users call
 * them unqualified, and `public` is on every default search_path); the helpers they call live in
 * `_hypershard_compat`, which every role may use, because an inlined body runs as the caller.
 * `time_bucket` on timestamps is SQL the planner inlines: for a constant width it folds to
 * `date_bin`, which is immutable and built in, so postgres_fdw ships it to the data nodes.
 *
 * Each routine is created without OR REPLACE: a user's function with the same signature stops
 * the migration in rehearsal, naming it, and is never overwritten. Down migrations drop exactly
 * these signatures (without CASCADE, so a view that uses one stops the drop).
 */
import type { QualifiedName, TimescaleFunctions } from '../plan/layout.js';
import type { Statement, Step } from './statement.js';
import { render } from './templates.js';

/** The routines users call, in the spec's schema. */
export const TIMESCALE_NAMES = ['time_bucket', 'first', 'last'] as const;

export interface CompatRoutine {
  readonly routine: QualifiedName;
  readonly kind: 'function' | 'aggregate';
  /** Argument types as format_type() spells them: the identity DROP and check use. */
  readonly args: readonly string[];
  /** Template under `access/timescaledb/`. */
  readonly template: string;
  readonly data: Readonly<Record<string, unknown>>;
}

const TS = 'timestamp without time zone';
const TSTZ = 'timestamp with time zone';
const INTEGER_TYPES = [
  { type: 'smallint', lowest: '-32768', highest: '32767' },
  { type: 'integer', lowest: '-2147483648', highest: '2147483647' },
  { type: 'bigint', lowest: '-9223372036854775808', highest: '9223372036854775807' },
] as const;

/**
 * Every routine, in creation order: a SQL body is checked when it is created, so what it calls
 * comes first (PL/pgSQL bodies are resolved when they first run).
 */
export function compatRoutines(functions: TimescaleFunctions): CompatRoutine[] {
  const { schema, helpers } = functions;
  const data = { schema, helpers };
  const helper = (name: string, args: readonly string[], template = name.replaceAll('_', '-'), extra: object = {}): CompatRoutine => ({
    routine: { schema: helpers, name },
    kind: 'function',
    args,
    template,
    data: { ...data, ...extra },
  });
  const bucket = (args: readonly string[], template: string, extra: object = {}): CompatRoutine => ({
    routine: { schema, name: 'time_bucket' },
    kind: 'function',
    args,
    template,
    data: { ...data, ...extra },
  });
  const aggregate = (name: 'first' | 'last'): CompatRoutine => ({
    routine: { schema, name },
    kind: 'aggregate',
    args: ['anyelement', 'anycompatible'],
    template: 'bookend-aggregate',
    data: { ...data, aggregate: name },
  });
  return [
    helper('bucket_error', ['text', 'text', 'anyelement', 'boolean', 'anycompatible']),
    helper('months', ['interval']),
    helper('month_index', [TS]),
    helper('bucket_months', ['interval', TS, TS]),
    helper('bucket_floor', ['anyelement', 'anyelement', 'anyelement']),
    helper('bucket_integer', ['anyelement', 'anyelement', 'anyelement', 'anyelement', 'anyelement']),
    bucket(['interval', TS, TS], 'time-bucket-timestamp-origin'),
    bucket(['interval', TS], 'time-bucket-timestamp'),
    bucket(['interval', TS, 'interval'], 'time-bucket-timestamp-offset'),
    bucket(['interval', TSTZ, TSTZ], 'time-bucket-timestamptz-origin'),
    bucket(['interval', TSTZ], 'time-bucket-timestamptz'),
    helper('bucket_offset_local', ['interval', TSTZ, 'interval']),
    bucket(['interval', TSTZ, 'interval'], 'time-bucket-timestamptz-offset'),
    bucket(['interval', 'date', 'date'], 'time-bucket-date-origin'),
    bucket(['interval', 'date'], 'time-bucket-date'),
    bucket(['interval', 'date', 'interval'], 'time-bucket-date-offset'),
    ...INTEGER_TYPES.flatMap((t) => [
      bucket([t.type, t.type, t.type], 'time-bucket-integer-offset', { type: { sql: t.type }, lowest: t.lowest, highest: t.highest }),
      bucket([t.type, t.type], 'time-bucket-integer', { type: { sql: t.type } }),
    ]),
    bucket(['interval', TSTZ, 'text', TSTZ, 'interval'], 'time-bucket-timezone'),
    helper('bookend_text', ['anyelement']),
    helper('bookend_read', ['text', 'anyelement']),
    helper('first_sfunc', ['text[]', 'anyelement', 'anycompatible'], 'bookend-sfunc', { aggregate: 'first' }),
    helper('last_sfunc', ['text[]', 'anyelement', 'anycompatible'], 'bookend-sfunc', { aggregate: 'last' }),
    helper('bookend_final', ['text[]', 'anyelement', 'anycompatible']),
    aggregate('first'),
    aggregate('last'),
  ];
}

/** `public.time_bucket(interval, timestamp with time zone)`: a routine's name for people. */
export function routineLabel(r: Pick<CompatRoutine, 'routine' | 'args'>): string {
  return `${r.routine.schema}.${r.routine.name}(${r.args.join(', ')})`;
}

export function createRoutineStatement(r: CompatRoutine): Statement {
  return { what: `${r.kind} ${routineLabel(r)}`, sql: render(`access/timescaledb/${r.template}`, r.data) };
}

/** Rendered steps by schema names: generate renders them for every spec it compares. */
const rendered = new Map<string, Step>();

/** The helpers' schema, every routine, and the undo of all of it. */
export function timescaleFunctionsStep(functions: TimescaleFunctions): Step {
  const key = JSON.stringify([functions.schema, functions.helpers]);
  const cached = rendered.get(key);
  if (cached !== undefined) return cached;
  const step = renderStep(functions);
  rendered.set(key, step);
  return step;
}

function renderStep(functions: TimescaleFunctions): Step {
  const routines = compatRoutines(functions);
  const helpers = { schema: functions.helpers, helpers: functions.helpers };
  return {
    up: [
      { what: `schema ${functions.helpers}`, sql: render('common/create-schema', helpers) },
      { what: `usage on schema ${functions.helpers} for every role`, sql: render('access/timescaledb/grant-helpers-usage', helpers) },
      ...routines.map(createRoutineStatement),
    ],
    down: [
      ...[...routines].reverse().map((r) => ({
        what: `${r.kind} ${routineLabel(r)}`,
        sql: render('access/timescaledb/drop-function', { kind: r.kind, routine: r.routine, args: r.args.map((sql) => ({ sql })) }),
      })),
      // Dropping the schema drops its grant; without CASCADE it stops at anything else left in it.
      { what: `schema ${functions.helpers}`, sql: render('common/drop-schema', helpers) },
    ],
  };
}
