/**
 * Which hash function reads a space-column value written as PostgreSQL text, by the column's type
 * as the access node's catalog has it. A hasher answers undefined when the value is not in a form
 * it reads exactly like the server; the router then asks the server (serverHash.ts).
 */
import type { Hash64 } from './hash.js';
import { hashByteaText, hashUuidText } from './keys/binaryish.js';
import { hashBoolText } from './keys/bool.js';
import { hashDateText, hashTimestampText, hashTimeText, isUtcZone } from './keys/datetime.js';
import { hashDoubleText, hashRealText } from './keys/float.js';
import { hashIntegerText } from './keys/integer.js';
import { hashInetText, hashMacaddrText } from './keys/network.js';
import { hashNumericText } from './keys/numeric.js';
import { hashBpcharText, hashUtf8, hashVarcharText } from './keys/text.js';

/** Built-in type OIDs (stable across PostgreSQL versions). */
export const TYPE_OID = {
  bool: 16, bytea: 17, int8: 20, int2: 21, int4: 23, text: 25, float4: 700, float8: 701, cidr: 650,
  macaddr: 829, inet: 869, bpchar: 1042, varchar: 1043, date: 1082, time: 1083, timestamp: 1114,
  timestamptz: 1184, interval: 1186, timetz: 1266, numeric: 1700, uuid: 2950, jsonb: 3802,
} as const;

export interface KeyColumnType {
  readonly typeOid: number;
  readonly typmod: number;
  /**
   * The partition key hashes with the type's default hash operator class and, for text, a
   * deterministic collation: what the hashers here reproduce. Otherwise every value goes to the server.
   */
  readonly native: boolean;
}

export type TextHasher = (text: string) => Hash64 | undefined;

const never: TextHasher = () => undefined;

/** `timeZone`: the session's, which reads a timestamptz written without an offset. */
export function textHasher(column: KeyColumnType, timeZone: string): TextHasher {
  if (!column.native) return never;
  const { typmod } = column;
  switch (column.typeOid) {
    case TYPE_OID.int2: return (t) => hashIntegerText(t, 2);
    case TYPE_OID.int4: return (t) => hashIntegerText(t, 4);
    case TYPE_OID.int8: return (t) => hashIntegerText(t, 8);
    case TYPE_OID.float4: return hashRealText;
    case TYPE_OID.float8: return hashDoubleText;
    case TYPE_OID.numeric: return (t) => hashNumericText(t, typmod);
    case TYPE_OID.bool: return hashBoolText;
    case TYPE_OID.text: return hashUtf8;
    case TYPE_OID.varchar: return (t) => hashVarcharText(t, typmod);
    case TYPE_OID.bpchar: return (t) => hashBpcharText(t, typmod);
    case TYPE_OID.uuid: return hashUuidText;
    case TYPE_OID.bytea: return hashByteaText;
    case TYPE_OID.date: return hashDateText;
    case TYPE_OID.time: return (t) => hashTimeText(t, typmod);
    case TYPE_OID.timestamp: return (t) => hashTimestampText(t, typmod, false, false);
    case TYPE_OID.timestamptz: {
      const utc = isUtcZone(timeZone);
      return (t) => hashTimestampText(t, typmod, true, utc);
    }
    case TYPE_OID.inet: return (t) => hashInetText(t, false);
    case TYPE_OID.cidr: return (t) => hashInetText(t, true);
    case TYPE_OID.macaddr: return hashMacaddrText;
    // interval, timetz, jsonb and arrays: the server's hash, cached per value.
    default: return never;
  }
}
