/**
 * Writes through the access node (INSERT routed by postgres_fdw to the shard's data node) while a
 * data node crashes (`pg_ctl stop -m immediate`), is killed (SIGKILL to every process) or freezes
 * (SIGSTOP: it accepts TCP and never answers): every acknowledged row is there exactly once after
 * the node comes back, no row is there twice; frozen, statements fail at the client's
 * `statement_timeout`. Queries through the access node under the same faults: those on the other
 * node's shards keep answering, those touching the node fail within a bound, and the same sessions
 * answer as before once it is back (no client reconnects).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type pg from 'pg';
import type { NodeStop } from '../../src/dev/cluster.js';
import { between, checkClean, connect, faultSources, SCALE, secondsToFirstError, sleep, startFaultCluster, startWriters, summarize, verifyRows, type FaultCluster } from '../support/faults.js';

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

  it.skipIf(source.skip !== undefined)('data node frozen (SIGSTOP) during INSERT through the access node: statements fail at the client\'s statement_timeout, acknowledged rows exactly once after it thaws', async () => {
    const timeoutMs = 3_000;
    const frozenMs = 6_000;
    let acknowledged = 0;
    let found = 0;
    let worstSeconds = 0;
    for (let run = 0; run < SCALE.runs; run += 1) {
      const firstId = nextId;
      nextId += SCALE.rows;
      const writers = startWriters(cluster.dev.accessNode.url, { rows: SCALE.rows, firstId, statementTimeoutMs: timeoutMs });
      const target = between(SCALE.rows / 10, SCALE.rows / 2);
      while (writers.acknowledgedSoFar() < target) await sleep(20);
      const faultAt = performance.now();
      await cluster.freeze('dn2');
      try {
        await sleep(frozenMs);
      } finally {
        await cluster.thaw('dn2');
      }
      const written = await writers.stop();
      const { found: present, problems } = await verifyRows(cluster.dev.accessNode.url, written, firstId);
      expect(problems).toEqual([]);
      // Writes waiting on dn2 failed: at the statement_timeout (PostgreSQL 17+), or when the frozen
      // node answered postgres_fdw's cancel request after thawing (14-16 wait for it).
      const seconds = secondsToFirstError(written.errors, faultAt);
      expect(seconds).toBeDefined();
      expect(seconds!).toBeGreaterThan(timeoutMs / 1000 - 0.5);
      expect(seconds!).toBeLessThan((frozenMs + timeoutMs) / 1000 + 5);
      expect(written.errors.some((e) => /statement timeout/.test(e.message)), JSON.stringify(written.errors.slice(0, 3))).toBe(true);
      acknowledged += written.acknowledged.length;
      found += present;
      worstSeconds = Math.max(worstSeconds, seconds ?? 0);
    }
    expect(await checkClean(cluster)).toEqual([]);
    summarize({ case: `data node frozen (SIGSTOP) ${frozenMs / 1000} s during INSERT through the access node, statement_timeout ${timeoutMs / 1000} s`, source: source.label, runs: SCALE.runs, rowsAcknowledged: acknowledged, rowsFound: found, secondsToError: worstSeconds });
  });

  it.skipIf(source.skip !== undefined).each<[string, NodeStop | 'freeze']>([
    ['killed (SIGKILL)', 'kill'],
    ['crashed (pg_ctl stop -m immediate)', 'immediate'],
    ['frozen (SIGSTOP)', 'freeze'],
  ])('data node %s under queries through the access node: the other node answers, its shards fail within a bound, the same sessions answer as before once it is back', async (label, how) => {
    const timeoutMs = 3_000;
    const frozenMs = 8_000;
    // A device on each data node, by the shard its rows are in.
    const sessions: pg.Client[] = [];
    try {
      // a: dn1's shards; b, c, d: one query touching dn2 each, all waiting at once.
      for (let i = 0; i < 4; i += 1) sessions.push(await connect(cluster.dev.accessNode.url, { statement_timeout: String(timeoutMs) }));
      const [a, b, c, d] = sessions as [pg.Client, pg.Client, pg.Client, pg.Client];
      // Rows on every shard (negative ids: the writers' checks read ids from 1 up).
      await a.query('INSERT INTO metrics (time, device_id, memory) SELECT now(), i % 20, -i FROM generate_series(1, 200) AS i');
      const { rows: shards } = await a.query<{ device_id: number; shard: string }>('SELECT DISTINCT device_id, tableoid::regclass::text AS shard FROM metrics');
      const nodeOf = (shard: string): string => cluster.layout.hypertables[0]!.shards.find((s) => shard.endsWith(s.table.name))!.dataNode;
      const on = (node: string): number => shards.find((r) => nodeOf(r.shard) === node)!.device_id;
      const dn1 = `SELECT count(*)::int AS n, sum(memory)::float8 AS s FROM metrics WHERE device_id = ${on('dn1')}`;
      const touching: [pg.Client, string][] = [
        [b, `SELECT count(*)::int AS n, sum(memory)::float8 AS s FROM metrics WHERE device_id = ${on('dn2')}`],
        // Shards chosen at run time (a sub-select), and every shard.
        [c, `SELECT count(*)::int AS n FROM metrics WHERE device_id = (SELECT ${on('dn2')})`],
        [d, 'SELECT device_id, count(*)::int AS n FROM metrics GROUP BY device_id ORDER BY device_id'],
      ];
      const answer = async (client: pg.Client, q: string): Promise<unknown> => (await client.query(q)).rows;
      const answers = async (): Promise<unknown[]> => [await answer(a, dn1), ...(await Promise.all(touching.map(([client, q]) => answer(client, q))))];
      const before = await answers();

      const faultAt = performance.now();
      // Frozen, dn2 thaws by itself after frozenMs: PostgreSQL 14-16's postgres_fdw waits for a
      // frozen node to answer its cancel request (17+ gives up after its own timeout).
      let thawed: Promise<void> | undefined;
      if (how === 'freeze') {
        await cluster.freeze('dn2');
        thawed = sleep(frozenMs).then(() => cluster.thaw('dn2'));
      } else await cluster.stop('dn2', how);
      let worst = 0;
      let errors: (string | undefined)[] = [];
      try {
        const failing = Promise.all(
          touching.map(async ([client, q]) => {
            const started = performance.now();
            const error = await client.query(q).then(() => undefined, (e: Error) => e.message);
            worst = Math.max(worst, (performance.now() - started) / 1000);
            return error;
          }),
        );
        // dn1's shards answer while those wait, in a session that also holds a connection to dn2.
        expect(await answer(a, dn1)).toEqual(before[0]);
        errors = await failing;
        expect(await answer(a, dn1)).toEqual(before[0]);
      } finally {
        if (thawed !== undefined) await thawed;
        else await cluster.start('dn2');
      }
      expect(errors.every((e) => e !== undefined), JSON.stringify(errors)).toBe(true);
      // Down, a query on its shards names its FDW server; frozen, it ends at the statement_timeout.
      if (how === 'freeze') for (const e of errors) expect(e).toMatch(/statement timeout/);
      else for (const e of errors) expect(e).toMatch(/hypershard_dn2_\d/);
      expect(worst).toBeLessThan((how === 'freeze' ? frozenMs : timeoutMs) / 1000 + 5);

      // Back: the same sessions answer as before, without reconnecting.
      expect(await answers()).toEqual(before);
      summarize({ case: `data node ${label} under queries through the access node`, source: source.label, runs: 1, secondsToError: worst, note: `${(errors[0] ?? '').split('\n')[0]}; ${((performance.now() - faultAt) / 1000).toFixed(1)} s from the fault to the same sessions answering again` });
    } finally {
      for (const c of sessions) await c.end().catch(() => undefined);
    }
  });
});
