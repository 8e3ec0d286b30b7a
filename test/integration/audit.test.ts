/**
 * Every audit finding code on a real cluster: a query that triggers it and a rewritten query that
 * clears it, on each available PostgreSQL; and the CLI's three formats and --fail-on.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FINDINGS, type FindingCode } from '../../src/audit/findings.js';
import type { ClusterLayout } from '../../src/plan/layout.js';
import { auditCluster, auditScenarios, captureCase, type ScenarioFacts } from '../support/auditScenarios.js';
import { clusterSources, type TestCluster } from '../support/clusters.js';

const BIN = fileURLToPath(new URL('../../bin/hypershard.js', import.meta.url));
const sources = await Promise.all(clusterSources().map(async (s) => ({ source: s, skip: await s.unavailable() })));

it('every finding code has a scenario', () => {
  const covered = new Set(auditScenarios({ recent: '', shardOf42: '' }).map((s) => s.code));
  expect([...covered].sort()).toEqual((Object.keys(FINDINGS) as FindingCode[]).sort());
});

for (const { source, skip } of sources) {
  describe.skipIf(skip !== undefined)(`audit on ${source.label}${skip === undefined ? '' : ` — skipped: ${skip}`}`, () => {
    let cluster: TestCluster;
    let client: pg.Client;
    let layout: ClusterLayout;
    let facts: ScenarioFacts;

    beforeAll(async () => {
      cluster = await source.start(2);
      ({ client, layout, facts } = await auditCluster(cluster));
    });
    afterAll(async () => {
      await client?.end();
      await cluster?.stop();
    });

    for (const scenario of auditScenarios({ recent: 'placeholder', shardOf42: 'placeholder' })) {
      it(`${scenario.code}: ${scenario.name} is found, and the rewritten query clears it`, async () => {
        const live = auditScenarios(facts).find((s) => s.name === scenario.name)!;
        const trigger = (await captureCase(client, live.trigger, layout)).audited;
        const triggered = trigger.findings.filter((f) => f.code === live.code);
        expect(triggered, JSON.stringify(trigger.findings, null, 2)).toHaveLength(1);
        expect(triggered[0]!.fix).toBe(live.fix ?? FINDINGS[live.code].fix);
        if (FINDINGS[live.code].severity === 'error') expect(trigger.complete).toBe(false);

        const cleared = (await captureCase(client, live.cleared, layout)).audited;
        expect(cleared.findings.map((f) => f.code), JSON.stringify(cleared.findings, null, 2)).not.toContain(live.code);
      });
    }

    it('a space-grouped aggregate is complete: every shard aggregates, rows shipped = groups', async () => {
      const { audited } = await captureCase(client, { sql: 'SELECT device_id, count(*), avg(cpu) FROM metrics GROUP BY device_id', analyze: true }, layout);
      expect(audited.complete).toBe(true);
      expect(audited.findings).toEqual([]);
      expect(audited.rowsShipped).toBe(60);
      expect(audited.rowsShippedEstimated).toBe(false);
      expect(audited.dataNodes).toEqual(['dn1', 'dn2']);
      expect(audited.shards.map((s) => [s.shard, s.dataNode])).toEqual([[0, 'dn1'], [1, 'dn2'], [2, 'dn1'], [3, 'dn2']]);
      expect(audited.foreignScans.every((s) => s.kind === 'aggregate' && s.async && s.remoteSql.includes('GROUP BY'))).toBe(true);
    });

    it('--analyze refuses a statement that writes unless forced, and a forced one changes nothing', async () => {
      const before = (await client.query<{ n: string }>('SELECT count(*) AS n FROM metrics')).rows[0]!.n;
      await expect(captureCase(client, { sql: `DELETE FROM metrics WHERE device_id = 1`, analyze: true }, layout)).rejects.toThrow(/needs --force/);
      expect((await client.query<{ n: string }>('SELECT count(*) AS n FROM metrics')).rows[0]!.n).toBe(before);
    });

    it('the CLI prints text, JSON and Markdown, and --fail-on sets the exit code', async () => {
      const spec = join(cluster.workDir, 'audit', 'hypershard.yaml');
      const run = (args: string[]): Promise<{ code: number; stdout: string; stderr: string }> =>
        new Promise((resolve) =>
          execFile(process.execPath, [BIN, 'audit', '-c', spec, ...args], (error, stdout, stderr) => resolve({ code: error === null ? 0 : Number(error.code), stdout, stderr })),
        );
      const bad = `SELECT count(*) FROM metrics WHERE time > now() - interval '1 hour'`;
      const good = 'SELECT device_id, count(*) FROM metrics GROUP BY device_id';

      const json = await run(['-q', bad, '-q', good, '--format', 'json', '--analyze']);
      expect(json.code).toBe(0);
      const doc = JSON.parse(json.stdout) as { queries: { complete: boolean; rowsShipped: number; shards: unknown[]; findings: { code: string; severity: string; message: string; fix: string }[] }[] };
      expect(doc.queries.map((q) => q.complete)).toEqual([false, true]);
      // The aggregate above the filtered rows is partial or whole depending on the plan; both block pushdown.
      expect(doc.queries[0]!.findings.map((f) => f.code)).toEqual(['STABLE_EXPRESSION_LOCAL', expect.stringMatching(/^(PARTIAL_AGGREGATE|AGGREGATE_NOT_PUSHED)$/)]);
      expect(doc.queries[1]!.shards).toHaveLength(4);
      expect(doc.queries[1]!.rowsShipped).toBe(60);

      const text = await run(['-q', bad]);
      expect(text.stdout).toMatch(/^INCOMPLETE {2}SELECT count\(\*\) FROM metrics/);
      expect(text.stdout).toContain('ERROR STABLE_EXPRESSION_LOCAL');

      const markdown = await run(['-q', bad, '--format', 'markdown']);
      expect(markdown.stdout).toContain('| 1 | ❌ incomplete | 4 |');
      expect(markdown.stdout).toContain('`STABLE_EXPRESSION_LOCAL`');

      expect((await run(['-q', bad, '--fail-on', 'error'])).code).toBe(1);
      expect((await run(['-q', good, '--fail-on', 'error'])).code).toBe(0);
      expect((await run(['-q', good, '--fail-on', 'warning'])).code).toBe(0);
      // Each statement named by its leading comment; one that cannot be explained does not stop the
      // others; a statement the rewriter makes complete says so, and every error's fix names it;
      // data nodes by their spec names.
      const labelled = await run(['-q', `-- hourly count\n${bad}`, '-q', '-- broken\nSELEC 1', '-q', `-- per device\n${good}`, '--format', 'json']);
      const entries = (JSON.parse(labelled.stdout) as { queries: { label?: string; error?: string; complete?: boolean; rewriterCompletes?: boolean; dataNodes?: string[]; findings?: { severity: string; fix: string }[] }[] }).queries;
      expect(entries.map((q) => q.label)).toEqual(['hourly count', 'broken', 'per device']);
      expect(entries[1]!.error).toMatch(/syntax error/);
      expect(entries[0]!.complete).toBe(false);
      expect(entries[0]!.rewriterCompletes).toBe(true);
      const errors = entries[0]!.findings!.filter((f) => f.severity === 'error');
      expect(errors.length).toBeGreaterThan(0);
      for (const f of errors) expect(f.fix).toMatch(/^the hypershard rewriter makes this statement complete/);
      expect(entries[2]!.complete).toBe(true);
      expect([...entries[2]!.dataNodes!].sort()).toEqual(cluster.dataNodes.map((n) => n.name).sort());
      // A statement that cannot be explained is reported as such (the audit goes on past it), and counts as an error.
      expect((await run(['-q', 'SELEC 1'])).stdout).toMatch(/^NOT EXPLAINED {2}SELEC 1\n {2}ERROR .*syntax error/);
      expect((await run(['-q', 'SELEC 1', '--fail-on', 'error'])).code).toBe(1);
    });
  });
}
