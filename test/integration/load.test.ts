/**
 * Routed loads on real clusters (PostgreSQL 15 and 18): rows written straight to the data nodes
 * land on the shard the access node's own routing chooses (per shard: the same rows, count and
 * checksum as a twin hypertable loaded through the access node), for several key types and the
 * three COPY formats, read in the client's session settings; a bad row is reported with its line
 * and leaves nothing anywhere; a data node refusing at commit rolls every node back; prepared
 * transactions left by a writer that stopped are finished by recover from the commit records.
 */
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { from as copyFromStream, to as copyToStream } from 'pg-copy-streams';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CommitError, IngestRowError, RoutingError } from '../../src/errors.js';
import { IngestCluster } from '../../src/ingest/cluster.js';
import { copyFrom } from '../../src/ingest/copyFrom.js';
import { planRoutedInsert } from '../../src/ingest/insert.js';
import { load } from '../../src/ingest/load.js';
import { Client as HypershardClient } from '../../src/pg/client.js';
import { recover } from '../../src/ingest/recover.js';
import { clientConfig } from '../../src/nodes/connect.js';
import { clusterSources, type TestCluster } from '../support/clusters.js';
import { sql } from '../support/db.js';
import { KEY_TYPE_CASES, random } from '../support/keyValues.js';
import { applySpec, type AppliedSpec } from '../support/keyTypesCluster.js';

const BIN = fileURLToPath(new URL('../../bin/hypershard.js', import.meta.url));
const SOURCES = clusterSources().filter((s) => !s.label.includes('testcontainers'));
const SHARDS = 4;
const SEED = Number(process.env.HYPERSHARD_SEED ?? 7);
/** Key types loaded end to end (the router's own test covers every type). */
const TYPES = ['integer', 'bigint', 'text', 'uuid', 'numeric(12,2)', 'timestamptz', 'date', 'jsonb'];

const int4 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n);
  return b;
};
const arrayLiteral = (values: readonly (string | null)[]): string => `{${values.map((v) => (v === null ? 'NULL' : `"${v.replace(/[\\"]/g, (c) => `\\${c}`)}"`)).join(',')}}`;
const copyText = (v: string): string => v.replace(/[\\\t\n\r]/g, (c) => ({ '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r' })[c] as string);
const csvField = (v: string): string => `"${v.replaceAll('"', '""')}"`;

function hypershard(args: string[], cwd: string, stdin?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(process.execPath, [BIN, ...args], { cwd, timeout: 120_000 }, (error, stdout, stderr) =>
      resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : 1, stdout, stderr }),
    );
    if (stdin !== undefined) child.stdin?.end(stdin);
  });
}

/** Per shard index: count and an order-independent checksum of the rows, read on the data node holding it. */
async function shardFingerprints(cluster: TestCluster, table: string): Promise<string[]> {
  const out: string[] = [];
  for (const [n, node] of cluster.dataNodes.entries()) {
    const shards = Array.from({ length: SHARDS }, (_, i) => i).filter((i) => i % cluster.dataNodes.length === n);
    const rows = await sql<{ i: number; n: number; sum: string }>(
      node.url,
      shards
        .map((i) => `SELECT ${i} AS i, count(*)::int AS n, coalesce(sum(hashtextextended(concat_ws('|', t.id, t.k::text, t.v), 0)::numeric), 0)::text AS sum FROM _hypershard.${table}_s${i} t`)
        .join(' UNION ALL '),
    );
    for (const row of rows) out[row.i] = `${row.n}:${row.sum}`;
  }
  return out;
}

async function copyThroughAccess(url: string, statement: string, data: string | Buffer, setup?: string): Promise<void> {
  const client = new pg.Client(clientConfig(url));
  await client.connect();
  try {
    if (setup !== undefined) await client.query(setup);
    await pipeline(Readable.from([typeof data === 'string' ? Buffer.from(data) : data]), client.query(copyFromStream(statement)));
  } finally {
    await client.end();
  }
}

for (const source of SOURCES) {
  describe(`routed load (${source.label})`, () => {
    let cluster: TestCluster | undefined;
    let skip: string | undefined;
    let applied: AppliedSpec;
    const tables = TYPES.flatMap((type, i) => [`r${i}`, `a${i}`].map((name) => ({ name, type })));
    const count = async (table: string): Promise<number> => (await sql<{ n: number }>(cluster!.accessNode.url, `SELECT count(*)::int AS n FROM ${table}`))[0]!.n;
    const prepared = async (): Promise<number[]> =>
      Promise.all([cluster!.accessNode, ...cluster!.dataNodes].map(async (n) => (await sql<{ n: number }>(n.url, 'SELECT count(*)::int AS n FROM pg_prepared_xacts'))[0]!.n));

    beforeAll(async () => {
      skip = await source.unavailable();
      if (skip !== undefined) return;
      cluster = await source.start(2);
      applied = await applySpec(cluster, 'load', [
        ...tables.map((t) => ({
          name: t.name,
          columns: [
            { name: 'id', type: 'bigint', notNull: true },
            { name: 't', type: 'timestamptz', notNull: true },
            { name: 'k', type: t.type, notNull: true },
            { name: 'v', type: 'text' },
          ],
          timeColumn: 't',
          spaceColumn: 'k',
          shards: SHARDS,
        })),
        // INSERT routing: u (upserts onto its unique index) and its twin ua, written through the access node.
        ...['u', 'ua'].map((name) => ({
          name,
          columns: [
            { name: 'id', type: 'bigint', notNull: true },
            { name: 't', type: 'timestamptz', notNull: true },
            { name: 'k', type: 'integer', notNull: true },
            { name: 'v', type: 'text' },
          ],
          timeColumn: 't',
          spaceColumn: 'k',
          shards: SHARDS,
          indexes: [{ columns: ['k', 't'], unique: true }],
        })),
      ]);
      // The single-node answer for upserts.
      await sql(cluster.accessNode.url, 'CREATE TABLE plain_u (id bigint NOT NULL, t timestamptz NOT NULL, k integer NOT NULL, v text, UNIQUE (k, t))');
    });

    afterAll(async () => {
      await cluster?.stop();
    });

    it('puts every row on the shard the access node would, for every key type and format', async (ctx) => {
      if (skip !== undefined) return ctx.skip(skip);
      const r = random(SEED);
      const ingest = await IngestCluster.open(applied.spec, applied.specFile);
      try {
        for (const [i, type] of TYPES.entries()) {
          const kc = KEY_TYPE_CASES.find((c) => c.type === type)!;
          // Values the server accepts (the router's test covers refused ones), with awkward text in v.
          const candidates = [...new Set(Array.from({ length: 150 }, () => kc.values(r)))];
          const keep: string[] = [];
          const checker = new pg.Client(clientConfig(cluster!.accessNode.url));
          await checker.connect();
          try {
            await checker.query('BEGIN');
            for (const v of candidates) {
              await checker.query('SAVEPOINT v');
              try {
                await checker.query(`SELECT $1::text::${type}`, [v]);
                keep.push(v);
              } catch {
                // not a value of the type
              }
              await checker.query('ROLLBACK TO SAVEPOINT v');
            }
          } finally {
            await checker.end();
          }
          const rows = keep.map((k, j) => ({ id: j + 1, k, v: j % 7 === 0 ? null : `v,"${j}"\n\\ \t${k}` }));
          const textInput = rows.map((row) => `${row.id}\t2026-01-01 00:00:00+00\t${copyText(row.k)}\t${row.v === null ? '\\N' : copyText(row.v)}\n`).join('');
          // Text: the access node's twin by its own COPY, the routed one by copyFrom.
          await copyThroughAccess(cluster!.accessNode.url, `COPY a${i} (id, t, k, v) FROM STDIN`, textInput);
          const stream = copyFrom(ingest, { table: `r${i}`, format: 'text' });
          await pipeline(Readable.from([Buffer.from(textInput)]), stream);
          expect((await stream.result).rows).toBe(rows.length);
          expect(await shardFingerprints(cluster!, `r${i}`), `${type}, text`).toEqual(await shardFingerprints(cluster!, `a${i}`));

          // CSV with a header, quoted fields holding delimiters and line ends.
          await sql(cluster!.accessNode.url, `TRUNCATE r${i}`);
          const csv = `id,t,k,v\n${rows.map((row) => `${row.id},2026-01-01 00:00:00+00,${csvField(row.k)},${row.v === null ? '' : csvField(row.v)}`).join('\r\n')}\r\n`;
          await pipeline(Readable.from([Buffer.from(csv)]), copyFrom(ingest, { table: `r${i}`, format: 'csv', header: 'match', columns: ['id', 't', 'k', 'v'] }));
          expect(await shardFingerprints(cluster!, `r${i}`), `${type}, csv`).toEqual(await shardFingerprints(cluster!, `a${i}`));

          // Binary, as the access node writes it (what a binary COPY client sends).
          await sql(cluster!.accessNode.url, `TRUNCATE r${i}`);
          const client = new pg.Client(clientConfig(cluster!.accessNode.url));
          await client.connect();
          const parts: Buffer[] = [];
          try {
            const out = client.query(copyToStream(`COPY (SELECT id, t, k, v FROM a${i}) TO STDOUT WITH (FORMAT binary)`));
            for await (const chunk of out) parts.push(chunk as Buffer);
          } finally {
            await client.end();
          }
          // In small pieces: tuples split across chunks.
          const binary = Buffer.concat(parts);
          const pieces = Array.from({ length: Math.ceil(binary.length / 777) }, (_, p) => binary.subarray(p * 777, (p + 1) * 777));
          await pipeline(Readable.from(pieces), copyFrom(ingest, { table: `r${i}`, format: 'binary' }));
          expect(await shardFingerprints(cluster!, `r${i}`), `${type}, binary`).toEqual(await shardFingerprints(cluster!, `a${i}`));
        }
      } finally {
        await ingest.close();
      }
      expect(await prepared()).toEqual([0, 0, 0]);
    });

    it('reads values in the client\'s TimeZone and DateStyle, as the access node would in that session', async (ctx) => {
      if (skip !== undefined) return ctx.skip(skip);
      const i = TYPES.indexOf('timestamptz');
      await sql(cluster!.accessNode.url, `TRUNCATE r${i}, a${i}`);
      const input = '1\t02/01/2026 10:30\t03/01/2026 23:59:59.5\tx\n2\t31/12/2025 00:00\t2025-06-01 12:00 Europe/Paris\ty\n';
      const settings = { timeZone: 'America/New_York', dateStyle: 'SQL, DMY', intervalStyle: 'postgres', clientEncoding: 'UTF8' };
      await copyThroughAccess(cluster!.accessNode.url, `COPY a${i} (id, t, k, v) FROM STDIN`, input, `SET TimeZone = 'America/New_York'; SET DateStyle = 'SQL, DMY'`);
      const ingest = await IngestCluster.open(applied.spec, applied.specFile);
      try {
        await pipeline(Readable.from([Buffer.from(input)]), copyFrom(ingest, { table: `r${i}`, format: 'text', settings }));
      } finally {
        await ingest.close();
      }
      const read = (t: string): Promise<{ id: string; t: string; k: string }[]> =>
        sql(cluster!.accessNode.url, `SELECT id::text, t::text, k::text FROM ${t} ORDER BY id`);
      expect(await read(`r${i}`)).toEqual(await read(`a${i}`));
      expect(await shardFingerprints(cluster!, `r${i}`)).toEqual(await shardFingerprints(cluster!, `a${i}`));
    });

    it('reports a bad row with its line and reason, and commits nothing anywhere', async (ctx) => {
      if (skip !== undefined) return ctx.skip(skip);
      await sql(cluster!.accessNode.url, 'TRUNCATE r0');
      const good = Array.from({ length: 3000 }, (_, j) => `${j},2026-01-01 00:00:00+00,${j % 50},ok`);
      const file = join(applied.dir, 'bad.csv');
      // A bad value in a column routing does not read (the data node refuses it) …
      await writeFile(file, ['id,t,k,v', ...good.slice(0, 2500), '9,not a time,3,x', ...good.slice(2500)].join('\n'));
      const attempt = load(applied.spec, applied.specFile, { table: 'r0', format: 'csv', header: true, inputs: [{ name: file, source: file }] });
      await expect(attempt).rejects.toThrow(IngestRowError);
      await expect(attempt).rejects.toThrow(/^line 2502: invalid input syntax for type timestamp with time zone: "not a time" \(column t\) on data node dn\d; nothing was committed$/);
      // … and in the space column (the router refuses it), and a row that lacks it.
      await writeFile(file, ['id,t,k,v', ...good.slice(0, 10), '9,2026-01-01,x1,x'].join('\n'));
      await expect(load(applied.spec, applied.specFile, { table: 'r0', format: 'csv', header: true, inputs: [{ name: file, source: file }] })).rejects.toThrow(
        'line 12: invalid input syntax for type integer: "x1" (column k); nothing was committed',
      );
      await writeFile(file, ['id,t,k,v', ...good.slice(0, 10), '9'].join('\n'));
      await expect(load(applied.spec, applied.specFile, { table: 'r0', format: 'csv', header: true, inputs: [{ name: file, source: file }] })).rejects.toThrow('line 12: missing data for column "k"');
      expect(await count('r0')).toBe(0);
      expect(await prepared()).toEqual([0, 0, 0]);
    });

    it('refuses what routing cannot do as the access node would, before writing anything', async (ctx) => {
      if (skip !== undefined) return ctx.skip(skip);
      const file = join(applied.dir, 'one.csv');
      await writeFile(file, '1,2026-01-01,1\n');
      const run = (options: Partial<Parameters<typeof load>[2]>): Promise<unknown> =>
        load(applied.spec, applied.specFile, { table: 'r0', format: 'csv', inputs: [{ name: file, source: file }], ...options });
      await expect(run({ table: 'nope' })).rejects.toThrow(RoutingError);
      await expect(run({ columns: ['id', 't', 'v'] })).rejects.toThrow('the input has no column "k", the space column of public.r0');
      await expect(run({ columns: ['id', 't', 'zz'] })).rejects.toThrow('column "zz" of relation "r0" does not exist');
      await sql(cluster!.accessNode.url, `ALTER TABLE r0 ALTER COLUMN v SET DEFAULT 'd'`);
      try {
        await expect(run({ columns: ['id', 't', 'k'] })).rejects.toThrow(/column "v" \(DEFAULT 'd'::text\) of public.r0 would be filled by the access node's default/);
      } finally {
        await sql(cluster!.accessNode.url, 'ALTER TABLE r0 ALTER COLUMN v DROP DEFAULT');
      }
      expect(await count('r0')).toBe(0);
    });

    it('routes multi-row INSERT … VALUES and INSERT … SELECT unnest(…) to the shards the access node would, parameters text and binary', async (ctx) => {
      if (skip !== undefined) return ctx.skip(skip);
      await sql(cluster!.accessNode.url, 'TRUNCATE u, ua');
      const ingest = await IngestCluster.open(applied.spec, applied.specFile);
      const settings = { timeZone: 'Asia/Kolkata', dateStyle: 'ISO, DMY', searchPath: '"$user", public', role: 'postgres' };
      try {
        const rows = Array.from({ length: 60 }, (_, j) => [String(j), `2026-0${1 + (j % 3)}-0${1 + (j % 7)} 1${j % 10}:00`, String(j * 7919 % 1000 - 500), j % 5 === 0 ? null : `v'${j}\\,"`]);
        const values = rows.slice(0, 30).map((_, j) => `($${4 * j + 1}, $${4 * j + 2}, $${4 * j + 3}::int, $${4 * j + 4})`).join(', ');
        const params = rows.slice(0, 30).flatMap((r, j) => (j % 2 === 0 ? r : [r[0]!, r[1]!, { value: int4(Number(r[2])), format: 'binary' as const, typeOid: 23 }, r[3]!]));
        const consts = rows.slice(30, 45).map((r) => `(${r[0]}, '${r[1]}', ${r[2]}, ${r[3] === null ? 'NULL' : `'${r[3]!.replaceAll("'", "''")}'`})`).join(', ');
        const unnest = rows.slice(45);
        const statements: [string, unknown[]][] = [
          [`INSERT INTO u (id, t, k, v) VALUES ${values}`, params],
          [`INSERT INTO public.u AS x VALUES ${consts}`, []],
          ['INSERT INTO u (id, t, k, v) SELECT * FROM unnest($1::bigint[], $2::timestamptz[], $3::int[], $4::text[])', [0, 1, 2, 3].map((c) => arrayLiteral(unnest.map((r) => r[c]!)))],
        ];
        for (const [text, p] of statements) {
          const plan = await planRoutedInsert(ingest, text, p as never, settings);
          expect(plan.routable, JSON.stringify(plan)).toBe(true);
          if (!plan.routable) continue;
          const tx = await ingest.begin({ settings });
          const n = await plan.run(tx);
          const outcome = await tx.commit();
          expect(outcome.mode).toBe('two-phase');
          expect(n).toBe(plan.rows);
          // The twin through the access node, in the same session settings.
          const access = new pg.Client(clientConfig(cluster!.accessNode.url));
          await access.connect();
          try {
            await access.query(`SET TimeZone = 'Asia/Kolkata'; SET DateStyle = 'ISO, DMY'`);
            await access.query({ text: text.replace(/INSERT INTO (public\.)?u\b/, 'INSERT INTO ua'), values: (p as unknown[]).map((v) => (typeof v === 'object' && v !== null && 'value' in v ? String((v.value as Buffer).readInt32BE(0)) : v)) });
          } finally {
            await access.end();
          }
        }
        const read = (t: string): Promise<unknown[]> => sql(cluster!.accessNode.url, `SELECT id, t::text, k, v FROM ${t} ORDER BY id`);
        expect(await read('u')).toHaveLength(60);
        expect(await read('u')).toEqual(await read('ua'));
        expect(await shardFingerprints(cluster!, 'u')).toEqual(await shardFingerprints(cluster!, 'ua'));
        expect(await prepared()).toEqual([0, 0, 0]);
      } finally {
        await ingest.close();
      }
    });

    it('routes upserts onto the spec\'s unique index, answering as a single node does', async (ctx) => {
      if (skip !== undefined) return ctx.skip(skip);
      await sql(cluster!.accessNode.url, 'TRUNCATE u, plain_u');
      const ingest = await IngestCluster.open(applied.spec, applied.specFile);
      try {
        const rows = (from: number, v: string): string => Array.from({ length: 40 }, (_, j) => `(${from + j}, '2026-01-0${1 + (j % 2)} 00:00+00', ${(from + j) % 25}, '${v}')`).join(', ');
        const statements = [
          `INSERT INTO u VALUES ${rows(0, 'a')} ON CONFLICT DO NOTHING`,
          `INSERT INTO u AS o VALUES ${rows(10, 'b')} ON CONFLICT (t, k) DO UPDATE SET v = o.v || excluded.v, id = excluded.id WHERE o.id < 30`,
          `INSERT INTO u VALUES ${rows(20, 'c')} ON CONFLICT (k, t) DO NOTHING`,
          `INSERT INTO u VALUES ${rows(5, 'd')} ON CONFLICT (k, t) DO UPDATE SET v = coalesce(u.v, '') || $1`,
        ];
        for (const text of statements) {
          const params = text.includes('$1') ? ['!'] : [];
          const plan = await planRoutedInsert(ingest, text, params);
          expect(plan.routable, JSON.stringify(plan)).toBe(true);
          if (!plan.routable) continue;
          const tx = await ingest.begin();
          const n = await plan.run(tx);
          await tx.commit();
          const single = await new Promise<pg.QueryResult>((resolve, reject) => {
            const c = new pg.Client(clientConfig(cluster!.accessNode.url));
            c.connect()
              .then(() => c.query(text.replace('INSERT INTO u', 'INSERT INTO plain_u').replace('coalesce(u.v', 'coalesce(plain_u.v'), params))
              .then(resolve, reject)
              .finally(() => void c.end());
          });
          expect(n, text).toBe(single.rowCount);
        }
        const read = (t: string): Promise<unknown[]> => sql(cluster!.accessNode.url, `SELECT id, t, k, v FROM ${t} ORDER BY k, t`);
        expect(await read('u')).toEqual(await read('plain_u'));
      } finally {
        await ingest.close();
      }
    });

    it('refuses INSERTs it cannot route exactly, with the reason', async (ctx) => {
      if (skip !== undefined) return ctx.skip(skip);
      const ingest = await IngestCluster.open(applied.spec, applied.specFile);
      try {
        const reason = async (text: string, params: string[] = []): Promise<string> => {
          const plan = await planRoutedInsert(ingest, text, params);
          return plan.routable ? 'routable' : plan.reason;
        };
        expect(await reason(`INSERT INTO u VALUES (1, now(), 1, 'x')`)).toMatch(/computed on the access node/);
        expect(await reason(`INSERT INTO u VALUES (1, '2026-01-01', 1, 'x') RETURNING id`)).toMatch(/RETURNING/);
        expect(await reason(`INSERT INTO u VALUES (1, '2026-01-01', 1.5, 'x')`)).toMatch(/would be converted/);
        expect(await reason(`INSERT INTO u VALUES (1, '2026-01-01', $1::numeric, 'x')`, ['1.5'])).toMatch(/cast to (pg_catalog\.)?numeric/);
        expect(await reason(`INSERT INTO u VALUES (1, '2026-01-01', 1, 'x') ON CONFLICT (k) DO NOTHING`)).toMatch(/unique index the spec declares/);
        expect(await reason(`INSERT INTO u VALUES (1, '2026-01-01', 1, 'x') ON CONFLICT (k, t) DO UPDATE SET k = 2`)).toMatch(/another shard/);
        expect(await reason(`INSERT INTO u VALUES (1, '2026-01-01', 1, 'x') ON CONFLICT (k, t) DO UPDATE SET v = random()::text`)).toMatch(/FuncCall/);
        expect(await reason(`INSERT INTO r0 (id, t, k, v) VALUES (1, '2026-01-01', 1, 'x') ON CONFLICT (k, t) DO UPDATE SET v = 'y'`)).toMatch(/unique index the spec declares/);
        expect(await reason(`INSERT INTO u SELECT * FROM u`)).toMatch(/computed on the access node/);
        expect(await reason(`INSERT INTO plain_u VALUES (1, '2026-01-01', 1, 'x')`)).toMatch(/not a distributed hypertable/);
        expect(await reason(`UPDATE u SET v = 'x'`)).toMatch(/not a single INSERT/);
        expect(await reason(`INSERT INTO u (id, t, k, v) SELECT unnest($1::bigint[]), unnest($2::timestamptz[]), unnest($3::int[]), unnest($4::text[])`, ['{1,2}', '{2026-01-01,2026-01-02}', '{1}', '{a,b}'])).toMatch(/differ in length/);
        expect(await reason(`INSERT INTO u VALUES (1, '2026-01-01', 1, 'x')`)).toBe('routable');
      } finally {
        await ingest.close();
      }
    });

    it('hypershard/pg routes INSERTs outside a transaction block, and leaves those inside one to the access node', async (ctx) => {
      if (skip !== undefined) return ctx.skip(skip);
      await sql(cluster!.accessNode.url, 'TRUNCATE u');
      const ingest = await IngestCluster.open(applied.spec, applied.specFile);
      const client = new HypershardClient({ ...clientConfig(cluster!.accessNode.url), hypershard: { ingest } });
      await client.connect();
      try {
        const routed = await client.query(`INSERT INTO u VALUES ($1, $2, $3, $4), (2, '2026-01-01', 9, NULL)`, [1, new Date('2026-01-02T00:00:00Z'), 3, 'a']);
        expect(routed.rowCount).toBe(2);
        await client.query('BEGIN');
        await client.query(`INSERT INTO u VALUES (3, '2026-01-03', 4, 'b')`);
        await client.query('ROLLBACK');
        const upsert = await client.query(`INSERT INTO u VALUES (1, '2026-01-02T00:00:00Z', 3, 'z') ON CONFLICT (k, t) DO UPDATE SET v = excluded.v`);
        expect(upsert.rowCount).toBe(1);
        expect(await sql(cluster!.accessNode.url, 'SELECT id::int, k, v FROM u ORDER BY id')).toEqual([{ id: 1, k: 3, v: 'z' }, { id: 2, k: 9, v: null }]);
      } finally {
        await client.end();
        await ingest.close();
      }
    });

    it('rolls every node back when one refuses at commit (a deferred constraint trigger)', async (ctx) => {
      if (skip !== undefined) return ctx.skip(skip);
      const dn2 = cluster!.dataNodes[1]!.url;
      await sql(dn2, `CREATE FUNCTION public.refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'refused at commit'; END $$;
        CREATE CONSTRAINT TRIGGER refuse AFTER INSERT ON _hypershard.r0_s1 DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION public.refuse()`);
      try {
        const input = Array.from({ length: 2000 }, (_, j) => `${j}\t2026-01-01 00:00:00+00\t${j}\tx\n`).join('');
        const ingest = await IngestCluster.open(applied.spec, applied.specFile);
        try {
          const stream = copyFrom(ingest, { table: 'r0', format: 'text' });
          await expect(pipeline(Readable.from([Buffer.from(input)]), stream)).rejects.toThrow(CommitError);
          await expect(stream.result).rejects.toThrow('data node dn2 refused to prepare the transaction: refused at commit; every node was rolled back, nothing was committed');
        } finally {
          await ingest.close();
        }
        expect(await count('r0')).toBe(0);
        for (const node of cluster!.dataNodes) expect((await sql<{ n: number }>(node.url, 'SELECT count(*)::int AS n FROM r0'))[0]!.n).toBe(0);
        expect(await prepared()).toEqual([0, 0, 0]);
      } finally {
        await sql(dn2, 'DROP TRIGGER refuse ON _hypershard.r0_s1; DROP FUNCTION public.refuse()');
      }
    });

    it('a participant still connecting when the transaction aborts does not join it: no transaction left open on its node', async (ctx) => {
      if (skip !== undefined) return ctx.skip(skip);
      const ingest = await IngestCluster.open(applied.spec, applied.specFile, { applicationName: 'hs-abort-race' });
      try {
        const tx = await ingest.begin({ settings: { timeZone: 'UTC' } });
        // Another node's statement failed: the caller aborts while this node's connection is being set up.
        const late = tx.participant('dn2');
        const aborted = tx.abort('another node failed');
        await expect(late).rejects.toThrow(/aborting|aborted/);
        await aborted;
        const open = await sql<{ n: number }>(cluster!.dataNodes[1]!.url, "SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'hs-abort-race' AND state LIKE 'idle in transaction%'");
        expect(open[0]!.n).toBe(0);
      } finally {
        await ingest.close();
      }
    });

    it('recover commits what the commit record says and rolls back the rest', async (ctx) => {
      if (skip !== undefined) return ctx.skip(skip);
      await sql(cluster!.accessNode.url, 'TRUNCATE r0');
      const rows = (from: number): string => Array.from({ length: 500 }, (_, j) => `${from + j}\t2026-01-01 00:00:00+00\t${j}\tx\n`).join('');
      const ingest = await IngestCluster.open(applied.spec, applied.specFile);
      try {
        // A writer that wrote its record and stopped before COMMIT PREPARED …
        const committed = await ingest.begin();
        const a = copyFrom(ingest, { table: 'r0', format: 'text', transaction: committed });
        await pipeline(Readable.from([Buffer.from(rows(0))]), a);
        const p1 = await committed.prepare();
        await committed.writeCommitRecord(p1);
        await committed.commitAccess();
        // … and one that prepared and stopped before deciding.
        const undecided = await ingest.begin();
        await pipeline(Readable.from([Buffer.from(rows(1000))]), copyFrom(ingest, { table: 'r0', format: 'text', transaction: undecided }));
        const p2 = await undecided.prepare();
        expect(p1.participants.length).toBeGreaterThan(1);
        const onNode = (node: string): number => [...p1.participants, ...p2.participants].filter((p) => p.node === node).length;
        expect(await prepared()).toEqual([0, onNode('dn1'), onNode('dn2')]);
        // While the second's access-node transaction is open, recover leaves it alone.
        const first = await recover(applied.spec, applied.specFile);
        expect(first.transactions.filter((t) => t.action === 'committed').map((t) => t.gid).sort()).toEqual(p1.participants.map((p) => p.gid).sort());
        expect(first.transactions.filter((t) => t.action === 'left').map((t) => t.gid).sort()).toEqual(p2.participants.map((p) => p.gid).sort());
        expect(await count('r0')).toBe(500);
        // The writer gone (its access-node transaction ended without a record): rolled back.
        await undecided.abort('test: the writer stopped');
        const second = await recover(applied.spec, applied.specFile);
        expect(second.ok).toBe(true);
        expect(await count('r0')).toBe(500);
        expect(await prepared()).toEqual([0, 0, 0]);
        expect((await sql<{ n: number }>(cluster!.accessNode.url, 'SELECT count(*)::int AS n FROM _hypershard.commits'))[0]!.n).toBe(0);
      } finally {
        await ingest.close();
      }
    });

    it('hypershard load: a CSV from a file and from stdin, --json', async (ctx) => {
      if (skip !== undefined) return ctx.skip(skip);
      await sql(cluster!.accessNode.url, 'TRUNCATE r0');
      const file = join(applied.dir, 'cli.csv');
      await writeFile(file, `id,t,k,v\n${Array.from({ length: 1000 }, (_, j) => `${j},2026-01-01 00:00:00+00,${j},"a,b"`).join('\n')}\n`);
      const res = await hypershard(['load', '-c', applied.specFile, '--table', 'r0', '--format', 'csv', '--header', '--json', file], applied.dir);
      expect(res.stderr).toBe('');
      expect(res.code).toBe(0);
      const out = JSON.parse(res.stdout) as { rows: number; seconds: number; rowsPerSecond: number; perNode: Record<string, number> };
      expect(out.rows).toBe(1000);
      expect(Object.values(out.perNode).reduce((a, b) => a + b, 0)).toBe(1000);
      expect(Object.keys(out.perNode).sort()).toEqual(['dn1', 'dn2']);
      const piped = await hypershard(['load', '-c', applied.specFile, '--table', 'public.r0', '--columns', 'id,t,k', '-'], applied.dir, '5000\t2026-01-01 00:00:00+00\t1\n');
      expect(piped.code).toBe(0);
      expect(piped.stdout).toContain('Loaded 1 rows');
      const bad = await hypershard(['load', '-c', applied.specFile, '--table', 'r0', '--format', 'csv', '-'], applied.dir, '1,2026-01-01,zz\n');
      expect(bad.code).toBe(2);
      expect(bad.stderr).toContain('line 1: invalid input syntax for type integer: "zz"');
      expect(await count('r0')).toBe(1001);
    });
  });
}
