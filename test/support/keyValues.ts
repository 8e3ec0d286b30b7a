/**
 * Random space-column values for the router's property tests, per type, as text a client could
 * send: canonical forms, the odd spellings PostgreSQL also reads (signs, spaces, exponents,
 * braces, other cases), edges (limits, zero, -0, NaN, leap days, typmod rounding), and some
 * invalid ones. Deterministic for a seed, so a failure can be replayed.
 */

/** mulberry32: a small seeded PRNG. */
export function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Rand = () => number;
const int = (r: Rand, min: number, max: number): number => min + Math.floor(r() * (max - min + 1));
const pick = <T>(r: Rand, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)] as T;
const digits = (r: Rand, n: number): string => Array.from({ length: n }, () => String(int(r, 0, 9))).join('');
const pad = (n: number, w: number): string => String(n).padStart(w, '0');
const spaces = (r: Rand, s: string): string => (r() < 0.1 ? ` ${s}  ` : r() < 0.05 ? `\t${s}\n` : s);

function bigIntIn(r: Rand, bits: number): bigint {
  const v = BigInt.asIntN(bits, BigInt(Math.floor(r() * 2 ** 32)) * 2n ** 32n + BigInt(Math.floor(r() * 2 ** 32)));
  // Mostly small numbers (device ids), sometimes anything in range.
  return r() < 0.5 ? BigInt(int(r, -5000, 5000)) : v;
}

function integer(bits: 16 | 32 | 64): (r: Rand) => string {
  const edges = {
    16: ['32767', '-32768', '32768', '-32769'],
    32: ['2147483647', '-2147483648', '2147483648'],
    64: ['9223372036854775807', '-9223372036854775808', '9223372036854775808'],
  }[bits];
  return (r) => {
    const x = r();
    if (x < 0.05) return pick(r, [...edges, '0', '-0', '+17', '007', ' 42 ', '1_000', '0x1F', '12a', '']);
    const v = bigIntIn(r, bits);
    return spaces(r, String(v));
  };
}

function float(single: boolean): (r: Rand) => string {
  return (r) => {
    const x = r();
    if (x < 0.08) return pick(r, ['0', '-0', 'NaN', 'nan', 'Infinity', '-Infinity', 'inf', '-INF', '1e308', '1e400', '1e-400', '3.4028235e38', '3.5e38', '1.17549435e-38', '1e-45', '0x1p3', '.5', '5.', '1.5E+3', ' 2.5 ', '-NaN']);
    if (x < 0.4) return spaces(r, `${int(r, -10000, 10000)}.${digits(r, int(r, 0, 6))}`);
    if (x < 0.7) {
      // A random bit pattern, printed exactly.
      const buf = new DataView(new ArrayBuffer(8));
      if (single) buf.setFloat32(0, new Float32Array([r() * 2 ** int(r, -140, 127) * (r() < 0.5 ? -1 : 1)])[0] as number);
      else {
        buf.setUint32(0, Math.floor(r() * 2 ** 32));
        buf.setUint32(4, Math.floor(r() * 2 ** 32));
      }
      const v = single ? buf.getFloat32(0) : buf.getFloat64(0);
      return Number.isFinite(v) ? String(v) : '1.5';
    }
    // Many digits: where rounding to double then to float could go wrong.
    return `${digits(r, int(r, 1, 9))}.${digits(r, int(r, 1, 25))}e${int(r, -40, 38)}`;
  };
}

function numeric(r: Rand): string {
  const x = r();
  if (x < 0.08) return pick(r, ['0', '-0', '0.000', 'NaN', 'Infinity', '-inf', '1e5', '1.5E-3', '-0.0005', '.5', '5.', ' 12.30 ', '1_000', '99999999999.995', '0.005', '-0.005', '12345.67891', '1e1001']);
  const int_ = r() < 0.3 ? '0' : digits(r, int(r, 1, 12));
  const frac = digits(r, int(r, 0, 10));
  const s = `${r() < 0.3 ? '-' : ''}${int_}${frac === '' ? '' : `.${frac}`}${r() < 0.1 ? `e${int(r, -8, 8)}` : ''}`;
  return spaces(r, s);
}

const unicode = ['a', 'Z', 'é', 'ß', '日本', '🙂', ' ', '"', "'", '\\', ',', '-', '_', '0', 'Ω'];
function text(r: Rand): string {
  if (r() < 0.05) return pick(r, ['', ' ', 'a ', ' a', 'host_1', 'NULL', '\\N']);
  return Array.from({ length: int(r, 1, 14) }, () => pick(r, unicode)).join('');
}
function varchar(n: number): (r: Rand) => string {
  return (r) => {
    const t = text(r);
    return r() < 0.2 ? `${t.slice(0, n)}${' '.repeat(int(r, 0, 4))}` : t;
  };
}

function uuid(r: Rand): string {
  const hex = Array.from({ length: 32 }, () => '0123456789abcdef'[int(r, 0, 15)]).join('');
  const x = r();
  if (x < 0.6) return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
  if (x < 0.7) return hex.toUpperCase();
  if (x < 0.8) return `{${hex}}`;
  if (x < 0.9) return hex.replace(/(.{4})/g, '$1-').slice(0, -1);
  return pick(r, [`${hex}-`, `{${hex}`, hex.slice(1), ` ${hex}`]);
}

function bytea(r: Rand): string {
  const bytes = Array.from({ length: int(r, 0, 20) }, () => int(r, 0, 255));
  if (r() < 0.6) return `\\x${bytes.map((b) => b.toString(16).padStart(2, '0')).join(r() < 0.1 ? ' ' : '')}`;
  return bytes.map((b) => (b >= 32 && b < 127 && b !== 92 ? String.fromCharCode(b) : `\\${b.toString(8).padStart(3, '0')}`)).join('');
}

function date(r: Rand): string {
  const y = int(r, 1, 9999);
  const x = r();
  if (x < 0.05) return pick(r, ['2024-02-29', '2023-02-29', '2000-01-01', 'epoch', 'infinity', '-infinity', 'today', '0001-01-01', '1999-12-31 BC', 'Jan 2 2024', '01/02/2024', '20240102']);
  return spaces(r, `${pad(y, 4)}-${pad(int(r, 1, 12), 2)}-${pad(int(r, 1, 28), 2)}`);
}

function time(r: Rand): string {
  const x = r();
  if (x < 0.05) return pick(r, ['24:00:00', '23:59:59.9999999', '00:00', 'allballs', '12:00 PM', '25:00', '10:61']);
  const frac = r() < 0.5 ? `.${digits(r, int(r, 1, 9))}` : '';
  return `${pad(int(r, 0, 23), 2)}:${pad(int(r, 0, 59), 2)}${r() < 0.8 ? `:${pad(int(r, 0, 59), 2)}${frac}` : ''}`;
}

function timestamp(withZone: boolean): (r: Rand) => string {
  return (r) => {
    if (r() < 0.05) return pick(r, ['infinity', '-infinity', 'epoch', '2024-03-10 02:30:00', '2024-11-03 01:30:00', '2024-01-01 00:00:00 Europe/Paris', '2024-01-01 00:00 PST', 'Jan 1 2024 10:00', '2024-01-01T10:00:00.5Z', '1999-01-08 04:05:06 BC']);
    const d = date(r).trim();
    const zone = withZone && r() < 0.6 ? pick(r, ['Z', '+00', '+02', '-05:30', '+0545', ' +01:00', '-03', '+14']) : '';
    return `${d}${pick(r, [' ', 'T'])}${time(r)}${zone}`;
  };
}

function interval(r: Rand): string {
  return pick(r, [`${int(r, -100, 100)} days`, `${int(r, 0, 48)} hours`, `${int(r, 1, 30)} days ${int(r, 0, 23)}:${pad(int(r, 0, 59), 2)}:00`, `P${int(r, 0, 5)}DT${int(r, 0, 23)}H`, `1 mon`, `30 days`, `-1 year 2 mons`, `${int(r, 0, 1000)} minutes`, '1 day -24 hours']);
}

function inet(cidr: boolean): (r: Rand) => string {
  return (r) => {
    const bytes = [int(r, 0, 255), int(r, 0, 255), int(r, 0, 255), int(r, 0, 255)];
    if (r() < 0.1) return pick(r, ['::1', '2001:db8::/32', '10', '10.1.2', '010.1.1.1', '192.168.1.0', 'fe80::1%1']);
    const bits = int(r, 0, 32);
    if (cidr) {
      const mask = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
      const v = ((((bytes[0]! << 24) | (bytes[1]! << 16) | (bytes[2]! << 8) | bytes[3]!) >>> 0) & mask) >>> 0;
      return `${v >>> 24}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}/${bits}`;
    }
    return `${bytes.join('.')}${r() < 0.5 ? `/${bits}` : ''}`;
  };
}

function macaddr(r: Rand): string {
  const hex = Array.from({ length: 6 }, () => int(r, 0, 255).toString(16).padStart(2, '0'));
  return pick(r, [hex.join(':'), hex.join('-'), hex.join(':').toUpperCase(), `${hex.slice(0, 3).join('')}:${hex.slice(3).join('')}`, hex.join(''), `${hex[0]}${hex[1]}.${hex[2]}${hex[3]}.${hex[4]}${hex[5]}`]);
}

function jsonb(r: Rand): string {
  return pick(r, [`{"a": ${int(r, 0, 100)}, "b": [1, 2, "x"]}`, `[${int(r, 0, 9)}, true, null]`, `"${text(r).replace(/["\\]/g, '')}"`, `${int(r, -100, 100)}.5`, '{}', '[]', 'null', `{"k": {"n": ${int(r, 0, 5)}}}`, '{"b": 1, "a": 2}']);
}

/** A space column type of the test's hypertables, with its value generator. */
export interface KeyTypeCase {
  /** Column type as the spec writes it. */
  readonly type: string;
  readonly values: (r: Rand) => string;
}

export const KEY_TYPE_CASES: readonly KeyTypeCase[] = [
  { type: 'smallint', values: integer(16) },
  { type: 'integer', values: integer(32) },
  { type: 'bigint', values: integer(64) },
  { type: 'real', values: float(true) },
  { type: 'double precision', values: float(false) },
  { type: 'numeric', values: numeric },
  { type: 'numeric(12,2)', values: numeric },
  { type: 'boolean', values: (r) => pick(r, ['t', 'f', 'true', 'FALSE', 'yes', 'no', 'on', 'off', '1', '0', ' tr ', 'y', 'of', 'o', 'maybe']) },
  { type: 'text', values: text },
  { type: 'varchar(8)', values: varchar(8) },
  { type: 'char(5)', values: varchar(5) },
  { type: 'uuid', values: uuid },
  { type: 'bytea', values: bytea },
  { type: 'date', values: date },
  { type: 'time', values: time },
  { type: 'time(3)', values: time },
  { type: 'timestamp', values: timestamp(false) },
  { type: 'timestamp(2)', values: timestamp(false) },
  { type: 'timestamptz', values: timestamp(true) },
  { type: 'interval', values: interval },
  { type: 'timetz', values: (r) => `${time(r)}${pick(r, ['+00', '-05', '+05:30'])}` },
  { type: 'inet', values: inet(false) },
  { type: 'cidr', values: inet(true) },
  { type: 'macaddr', values: macaddr },
  { type: 'jsonb', values: jsonb },
  { type: 'integer[]', values: (r) => `{${Array.from({ length: int(r, 0, 4) }, () => (r() < 0.1 ? 'NULL' : String(int(r, -99, 99)))).join(',')}}` },
  { type: 'text[]', values: (r) => `{${Array.from({ length: int(r, 1, 3) }, () => `"${text(r).replace(/["\\]/g, '')}"`).join(',')}}` },
];
