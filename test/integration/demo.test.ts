/**
 * The demo end to end on a small embedded cluster: it is the README's first command, so it must
 * not rot. Its last query is written as people write it; the rewriter must give the same answer
 * with the work on the data nodes.
 */
import { describe, expect, it } from 'vitest';
import { runDemo } from '../../src/demo/runDemo.js';
import { clusterSources } from '../support/clusters.js';

const embedded = clusterSources().find((s) => s.label.includes('embedded'));
const skip = embedded === undefined ? 'embedded PostgreSQL is not among HYPERSHARD_TEST_SOURCES' : await embedded.unavailable();

describe.skipIf(skip !== undefined)(`demo on embedded PostgreSQL${skip === undefined ? '' : ` — skipped: ${skip}`}`, () => {
  it('loads, queries, audits, and rewrites the users’ query into one that ships, with the same answer', async () => {
    const report = await runDemo({ devices: 50, hours: 2 });
    expect(report.apply.ok).toBe(true);
    expect(report.load.rows).toBe(50 * 2 * 360);
    for (const q of report.queries) expect(q.rows.length, q.title).toBeGreaterThan(0);
    const users = report.queries[report.queries.length - 1];
    expect(users?.audit.complete).toBe(false);
    expect(users?.rewritten?.sameAnswer).toBe(true);
    expect(users?.rewritten?.audit.complete).toBe(true);
    expect(users?.rewritten?.rewrites.map((r) => r.kind).sort()).toEqual(['partial-aggregate', 'stable-expression', 'time-bucket']);
    for (const q of report.queries) if (q.rewritten !== undefined) expect(q.rewritten.sameAnswer, q.title).toBe(true);
  }, 180_000);
});
