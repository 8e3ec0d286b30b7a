/** boolean keys: `hashcharextended` of 0 or 1, after boolin's reading of the many spellings. */
import { hashUint32, type Hash64 } from '../hash.js';

const TRIM = /^[ \t\n\r\v\f]+|[ \t\n\r\v\f]+$/g;

/** parse_bool_with_len: any unique prefix of true/false/yes/no, on/off (two letters at least), 1/0. */
export function parseBool(text: string): boolean | undefined {
  const v = text.replace(TRIM, '').toLowerCase();
  if (v === '') return undefined;
  const prefixOf = (word: string): boolean => v.length <= word.length && word.startsWith(v);
  switch (v[0]) {
    case 't': return prefixOf('true') ? true : undefined;
    case 'f': return prefixOf('false') ? false : undefined;
    case 'y': return prefixOf('yes') ? true : undefined;
    case 'n': return prefixOf('no') ? false : undefined;
    case 'o':
      if (v.length >= 2 && prefixOf('on')) return true;
      if (v.length >= 2 && prefixOf('off')) return false;
      return undefined;
    case '1': return v.length === 1 ? true : undefined;
    case '0': return v.length === 1 ? false : undefined;
    default: return undefined;
  }
}

export function hashBoolText(text: string): Hash64 | undefined {
  const value = parseBool(text);
  return value === undefined ? undefined : hashUint32(value ? 1 : 0);
}
