/**
 * TimescaleDB's functions on the access node against what the spec generates: each routine there
 * with the body, language, strictness, volatility and parallel safety its migration gave it (an
 * edit by CREATE OR REPLACE or ALTER FUNCTION shows), nothing else in the helpers' schema, and
 * that schema usable by every role. A user's functions of other signatures are not looked at.
 */
import { COMPAT_SCHEMA, type ClusterLayout } from '../../plan/layout.js';
import { compatRoutines, createRoutineStatement, routineLabel, type CompatRoutine } from '../../sql/timescaledb.js';
import type { CatalogRoutine, CatalogTimescale } from '../catalog/routines.js';
import { finding, type Finding } from '../model.js';

const key = (r: { routine?: { schema: string; name: string }; schema?: string; name?: string; args: readonly string[] }): string =>
  `${r.routine?.schema ?? r.schema}.${r.routine?.name ?? r.name}(${r.args.join(', ')})`;

/** What a routine's migration gives it, read from its rendered statement. */
function expected(r: CompatRoutine): Omit<CatalogRoutine, 'schema' | 'name' | 'args'> {
  const sql = createRoutineStatement(r).sql;
  const header = sql.slice(0, Math.max(0, sql.indexOf(' AS $')));
  if (r.kind === 'aggregate') {
    const helpers = String(r.data.helpers);
    return { kind: 'aggregate', language: 'internal', volatility: 'i', strict: false, parallel: 's', body: '', transition: `${helpers}.${r.routine.name}_sfunc`, final: `${helpers}.bookend_final` };
  }
  return {
    kind: 'function',
    language: /LANGUAGE (\w+)/.exec(header)?.[1] ?? '',
    volatility: 'i',
    strict: /\bSTRICT\b/.test(header),
    parallel: 's',
    body: /AS (\$[a-z0-9]*\$)([\s\S]*)\1;$/.exec(sql)?.[2] ?? '',
  };
}

const VOLATILITY: Record<string, string> = { i: 'IMMUTABLE', s: 'STABLE', v: 'VOLATILE' };
const PARALLEL: Record<string, string> = { s: 'PARALLEL SAFE', r: 'PARALLEL RESTRICTED', u: 'PARALLEL UNSAFE' };

export function compareTimescale(layout: ClusterLayout, actual: CatalogTimescale): Finding[] {
  const functions = layout.timescaledb;
  const out: Finding[] = [];
  const wanted = functions === undefined ? [] : compatRoutines(functions);
  const found = new Map(actual.routines.map((r) => [key(r), r]));
  if (functions !== undefined) {
    if (!actual.helperSchema) out.push(finding('missing', `schema ${functions.helpers}`, `schema ${functions.helpers} (the helpers of time_bucket, first and last) does not exist`));
    else if (!actual.publicUsage) {
      out.push(finding('missing', `usage on schema ${functions.helpers}`, `PUBLIC has no USAGE on ${functions.helpers}: time_bucket fails for every role but its owner`, { expected: 'USAGE for PUBLIC' }));
    }
  } else if (actual.helperSchema) {
    out.push(finding('extra', `schema ${COMPAT_SCHEMA}`, 'TimescaleDB functions are turned off in the spec (timescaledb.functions: false), but their helpers\' schema is still there'));
  }
  for (const r of wanted) {
    const label = `${r.kind} ${routineLabel(r)}`;
    const have = found.get(key(r));
    if (have === undefined) {
      out.push(finding('missing', label, `${routineLabel(r)} does not exist; TimescaleDB SQL that calls it fails`));
      continue;
    }
    const want = expected(r);
    const differences: [string, string, string][] = [];
    if (have.kind !== want.kind) differences.push(['kind', want.kind, have.kind]);
    if (want.kind === 'function') {
      if (have.language !== want.language) differences.push(['language', want.language, have.language]);
      if (have.body !== want.body) differences.push(['body', 'as generated', 'edited']);
      if (have.strict !== want.strict) differences.push(['strictness', want.strict ? 'STRICT' : 'CALLED ON NULL INPUT', have.strict ? 'STRICT' : 'CALLED ON NULL INPUT']);
    } else {
      if (have.transition !== want.transition) differences.push(['transition function', want.transition ?? '-', have.transition ?? '-']);
      if (have.final !== want.final) differences.push(['final function', want.final ?? '-', have.final ?? '-']);
    }
    if (have.volatility !== want.volatility) differences.push(['volatility', VOLATILITY[want.volatility] ?? '', VOLATILITY[have.volatility] ?? have.volatility]);
    if (have.parallel !== want.parallel) differences.push(['parallel safety', PARALLEL[want.parallel] ?? '', PARALLEL[have.parallel] ?? have.parallel]);
    if (differences.length > 0) {
      out.push(finding('different', label, `${routineLabel(r)} differs from its migration: ${differences.map(([what]) => what).join(', ')}`, {
        expected: differences.map(([what, value]) => `${what} ${value}`).join('; '),
        actual: differences.map(([what, , value]) => `${what} ${value}`).join('; '),
      }));
    }
  }
  const known = new Set(wanted.map(key));
  for (const r of actual.routines) {
    if (r.schema === (functions?.helpers ?? COMPAT_SCHEMA) && !known.has(key(r))) {
      out.push(finding('extra', `${r.kind} ${key(r)}`, `${key(r)} is in the helpers' schema but not in the spec's migrations`));
    }
  }
  return out;
}
