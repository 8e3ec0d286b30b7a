/**
 * `hypershard load` (rows routed straight to the data nodes, committed with two-phase commit) while
 * a node fails:
 *
 * 1. A data node killed -9, crashed (`-m immediate`) or frozen (SIGSTOP) while rows stream in on
 *    stdin: the load exits non-zero within 60 s naming the node, nothing of it is committed on any
 *    node and nothing is left prepared (after `recover`); loading the same rows again puts each
 *    there exactly once and `check` is clean.
 * 2. A node failing inside the commit, once every data node has prepared and the load is writing
 *    its commit record on the access node (held there by a lock the test takes): a data node killed
 *    or frozen then gets its part committed by `recover` once it is back (the load says to run it);
 *    the access node killed or frozen then leaves no record, and `recover` rolls every prepared part
 *    back.
 *    Either way the rows are there all or none, each once, and nothing stays prepared.
 */
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NodeStop } from '../../src/dev/cluster.js';
import { between, checkClean, connect, faultSources, FULL, SCALE, sleep, startFaultCluster, summarize, type CliRun, type FaultCluster } from '../support/faults.js';

const BOUND_S = 60;
type Fault = NodeStop | 'freeze';
const LABEL: Record<Fault, string> = { kill: 'killed -9', immediate: 'crashed (-m immediate)', freeze: 'frozen', fast: 'stopped' };
/** Rows per load: enough that a load is still streaming when the fault lands. */
const ROWS = SCALE.rows * 5;
const LOAD_ARGS = ['load', '--table', 'metrics', '--format', 'csv', '--columns', 'time,device_id,memory', '-'];

/** CSV rows `firstId …` (id in memory, devices over every shard), in chunks of 500; `atRow` runs before the chunk holding that row. */
async function* csvRows(firstId: number, rows: number, at?: { row: number; run: () => Promise<void> }): AsyncGenerator<string> {
  const time = new Date().toISOString();
  for (let i = 0; i < rows; i += 500) {
    if (at !== undefined && at.row >= i && at.row < i + 500) await at.run();
    yield Array.from({ length: Math.min(500, rows - i) }, (_, j) => `${time},${(firstId + i + j) % 20},${firstId + i + j}\n`).join('');
  }
}

describe.each(faultSources())('$label', (source) => {
  let cluster: FaultCluster;
  let access: pg.Client;
  let nextId = 1_000_000;

  /** How many rows of `firstId … firstId + ROWS - 1` are there, and whether any is there twice. */
  const rowsOf = async (firstId: number): Promise<{ present: number; twice: number }> => {
    const { rows } = await access.query<{ present: number; twice: number }>(
      'SELECT count(*)::int AS present, count(*) FILTER (WHERE n > 1)::int AS twice FROM (SELECT memory, count(*) AS n FROM metrics WHERE memory >= $1 AND memory < $2 GROUP BY memory) c',
      [firstId, firstId + ROWS],
    );
    return rows[0]!;
  };
  /** Prepared transactions on the data nodes, by node. */
  const prepared = async (): Promise<Record<string, number>> => {
    const out: Record<string, number> = {};
    for (const node of cluster.dev.dataNodes) {
      const client = await connect(node.url);
      out[node.name] = Number((await client.query<{ n: string }>('SELECT count(*)::text AS n FROM pg_catalog.pg_prepared_xacts')).rows[0]!.n);
      await client.end();
    }
    return out;
  };
  const fault = async (node: string, how: Fault): Promise<void> => (how === 'freeze' ? cluster.freeze(node) : cluster.stop(node, how));
  const recoverNode = async (node: string, how: Fault): Promise<void> => (how === 'freeze' ? cluster.thaw(node) : cluster.start(node));
  const output = (run: CliRun): string => `${run.stdout}\n${run.stderr}`.trim();
  const lastLine = (run: CliRun): string => output(run).split(/[\r\n]/).findLast((l) => l.trim() !== '') ?? '';

  /** After a failed load: recover finishes what is left, nothing stays prepared, the same rows load again, each once. */
  const settle = async (firstId: number, expected: 'none' | 'all'): Promise<void> => {
    const recovered = await cluster.cli(['recover']);
    expect(recovered.code, output(recovered)).toBe(0);
    expect(await prepared()).toEqual({ dn1: 0, dn2: 0 });
    expect(await rowsOf(firstId)).toEqual({ present: expected === 'all' ? ROWS : 0, twice: 0 });
    if (expected === 'none') {
      const again = await cluster.cli(LOAD_ARGS, { input: csvRows(firstId, ROWS) });
      expect(again.code, output(again)).toBe(0);
      expect(await rowsOf(firstId)).toEqual({ present: ROWS, twice: 0 });
    }
  };

  beforeAll(async () => {
    if (source.skip !== undefined) return;
    cluster = await startFaultCluster(source);
    access = await connect(cluster.dev.accessNode.url);
  });
  afterAll(async () => {
    await access?.end().catch(() => undefined);
    await cluster?.close();
  });

  // npm test: one of each kind of fault; test:faults: every one.
  it.skipIf(source.skip !== undefined).each<[Fault]>([['kill'], ...(FULL ? [['immediate'] as [Fault]] : []), ['freeze']])('a data node %s while hypershard load streams rows: the load fails naming it, nothing committed, the rows load again once', async (how) => {
    let worst = 0;
    let loaded = 0;
    let said = '';
    for (let run = 0; run < SCALE.runs; run += 1) {
      const firstId = nextId;
      nextId += ROWS;
      let faultAt = 0;
      const at = between(ROWS / 5, (ROWS * 4) / 5);
      const load = await cluster.cli(LOAD_ARGS, {
        deadlineMs: (BOUND_S + 60) * 1000,
        input: csvRows(firstId, ROWS, {
          row: at,
          run: async () => {
            await fault('dn2', how);
            faultAt = performance.now();
          },
        }),
      });
      const seconds = (performance.now() - faultAt) / 1000;
      await recoverNode('dn2', how);
      expect(faultAt, 'the fault landed before the input ended').toBeGreaterThan(0);
      expect(load.killed, output(load)).toBeUndefined();
      expect(load.code, output(load)).not.toBe(0);
      expect(output(load)).toContain('dn2');
      expect(seconds).toBeLessThan(BOUND_S);
      worst = Math.max(worst, seconds);
      said = lastLine(load);
      // The input never ended, so the load never reached its commit: nothing of it anywhere.
      await settle(firstId, 'none');
      loaded += ROWS;
    }
    expect(await checkClean(cluster)).toEqual([]);
    summarize({ case: `data node ${LABEL[how]} during hypershard load (routed COPY, two-phase commit), then loaded again`, source: source.label, runs: SCALE.runs, rowsAcknowledged: loaded, rowsFound: loaded, secondsToError: worst, note: said });
  });

  it.skipIf(source.skip !== undefined).each<[string, Fault, 'all' | 'none']>([
    ['dn2', 'kill', 'all'],
    ...(FULL ? [['dn2', 'freeze', 'all'] as [string, Fault, 'all' | 'none'], ['access', 'kill', 'none'] as [string, Fault, 'all' | 'none']] : []),
    ['access', 'freeze', 'none'],
  ])('%s %s once every data node has prepared a load: recover leaves its rows all or none, each once', async (node, how, expected) => {
    const firstId = nextId;
    nextId += ROWS;
    // Holds the load at its commit record (an INSERT into _hypershard.commits, after every PREPARE).
    const holder = await connect(cluster.dev.accessNode.url);
    await holder.query('BEGIN');
    await holder.query('LOCK TABLE _hypershard.commits IN SHARE MODE');
    const running = cluster.cli(LOAD_ARGS, { deadlineMs: (BOUND_S + 60) * 1000, input: csvRows(firstId, ROWS) });
    let waiting = false;
    for (let i = 0; i < 600 && !waiting; i += 1) {
      const { rows } = await access.query(`SELECT 1 FROM pg_catalog.pg_locks WHERE relation = '_hypershard.commits'::regclass AND NOT granted`);
      waiting = rows.length > 0;
      if (!waiting) await sleep(100);
    }
    expect(waiting, 'the load reached its commit record').toBe(true);
    expect(Object.values(await prepared()).every((n) => n > 0)).toBe(true);
    await fault(node, how);
    const faultAt = performance.now();
    // The lock goes at once, or (the access node frozen) once it thaws, or with the node (killed).
    const released = holder.query('COMMIT').catch(() => undefined);
    const load = await running;
    const seconds = (performance.now() - faultAt) / 1000;
    await recoverNode(node, how);
    await released;
    await holder.end().catch(() => undefined);
    if (node === 'access') {
      await access.end().catch(() => undefined);
      access = await connect(cluster.dev.accessNode.url);
    }
    expect(load.killed, output(load)).toBeUndefined();
    expect(load.code, output(load)).toBe(1);
    expect(seconds).toBeLessThan(BOUND_S);
    if (node === 'access') expect(output(load)).toMatch(/writing the commit record failed: node access: /);
    else expect(output(load)).toMatch(/dn2: COMMIT PREPARED \S+ got no answer .*run hypershard recover to finish it/);
    await settle(firstId, expected);
    expect(await checkClean(cluster)).toEqual([]);
    summarize({
      case: `${node === 'access' ? 'access node' : 'data node'} ${LABEL[how]} while hypershard load writes its commit record (every node prepared), then recover`,
      source: source.label,
      runs: 1,
      rowsAcknowledged: ROWS,
      rowsFound: (await rowsOf(firstId)).present,
      secondsToError: seconds,
      note: `${expected === 'all' ? 'the commit was recorded: recover committed the node\'s part' : 'no commit record: recover rolled back every prepared part, the load ran again'}; the load said: ${lastLine(load)}`,
    });
  });
});
