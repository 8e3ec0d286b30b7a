import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { LineCounter, parseDocument } from 'yaml';
import { HypershardError, SpecError } from '../errors.js';
import type { ClusterSpec } from './schema.js';
import { validateSpec } from './validate.js';

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
  return validateSpec(doc.toJS(), {
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
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new HypershardError('SPEC_NOT_FOUND', `cannot read spec ${path}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`, { cause: error });
  }
  return { spec: parseSpec(text, path), file: path };
}
