/**
 * Captures EXPLAIN plans and catalog facts of every audit scenario from real clusters (embedded
 * PostgreSQL 18 and the system's 15) into test/fixtures/audit/pg<major>.json, for the analyzer's
 * unit tests. Fixtures are only ever written by this script: `npm run fixtures:audit`.
 */
import { writeFile } from 'node:fs/promises';
import { auditCluster, auditScenarios, captureCase, type CapturedPlan } from '../test/support/auditScenarios.js';
import { clusterSources } from '../test/support/clusters.js';

export interface AuditFixture {
  readonly serverVersion: string;
  readonly scenarios: readonly { readonly name: string; readonly code: string; readonly trigger: CapturedPlan; readonly cleared: CapturedPlan }[];
}

for (const source of clusterSources().filter((s) => s.label !== 'testcontainers PostgreSQL 18')) {
  const reason = await source.unavailable();
  if (reason !== undefined) {
    process.stderr.write(`skipping ${source.label}: ${reason}\n`);
    continue;
  }
  const cluster = await source.start(2);
  try {
    const { client, layout, facts } = await auditCluster(cluster);
    try {
      const scenarios = [];
      for (const scenario of auditScenarios(facts)) {
        const trigger = (await captureCase(client, scenario.trigger, layout)).captured;
        const cleared = (await captureCase(client, scenario.cleared, layout)).captured;
        scenarios.push({ name: scenario.name, code: scenario.code, trigger, cleared });
      }
      const version = (await client.query<{ v: string }>("SELECT current_setting('server_version') AS v")).rows[0]?.v ?? '?';
      const fixture: AuditFixture = { serverVersion: version, scenarios };
      const file = new URL(`../test/fixtures/audit/pg${cluster.major}.json`, import.meta.url);
      await writeFile(file, `${JSON.stringify(fixture, null, 1)}\n`);
      process.stdout.write(`wrote ${file.pathname} (${scenarios.length} scenarios, PostgreSQL ${version})\n`);
    } finally {
      await client.end();
    }
  } finally {
    await cluster.stop();
  }
}
