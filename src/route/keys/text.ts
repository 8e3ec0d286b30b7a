/**
 * text, varchar(n) and char(n) keys. With a deterministic collation (every database default and
 * the spec's columns) text hashes as its bytes in the server encoding (UTF-8). varchar(n) and
 * char(n) input cuts a too-long value when only spaces are cut, and char(n) hashes without its
 * trailing spaces (`hashbpcharextended`).
 */
import { hashBytes, type Hash64 } from '../hash.js';

export function hashUtf8(text: string): Hash64 {
  return hashBytes(Buffer.from(text, 'utf8'));
}

/** Length in characters (code points), as PostgreSQL counts them in UTF-8. */
function characters(text: string): number {
  let n = 0;
  for (let i = 0; i < text.length; i += 1) {
    const c = text.charCodeAt(i);
    // A high surrogate followed by a low one is one character.
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length) {
      const d = text.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) i += 1;
    }
    n += 1;
  }
  return n;
}

function firstCharacters(text: string, count: number): string {
  return Array.from(text).slice(0, count).join('');
}

/** `varchar(n)`: n from the typmod (n + 4), -1 for none. */
export function hashVarcharText(text: string, typmod: number): Hash64 | undefined {
  const max = typmod - 4;
  if (typmod < 4 || characters(text) <= max) return hashUtf8(text);
  const kept = firstCharacters(text, max);
  // Cutting anything but spaces is "value too long": the server reports it.
  return /^ *$/.test(text.slice(kept.length)) ? hashUtf8(kept) : undefined;
}

/** `char(n)`: hashed without trailing spaces. */
export function hashBpcharText(text: string, typmod: number): Hash64 | undefined {
  const stripped = text.replace(/ +$/, '');
  if (typmod >= 4 && characters(stripped) > typmod - 4) return undefined;
  return hashUtf8(stripped);
}
