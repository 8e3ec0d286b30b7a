import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { isMap, isPair, isScalar, isSeq, LineCounter, parseDocument, visit, type Document } from 'yaml';
import { HypershardError, SpecError, type SpecIssue } from '../errors.js';
import type { ClusterSpec } from './schema.js';
import { invalidUtf8 } from './utf8.js';
import { formatPath, validateSpec } from './validate.js';

export interface LoadedSpec {
  readonly spec: ClusterSpec;
  /** Absolute path of the spec file. */
  readonly file: string;
}

/** Parses spec YAML (JSON is YAML too) and validates it; problems name the file, path and line. */
export function parseSpec(text: string, file = 'hypershard.yaml'): ClusterSpec {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new SpecError(
      doc.errors.map((e) => {
        // With prettyErrors off, e.linePos is never set; the offset is, and the counter maps it.
        const pos = lineCounter.linePos(e.pos[0]);
        return { path: `line ${pos.line}:${pos.col}`, message: e.message.split('\n')[0] ?? e.message };
      }),
      file,
    );
  }
  let value: unknown;
  try {
    value = doc.toJS({ maxAliasCount: MAX_ALIAS_EXPANSIONS });
  } catch (error) {
    throw new SpecError([aliasProblem(doc, lineCounter, error)], file);
  }
  return validateSpec(value, {
    file,
    locate: (path) => {
      // Point at the deepest node of the path that exists in the document.
      for (let depth = path.length; depth >= 0; depth -= 1) {
        const node = doc.getIn(path.slice(0, depth), true) as { range?: [number, number, number] } | undefined;
        if (node?.range !== undefined) return `line ${lineCounter.linePos(node.range[0]).line}`;
      }
      return undefined;
    },
  });
}

export async function loadSpec(file: string): Promise<LoadedSpec> {
  const path = resolve(file);
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (error) {
    throw new HypershardError('SPEC_NOT_FOUND', `cannot read spec ${path}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`, { cause: error });
  }
  const text = bytes.toString('utf8');
  const invalid = invalidUtf8(bytes);
  // Decoding would turn them into U+FFFD silently, and a name would be generated that nobody wrote.
  if (invalid.length > 0) throw new SpecError(notUtf8(bytes, text, invalid), path);
  return { spec: parseSpec(text, path), file: path };
}

/** Alias expansions a spec may use: a few anchors are fine, an alias bomb is not. */
const MAX_ALIAS_EXPANSIONS = 100;

function aliasProblem(doc: Document, lines: LineCounter, error: unknown): SpecIssue {
  let first: number | undefined;
  visit(doc, {
    Alias(_, node) {
      first ??= node.range?.[0];
    },
  });
  const where = first === undefined ? '(root)' : `line ${lines.linePos(first).line}`;
  const message = error instanceof Error && /alias count/i.test(error.message)
    ? `YAML aliases expand more than ${MAX_ALIAS_EXPANSIONS} times (an alias bomb?); write the values out`
    : `cannot resolve the YAML: ${error instanceof Error ? (error.message.split('\n')[0] ?? '') : String(error)}`;
  return { path: where, message };
}

/** One issue per spec value (or key) holding bytes that are not UTF-8, with where they are. */
function notUtf8(bytes: Buffer, text: string, offsets: readonly number[]): SpecIssue[] {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false });
  const issues = new Map<string, SpecIssue>();
  for (const offset of offsets) {
    const at = bytes.subarray(0, offset).toString('utf8').length;
    const pos = lines.linePos(at);
    const path = pathAt(doc.contents, at, []) ?? '(root)';
    if (!issues.has(path)) {
      issues.set(path, { path, message: `holds bytes that are not UTF-8 (0x${(bytes[offset] as number).toString(16).toUpperCase().padStart(2, '0')} at line ${pos.line}, column ${pos.col}); save the file as UTF-8` });
    }
  }
  return [...issues.values()];
}

/** The spec path (as SpecIssue paths read) of the key or value covering a character offset. */
function pathAt(node: unknown, at: number, path: readonly (string | number)[]): string | undefined {
  const covers = (n: unknown): boolean => {
    const range = (n as { range?: [number, number, number] } | null)?.range;
    return range !== undefined && at >= range[0] && at < Math.max(range[1], range[2]);
  };
  if (isMap(node)) {
    for (const pair of node.items) {
      if (!isPair(pair)) continue;
      const key = isScalar(pair.key) ? String(pair.key.value) : '?';
      if (covers(pair.key)) return formatPath([...path, key]);
      if (covers(pair.value)) return pathAt(pair.value, at, [...path, key]) ?? formatPath([...path, key]);
    }
    return undefined;
  }
  if (isSeq(node)) {
    for (const [i, item] of node.items.entries()) if (covers(item)) return pathAt(item, at, [...path, i]) ?? formatPath([...path, i]);
    return undefined;
  }
  return covers(node) ? formatPath(path) : undefined;
}
