/**
 * A real network partition: dn2 runs in its own network namespace behind a veth pair, and the link
 * is cut (packets dropped silently, no RST, no ICMP). Writes through the access node keep every
 * acknowledged row exactly once; the CLI's commands exit non-zero within 60 s naming dn2; the FDW
 * servers' timeout options (fdw.timeouts) make a statement waiting on dn2 fail on its own; after
 * the link heals, check is clean.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkClean, connect, faultSources, FULL, inBatches, SCALE, secondsToFirstError, sleep, startFaultCluster, startWriters, summarize, verifyRows, type FaultCluster } from '../support/faults.js';
import { vethUnavailable } from '../support/netns.js';

const BOUND_S = 60;
const unavailable = await vethUnavailable();

describe.each(faultSources())('$label', (source) => {
  const skip = source.skip ?? unavailable;
  let cluster: FaultCluster;

  beforeAll(async () => {
    if (skip === undefined) cluster = await startFaultCluster(source, { veth: 'dn2' });
  });
  afterAll(async () => {
    await cluster?.close();
  });

  it.skipIf(skip !== undefined)('INSERTs through the access node while dn2 is cut off: acknowledged rows exactly once after it heals', async () => {
    const veth = cluster.veth!;
    let acknowledged = 0;
    let found = 0;
    let worst = 0;
    for (let run = 0; run < SCALE.runs; run += 1) {
      const firstId = 1 + run * SCALE.rows;
      // What the README tells applications to set.
      const writers = startWriters(cluster.dev.accessNode.url, { rows: SCALE.rows, firstId, statementTimeoutMs: 10_000 });
      while (writers.acknowledgedSoFar() < SCALE.rows / 10) await sleep(20);
      const cutAt = performance.now();
      await veth.cut();
      // Long enough for the writers to meet the cut and for fdw.timeouts to drop the connections.
      await sleep(FULL_CUT_MS);
      await veth.heal();
      await sleep(2_000);
      const written = await writers.stop();
      const { found: present, problems } = await verifyRows(cluster.dev.accessNode.url, written, firstId);
      expect(problems).toEqual([]);
      const seconds = secondsToFirstError(written.errors, cutAt);
      expect(seconds, 'a writer to dn2 saw an error').toBeDefined();
      acknowledged += written.acknowledged.length;
      found += present;
      worst = Math.max(worst, seconds ?? 0);
    }
    summarize({ case: 'network partition (veth cut) during INSERT through the access node, statement_timeout 10 s', source: source.label, runs: SCALE.runs, rowsAcknowledged: acknowledged, rowsFound: found, secondsToError: worst });
  });

  // A minute of waiting by design: at full scale only.
  it.skipIf(skip !== undefined || !FULL)('a statement waiting on a cut-off data node fails by itself (fdw.timeouts), without a statement_timeout', async () => {
    const veth = cluster.veth!;
    const client = await connect(cluster.dev.accessNode.url);
    try {
      await client.query('SELECT count(*) FROM metrics');
      await veth.cut();
      const cutAt = performance.now();
      const error = await client.query('SELECT count(*) FROM metrics').then(
        () => undefined,
        (e: unknown) => e as Error,
      );
      const seconds = (performance.now() - cutAt) / 1000;
      expect(error?.message).toBeDefined();
      // Two tcp_user_timeouts at most: the cached connection, then the reconnect.
      expect(seconds).toBeLessThan(75);
      summarize({ case: 'network partition: a query on an idle FDW connection, no statement_timeout', source: source.label, runs: 1, secondsToError: seconds, note: error?.message.split('\n')[0] ?? '' });
    } finally {
      await veth.heal();
      await client.end().catch(() => undefined);
    }
  });

  it.skipIf(skip !== undefined)('with dn2 cut off, every command exits non-zero within 60 s naming it; healed, check is clean', async () => {
    const veth = cluster.veth!;
    const commands = [
      ['query', '-q', 'SELECT count(*) FROM metrics'],
      ['maintain'],
      ['apply'],
      ['check'],
      ['status'],
      ['exec', '--access-node', '--sql', 'INSERT INTO metrics (time, device_id) VALUES (now(), 3)'],
    ];
    await veth.cut();
    let runs;
    try {
      runs = await inBatches(commands, 3, (args) => cluster.cli(args, { deadlineMs: (BOUND_S + 30) * 1000 }));
    } finally {
      await veth.heal();
    }
    const report = runs.map((run, i) => ({ command: commands[i]!.join(' '), code: run.code, seconds: run.seconds, killed: run.killed, output: `${run.stdout}\n${run.stderr}`.trim() }));
    process.stdout.write(`${report.map((r) => `${r.command}: exit ${r.code} in ${r.seconds.toFixed(1)} s: ${r.output.split('\n').slice(-1)[0] ?? ''}`).join('\n')}\n`);
    for (const r of report) {
      expect(r.killed, r.command).toBeUndefined();
      expect(r.code, `${r.command}: ${r.output}`).not.toBe(0);
      expect(r.seconds, r.command).toBeLessThan(BOUND_S);
      expect(r.output, r.command).toContain('dn2');
    }
    // The access node's FDW connections to dn2 recover (postgres_fdw reconnects at the next transaction).
    await sleep(1_000);
    expect(await checkClean(cluster)).toEqual([]);
    summarize({ case: 'network partition (veth cut): query, maintain, apply, check, status, exec through the access node', source: source.label, runs: commands.length, secondsToError: Math.max(...report.map((r) => r.seconds)) });
  });
});

const FULL_CUT_MS = SCALE.runs > 1 ? 40_000 : 25_000;
