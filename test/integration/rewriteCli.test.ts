/**
 * `hypershard rewrite` (from the spec alone) and `hypershard query` (on the access node) on real
 * clusters with the example spec applied and rows in `metrics`: the JSON document's shape and
 * that it is what rewriteSql makes, the text explanation, answers equal to the server's own,
 * EXPLAIN with the audit, and exit codes. The CLI runs as built (`npm run build` first).
 */
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { metadataFromLayout } from '../../src/rewrite/metadata.js';
import { rewriteSql } from '../../src/rewrite/rewrite.js';
import { appliedExampleCluster, METRICS_ROWS, type AppliedCluster } from '../support/appliedCluster.js';
import { clusterSources, type TestCluster } from '../support/clusters.js';

const BIN = fileURLToPath(new URL('../../bin/hypershard.js', import.meta.url));
const sources = await Promise.all(clusterSources().map(async (s) => ({ source: s, skip: await s.unavailable() })));

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function hypershard(args: readonly string[], stdin?: string): Promise<Run> {
  return new Promise((resolve) => {
    const child = execFile(process.execPath, [BIN, ...args], { timeout: 120_000, env: process.env }, (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : 1, stdout, stderr });
    });
    child.stdin?.end(stdin ?? '');
  });
}

const AGGREGATE = "SELECT date_trunc('hour', time) AS hour, count(*) AS n, max(cpu) AS peak FROM metrics WHERE time > now() - interval '1 day' GROUP BY 1 ORDER BY 1";
const GROUPED = 'SELECT device_id, count(*) AS n, min(temperature) AS low FROM metrics GROUP BY device_id ORDER BY device_id';

/** A result as the server prints it: every value as text, NULL as null. */
async function serverText(config: pg.ClientConfig, sql: string): Promise<{ columns: string[]; rows: (string | null)[][] }> {
  const client = new pg.Client(config);
  await client.connect();
  try {
    const result = await client.query<unknown[]>({ text: sql, rowMode: 'array', types: { getTypeParser: () => (v: string) => v } });
    return { columns: result.fields.map((f) => f.name), rows: result.rows as (string | null)[][] };
  } finally {
    await client.end();
  }
}

for (const { source, skip } of sources) {
  describe.skipIf(skip !== undefined)(`rewrite and query CLI on ${source.label}${skip === undefined ? '' : ` — skipped: ${skip}`}`, () => {
    let cluster: TestCluster;
    let applied: AppliedCluster;
    let spec: string;

    beforeAll(async () => {
      cluster = await source.start(2);
      applied = await appliedExampleCluster(cluster, 'cli');
      spec = applied.specFile;
    });
    afterAll(async () => {
      await cluster?.stop();
    });

    it('rewrite --format json prints exactly {sql, rewrites, unchanged}: what rewriteSql makes from the spec, for UTC unless told', async () => {
      const metadata = metadataFromLayout(applied.layout);
      for (const [sql, timeZone] of [[AGGREGATE, undefined], [AGGREGATE, 'Asia/Kolkata'], [GROUPED, undefined], ['SELECT 1', undefined]] as const) {
        const run = await hypershard(['rewrite', '-c', spec, '--query', sql, '--format', 'json', ...(timeZone === undefined ? [] : ['--time-zone', timeZone])]);
        expect(run.code, run.stderr).toBe(0);
        const doc = JSON.parse(run.stdout) as Record<string, unknown>;
        expect(Object.keys(doc).sort()).toEqual(['rewrites', 'sql', 'unchanged']);
        const expected = rewriteSql(sql, metadata, { timeZone: timeZone ?? 'UTC', searchPath: ['public'] });
        expect(doc).toEqual({ sql: expected.sql, rewrites: expected.rewrites, unchanged: expected.unchanged });
      }
    });

    it('rewrite prints the original, the rewritten query and every rewrite and refusal, reading a file or stdin', async () => {
      const expected = rewriteSql(AGGREGATE, metadataFromLayout(applied.layout), { timeZone: 'UTC', searchPath: ['public'] });
      const file = join(cluster.workDir, 'query.sql');
      await writeFile(file, AGGREGATE);
      for (const run of [await hypershard(['rewrite', '-c', spec, '--file', file]), await hypershard(['rewrite', '-c', spec], AGGREGATE)]) {
        expect(run.code, run.stderr).toBe(0);
        expect(run.stdout).toContain(`Original:\n  ${AGGREGATE}\n`);
        expect(run.stdout).toContain(`Rewritten (TimeZone UTC, search_path public):\n  ${expected.changed ? expected.sql : '(unchanged)'}\n`);
        for (const r of expected.rewrites) expect(run.stdout).toContain(`  ${r.kind}: ${r.detail}`);
        for (const u of expected.unchanged) expect(run.stdout).toContain(`  ${u.kind}: ${u.reason}`);
        expect(run.stdout.includes('Rewrites:')).toBe(expected.rewrites.length > 0);
      }
      const none = await hypershard(['rewrite', '-c', spec, '-q', 'SELECT 1']);
      expect(none.stdout).toContain('(unchanged)\n\nNot rewritten:\n  statement: ');
    });

    it('rewrite: a query that does not parse, a bad flag or a missing spec is bad input (exit 2)', async () => {
      const bad = await hypershard(['rewrite', '-c', spec, '-q', 'SELECT device_id FROM metrics WHERE']);
      expect(bad.code).toBe(2);
      expect(bad.stderr).toBe('hypershard: cannot parse the query: syntax error at end of input\nLINE 1: SELECT device_id FROM metrics WHERE\n                                           ^\n');
      expect((await hypershard(['rewrite', '-c', spec, '-q', 'SELECT 1', '--format', 'xml'])).code).toBe(2);
      expect((await hypershard(['rewrite', '-c', spec, '-q', 'SELECT 1', '--file', spec])).code).toBe(2);
      expect((await hypershard(['rewrite', '-c', spec], '  \n')).stderr).toContain('the query is empty');
      expect((await hypershard(['rewrite', '-c', join(cluster.workDir, 'nope.yaml'), '-q', 'SELECT 1'])).code).toBe(2);
    });

    it("query prints the server's answer, the rewrites and the time", async () => {
      const expected = await serverText(applied.access, GROUPED);
      const run = await hypershard(['query', '-c', spec, '-q', GROUPED]);
      expect(run.code, run.stderr).toBe(0);
      const lines = run.stdout.split('\n');
      expect(lines[0]?.split(/\s+/)).toEqual(expected.columns);
      // Rows are the table's lines after the header and rule, in order.
      expect(lines.slice(2, 2 + expected.rows.length).map((l) => l.trim().split(/\s+/))).toEqual(expected.rows);
      expect(lines[2 + expected.rows.length]).toBe('(20 rows)');
      expect(run.stdout).toMatch(/\nTime: \d+\.\d ms\n$/);
      expect(run.stdout).toMatch(/\n(Ran the rewritten query|Ran the query as given) \(TimeZone [^,]+, search_path pg_catalog, public\)/);
    });

    it('query --format json: the rows as the server prints them, and what rewriteSql makes for the session', async () => {
      const run = await hypershard(['query', '-c', spec, '-q', AGGREGATE, '--format', 'json']);
      expect(run.code, run.stderr).toBe(0);
      const doc = JSON.parse(run.stdout) as { original: string; sql: string; rewrites: unknown[]; unchanged: unknown[]; timeZone: string; searchPath: string[]; results: { columns: string[]; rows: unknown[][]; rowCount: number }[]; ms: number };
      const expected = rewriteSql(AGGREGATE, metadataFromLayout(applied.layout), { timeZone: doc.timeZone, searchPath: doc.searchPath });
      expect(doc).toMatchObject({ original: AGGREGATE, sql: expected.sql, rewrites: expected.rewrites, unchanged: expected.unchanged, searchPath: ['pg_catalog', 'public'], role: 'postgres' });
      expect(doc.results).toHaveLength(1);
      expect({ columns: doc.results[0]!.columns, rows: doc.results[0]!.rows }).toEqual(await serverText(applied.access, AGGREGATE));
      expect(doc.results[0]!.rows.reduce((sum, r) => sum + Number(r[1]), 0)).toBe(METRICS_ROWS);
      expect(doc.ms).toBeGreaterThan(0);

      // --no-rewrite runs it as written; --metadata spec rewrites it the same as the catalogs.
      const asGiven = JSON.parse((await hypershard(['query', '-c', spec, '-q', AGGREGATE, '--format', 'json', '--no-rewrite'])).stdout) as typeof doc;
      expect(asGiven.sql).toBe(AGGREGATE);
      expect(asGiven.results[0]!.rows).toEqual(doc.results[0]!.rows);
      const fromSpec = JSON.parse((await hypershard(['query', '-c', spec, '-q', AGGREGATE, '--format', 'json', '--metadata', 'spec'])).stdout) as typeof doc;
      expect(fromSpec.sql).toBe(doc.sql);
    });

    it('query --explain shows the plan of the query as it would run and the audit, and runs nothing', async () => {
      const insert = `INSERT INTO metrics (time, device_id, cpu) VALUES (now(), 77, 1)`;
      const run = await hypershard(['query', '-c', spec, '-q', GROUPED, '--explain']);
      expect(run.code, run.stderr).toBe(0);
      expect(run.stdout).toMatch(/Remote SQL: SELECT/);
      expect(run.stdout).toMatch(/\n(COMPLETE|INCOMPLETE) {2}/);
      const doc = JSON.parse((await hypershard(['query', '-c', spec, '-q', GROUPED, '--explain', '--format', 'json'])).stdout) as { plan: string[]; audit: { complete: boolean; findings: unknown[] } };
      expect(doc.plan.some((line) => line.includes('Foreign Scan'))).toBe(true);
      expect(doc.audit.complete).toBe(true);
      expect((await hypershard(['query', '-c', spec, '-q', insert, '--explain'])).code).toBe(0);
      expect((await serverText(applied.access, 'SELECT count(*) FROM metrics WHERE device_id = 77')).rows).toEqual([['0']]);
    });

    it("query: the server's error with where it points (exit 1); bad input exits 2", async () => {
      const missing = await hypershard(['query', '-c', spec, '-q', 'SELECT count(nope) FROM metrics']);
      expect(missing.code).toBe(1);
      // Reported against the query as written, whether or not it was rewritten.
      expect(missing.stderr).toBe('hypershard: query failed: column "nope" does not exist (SQLSTATE 42703)\nLINE 1: SELECT count(nope) FROM metrics\n                     ^\n');
      const syntax = await hypershard(['query', '-c', spec, '-q', 'SELEC 1 FROM metrics']);
      expect(syntax.code).toBe(1);
      expect(syntax.stderr).toBe('hypershard: query failed: syntax error at or near "SELEC" (SQLSTATE 42601)\nLINE 1: SELEC 1 FROM metrics\n        ^\n');
      const runtime = await hypershard(['query', '-c', spec, '-q', 'SELECT device_id / 0 FROM metrics']);
      expect(runtime.code).toBe(1);
      expect(runtime.stderr).toContain('division by zero (SQLSTATE 22012)');
      expect((await hypershard(['query', '-c', spec, '-q', 'SELECT 1', '--format', 'xml'])).code).toBe(2);
      expect((await hypershard(['query', '-c', spec, '-q', 'SELECT 1', '--metadata', 'guess'])).code).toBe(2);
      expect((await hypershard(['query', '-c', spec, '-q', 'SELECT 1; SELECT 2', '--explain'])).code).toBe(2);
      expect((await hypershard(['query', '-c', spec], '')).code).toBe(2);
    });
  });
}
