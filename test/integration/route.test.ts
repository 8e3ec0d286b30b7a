/**
 * The shard router against the access node's own routing, on real clusters: for random values of
 * every space-column type the spec allows (canonical, oddly spelled and invalid), under two sets
 * of session settings, the partition the router computes is the one the access node puts the row
 * in when the same text is COPYed through it; values the router refuses are refused by the server
 * too. Placement is read from the catalogs, including a shard moved by rebalance.
 */
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { binaryToText } from '../../src/codec/binaryText.js';
import { clientConfig } from '../../src/nodes/connect.js';
import { readRoute } from '../../src/route/placement.js';
import { ShardRouter } from '../../src/route/router.js';
import { KeyValueError } from '../../src/route/serverHash.js';
import { clusterSources, type TestCluster } from '../support/clusters.js';
import { KEY_TYPE_CASES, random } from '../support/keyValues.js';
import { applySpec, type AppliedSpec } from '../support/keyTypesCluster.js';

const SOURCES = clusterSources().filter((s) => !s.label.includes('testcontainers'));
const FULL = process.env.HYPERSHARD_FAULTS === 'full' || process.env.HYPERSHARD_PROPERTY === 'full';
const VALUES_PER_TYPE = FULL ? 3000 : 300;
const SEED = Number(process.env.HYPERSHARD_SEED ?? Date.now() % 100_000);
const SHARDS = 5;

const SETTINGS = [
  { label: 'UTC, ISO', sql: `SET TimeZone = 'UTC'; SET DateStyle = 'ISO, MDY'; SET IntervalStyle = 'postgres'` },
  { label: 'New York, SQL DMY', sql: `SET TimeZone = 'America/New_York'; SET DateStyle = 'SQL, DMY'; SET IntervalStyle = 'sql_standard'` },
];

/** COPY text format: backslash, tab, newline and carriage return escaped. */
export function copyText(value: string): string {
  return value.replace(/[\\\t\n\r]/g, (c) => ({ '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r' })[c] as string);
}

async function copyRows(client: pg.Client, table: string, lines: readonly string[]): Promise<void> {
  const stream = client.query(copyFrom(`COPY ${table} (id, t, k) FROM STDIN`));
  await new Promise<void>((resolve, reject) => {
    stream.on('finish', resolve);
    stream.on('error', reject);
    stream.end(lines.join(''));
  });
}

for (const source of SOURCES) {
  describe(`shard router (${source.label})`, () => {
    let cluster: TestCluster | undefined;
    let skip: string | undefined;
    let applied: AppliedSpec;
    let access: pg.Client;

    beforeAll(async () => {
      skip = await source.unavailable();
      if (skip !== undefined) return;
      cluster = await source.start(2);
      applied = await applySpec(
        cluster,
        'route',
        KEY_TYPE_CASES.map((c, i) => ({
          name: `k${i}`,
          columns: [
            { name: 'id', type: 'bigint', notNull: true },
            { name: 't', type: 'timestamptz', notNull: true },
            { name: 'k', type: c.type, notNull: true },
          ],
          timeColumn: 't',
          spaceColumn: 'k',
          shards: SHARDS,
        })),
      );
      access = new pg.Client(clientConfig(cluster.accessNode.url));
      await access.connect();
    });

    afterAll(async () => {
      await access?.end();
      await cluster?.stop();
    });

    it('puts every value of every key type where the access node puts it', async (ctx) => {
      if (skip !== undefined) return ctx.skip(skip);
      const r = random(SEED);
      let id = 0;
      const summary: string[] = [];
      for (const settings of SETTINGS) {
        await access.query(settings.sql);
        const timeZone = (await access.query<{ tz: string }>(`SELECT current_setting('TimeZone') AS tz`)).rows[0]!.tz;
        for (const [i, kc] of KEY_TYPE_CASES.entries()) {
          const table = `k${i}`;
          const route = await readRoute(access, applied.spec, { schema: 'public', name: table });
          const router = new ShardRouter(route, { timeZone }, access);
          const values = [...new Set(Array.from({ length: VALUES_PER_TYPE }, () => kc.values(r)))];
          const partitions = await router.partitionsOf(values);
          const expected = new Map<number, string>();
          const lines: string[] = [];
          const refused: string[] = [];
          values.forEach((v, j) => {
            const p = partitions[j]!;
            if (p instanceof KeyValueError) {
              refused.push(v);
              return;
            }
            id += 1;
            expected.set(id, `_hypershard.${router.partition(p).table.name}`);
            lines.push(`${id}\t2024-01-01 00:00:00+00\t${copyText(v)}\n`);
          });
          await copyRows(access, table, lines);
          const { rows } = await access.query<{ id: string; part: string }>(`SELECT id::text, tableoid::regclass::text AS part FROM ${table} WHERE id > $1`, [id - lines.length]);
          const wrong = rows.filter((row) => expected.get(Number(row.id)) !== row.part);
          const detail = wrong.slice(0, 5).map((w) => `${JSON.stringify(values.find((_, j) => lines[j]?.startsWith(`${w.id}\t`)))} → router ${expected.get(Number(w.id))}, access node ${w.part}`);
          expect(detail, `${kc.type} (${settings.label}, seed ${SEED})`).toEqual([]);
          expect(rows.length).toBe(lines.length);
          // What the router refuses, the access node refuses too (a sample: each costs a failed COPY).
          for (const v of refused.slice(0, 3)) {
            await expect(copyRows(access, table, [`0\t2024-01-01 00:00:00+00\t${copyText(v)}\n`]), `${kc.type}: ${JSON.stringify(v)}`).rejects.toThrow();
          }
          summary.push(`${kc.type} [${settings.label}]: ${lines.length} routed, ${refused.length} refused`);
        }
      }
      console.log(`router property test (seed ${SEED}): ${summary.length} type×settings, ${id} rows\n  ${summary.join('\n  ')}`);
    });

    it('decodes the binary form of every key type to text the server reads back to the same bytes', async (ctx) => {
      if (skip !== undefined) return ctx.skip(skip);
      const r = random(SEED + 1);
      await access.query(`SET TimeZone = 'Asia/Kolkata'; SET DateStyle = 'SQL, DMY'; SET IntervalStyle = 'sql_standard'; SET extra_float_digits = 0`);
      for (const kc of KEY_TYPE_CASES) {
        const values = [...new Set(Array.from({ length: VALUES_PER_TYPE / 6 }, () => kc.values(r)))];
        const { rows: send } = await access.query<{ typsend: string; oid: number }>(`SELECT t.typsend::text, t.oid::int FROM pg_type t WHERE t.oid = $1::regtype`, [kc.type]);
        const { typsend, oid } = send[0]!;
        // The binary form of each value the server accepts (one at a time: some are invalid).
        const binary: { value: string; bytes: Buffer }[] = [];
        for (const v of values) {
          await access.query('SAVEPOINT b').catch(() => undefined);
          try {
            await access.query('BEGIN').catch(() => undefined);
            const { rows } = await access.query<{ b: Buffer }>(`SELECT ${typsend}($1::text::${kc.type}) AS b`, [v]);
            binary.push({ value: v, bytes: rows[0]!.b });
          } catch {
            // not a value of the type
          }
          await access.query('ROLLBACK').catch(() => undefined);
        }
        const texts = binary.map((b) => binaryToText(oid, b.bytes));
        const { rows: same } = await access.query<{ i: number }>(
          // Equal bytes, but for the sign of a NaN (float4out/float8out print every NaN as NaN).
          `SELECT i::int FROM unnest($1::text[], $2::bytea[]) WITH ORDINALITY AS v(t, b, i) WHERE ${typsend}(v.t::${kc.type}) IS DISTINCT FROM v.b AND v.t <> 'NaN'`,
          [texts, binary.map((b) => b.bytes)],
        );
        expect(same.map(({ i }) => `${JSON.stringify(binary[i - 1]!.value)} → ${JSON.stringify(texts[i - 1])}`), kc.type).toEqual([]);
      }
      await access.query('RESET ALL');
    });

    it('routes a NULL key to remainder 0, as satisfies_hash_partition does', async (ctx) => {
      if (skip !== undefined) return ctx.skip(skip);
      const route = await readRoute(access, applied.spec, { schema: 'public', name: 'k1' });
      const router = new ShardRouter(route, { timeZone: 'UTC' });
      const p = router.partition(router.partitionOf(null) as number);
      expect(p.remainder).toBe(0);
      const { rows } = await access.query<{ ok: boolean }>(`SELECT satisfies_hash_partition('public.k1'::regclass, $1, 0, NULL::integer) AS ok`, [p.modulus]);
      expect(rows[0]!.ok).toBe(true);
    });

    it('reads where each shard lives from the catalogs', async (ctx) => {
      if (skip !== undefined) return ctx.skip(skip);
      const route = await readRoute(access, applied.spec, { schema: 'public', name: 'k1' });
      expect(route.partitions.map((p) => [p.remainder, p.dataNode, p.remote.schema, p.remote.name])).toEqual(
        Array.from({ length: SHARDS }, (_, i) => [i, cluster!.dataNodes[i % 2]!.name, '_hypershard', `k1_s${i}`]),
      );
      expect(route.key).toMatchObject({ name: 'k', typeOid: 23, native: true });
    });
  });
}
