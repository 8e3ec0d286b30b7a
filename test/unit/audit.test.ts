/**
 * The analyzer on plans captured from real PostgreSQL 15 and 18 clusters
 * (scripts/capture-audit-fixtures.ts; never hand-written).
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { analyzePlan, classifyExpression, functionCalls } from '../../src/audit/analyze.js';
import { auditMarkdown, auditText, worstSeverity } from '../../src/audit/format.js';
import { FINDINGS, type FindingCode } from '../../src/audit/findings.js';
import type { AuditFixture } from '../../scripts/capture-audit-fixtures.js';
import { deserializeCatalog, type CapturedPlan } from '../support/auditScenarios.js';

const analyze = (c: CapturedPlan): ReturnType<typeof analyzePlan> => analyzePlan(c.plan, deserializeCatalog(c.catalog));

/** Every finding of each scenario's two plans, the same on PostgreSQL 15 and 18. */
const EXPECTED: Record<string, { trigger: FindingCode[]; cleared: FindingCode[] }> = {
  'now-window': { trigger: ['AGGREGATE_NOT_PUSHED', 'ESTIMATED_ROWS', 'STABLE_EXPRESSION_LOCAL'], cleared: ['ESTIMATED_ROWS'] },
  'date-trunc-bucket': { trigger: ['ESTIMATED_ROWS', 'NON_SHIPPABLE_FUNCTION'], cleared: ['ESTIMATED_ROWS'] },
  'bound-minus-interval': { trigger: ['AGGREGATE_NOT_PUSHED', 'ESTIMATED_ROWS', 'NON_SHIPPABLE_FUNCTION'], cleared: ['ESTIMATED_ROWS'] },
  'text-constant-bucket': { trigger: ['COLLATION_NOT_SHIPPABLE', 'ESTIMATED_ROWS'], cleared: ['ESTIMATED_ROWS'] },
  'group-by-time-only': { trigger: ['ESTIMATED_ROWS', 'PARTIAL_AGGREGATE'], cleared: ['ESTIMATED_ROWS'] },
  'volatile-aggregate-argument': { trigger: ['AGGREGATE_NOT_PUSHED', 'ESTIMATED_ROWS'], cleared: ['ESTIMATED_ROWS'] },
  'pruned-to-one-shard': { trigger: ['ESTIMATED_ROWS', 'SINGLE_SHARD_AGGREGATE_NOT_PUSHED'], cleared: ['ESTIMATED_ROWS'] },
  'latest-rows': { trigger: ['ESTIMATED_ROWS', 'LIMIT_NOT_PUSHED', 'NOT_ASYNC'], cleared: ['ESTIMATED_ROWS', 'NOT_ASYNC'] },
  'lastpoint-distinct-on': { trigger: ['DISTINCT_NOT_PUSHED', 'ESTIMATED_ROWS', 'NOT_ASYNC'], cleared: ['ESTIMATED_ROWS'] },
  'join-with-local-table': { trigger: ['ESTIMATED_ROWS', 'LOCAL_JOIN'], cleared: ['ESTIMATED_ROWS'] },
  'window-over-rows': { trigger: ['ESTIMATED_ROWS', 'LOCAL_ROW_WORK', 'NOT_ASYNC'], cleared: ['ESTIMATED_ROWS'] },
  'shards-on-one-server': { trigger: ['ESTIMATED_ROWS', 'SHARED_CONNECTION'], cleared: ['ESTIMATED_ROWS'] },
  'async-off': { trigger: ['ESTIMATED_ROWS', 'NOT_ASYNC'], cleared: ['ESTIMATED_ROWS'] },
  'never-analyzed': { trigger: ['ESTIMATED_ROWS', 'NO_STATISTICS'], cleared: ['ESTIMATED_ROWS'] },
  'estimate-only': { trigger: ['ESTIMATED_ROWS'], cleared: [] },
};

for (const major of [15, 18]) {
  const fixture = JSON.parse(readFileSync(new URL(`../fixtures/audit/pg${major}.json`, import.meta.url), 'utf8')) as AuditFixture;

  describe(`audit rules on plans from PostgreSQL ${fixture.serverVersion}`, () => {
    it('has a captured scenario for every finding code', () => {
      expect([...new Set(fixture.scenarios.map((s) => s.code))].sort()).toEqual(Object.keys(FINDINGS).sort());
    });

    for (const scenario of fixture.scenarios) {
      it(`${scenario.code} (${scenario.name}): reported once on the trigger, absent once rewritten, and every other finding as expected`, () => {
        const trigger = analyze(scenario.trigger);
        expect(trigger.findings.filter((f) => f.code === scenario.code)).toHaveLength(1);
        const cleared = analyze(scenario.cleared);
        expect(cleared.findings.map((f) => f.code)).not.toContain(scenario.code);
        const expected = EXPECTED[scenario.name];
        expect(expected, `no expected findings for ${scenario.name}`).toBeDefined();
        expect({ trigger: trigger.findings.map((f) => f.code).sort(), cleared: cleared.findings.map((f) => f.code).sort() }).toEqual(expected);
        expect(trigger.complete).toBe(!trigger.findings.some((f) => f.severity === 'error'));
      });
    }

    const byName = (name: string): AuditFixture['scenarios'][number] => fixture.scenarios.find((s) => s.name === name)!;

    it('a pushed space-grouped aggregate is complete, touches every shard on both nodes and ships one row per group', () => {
      const result = analyze(byName('async-off').cleared);
      expect(result.complete).toBe(true);
      expect(result.shards.map((s) => `${s.foreignTable}@${s.dataNode}`)).toEqual([
        '_hypershard.metrics_s0@dn1',
        '_hypershard.metrics_s1@dn2',
        '_hypershard.metrics_s2@dn1',
        '_hypershard.metrics_s3@dn2',
      ]);
      expect(result.foreignScans.map((s) => [s.kind, s.pushed, s.async])).toEqual(Array.from({ length: 4 }, () => ['aggregate', ['GROUP BY'], true]));
      expect(result.accessNodeWork).toEqual(['Append']);
      expect(result.findings.map((f) => f.code)).toEqual(['ESTIMATED_ROWS']);
    });

    it('says where a window function can run whole: one space key, through a router read', () => {
      const window = analyze(byName('window-over-rows').trigger).findings.find((f) => f.code === 'LOCAL_ROW_WORK')!;
      expect(window.message).toContain('WindowAgg over raw shard rows (postgres_fdw ships no window function)');
      expect(window.fix).toMatch(/one space-key value .* router reads it runs whole on that shard's data node/);
    });

    it('names now() and the filter the data nodes never saw', () => {
      const result = analyze(byName('now-window').trigger);
      const stable = result.findings.find((f) => f.code === 'STABLE_EXPRESSION_LOCAL')!;
      expect(stable.severity).toBe('error');
      expect(stable.message).toContain('now() in the filter `(metrics."time" > (now() - \'01:00:00\'::interval))` is STABLE');
      expect(result.foreignScans.every((s) => s.localFilter !== undefined && !s.pushed.includes('WHERE'))).toBe(true);
      expect(result.complete).toBe(false);
    });

    it('names date_trunc as STABLE and suggests date_bin', () => {
      const f = analyze(byName('date-trunc-bucket').trigger).findings.find((x) => x.code === 'NON_SHIPPABLE_FUNCTION')!;
      expect(f.message).toMatch(/date_trunc\(\) is STABLE in the group key/);
      expect(f.message).toContain('bucket with date_bin(interval, time, origin)');
    });

    it('LIMIT pushed into every shard is not flagged, and rows shipped are bounded by it', () => {
      const result = analyze(byName('latest-rows').cleared);
      expect(result.foreignScans.every((s) => s.pushed.includes('LIMIT'))).toBe(true);
      expect(result.complete).toBe(true);
    });

    it('single-shard queries touch one data node', () => {
      const result = analyze(byName('pruned-to-one-shard').trigger);
      expect(result.shards).toHaveLength(1);
      expect(result.dataNodes).toHaveLength(1);
    });

    it('renders text and Markdown, and ranks severities for --fail-on', () => {
      const audited = [{ ...analyze(byName('now-window').trigger), sql: byName('now-window').trigger.sql, analyzed: false, executionMs: undefined, plan: byName('now-window').trigger.plan }];
      expect(auditText(audited)).toMatch(/^INCOMPLETE {2}SELECT device_id, count\(\*\) FROM metrics WHERE time > now\(\)/);
      expect(auditMarkdown(audited)).toContain('| 1 | ❌ incomplete | 4 |');
      expect(worstSeverity(audited)).toBe('error');
    });
  });
}

describe('functionCalls', () => {
  it('counts top-level arguments, ignoring commas in quotes and nested calls', () => {
    expect(functionCalls(`date_trunc('hour'::text, metrics."time")`)).toEqual(['date_trunc/2']);
    expect(functionCalls(`date_trunc('hour'::text, metrics."time", 'UTC'::text)`)).toEqual(['date_trunc/3']);
    expect(functionCalls(`max(date_bin('01:00:00'::interval, t, 'a,b'::timestamptz))`)).toEqual(['max/1', 'date_bin/3']);
    expect(functionCalls(`now()`)).toEqual(['now/0']);
    expect(functionCalls(`"quoted"(x) + 'lit(1)'`)).toEqual([]);
  });

  it('every code is documented with a fix', () => {
    for (const code of Object.keys(FINDINGS) as FindingCode[]) expect(FINDINGS[code].fix.length).toBeGreaterThan(20);
  });
});

describe('classifyExpression', () => {
  const catalog = { serverVersionNum: 180000, asyncAppend: true, foreignTables: new Map(), asyncServers: new Map(), volatility: new Map() };
  it('a column compared with a text constant takes the column’s collation (it ships); a constant of its own does not', () => {
    expect(classifyExpression(`CASE WHEN ((metrics.region = 'africa'::text) OR (metrics.cpu > '80'::double precision)) THEN metrics.amount ELSE NULL::numeric END`, catalog, 'group key')).toBeUndefined();
    expect(classifyExpression(`("we""ird".region <> 'it''s'::text)`, catalog, 'filter')).toBeUndefined();
    expect(classifyExpression(`(upper('africa'::text) = metrics.region)`, catalog, 'filter')?.code).toBe('COLLATION_NOT_SHIPPABLE');
    expect(classifyExpression(`date_part('hour'::text, metrics."time")`, catalog, 'group key')?.code).toBe('COLLATION_NOT_SHIPPABLE');
  });
});
