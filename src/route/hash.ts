/**
 * PostgreSQL's hash partitioning, computed here: Bob Jenkins' lookup3 as PostgreSQL's
 * `hash_bytes_extended` / `hash_bytes_uint32_extended` run it on little-endian machines (every
 * platform PostgreSQL ships on today but s390x), seeded with HASH_PARTITION_SEED, then
 * `hash_combine64` over the key columns and the remainder of the greatest modulus.
 *
 * 64-bit values are kept as two unsigned 32-bit halves (`hi`, `lo`): this runs once per routed row,
 * and BigInt arithmetic would cost more than the rest of the routing.
 */

/** A uint64 as two uint32 halves. */
export interface Hash64 {
  readonly hi: number;
  readonly lo: number;
}

/** `HASH_PARTITION_SEED` (src/include/catalog/partition.h): 0x7A5B22367996DCFD. */
export const PARTITION_SEED: Hash64 = { hi: 0x7a5b2236, lo: 0x7996dcfd };

const GOLDEN = 0x9e3779b9 + 3923095;

const rot = (x: number, k: number): number => (x << k) | (x >>> (32 - k));

/**
 * The lookup3 state after the seed was mixed in, for a key of `length` bytes. The seed is always
 * PARTITION_SEED here, so states are computed once per length (the uint32 case is length 4).
 */
function seededState(length: number, seed: Hash64): [number, number, number] {
  let a = (GOLDEN + length) | 0;
  let b = a;
  let c = a;
  if (seed.hi !== 0 || seed.lo !== 0) {
    a = (a + seed.hi) | 0;
    b = (b + seed.lo) | 0;
    a = (a - c) | 0; a ^= rot(c, 4); c = (c + b) | 0;
    b = (b - a) | 0; b ^= rot(a, 6); a = (a + c) | 0;
    c = (c - b) | 0; c ^= rot(b, 8); b = (b + a) | 0;
    a = (a - c) | 0; a ^= rot(c, 16); c = (c + b) | 0;
    b = (b - a) | 0; b ^= rot(a, 19); a = (a + c) | 0;
    c = (c - b) | 0; c ^= rot(b, 4); b = (b + a) | 0;
  }
  return [a, b, c];
}

const UINT32_STATE = seededState(4, PARTITION_SEED);

function finalMix(a: number, b: number, c: number): Hash64 {
  c ^= b; c = (c - rot(b, 14)) | 0;
  a ^= c; a = (a - rot(c, 11)) | 0;
  b ^= a; b = (b - rot(a, 25)) | 0;
  c ^= b; c = (c - rot(b, 16)) | 0;
  a ^= c; a = (a - rot(c, 4)) | 0;
  b ^= a; b = (b - rot(a, 14)) | 0;
  c ^= b; c = (c - rot(b, 24)) | 0;
  return { hi: b >>> 0, lo: c >>> 0 };
}

/** `hash_bytes_uint32_extended(k, PARTITION_SEED)`: int2, int4, int8 (folded), date, bool, "char". */
export function hashUint32(k: number): Hash64 {
  const [a, b, c] = UINT32_STATE;
  return finalMix((a + k) | 0, b, c);
}

/** `hash_bytes_extended(bytes[start, end), PARTITION_SEED)`: text, bytea, uuid, floats, numeric digits … */
export function hashBytes(k: Uint8Array, start = 0, end = k.length): Hash64 {
  let len = end - start;
  let [a, b, c] = seededState(len, PARTITION_SEED);
  let i = start;
  while (len >= 12) {
    a = (a + (k[i]! | (k[i + 1]! << 8) | (k[i + 2]! << 16) | (k[i + 3]! << 24))) | 0;
    b = (b + (k[i + 4]! | (k[i + 5]! << 8) | (k[i + 6]! << 16) | (k[i + 7]! << 24))) | 0;
    c = (c + (k[i + 8]! | (k[i + 9]! << 8) | (k[i + 10]! << 16) | (k[i + 11]! << 24))) | 0;
    a = (a - c) | 0; a ^= rot(c, 4); c = (c + b) | 0;
    b = (b - a) | 0; b ^= rot(a, 6); a = (a + c) | 0;
    c = (c - b) | 0; c ^= rot(b, 8); b = (b + a) | 0;
    a = (a - c) | 0; a ^= rot(c, 16); c = (c + b) | 0;
    b = (b - a) | 0; b ^= rot(a, 19); a = (a + c) | 0;
    c = (c - b) | 0; c ^= rot(b, 4); b = (b + a) | 0;
    i += 12;
    len -= 12;
  }
  // The last 0-11 bytes, little-endian; the lowest byte of c stays free (it held the length once).
  if (len >= 11) c = (c + (k[i + 10]! << 24)) | 0;
  if (len >= 10) c = (c + (k[i + 9]! << 16)) | 0;
  if (len >= 9) c = (c + (k[i + 8]! << 8)) | 0;
  if (len >= 8) b = (b + (k[i + 7]! << 24)) | 0;
  if (len >= 7) b = (b + (k[i + 6]! << 16)) | 0;
  if (len >= 6) b = (b + (k[i + 5]! << 8)) | 0;
  if (len >= 5) b = (b + k[i + 4]!) | 0;
  if (len >= 4) a = (a + (k[i + 3]! << 24)) | 0;
  if (len >= 3) a = (a + (k[i + 2]! << 16)) | 0;
  if (len >= 2) a = (a + (k[i + 1]! << 8)) | 0;
  if (len >= 1) a = (a + k[i]!) | 0;
  return finalMix(a, b, c);
}

/** The 64-bit seed itself: what several hash functions return for values that hash as "empty" (0.0, NaN numeric, {}). */
export function seedHash(): Hash64 {
  return PARTITION_SEED;
}

const TWO_32 = 4294967296;
const BIG_MASK = (1n << 64n) - 1n;

export function toBigInt(h: Hash64): bigint {
  return (BigInt(h.hi) << 32n) | BigInt(h.lo);
}

export function fromBigInt(v: bigint): Hash64 {
  const x = v & BIG_MASK;
  return { hi: Number(x >> 32n), lo: Number(x & 0xffffffffn) };
}

/** `hash_combine64(a, b)`: a ^= b + 0x49a0f4dd15e5a8e3 + (a << 54) + (a >> 7). */
export function combine64(a: Hash64, b: Hash64): Hash64 {
  const x = toBigInt(a);
  return fromBigInt(x ^ ((toBigInt(b) + 0x49a0f4dd15e5a8e3n + ((x << 54n) & BIG_MASK) + (x >> 7n)) & BIG_MASK));
}

/**
 * `compute_partition_hash_value` for a one-column key: 0 for NULL (NULLs are skipped), else
 * hash_combine64(0, h), which is h + 0x49a0f4dd15e5a8e3 (mod 2^64).
 */
export function rowHash(h: Hash64 | null): Hash64 {
  if (h === null) return { hi: 0, lo: 0 };
  const lo = h.lo + 0x15e5a8e3;
  const carry = lo >= TWO_32 ? 1 : 0;
  return { hi: (h.hi + 0x49a0f4dd + carry) % TWO_32, lo: lo % TWO_32 };
}

/** The same for a key of several columns (NULLs skipped). */
export function rowHashOf(hashes: readonly (Hash64 | null)[]): Hash64 {
  let acc: Hash64 = { hi: 0, lo: 0 };
  for (const h of hashes) if (h !== null) acc = combine64(acc, h);
  return acc;
}

/** A uint64 modulo `modulus` (a positive int32): which remainder a row hash belongs to. */
export function remainderOf(h: Hash64, modulus: number): number {
  if (modulus <= 1 << 20) {
    // Every product stays below 2^53, so doubles are exact.
    return (((h.hi % modulus) * (TWO_32 % modulus)) % modulus + (h.lo % modulus)) % modulus;
  }
  return Number(toBigInt(h) % BigInt(modulus));
}

/** Two's-complement 64-bit halves of a signed integer given as a bigint. */
export function int64Halves(v: bigint): Hash64 {
  return fromBigInt(v);
}
