/**
 * TimescaleDB's functions on the access node as the catalog has them: every routine in the
 * helpers' schema, those named like the ones users call in the spec's schema (so a user's own
 * functions of other names are never read), the helpers' schema and whether every role may use it.
 */
import type pg from 'pg';

export interface CatalogRoutine {
  readonly schema: string;
  readonly name: string;
  /** format_type() of each argument. */
  readonly args: readonly string[];
  readonly kind: 'function' | 'aggregate' | 'procedure' | 'window';
  readonly language: string;
  /** `i`, `s` or `v`. */
  readonly volatility: string;
  readonly strict: boolean;
  /** `s`, `r` or `u`. */
  readonly parallel: string;
  readonly body: string;
  /** Aggregates: `schema.name` of the transition and final functions. */
  readonly transition?: string;
  readonly final?: string;
}

export interface CatalogTimescale {
  readonly helperSchema: boolean;
  /** PUBLIC holds USAGE on the helpers' schema. */
  readonly publicUsage: boolean;
  readonly routines: readonly CatalogRoutine[];
}

export const NO_TIMESCALE_ROUTINES: CatalogTimescale = { helperSchema: false, publicUsage: false, routines: [] };

const KINDS: Record<string, CatalogRoutine['kind']> = { f: 'function', a: 'aggregate', p: 'procedure', w: 'window' };

export async function readTimescaleRoutines(client: pg.Client, helpers: string, schema: string | undefined, names: readonly string[]): Promise<CatalogTimescale> {
  const { rows: schemas } = await client.query<{ usage: boolean }>(
    `SELECT EXISTS (SELECT FROM pg_catalog.aclexplode(COALESCE(n.nspacl, pg_catalog.acldefault('n', n.nspowner))) a
                    WHERE a.grantee = 0 AND a.privilege_type = 'USAGE') AS usage
     FROM pg_catalog.pg_namespace n WHERE n.nspname = $1`,
    [helpers],
  );
  const { rows } = await client.query<{
    schema: string; name: string; args: string[]; kind: string; language: string; volatility: string; strict: boolean; parallel: string; body: string;
    transition: string | null; final: string | null;
  }>(
    `SELECT n.nspname AS schema, p.proname AS name,
            ARRAY(SELECT pg_catalog.format_type(t, NULL) FROM unnest(p.proargtypes::oid[]) WITH ORDINALITY AS a(t, i) ORDER BY i) AS args,
            p.prokind AS kind, l.lanname AS language, p.provolatile AS volatility, p.proisstrict AS strict,
            p.proparallel AS parallel, p.prosrc AS body,
            (SELECT tn.nspname || '.' || tp.proname FROM pg_catalog.pg_proc tp JOIN pg_catalog.pg_namespace tn ON tn.oid = tp.pronamespace WHERE tp.oid = g.aggtransfn) AS transition,
            (SELECT fn.nspname || '.' || fp.proname FROM pg_catalog.pg_proc fp JOIN pg_catalog.pg_namespace fn ON fn.oid = fp.pronamespace WHERE fp.oid = g.aggfinalfn) AS final
     FROM pg_catalog.pg_proc p
     JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
     JOIN pg_catalog.pg_language l ON l.oid = p.prolang
     LEFT JOIN pg_catalog.pg_aggregate g ON g.aggfnoid = p.oid
     WHERE n.nspname = $1 OR (n.nspname = $2 AND p.proname = ANY($3::text[]))
     ORDER BY 1, 2, 3`,
    [helpers, schema ?? null, names],
  );
  return {
    helperSchema: schemas.length > 0,
    publicUsage: schemas[0]?.usage === true,
    routines: rows.map((r) => ({
      schema: r.schema,
      name: r.name,
      args: r.args,
      kind: KINDS[r.kind] ?? 'function',
      language: r.language,
      volatility: r.volatility,
      strict: r.strict,
      parallel: r.parallel,
      body: r.body,
      ...(r.transition === null ? {} : { transition: r.transition }),
      ...(r.final === null ? {} : { final: r.final }),
    })),
  };
}
