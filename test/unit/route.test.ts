/**
 * The router's hash functions against values PostgreSQL 18 computed (`SELECT hashint4extended(-1,
 * 8816678312871386365)` …: HASH_PARTITION_SEED), and the text readers on the spellings PostgreSQL
 * accepts. The integration test (route.test.ts) checks the same on real nodes for random values.
 */
import { describe, expect, it } from 'vitest';
import { hashBytes, hashUint32, PARTITION_SEED, remainderOf, rowHash, rowHashOf, toBigInt, type Hash64 } from '../../src/route/hash.js';
import { parseUuid } from '../../src/route/keys/binaryish.js';
import { parseBool } from '../../src/route/keys/bool.js';
import { hashTimestampText } from '../../src/route/keys/datetime.js';
import { hashDoubleText, parseReal } from '../../src/route/keys/float.js';
import { hashIntegerText } from '../../src/route/keys/integer.js';
import { applyTypmod, hashNumericText, numericTypmod, parseNumeric, toNumericDigits } from '../../src/route/keys/numeric.js';
import { hashBpcharText, hashUtf8, hashVarcharText } from '../../src/route/keys/text.js';

const signed = (h: Hash64 | undefined): bigint | undefined => (h === undefined ? undefined : BigInt.asIntN(64, toBigInt(h)));

describe('lookup3 as PostgreSQL seeds it for partitions', () => {
  it('hashes a uint32 and byte strings of every tail length like hash_bytes_extended', () => {
    expect(signed(hashUint32(1))).toBe(5968994663651403477n);
    expect(signed(hashBytes(Buffer.from('abc')))).toBe(3628778498291917250n);
    expect(signed(hashBytes(Buffer.from('')))).toBe(-5700645584453517373n);
    expect(signed(hashBytes(Buffer.from('abcdefghijkl')))).toBe(-7876791541613377658n);
    expect(signed(hashBytes(Buffer.from('abcdefghijklmnopqrstuvwxyz0123456789')))).toBe(-7380664822038775401n);
  });

  it('combines one key column and takes the remainder of the modulus', () => {
    const h = hashUint32(1);
    expect(toBigInt(rowHash(h))).toBe((toBigInt(h) + 0x49a0f4dd15e5a8e3n) % 2n ** 64n);
    expect(rowHashOf([h])).toEqual(rowHash(h));
    expect(rowHash(null)).toEqual({ hi: 0, lo: 0 });
    for (const m of [1, 2, 5, 1021, 1 << 20, 2147483647]) expect(remainderOf(rowHash(h), m)).toBe(Number(toBigInt(rowHash(h)) % BigInt(m)));
  });
});

describe('key types', () => {
  it('integers: int2/int4 as int32, int8 folded; plain decimal only', () => {
    expect(signed(hashIntegerText('-1', 4))).toBe(-5017072347659237694n);
    expect(signed(hashIntegerText(' -1 ', 2))).toBe(-5017072347659237694n);
    expect(signed(hashIntegerText('-5000000000', 8))).toBe(-4482100988868492312n);
    expect(hashIntegerText('2147483648', 4)).toBeUndefined();
    expect(hashIntegerText('0x10', 8)).toBeUndefined(); // PostgreSQL 16 reads it, 15 does not: the server decides
    expect(hashIntegerText('1_000', 4)).toBeUndefined();
  });

  it('floats: the double\'s bytes, 0 and -0 as the seed; real rounds once', () => {
    expect(signed(hashDoubleText('1.5'))).toBe(-2826383321045882978n);
    expect(hashDoubleText('-0')).toEqual(PARTITION_SEED);
    expect(hashDoubleText('1e400')).toBeUndefined();
    expect(parseReal('0.1')).toBe(Math.fround(0.1));
    expect(parseReal('3.5e38')).toBeUndefined();
  });

  it('numeric: base-10000 digits, sign ignored, typmod rounding half away from zero', () => {
    expect(signed(hashNumericText('-123.4500', -1))).toBe(2906717616349633485n);
    expect(signed(hashNumericText('123.45', -1))).toBe(2906717616349633485n);
    expect(signed(hashNumericText('0.00012', -1))).toBe(3073084697884637736n);
    expect(toNumericDigits(parseNumeric('123456.78') as never)).toEqual({ digits: [12, 3456, 7800], weight: 1 });
    expect(toNumericDigits(parseNumeric('0.00012') as never)).toEqual({ digits: [1, 2000], weight: -1 });
    const typmod = ((12 << 16) | 2) + 4;
    expect(numericTypmod(typmod)).toEqual({ precision: 12, scale: 2 });
    expect(applyTypmod(parseNumeric('0.005')!, numericTypmod(typmod))).toEqual(parseNumeric('0.01'));
    expect(applyTypmod(parseNumeric('-0.005')!, numericTypmod(typmod))).toEqual(parseNumeric('-0.01'));
    expect(applyTypmod(parseNumeric('9999999999.995')!, numericTypmod(typmod))).toBeUndefined();
    expect(hashNumericText('NaN', -1)).toEqual(PARTITION_SEED);
    expect(hashNumericText('0.000', -1)).toEqual({ hi: PARTITION_SEED.hi, lo: PARTITION_SEED.lo - 1 });
  });

  it('text, varchar(n) and char(n) as PostgreSQL stores and hashes them', () => {
    expect(signed(hashUtf8('日本🙂'))).toBe(-8714837132988465120n);
    expect(hashVarcharText('abc   ', 4 + 4)).toEqual(hashUtf8('abc '));
    expect(hashVarcharText('abcdef', 4 + 4)).toBeUndefined();
    expect(hashBpcharText('ab   ', 5 + 4)).toEqual(hashUtf8('ab'));
    expect(hashBpcharText('🙂🙂🙂🙂🙂', 5 + 4)).toEqual(hashUtf8('🙂🙂🙂🙂🙂'));
  });

  it('boolean spellings', () => {
    expect(['t', 'TRUE', ' yes ', 'on', '1', 'tru'].map(parseBool)).toEqual([true, true, true, true, true, true]);
    expect(['f', 'of', 'off', 'n', '0'].map(parseBool)).toEqual([false, false, false, false, false]);
    expect(['o', 'maybe', '', 'truee'].map(parseBool)).toEqual([undefined, undefined, undefined, undefined]);
  });

  it('uuid spellings', () => {
    const bytes = parseUuid('a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11');
    expect(signed(hashBytes(bytes!))).toBe(424513190990560493n);
    for (const s of ['A0EEBC999C0B4EF8BB6D6BB9BD380A11', '{a0eebc99-9c0b4ef8-bb6d6bb9-bd380a11}', 'a0ee-bc99-9c0b-4ef8-bb6d-6bb9-bd38-0a11']) expect(parseUuid(s)).toEqual(bytes);
    for (const s of ['a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11-', '{a0eebc999c0b4ef8bb6d6bb9bd380a11', ' a0eebc999c0b4ef8bb6d6bb9bd380a11']) expect(parseUuid(s)).toBeUndefined();
  });

  it('timestamps: microseconds since 2000, fractions rounded like rint, offsets east of UTC', () => {
    expect(signed(hashTimestampText('2024-01-01 10:00:00.5', -1, false, false))).toBe(-1551277943840585828n);
    expect(hashTimestampText('2024-01-01T12:00:00.5+02', -1, true, false)).toEqual(hashTimestampText('2024-01-01 10:00:00.5', -1, false, false));
    expect(hashTimestampText('2024-01-01 10:00:00', -1, true, false)).toBeUndefined(); // the session's zone: the server knows its rules
    expect(hashTimestampText('2024-01-01 10:00:00', -1, true, true)).toEqual(hashTimestampText('2024-01-01 10:00:00Z', -1, true, false));
  });
});
