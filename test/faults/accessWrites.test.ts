/**
 * Writes through the access node (INSERT routed by postgres_fdw to the shard's data node) while a
 * data node crashes (`pg_ctl stop -m immediate`) or is killed (SIGKILL to every process): every
 * acknowledged row is there exactly once after the node comes back, no row is there twice, and
 * writers to the other node's shards go on.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NodeStop } from '../../src/dev/cluster.js';
import { between, checkClean, faultSources, SCALE, secondsToFirstError, sleep, startFaultCluster, startWriters, summarize, verifyRows, type FaultCluster } from '../support/faults.js';

describe.each(faultSources())('$label', (source) => {
  let cluster: FaultCluster;
  let nextId = 1;

  beforeAll(async () => {
    if (source.skip === undefined) cluster = await startFaultCluster(source);
  });
  afterAll(async () => {
    await cluster?.close();
  });

  it.skipIf(source.skip !== undefined).each<[string, NodeStop]>([
    ['crashed (pg_ctl stop -m immediate)', 'immediate'],
    ['killed (SIGKILL)', 'kill'],
  ])('data node %s during INSERT through the access node', async (label, how) => {
    let acknowledged = 0;
    let found = 0;
    let worstSeconds = 0;
    for (let run = 0; run < SCALE.runs; run += 1) {
      const firstId = nextId;
      nextId += SCALE.rows;
      const writers = startWriters(cluster.dev.accessNode.url, { rows: SCALE.rows, firstId, statementTimeoutMs: 30_000 });
      // The fault lands somewhere in the first half of the writes.
      const target = between(SCALE.rows / 10, SCALE.rows / 2);
      while (writers.acknowledgedSoFar() < target) await sleep(20);
      const faultAt = performance.now();
      await cluster.stop('dn2', how);
      await sleep(1_500);
      await cluster.start('dn2');
      const written = await writers.stop();
      const { found: present, problems } = await verifyRows(cluster.dev.accessNode.url, written, firstId);
      expect(problems).toEqual([]);
      expect(written.acknowledged.length).toBeGreaterThan(target - 1);
      // Writes to dn2's shards failed while it was down.
      const seconds = secondsToFirstError(written.errors, faultAt);
      expect(seconds).toBeDefined();
      acknowledged += written.acknowledged.length;
      found += present;
      worstSeconds = Math.max(worstSeconds, seconds ?? 0);
    }
    expect(await checkClean(cluster)).toEqual([]);
    summarize({ case: `data node ${label} during INSERT through the access node`, source: source.label, runs: SCALE.runs, rowsAcknowledged: acknowledged, rowsFound: found, secondsToError: worstSeconds });
  });
});
