/**
 * An error from a rewritten statement points into the text the access node ran, which the client
 * never saw. The gateway moves the position to the same token in the client's text when that
 * token occurs there exactly once, and drops it otherwise: no caret beats a wrong caret.
 */
import { B, fieldsMessage, readFields } from './protocol/messages.js';

/** The ErrorResponse/NoticeResponse `frame` with its position ('P') valid for `original`. */
export function errorForOriginal(frame: Buffer, original: string, sent: string): Buffer {
  const fields = readFields(frame);
  const position = fields.get('P');
  if (position === undefined) return frame;
  const mapped = mapPosition(Number(position), original, sent);
  if (mapped === undefined) fields.delete('P');
  else fields.set('P', String(mapped));
  return fieldsMessage(frame[0] === B.NoticeResponse ? B.NoticeResponse : B.ErrorResponse, fields);
}

/** PostgreSQL positions count characters from 1. */
export function mapPosition(position: number, original: string, sent: string): number | undefined {
  if (!Number.isInteger(position) || position < 1) return undefined;
  const chars = Array.from(sent); // code points, as PostgreSQL counts positions
  const token = tokenAt(chars, position - 1);
  if (token === undefined) return undefined;
  const first = original.indexOf(token);
  if (first < 0 || original.indexOf(token, first + 1) >= 0) return undefined;
  return Array.from(original.slice(0, first)).length + 1;
}

const WORD = /[\p{L}\p{N}_$]/u;

/** The identifier, number, quoted name or string literal that starts at `index`. */
function tokenAt(chars: readonly string[], index: number): string | undefined {
  const first = chars[index];
  if (first === undefined) return undefined;
  if (first === '"' || first === "'") {
    let end = index + 1;
    while (end < chars.length) {
      if (chars[end] === first) {
        if (chars[end + 1] === first) end += 2;
        else break;
      } else end += 1;
    }
    return chars.slice(index, end + 1).join('');
  }
  if (!WORD.test(first)) return undefined;
  let end = index;
  while (end < chars.length && WORD.test(chars[end] as string)) end += 1;
  return chars.slice(index, end).join('');
}
