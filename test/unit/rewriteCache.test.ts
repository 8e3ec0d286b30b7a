/**
 * The rewrite cache keyed by statement shape: the JavaScript scanner cuts out what PostgreSQL's
 * scanner calls literals, and a template, filled with another statement's free literals, is
 * exactly that statement's own rewrite. Checked over the differential harness's random queries
 * and the TSBS forms, each with its free literals changed at random; a changed fixed literal (a
 * bucket width, a LIMIT, a space-key value) never reuses the template.
 */
import { scanSync } from 'libpg-query';
import { describe, expect, it } from 'vitest';
import { shapeOf, type Shape } from '../../src/rewrite/literals.js';
import type { ClusterMetadata, DistributedTable, RewriteResult } from '../../src/rewrite/model.js';
import { rewriteSql } from '../../src/rewrite/rewrite.js';
import { buildTemplate, instantiate } from '../../src/rewrite/template.js';
import { generateQueries, METRICS_COLUMNS } from '../support/queryGen.js';

const shards = (name: string): DistributedTable['shards'] => [0, 1, 2, 3].map((i) => ({ index: i, modulus: 4, remainder: i, table: { schema: '_hypershard', name: `${name}_s${i}` }, server: `srv_${i}` }));
const META: ClusterMetadata = {
  hypertables: [
    { table: { schema: 'public', name: 'metrics' }, columns: METRICS_COLUMNS.map((c) => ({ ...c })), spaceColumn: 'device_id', timeColumn: 'time', shards: shards('metrics') },
    {
      table: { schema: 'public', name: 'cpu' },
      columns: [{ name: 'time', type: 'timestamptz', notNull: true }, { name: 'tags_id', type: 'integer', notNull: true }, { name: 'usage_user', type: 'double precision' }],
      spaceColumn: 'tags_id',
      timeColumn: 'time',
      shards: shards('cpu'),
    },
  ],
  referenceTables: [],
};
const SPACE = new Set(META.hypertables.map((h) => h.spaceColumn));
const OPTIONS = { timeZone: 'UTC', searchPath: ['pg_catalog', 'public'], access: { role: 'r', tables: new Map([['public.metrics', undefined], ['public.cpu', undefined]]) } };
const rewrite = (sql: string): RewriteResult => rewriteSql(sql, META, OPTIONS);

/** The statement with some literals replaced by other values of their kind. */
function vary(sql: string, shape: Shape, which: (i: number) => boolean, n: number): string {
  let out = '';
  let copied = 0;
  shape.literals.forEach((l, i) => {
    if (!which(i)) return;
    // Always another value than the one written.
    const value = l.kind === 'string' ? `'v${n}_${i} 2024-01-0${(n % 9) + 1}'` : l.kind === 'integer' ? String(Number(l.text) + 1 + ((n * 7 + i) % 50)) : `${Number(l.text.split('.')[0]) + 1 + (n % 20)}.${(i % 9) + 1}`;
    out += sql.slice(copied, l.start) + value;
    copied = l.end;
  });
  return out + sql.slice(copied);
}

describe('statement shapes', () => {
  it('cuts out plain literals where PostgreSQL scans them, and nothing in names, comments, dollar quotes or prefixed strings', () => {
    const sql = `SELECT "a'1", 'x''y', E'q', U&'d', b'01', $$ 'no' 42 $$, $tag$ 7 $tag$, t1.c2, $1, -- 'c' 5\n 'plain', 42, 3.25, 1e5, 0x1F, .5, 2147483648 /* 'm' 9 /* 8 */ */ FROM t WHERE x = '2024-01-01 08:00' AND y > 17`;
    const shape = shapeOf(sql);
    expect(shape?.literals.map((l) => `${l.kind}:${l.text}`)).toEqual(['string:\'plain\'', 'integer:42', 'decimal:3.25', "string:'2024-01-01 08:00'", 'integer:17']);
    // Each is a token of that kind to PostgreSQL's own scanner.
    const tokens = scanSync(sql).tokens;
    for (const l of shape?.literals ?? []) {
      const start = Buffer.byteLength(sql.slice(0, l.start));
      expect(tokens.find((t) => t.start === start)?.tokenName, l.text).toBe(l.kind === 'string' ? 'SCONST' : l.kind === 'integer' ? 'ICONST' : 'FCONST');
    }
    expect(shapeOf(`SELECT 1 AS a`)?.key).toBe(shapeOf(`SELECT 2 AS a`)?.key);
    expect(shapeOf(`SELECT 1 AS a`)?.key).not.toBe(shapeOf(`SELECT 1.5 AS a`)?.key);
    expect(shapeOf(`SELECT 'a' AS a`)?.key).not.toBe(shapeOf(`SELECT 'a' AS  a`)?.key);
  });
});

describe('rewrite templates', () => {
  it('are made only where the rewrite follows the literals, and never free a width, unit, LIMIT or space-key value', () => {
    const sql = `SELECT time_bucket('5 minutes', time) AS b, date_trunc('hour', time) AS h, max(cpu) FROM metrics WHERE device_id = 3 AND time >= '2024-01-01' AND cpu > 50 AND region IN ('asia', 'europe') GROUP BY 1, 2 ORDER BY 1 LIMIT 10 OFFSET 2`;
    const shape = shapeOf(sql) as Shape;
    const template = buildTemplate(sql, shape, rewrite(sql), rewrite, SPACE);
    const free = shape.literals.filter((_, i) => template?.fixed[i] === undefined).map((l) => l.text);
    expect(free).toEqual(["'2024-01-01'", '50', "'asia'", "'europe'"]);
    // Nothing free: no template.
    const plain = `SELECT max(cpu) FROM metrics WHERE device_id = 3 LIMIT 1`;
    expect(buildTemplate(plain, shapeOf(plain) as Shape, rewrite(plain), rewrite, SPACE)).toBeUndefined();
  });

  it("filled with another statement's free literals, give exactly that statement's rewrite (random queries and TSBS forms)", () => {
    const anchor = Date.UTC(2026, 0, 1, 12);
    const corpus = [
      ...generateQueries(20251, 400, anchor).map((q) => q.sql),
      `SELECT date_trunc('minute', time) AS minute, max(usage_user) FROM cpu WHERE tags_id IN (SELECT id FROM tags WHERE hostname IN ('host_1', 'host_7')) AND time >= '2016-01-01 07:47:52 +0000' AND time < '2016-01-01 08:47:52 +0000' GROUP BY minute ORDER BY minute`,
      `SELECT * FROM cpu WHERE usage_user > 90.0 AND time >= '2016-01-01' AND time < '2016-01-02' ORDER BY time DESC LIMIT 5`,
      `SELECT time_bucket('1 hour', time) AS hour, avg(usage_user) FROM cpu WHERE time BETWEEN '2016-01-01' AND '2016-01-02' GROUP BY 1 ORDER BY 1`,
      `EXPLAIN (VERBOSE) SELECT max(usage_user) FROM cpu WHERE time > '2016-01-01'`,
      `SELECT tags_id, max(time) FROM cpu WHERE time > '2016-01-01' GROUP BY tags_id`,
    ];
    let templated = 0;
    let filled = 0;
    let refusedFixed = 0;
    for (const [n, sql] of corpus.entries()) {
      const shape = shapeOf(sql);
      if (shape === undefined) continue;
      const template = buildTemplate(sql, shape, rewrite(sql), rewrite, SPACE);
      if (template === undefined) continue;
      templated += 1;
      const isFree = (i: number): boolean => template.fixed[i] === undefined;
      for (let k = 1; k <= 3; k += 1) {
        const other = vary(sql, shape, isFree, n * 3 + k);
        const made = instantiate(template, shapeOf(other) as Shape);
        expect(made, other).toEqual(rewrite(other));
        filled += 1;
      }
      const fixedAt = shape.literals.findIndex((_, i) => !isFree(i));
      if (fixedAt >= 0) {
        expect(instantiate(template, shapeOf(vary(sql, shape, (i) => i === fixedAt, n)) as Shape)).toBeUndefined();
        refusedFixed += 1;
      }
    }
    // The check means something only when templates are made and filled.
    console.log(`templates: ${templated} of ${corpus.length} statements, ${filled} filled, ${refusedFixed} refused for a fixed literal`);
    expect(templated).toBeGreaterThan(100);
    expect(filled).toBe(templated * 3);
    expect(refusedFixed).toBeGreaterThan(50);
  }, 60_000);
});
