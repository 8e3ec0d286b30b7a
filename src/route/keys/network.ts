/**
 * inet, cidr and macaddr keys in their plain forms. `hashinetextended` hashes the family
 * (PGSQL_AF_INET 2, PGSQL_AF_INET6 3), the mask length and the address bytes; macaddr its 6
 * bytes. Abbreviated, classful or IPv6 forms are left to the server.
 */
import { hashBytes, type Hash64 } from '../hash.js';

const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})(?:\/(\d{1,2}))?$/;

export function hashInetText(text: string, cidr: boolean): Hash64 | undefined {
  const m = IPV4.exec(text);
  if (m === null) return undefined;
  const octets = [m[1], m[2], m[3], m[4]] as string[];
  // Leading zeros: readers differ on whether they are decimal; let the server read them.
  if (octets.some((o) => (o.length > 1 && o.startsWith('0')) || Number(o) > 255)) return undefined;
  const bytes = octets.map(Number);
  let bits = 32;
  if (m[5] !== undefined) {
    if (m[5].length > 1 && m[5].startsWith('0')) return undefined;
    bits = Number(m[5]);
    if (bits > 32) return undefined;
  } else if (cidr) {
    // cidr without a mask length takes a classful default.
    return undefined;
  }
  if (cidr) {
    // Bits right of the mask must be zero in a cidr (else an error).
    const value = ((bytes[0]! << 24) | (bytes[1]! << 16) | (bytes[2]! << 8) | bytes[3]!) >>> 0;
    const host = bits === 32 ? 0 : bits === 0 ? 0xffffffff : (0xffffffff >>> bits);
    if ((value & host) >>> 0 !== 0) return undefined;
  }
  return hashBytes(Uint8Array.from([2, bits, ...bytes]));
}

const MAC = /^([0-9a-fA-F]{2})([:-])([0-9a-fA-F]{2})\2([0-9a-fA-F]{2})\2([0-9a-fA-F]{2})\2([0-9a-fA-F]{2})\2([0-9a-fA-F]{2})$/;

export function hashMacaddrText(text: string): Hash64 | undefined {
  const m = MAC.exec(text);
  if (m === null) return undefined;
  return hashBytes(Uint8Array.from([m[1], m[3], m[4], m[5], m[6], m[7]].map((h) => Number.parseInt(h as string, 16))));
}
