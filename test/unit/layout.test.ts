import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { SpecError } from '../../src/errors.js';
import { clientConfig } from '../../src/nodes/connect.js';
import { INTERNAL_SCHEMA, planLayout, type ClusterLayout } from '../../src/plan/layout.js';
import { derivedName, truncateBytes } from '../../src/plan/names.js';
import type { ClusterSpecInput } from '../../src/spec/schema.js';
import { validateSpec } from '../../src/spec/validate.js';

const bytes = (s: string): number => Buffer.byteLength(s, 'utf8');
const hash8 = (s: string): string => createHash('sha256').update(s).digest('hex').slice(0, 8);

type TableInput = NonNullable<ClusterSpecInput['hypertables']>[number];

function table(name: string, extra: Partial<TableInput> = {}): TableInput {
  return {
    name,
    columns: [
      { name: 'time', type: 'timestamptz', notNull: true },
      { name: 'device_id', type: 'integer', notNull: true },
    ],
    timeColumn: 'time',
    spaceColumn: 'device_id',
    shards: 2,
    ...extra,
  };
}

function layoutOf(extra: Partial<ClusterSpecInput> = {}): ClusterLayout {
  return planLayout(
    validateSpec({
      version: 1,
      accessNode: { name: 'access', url: 'postgres://postgres@access.internal/app' },
      dataNodes: [
        { name: 'dn1', url: 'postgres://postgres@dn1.internal/app' },
        { name: 'dn2', url: 'postgres://postgres@dn2.internal:5433/app' },
        { name: 'dn3', url: 'postgres://postgres@dn3.internal/app' },
      ],
      fdw: { serviceRole: { password: { env: 'SVC' } } },
      ...extra,
    }),
  );
}

describe('shard placement', () => {
  it('places shards round-robin over all data nodes by default', () => {
    const [h] = layoutOf({ hypertables: [table('metrics', { shards: 4 })] }).hypertables;
    expect(h!.dataNodes).toEqual(['dn1', 'dn2', 'dn3']);
    expect(h!.shards).toEqual([
      { index: 0, modulus: 4, remainder: 0, dataNode: 'dn1', server: 'hypershard_dn1_0', table: { schema: '_hypershard', name: 'metrics_s0' }, chunkPrefix: 'metrics_s0' },
      { index: 1, modulus: 4, remainder: 1, dataNode: 'dn2', server: 'hypershard_dn2_1', table: { schema: '_hypershard', name: 'metrics_s1' }, chunkPrefix: 'metrics_s1' },
      { index: 2, modulus: 4, remainder: 2, dataNode: 'dn3', server: 'hypershard_dn3_2', table: { schema: '_hypershard', name: 'metrics_s2' }, chunkPrefix: 'metrics_s2' },
      { index: 3, modulus: 4, remainder: 3, dataNode: 'dn1', server: 'hypershard_dn1_3', table: { schema: '_hypershard', name: 'metrics_s3' }, chunkPrefix: 'metrics_s3' },
    ]);
  });

  it('places shards round-robin over the hypertable\'s own data nodes, in its order', () => {
    const [h] = layoutOf({ hypertables: [table('metrics', { shards: 5, dataNodes: ['dn3', 'dn1'] })] }).hypertables;
    expect(h!.shards.map((s) => [s.remainder, s.dataNode, s.server])).toEqual([
      [0, 'dn3', 'hypershard_dn3_0'],
      [1, 'dn1', 'hypershard_dn1_1'],
      [2, 'dn3', 'hypershard_dn3_2'],
      [3, 'dn1', 'hypershard_dn1_3'],
      [4, 'dn3', 'hypershard_dn3_4'],
    ]);
  });

  it('puts shard tables in the internal schema, whatever the hypertable\'s schema', () => {
    expect(INTERNAL_SCHEMA).toBe('_hypershard');
    const [h] = layoutOf({ hypertables: [table('m', { schema: 'sensors' })] }).hypertables;
    expect(h!.table).toEqual({ schema: 'sensors', name: 'm' });
    expect(h!.shards.map((s) => s.table)).toEqual([
      { schema: '_hypershard', name: 'm_s0' },
      { schema: '_hypershard', name: 'm_s1' },
    ]);
  });
});

describe('FDW servers', () => {
  it('makes one server per (data node, shard slot), shared by tables with the same slots', () => {
    const layout = layoutOf({
      hypertables: [
        table('a', { shards: 2, dataNodes: ['dn1', 'dn2'] }),
        table('b', { shards: 2, dataNodes: ['dn1', 'dn2'] }),
        table('c', { shards: 4, dataNodes: ['dn1', 'dn2'] }),
        table('d', { shards: 2, dataNodes: ['dn2'] }),
      ],
    });
    expect(layout.hypertables.map((h) => h.shards.map((s) => s.server))).toEqual([
      ['hypershard_dn1_0', 'hypershard_dn2_1'],
      ['hypershard_dn1_0', 'hypershard_dn2_1'],
      ['hypershard_dn1_0', 'hypershard_dn2_1', 'hypershard_dn1_2', 'hypershard_dn2_3'],
      ['hypershard_dn2_0', 'hypershard_dn2_1'],
    ]);
    // Sorted by name, each once.
    expect(layout.servers.map((s) => [s.name, s.dataNode])).toEqual([
      ['hypershard_dn1_0', 'dn1'],
      ['hypershard_dn1_2', 'dn1'],
      ['hypershard_dn2_0', 'dn2'],
      ['hypershard_dn2_1', 'dn2'],
      ['hypershard_dn2_3', 'dn2'],
    ]);
  });

  it('makes no server for a data node that holds no shard', () => {
    const layout = layoutOf({ hypertables: [table('a', { shards: 1 })] });
    expect(layout.servers.map((s) => s.name)).toEqual(['hypershard_dn1_0']);
  });

  it('sets the options in a fixed order: address, then tuning, then extra options sorted by name', () => {
    const layout = layoutOf({
      dataNodes: [
        { name: 'dn1', url: 'postgres://postgres@dn1.internal/app' },
        { name: 'dn2', url: 'postgres://admin@[fd00::2]:6432/my%20db?sslmode=require', fdw: { options: { sslmode: 'verify-full', application_name: 'from-node' } } },
        { name: 'dn3', url: 'postgres://postgres@127.0.0.1:5555/app', fdw: { host: 'dn3.cluster', port: 5432, dbname: 'other' } },
      ],
      fdw: {
        serviceRole: { password: { env: 'SVC' } },
        fetchSize: 5000,
        batchSize: 100,
        fdwTupleCost: 0.05,
        fdwStartupCost: 10,
        asyncCapable: false,
        connectionOptions: { sslmode: 'require', application_name: 'hypershard', gssencmode: 'disable' },
        timeouts: { connect: 5, tcpUserTimeout: 9000 },
      },
      hypertables: [table('a', { shards: 3 })],
    });
    expect(layout.servers.map((s) => [s.name, s.options])).toEqual([
      ['hypershard_dn1_0', [
        ['host', 'dn1.internal'],
        ['port', '5432'],
        ['dbname', 'app'],
        ['async_capable', 'false'],
        ['fetch_size', '5000'],
        ['batch_size', '100'],
        ['fdw_tuple_cost', '0.05'],
        ['fdw_startup_cost', '10'],
        ['keep_connections', 'true'],
        ['connect_timeout', '5'],
        ['keepalives', '1'],
        ['keepalives_idle', '10'],
        ['keepalives_interval', '5'],
        ['keepalives_count', '3'],
        ['tcp_user_timeout', '9000'],
        ['application_name', 'hypershard'],
        ['gssencmode', 'disable'],
        ['sslmode', 'require'],
      ]],
      // Brackets of an IPv6 host dropped, the database name decoded, node options win.
      ['hypershard_dn2_1', [
        ['host', 'fd00::2'],
        ['port', '6432'],
        ['dbname', 'my db'],
        ['async_capable', 'false'],
        ['fetch_size', '5000'],
        ['batch_size', '100'],
        ['fdw_tuple_cost', '0.05'],
        ['fdw_startup_cost', '10'],
        ['keep_connections', 'true'],
        ['connect_timeout', '5'],
        ['keepalives', '1'],
        ['keepalives_idle', '10'],
        ['keepalives_interval', '5'],
        ['keepalives_count', '3'],
        ['tcp_user_timeout', '9000'],
        ['application_name', 'from-node'],
        ['gssencmode', 'disable'],
        ['sslmode', 'verify-full'],
      ]],
      // fdw.host/port/dbname replace the URL's.
      ['hypershard_dn3_2', [
        ['host', 'dn3.cluster'],
        ['port', '5432'],
        ['dbname', 'other'],
        ['async_capable', 'false'],
        ['fetch_size', '5000'],
        ['batch_size', '100'],
        ['fdw_tuple_cost', '0.05'],
        ['fdw_startup_cost', '10'],
        ['keep_connections', 'true'],
        ['connect_timeout', '5'],
        ['keepalives', '1'],
        ['keepalives_idle', '10'],
        ['keepalives_interval', '5'],
        ['keepalives_count', '3'],
        ['tcp_user_timeout', '9000'],
        ['application_name', 'hypershard'],
        ['gssencmode', 'disable'],
        ['sslmode', 'require'],
      ]],
    ]);
  });

  it('uses the defaults of the spec for the tuning options', () => {
    const [server] = layoutOf({ hypertables: [table('a', { shards: 1 })] }).servers;
    expect(server!.options).toEqual([
      ['host', 'dn1.internal'],
      ['port', '5432'],
      ['dbname', 'app'],
      ['async_capable', 'true'],
      ['fetch_size', '10000'],
      ['batch_size', '1000'],
      ['fdw_tuple_cost', '0.2'],
      ['fdw_startup_cost', '100'],
      ['keep_connections', 'true'],
      ['connect_timeout', '10'],
      ['keepalives', '1'],
      ['keepalives_idle', '10'],
      ['keepalives_interval', '5'],
      ['keepalives_count', '3'],
      ['tcp_user_timeout', '30000'],
    ]);
  });

  it('sets no timeout options with fdw.timeouts: false', () => {
    const [server] = layoutOf({ fdw: { serviceRole: { password: { env: 'SVC' } }, timeouts: false }, hypertables: [table('a', { shards: 1 })] }).servers;
    expect(server!.options.map(([k]) => k)).toEqual(['host', 'port', 'dbname', 'async_capable', 'fetch_size', 'batch_size', 'fdw_tuple_cost', 'fdw_startup_cost', 'keep_connections']);
  });

  // pg-connection-string (how the CLI connects) decodes the path with decodeURI, which keeps
  // %23, %3F, %24 … encoded, but turns %25 and %20 into "%" and " ". The FDW dbname must be
  // the database the CLI connects to, whatever the URL spells.
  it.each(['a%23b', 'a%2523b', 'my%20db', 'a%3Fb%24c', 'caf%C3%A9', 'x%2Fy'])('makes the FDW dbname the database the CLI connects to (%s)', (path) => {
    const url = `postgres://postgres@dn1.internal:5432/${path}`;
    const layout = layoutOf({
      dataNodes: [{ name: 'dn1', url }],
      hypertables: [table('a', { shards: 1 })],
    });
    const dbname = layout.servers[0]!.options.find(([key]) => key === 'dbname')![1];
    expect(dbname).toBe(clientConfig(url).database);
  });

  it('reads the database from the path even when the query names SSL files', () => {
    const url = 'postgres://postgres@dn1.internal:5432/a%23b?sslrootcert=/nonexistent/ca.pem&sslmode=verify-full';
    const [server] = layoutOf({ dataNodes: [{ name: 'dn1', url }], hypertables: [table('a', { shards: 1 })] }).servers;
    expect(server!.options.find(([key]) => key === 'dbname')![1]).toBe('a%23b');
  });
});

describe('derived names', () => {
  it('keeps short names readable', () => {
    expect(derivedName('metrics', '_s0')).toBe('metrics_s0');
    expect(derivedName('a'.repeat(60), '_s0')).toBe(`${'a'.repeat(60)}_s0`);
  });

  it('cuts a long base and adds a hash of the full name, keeping the suffix', () => {
    const base = 'a'.repeat(63);
    const name = derivedName(base, '_s12');
    // 63 = 50 bytes of base + "_" + 8 hex + "_s12"
    expect(name).toBe(`${'a'.repeat(50)}_${hash8(`${base}_s12`)}_s12`);
    expect(bytes(name)).toBe(63);
  });

  it('honours a smaller budget', () => {
    const name = derivedName('metrics_with_a_rather_long_name_s0', '', 20);
    expect(name).toBe(`metrics_wit_${hash8('metrics_with_a_rather_long_name_s0')}`);
    expect(bytes(name)).toBe(20);
  });

  it('gives a 63-byte table shard names, chunk prefixes and index names of at most 63 bytes', () => {
    const long = 'm'.repeat(63); // the longest name a spec accepts
    expect(bytes(long)).toBe(63);
    const [h] = layoutOf({ hypertables: [table(long, { shards: 3, indexes: [{ columns: ['device_id', 'time'] }] })] }).hypertables;
    for (const shard of h!.shards) {
      expect(bytes(shard.table.name)).toBeLessThanOrEqual(63);
      // Chunk names are <prefix>_YYYYMMDDTHHMMSS: 16 more bytes.
      expect(bytes(shard.chunkPrefix)).toBeLessThanOrEqual(47);
      expect(shard.table.name.endsWith(`_s${shard.index}`)).toBe(true);
    }
    expect(h!.shards[0]!.table.name).toBe(`${'m'.repeat(51)}_${hash8(`${long}_s0`)}_s0`);
    expect(h!.indexes[0]!.name).toBe(`${'m'.repeat(50)}_${hash8(`${long}_device_id_time_idx`)}_idx`);
    expect(new Set(h!.shards.map((s) => s.table.name)).size).toBe(3);
    expect(new Set(h!.shards.map((s) => s.chunkPrefix)).size).toBe(3);
  });

  it('keeps two 63-byte tables that share their first 60 bytes apart (the truncation collision)', () => {
    const prefix = 'x'.repeat(60);
    const layout = layoutOf({
      hypertables: [
        table(`${prefix}_aa`, { shards: 2, indexes: [{ columns: ['device_id'] }] }),
        table(`${prefix}_bb`, { shards: 2, indexes: [{ columns: ['device_id'] }] }),
      ],
    });
    const [a, b] = layout.hypertables;
    // PostgreSQL would have cut both `<prefix>_aa_s0` and `<prefix>_bb_s0` to the same 63 bytes.
    expect(a!.shards.map((s) => s.table.name)).toEqual([
      `${'x'.repeat(51)}_${hash8(`${prefix}_aa_s0`)}_s0`,
      `${'x'.repeat(51)}_${hash8(`${prefix}_aa_s1`)}_s1`,
    ]);
    expect(b!.shards.map((s) => s.table.name)).toEqual([
      `${'x'.repeat(51)}_${hash8(`${prefix}_bb_s0`)}_s0`,
      `${'x'.repeat(51)}_${hash8(`${prefix}_bb_s1`)}_s1`,
    ]);
    const all = (pick: (h: (typeof layout.hypertables)[number]) => string[]): string[] => layout.hypertables.flatMap(pick);
    const shardTables = all((h) => h.shards.map((s) => s.table.name));
    const prefixes = all((h) => h.shards.map((s) => s.chunkPrefix));
    const indexes = all((h) => h.indexes.map((i) => i.name));
    expect(new Set(shardTables).size).toBe(4);
    expect(new Set(prefixes).size).toBe(4);
    expect(new Set(indexes).size).toBe(2);
    for (const name of [...shardTables, ...prefixes, ...indexes]) expect(bytes(name)).toBeLessThanOrEqual(63);
    for (const p of prefixes) expect(bytes(p)).toBeLessThanOrEqual(47);
  });

  it('rejects a derived name that collides with another hypertable\'s', () => {
    const error = (() => {
      try {
        layoutOf({ hypertables: [table('a'), table('b', { indexes: [{ name: 'a', columns: ['device_id'] }] })] });
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(error).toBeInstanceOf(SpecError);
    expect((error as SpecError).issues).toEqual([
      { path: 'hypertables[1] (b)', message: 'derived name "public.a" collides with the one of hypertables[0] (a); shorten one of the names' },
    ]);
  });

  // Indexes and tables share a namespace per schema: these would fail on every data node with
  // `relation "…" already exists`.
  const collision = (extra: Partial<TableInput>): SpecError => {
    try {
      layoutOf({ hypertables: [table('m', extra)] });
    } catch (e) {
      expect(e).toBeInstanceOf(SpecError);
      return e as SpecError;
    }
    throw new Error('expected a SpecError');
  };

  it('rejects an index named like its own hypertable', () => {
    expect(collision({ indexes: [{ name: 'm', columns: ['device_id'] }] }).issues).toEqual([
      { path: 'hypertables[0] (m)', message: 'indexes[0] and the hypertable are both named "public.m"; give the index a name of its own' },
    ]);
  });

  it('rejects two unnamed indexes on the same columns (both derive m_device_id_idx)', () => {
    expect(collision({ indexes: [{ columns: ['device_id'] }, { columns: ['device_id'], method: 'hash' }] }).issues).toEqual([
      { path: 'hypertables[0] (m)', message: 'indexes[1] and indexes[0] are both named "public.m_device_id_idx"; give the index a name of its own' },
    ]);
  });

  it('rejects a named index that takes the name another index derives', () => {
    expect(collision({ indexes: [{ columns: ['time'] }, { name: 'm_time_idx', columns: ['device_id'] }] }).issues).toEqual([
      { path: 'hypertables[0] (m)', message: 'indexes[1] and indexes[0] are both named "public.m_time_idx"; give the index a name of its own' },
    ]);
  });

  it('accepts indexes of one table whose names differ', () => {
    const [h] = layoutOf({ hypertables: [table('m', { indexes: [{ columns: ['device_id'] }, { name: 'by_device', columns: ['device_id'], method: 'hash' }] })] }).hypertables;
    expect(h!.indexes.map((i) => i.name)).toEqual(['m_device_id_idx', 'by_device']);
  });
});

describe('truncateBytes', () => {
  it('keeps text that fits', () => {
    expect(truncateBytes('abc', 3)).toBe('abc');
    expect(truncateBytes('', 0)).toBe('');
  });

  it('never splits a UTF-8 character', () => {
    expect(truncateBytes('éé', 3)).toBe('é');
    expect(truncateBytes('数据', 5)).toBe('数');
    expect(truncateBytes('数据', 2)).toBe('');
    expect(truncateBytes('a数', 3)).toBe('a');
    // An astral character is 4 bytes and 2 UTF-16 units; it is kept or dropped whole.
    expect(truncateBytes('a😀b', 4)).toBe('a');
    expect(truncateBytes('a😀b', 5)).toBe('a😀');
  });
});

describe('derivedName with multi-byte characters', () => {
  it.each([
    ['é', 2],
    ['数', 3],
    ['😀', 4],
  ])('cuts a long base of %s at a character boundary', (char, size) => {
    const base = char.repeat(Math.ceil(64 / size));
    for (const suffix of ['_s0', '_s7', '_s123', '_idx', '']) {
      const name = derivedName(base, suffix);
      expect(bytes(name)).toBeLessThanOrEqual(63);
      // Round-trips through UTF-8: no half character (which would become U+FFFD).
      expect(Buffer.from(name, 'utf8').toString('utf8')).toBe(name);
      expect(name).not.toContain('\uFFFD');
      expect(name.endsWith(suffix)).toBe(true);
      const kept = name.slice(0, name.length - suffix.length - 9);
      expect(kept).toBe(char.repeat(Array.from(kept).length));
    }
  });
});

describe('roles', () => {
  it('sorts and de-duplicates privileges, and points grants at the hypertable', () => {
    const layout = layoutOf({
      hypertables: [table('m', { schema: 'sensors' })],
      roles: [{ name: 'w', grants: [{ on: 'm', privileges: ['UPDATE', 'INSERT', 'SELECT', 'INSERT'] }] }],
    });
    expect(layout.roles).toEqual([
      { name: 'w', login: false, inherit: true, connectionLimit: -1, memberOf: [], grants: [{ table: { schema: 'sensors', name: 'm' }, privileges: ['INSERT', 'SELECT', 'UPDATE'] }] },
    ]);
    expect(layout.roles[0]!.grants[0]!.table).toBe(layout.hypertables[0]!.table);
  });
});
