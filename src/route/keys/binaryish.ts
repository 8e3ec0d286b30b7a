/** uuid and bytea keys: `uuid_hash_extended` and `hashvarlenaextended` hash their bytes. */
import { hashBytes, type Hash64 } from '../hash.js';

const HEX = /^[0-9a-fA-F]$/;

/** string_to_uuid: optional braces, 32 hex digits, a hyphen allowed after any group of four (not at the end). */
export function parseUuid(text: string): Uint8Array | undefined {
  let i = 0;
  const braces = text[0] === '{';
  if (braces) i += 1;
  const out = new Uint8Array(16);
  for (let byte = 0; byte < 16; byte += 1) {
    const a = text[i];
    const b = text[i + 1];
    if (a === undefined || b === undefined || !HEX.test(a) || !HEX.test(b)) return undefined;
    out[byte] = Number.parseInt(a + b, 16);
    i += 2;
    if (text[i] === '-' && byte % 2 === 1 && byte < 15) i += 1;
  }
  if (braces) {
    if (text[i] !== '}') return undefined;
    i += 1;
  }
  return i === text.length ? out : undefined;
}

export function hashUuidText(text: string): Hash64 | undefined {
  const bytes = parseUuid(text);
  return bytes === undefined ? undefined : hashBytes(bytes);
}

/** byteain: `\x` hex (whitespace between pairs allowed) or the escape format (`\\`, `\ooo`, other bytes as they are). */
export function parseBytea(text: string): Uint8Array | undefined {
  if (text.startsWith('\\x')) {
    const body = text.slice(2);
    if (!/^[0-9a-fA-F \t\n\r]*$/.test(body) || !pairsAligned(body)) return undefined;
    return Buffer.from(body.replace(/[ \t\n\r]/g, ''), 'hex');
  }
  const raw = Buffer.from(text, 'utf8');
  const out: number[] = [];
  for (let i = 0; i < raw.length; i += 1) {
    const c = raw[i] as number;
    if (c !== 0x5c) {
      out.push(c);
      continue;
    }
    if (raw[i + 1] === 0x5c) {
      out.push(0x5c);
      i += 1;
      continue;
    }
    const d1 = raw[i + 1];
    const d2 = raw[i + 2];
    const d3 = raw[i + 3];
    if (d1 === undefined || d2 === undefined || d3 === undefined || d1 < 0x30 || d1 > 0x33 || d2 < 0x30 || d2 > 0x37 || d3 < 0x30 || d3 > 0x37) return undefined;
    out.push(((d1 - 48) << 6) | ((d2 - 48) << 3) | (d3 - 48));
    i += 3;
  }
  return Uint8Array.from(out);
}

/** Hex digits come in pairs, with whitespace only between pairs. */
function pairsAligned(hex: string): boolean {
  let inPair = false;
  for (const c of hex) {
    if (c === ' ' || c === '\t' || c === '\n' || c === '\r') {
      if (inPair) return false;
    } else {
      inPair = !inPair;
    }
  }
  return !inPair;
}

export function hashByteaText(text: string): Hash64 | undefined {
  const bytes = parseBytea(text);
  return bytes === undefined ? undefined : hashBytes(bytes);
}
