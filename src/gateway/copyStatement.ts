/**
 * Which `COPY … FROM STDIN` statements a gateway may route to the data nodes: one statement, from
 * STDIN, into a table named directly, with options the routed COPY reads exactly as PostgreSQL
 * does. Anything else (a WHERE clause, FREEZE, ON_ERROR, DEFAULT, a program or file) goes to the
 * access node as written, which runs it or says why not in its own words.
 */
import { loadModule, parseSync } from 'libpg-query';
import type { CopyFormat } from '../ingest/formats/rows.js';
import { quoteIdent } from '../sql/quote.js';

await loadModule();

export interface CopyIntoStatement {
  /** The table as written, quoted, for to_regclass in the client's session (its search_path). */
  readonly relation: string;
  readonly columns: readonly string[] | undefined;
  readonly format: CopyFormat;
}

interface DefElem {
  readonly defname: string;
  readonly arg?: Record<string, unknown>;
}

/** Cheap test before parsing: most statements are not COPY. */
const COPY_FROM_STDIN = /^\s*copy\b[\s\S]*\bfrom\s+stdin\b/i;

/** The routable COPY the text is, or undefined (not one, or not routable: it goes as written). */
export function copyIntoStatement(text: string): CopyIntoStatement | undefined {
  if (!COPY_FROM_STDIN.test(text)) return undefined;
  let stmts: { stmt?: Record<string, unknown> }[];
  try {
    stmts = (parseSync(text) as { stmts?: { stmt?: Record<string, unknown> }[] }).stmts ?? [];
  } catch {
    return undefined;
  }
  if (stmts.length !== 1) return undefined;
  const copy = stmts[0]?.stmt?.CopyStmt as
    | { relation?: { schemaname?: string; relname: string; inh?: boolean }; attlist?: { String?: { sval: string } }[]; is_from?: boolean; is_program?: boolean; filename?: string; query?: unknown; whereClause?: unknown; options?: { DefElem: DefElem }[] }
    | undefined;
  if (copy?.relation === undefined || copy.is_from !== true || copy.is_program === true || copy.filename !== undefined || copy.query !== undefined || copy.whereClause !== undefined) return undefined;
  const columns = copy.attlist?.map((a) => a.String?.sval);
  if (columns?.some((c) => c === undefined) === true) return undefined;
  const format = copyFormat((copy.options ?? []).map((o) => o.DefElem));
  if (format === undefined) return undefined;
  const { schemaname, relname } = copy.relation;
  return {
    relation: schemaname === undefined ? quoteIdent(relname) : `${quoteIdent(schemaname)}.${quoteIdent(relname)}`,
    columns: columns as string[] | undefined,
    format,
  };
}

function copyFormat(options: readonly DefElem[]): CopyFormat | undefined {
  const format: { -readonly [K in keyof CopyFormat]: CopyFormat[K] } = { format: 'text' };
  for (const o of options) {
    switch (o.defname) {
      case 'format': {
        const f = stringArg(o)?.toLowerCase();
        if (f !== 'text' && f !== 'csv' && f !== 'binary') return undefined;
        format.format = f;
        break;
      }
      case 'delimiter':
      case 'null':
      case 'quote':
      case 'escape':
      case 'encoding': {
        const value = stringArg(o);
        if (value === undefined) return undefined;
        format[o.defname] = value;
        break;
      }
      case 'header': {
        const s = stringArg(o)?.toLowerCase();
        if (s === 'match') format.header = 'match';
        else {
          const b = booleanArg(o);
          if (b === undefined) return undefined;
          format.header = b;
        }
        break;
      }
      case 'force_null':
      case 'force_not_null': {
        const list = listArg(o);
        if (list === undefined) return undefined;
        format[o.defname === 'force_null' ? 'forceNull' : 'forceNotNull'] = list;
        break;
      }
      default:
        // freeze (refused on partitioned tables), on_error, default, log_verbosity, force_quote …
        return undefined;
    }
  }
  return format;
}

function stringArg(o: DefElem): string | undefined {
  const s = o.arg?.String as { sval?: string } | undefined;
  return s === undefined ? undefined : (s.sval ?? '');
}

/** PostgreSQL's defGetBoolean: no argument, true/false/on/off, 1/0. */
function booleanArg(o: DefElem): boolean | undefined {
  if (o.arg === undefined) return true;
  if ('Boolean' in o.arg) return (o.arg.Boolean as { boolval?: boolean }).boolval === true;
  if ('Integer' in o.arg) {
    const i = (o.arg.Integer as { ival?: number }).ival ?? 0;
    return i === 0 ? false : i === 1 ? true : undefined;
  }
  const s = stringArg(o)?.toLowerCase();
  if (s === 'true' || s === 'on') return true;
  if (s === 'false' || s === 'off') return false;
  return undefined;
}

function listArg(o: DefElem): string[] | undefined {
  const items = (o.arg?.List as { items?: { String?: { sval: string } }[] } | undefined)?.items;
  if (items === undefined) return undefined;
  const names = items.map((i) => i.String?.sval);
  return names.some((n) => n === undefined) ? undefined : (names as string[]);
}
