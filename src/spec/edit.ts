/**
 * Edits to the spec file that change only the lines they must. Every other byte (comments, quote
 * styles, indentation, flow or block collections, blank lines) stays as the user wrote it:
 * re-serializing the parsed document would re-indent, re-quote and re-wrap the whole file. Each
 * edit parses the current text, finds the node by its path and splices new text in at the
 * node's source range; values are written in flow style (`[dn1, dn2]`, `{ env: X }`).
 */
import { isMap, isScalar, isSeq, parseDocument, stringify, type Node, type Pair, type YAMLMap, type YAMLSeq } from 'yaml';
import { HypershardError } from '../errors.js';

type Path = readonly (string | number)[];

export class SpecText {
  #text: string;

  constructor(text: string) {
    this.#text = text;
  }

  get text(): string {
    return this.#text;
  }

  /** Sets `key` in the mapping at `path`: its value replaced in place, or a new line after the first of `after` present (else last). */
  set(path: Path, key: string, value: unknown, after: readonly string[] = []): void {
    const map = this.#map(path);
    const pair = findPair(map, key);
    const flowValue = flow(value);
    if (pair !== undefined) {
      const old = pair.value as Node | null;
      if (old?.range == null) throw this.#unsupported(path, key);
      if (isScalar(old) || (old as YAMLMap | YAMLSeq).flow === true) {
        this.#splice(old.range[0], old.range[1], flowValue);
      } else {
        // A block collection: the new flow value goes right after the key, its old lines go.
        const colon = this.#text.indexOf(':', (pair.key as Node).range?.[1] ?? old.range[0]);
        this.#splice(colon + 1, this.#lineEnd(old.range[1]), ` ${flowValue}\n`);
      }
      return;
    }
    if (map.flow === true) {
      const close = this.#closing(map, '}');
      this.#splice(close, close, `${map.items.length === 0 ? '' : ', '}${key}: ${flowValue}`);
      return;
    }
    const anchor = after.map((k) => findPair(map, k)).find((p) => p !== undefined) ?? map.items.at(-1);
    const first = map.items[0];
    if (anchor === undefined || first === undefined) throw this.#unsupported(path, key);
    const at = this.#lineEnd(valueEnd(anchor));
    this.#splice(at, at, `${' '.repeat(this.#column(keyStart(first)))}${key}: ${flowValue}\n`);
  }

  /** Removes `key` (and its line) from the mapping at `path`; nothing when it is absent. */
  delete(path: Path, key: string): void {
    const map = this.#map(path);
    const index = map.items.findIndex((p) => isScalar(p.key) && p.key.value === key);
    const pair = map.items[index];
    if (pair === undefined) return;
    const start = keyStart(pair);
    const end = valueEnd(pair);
    if (map.flow === true) {
      this.#removeFlowItem(map.items.map((p) => [keyStart(p), valueEnd(p)] as const), index);
      return;
    }
    const next = map.items[index + 1];
    if (this.#aloneOnLine(start)) this.#splice(this.#lineStart(start), this.#lineEnd(end), '');
    // First key after a `- `: the next key moves up to take its place.
    else if (next !== undefined) this.#splice(start, keyStart(next), '');
    else throw this.#unsupported(path, key);
  }

  /** Appends an item to the sequence at `path`, in the style of its last item. */
  append(path: Path, value: unknown): void {
    const seq = this.#seq(path);
    if (seq.flow === true) {
      const close = this.#closing(seq, ']');
      this.#splice(close, close, `${seq.items.length === 0 ? '' : ', '}${flow(value)}`);
      return;
    }
    const last = seq.items.at(-1) as Node | undefined;
    if (last?.range == null) throw this.#unsupported(path);
    const lineStart = this.#lineStart(last.range[0]);
    const prefix = this.#text.slice(lineStart, last.range[0]);
    if (!/^\s*-\s+$/.test(prefix)) throw this.#unsupported(path);
    const at = this.#lineEnd(last.range[1]);
    const entries = isMap(last) && last.flow !== true && isPlainObject(value) ? Object.entries(value).filter(([, v]) => v !== undefined) : undefined;
    if (entries === undefined || entries.length === 0) {
      this.#splice(at, at, `${prefix}${flow(value)}\n`);
      return;
    }
    const indent = ' '.repeat(prefix.length);
    const quotes = quoteStyle(last);
    this.#splice(at, at, entries.map(([k, v], i) => `${i === 0 ? prefix : indent}${k}: ${flow(v, quotes)}\n`).join(''));
  }

  /** Removes the item at `index` from the sequence at `path`. */
  remove(path: Path, index: number): void {
    const seq = this.#seq(path);
    const items = seq.items as Node[];
    const item = items[index];
    if (item?.range == null) throw this.#unsupported(path);
    if (seq.flow === true) {
      this.#removeFlowItem(items.map((n) => [n.range?.[0] ?? 0, n.range?.[1] ?? 0] as const), index);
      return;
    }
    this.#splice(this.#lineStart(item.range[0]), this.#lineEnd(item.range[1]), '');
  }

  #node(path: Path): unknown {
    const doc = parseDocument(this.#text);
    return path.length === 0 ? doc.contents : doc.getIn(path, true);
  }

  #map(path: Path): YAMLMap {
    const node = this.#node(path);
    if (!isMap(node)) throw new HypershardError('USAGE', `the spec has no mapping at ${describe(path)}`);
    return node;
  }

  #seq(path: Path): YAMLSeq {
    const node = this.#node(path);
    if (!isSeq(node)) throw new HypershardError('USAGE', `the spec has no list at ${describe(path)}`);
    return node;
  }

  #unsupported(path: Path, key?: string): HypershardError {
    return new HypershardError('USAGE', `cannot edit ${describe(key === undefined ? path : [...path, key])} in the spec file without rewriting it; edit it by hand`);
  }

  #splice(start: number, end: number, text: string): void {
    this.#text = this.#text.slice(0, start) + text + this.#text.slice(end);
  }

  /** From the first item's start, or the comma before it, through the item (and its comma). */
  #removeFlowItem(ranges: readonly (readonly [number, number])[], index: number): void {
    const item = ranges[index];
    if (item === undefined) return;
    const previous = ranges[index - 1];
    const next = ranges[index + 1];
    if (previous !== undefined) this.#splice(previous[1], item[1], '');
    else if (next !== undefined) this.#splice(item[0], next[0], '');
    else this.#splice(item[0], item[1], '');
  }

  /** Offset of the closing bracket of a flow collection. */
  #closing(node: YAMLMap | YAMLSeq, bracket: string): number {
    const end = node.range?.[1];
    const at = end === undefined ? -1 : this.#text.lastIndexOf(bracket, end);
    if (at < 0) throw new HypershardError('USAGE', 'the spec file has a flow collection without its closing bracket');
    return at;
  }

  #lineStart(offset: number): number {
    return this.#text.lastIndexOf('\n', offset - 1) + 1;
  }

  /** The offset after the newline ending the line `offset` is on (or that `offset` starts). */
  #lineEnd(offset: number): number {
    if (offset > 0 && this.#text[offset - 1] === '\n') return offset;
    const newline = this.#text.indexOf('\n', offset);
    if (newline >= 0) return newline + 1;
    this.#text += '\n';
    return this.#text.length;
  }

  #column(offset: number): number {
    return offset - this.#lineStart(offset);
  }

  #aloneOnLine(offset: number): boolean {
    return /^\s*$/.test(this.#text.slice(this.#lineStart(offset), offset));
  }
}

function findPair(map: YAMLMap, key: string): Pair | undefined {
  return map.items.find((p) => isScalar(p.key) && p.key.value === key);
}

function keyStart(pair: Pair): number {
  return (pair.key as Node).range?.[0] ?? 0;
}

function valueEnd(pair: Pair): number {
  return (pair.value as Node | null)?.range?.[1] ?? (pair.key as Node).range?.[1] ?? 0;
}

type Quotes = 'QUOTE_DOUBLE' | 'QUOTE_SINGLE' | undefined;

/** A value as one line of flow YAML: its strings quoted as `quotes` says, else only where YAML needs it. */
function flow(value: unknown, quotes?: Quotes): string {
  return stringify(value, { collectionStyle: 'flow', lineWidth: 0, ...(quotes === undefined ? {} : { defaultStringType: quotes, defaultKeyType: 'PLAIN' }) }).trimEnd();
}

/** How a mapping's string values are quoted, when all of them are quoted alike (`name: "dn1"` as `init` writes them). */
function quoteStyle(map: Node): Quotes {
  if (!isMap(map)) return undefined;
  const styles = new Set(map.items.map((p) => (isScalar(p.value) && typeof p.value.value === 'string' ? p.value.type : 'other')).filter((t) => t !== 'other'));
  const [only] = styles;
  return styles.size === 1 && (only === 'QUOTE_DOUBLE' || only === 'QUOTE_SINGLE') ? only : undefined;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function describe(path: Path): string {
  return path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${p}`)).join('').replace(/^\./, '') || '(root)';
}
