/**
 * Operations interrupted where they are most fragile, on one cluster of three data nodes:
 * - `rebalance` (and `node drain`) with the source or target data node killed (-9), crashed
 *   (-m immediate) or frozen (SIGSTOP) as a move enters each phase: prepare, copy, switch, cleanup;
 * - the `rebalance` and `apply` CLIs killed (SIGKILL) at a random point;
 * - a data node killed at a random point of `apply` and of `maintain`.
 * After each: the command failed within a bound naming the node (or finished), the next run
 * converges, every acknowledged row (written through the access node throughout) is present exactly
 * once, the data nodes hold no row twice (no shard left on two nodes), and `check` is clean.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parseDocument } from 'yaml';
import type { NodeStop } from '../../src/dev/cluster.js';
import { generateMigrations } from '../../src/migrations/files.js';
import { planLayout } from '../../src/plan/layout.js';
import { rebalance } from '../../src/rebalance/rebalance.js';
import type { RebalanceProgress, RebalanceResult } from '../../src/rebalance/result.js';
import { loadSpec } from '../../src/spec/load.js';
import {
  between,
  checkClean,
  connect,
  faultSources,
  FULL,
  SCALE,
  sleep,
  startFaultCluster,
  startWriters,
  summarize,
  verifyRows,
  type FaultCluster,
  type WriterResult,
} from '../support/faults.js';

type Phase = RebalanceProgress['phase'];
type Fault = NodeStop | 'freeze';
const BOUND_S = 60;
const FAULT_LABEL: Record<Fault, string> = { kill: 'killed -9', immediate: 'crashed (-m immediate)', freeze: 'frozen', fast: 'stopped' };

/** Small: two phases in npm test; full: every phase under every fault, source and target in turn. */
const ROUNDS: { phase: Phase; fault: Fault; node: 'source' | 'target' }[] = FULL
  ? (['prepare', 'copy', 'switch', 'cleanup'] as const).flatMap((phase, p) =>
      (['kill', 'immediate', 'freeze'] as const).map((fault, f) => ({ phase, fault, node: (p + f) % 2 === 0 ? ('target' as const) : ('source' as const) })),
    )
  : [
      { phase: 'copy', fault: 'kill', node: 'target' },
      { phase: 'switch', fault: 'immediate', node: 'source' },
    ];

describe.each(faultSources())('$label', (source) => {
  let cluster: FaultCluster;
  /** Every id written so far, acknowledged or not, across the cases (rows accumulate). */
  const written: { acknowledged: number[]; uncertain: number[] } = { acknowledged: [], uncertain: [] };
  let nextId = 1;

  beforeAll(async () => {
    if (source.skip !== undefined) return;
    cluster = await startFaultCluster(source, { dataNodes: 3, shards: 6 });
    const client = await connect(cluster.dev.accessNode.url);
    const rows = SCALE.rows * 2;
    await client.query(`INSERT INTO metrics (time, device_id, memory) SELECT now() - i * interval '10 seconds', i % 20, i FROM generate_series(1, $1::int) AS i`, [rows]);
    await client.end();
    written.acknowledged.push(...Array.from({ length: rows }, (_, i) => i + 1));
    nextId = rows + 1;
  });
  afterAll(async () => {
    await cluster?.close();
  });
  // A case that failed halfway must not leave the next one a stopped or frozen node.
  afterEach(async () => {
    await cluster?.heal();
  });

  /** Writers through the access node while `during` runs; their ids join `written`. */
  const withWriters = async <T>(during: () => Promise<T>): Promise<T> => {
    const firstId = nextId;
    nextId += SCALE.rows;
    const writers = startWriters(cluster.dev.accessNode.url, { writers: 2, rows: SCALE.rows, firstId, statementTimeoutMs: 20_000 });
    let result: T;
    let done: WriterResult;
    try {
      result = await during();
    } finally {
      done = await writers.stop();
      written.acknowledged.push(...done.acknowledged);
      written.uncertain.push(...done.uncertain);
    }
    return result;
  };

  /** The invariants every case ends with; returns the acknowledged rows found once. */
  const invariants = async (): Promise<{ acknowledged: number; found: number }> => {
    const all: WriterResult = { acknowledged: written.acknowledged, uncertain: written.uncertain, errors: [] };
    const { found, problems } = await verifyRows(cluster.dev.accessNode.url, all, 1);
    expect(problems).toEqual([]);
    // Rows on the data nodes themselves: a shard left behind on a second node would count twice.
    const { spec } = await loadSpec(cluster.specFile);
    const tables = planLayout(spec).hypertables[0]!.shards.map((s) => s.table.name);
    let direct = 0;
    for (const node of cluster.dev.dataNodes) {
      const client = await connect(node.url);
      try {
        for (const table of tables) {
          const { rows } = await client.query<{ n: number | null }>(
            `SELECT CASE WHEN to_regclass($1) IS NULL THEN NULL ELSE (xpath('/row/n/text()', query_to_xml(format('SELECT count(*) AS n FROM %s', to_regclass($1)), false, true, '')))[1]::text::int END AS n`,
            [`_hypershard.${table}`],
          );
          direct += rows[0]?.n ?? 0;
        }
      } finally {
        await client.end();
      }
    }
    const access = await connect(cluster.dev.accessNode.url);
    const { rows } = await access.query<{ n: number }>('SELECT count(*)::int AS n FROM metrics');
    await access.end();
    expect(direct).toBe(rows[0]!.n);
    expect(await checkClean(cluster)).toEqual([]);
    return { acknowledged: written.acknowledged.length, found };
  };

  /** Drains dn3 when it holds shards, else evens out onto it: either way, moves to make. */
  const nextMoves = async (): Promise<{ drain?: string }> => {
    const { spec } = await loadSpec(cluster.specFile);
    const holds = planLayout(spec).hypertables[0]!.shards.some((s) => s.dataNode === 'dn3');
    return holds ? { drain: 'dn3' } : {};
  };

  it.skipIf(source.skip !== undefined)('rebalance with a data node killed, crashed or frozen as a move enters each phase', async () => {
    let worst = 0;
    const notes: string[] = [];
    for (const round of ROUNDS) {
      const how = await nextMoves();
      let { spec, file } = await loadSpec(cluster.specFile);
      let faulted: { node: string; at: number } | undefined;
      let result: RebalanceResult;
      try {
        result = await withWriters(() =>
        rebalance(spec, file, {
          ...how,
          timeoutMs: 5_000,
          onProgress: (e) => {
            if (faulted !== undefined || e.phase !== round.phase || (e.phase === 'copy' && e.rowsCopied === 0)) return;
            const node = round.node === 'source' ? e.source : e.target;
            faulted = { node, at: performance.now() };
            cluster.faultSync(node, round.fault);
          },
        }),
        );
      } finally {
        await cluster.heal();
      }
      const seconds = faulted === undefined ? 0 : (performance.now() - faulted.at) / 1000;
      const label = `${round.phase}: ${round.node} ${FAULT_LABEL[round.fault]}`;
      expect(faulted, `${label}: the phase was never reached`).toBeDefined();
      // A fault as cleanup begins may land after the last statement that needed the node.
      const failed = result.moves.find((m) => m.status === 'failed');
      if (round.phase !== 'cleanup' || failed !== undefined) {
        expect(result.ok, label).toBe(false);
        // The move's result names its nodes; the error says what failed (through the access node, postgres_fdw's message).
        expect(`${failed?.source ?? ''} -> ${failed?.target ?? ''}: ${failed?.error ?? ''}`, label).toContain(faulted!.node);
      }
      expect(seconds, label).toBeLessThan(BOUND_S);
      worst = Math.max(worst, seconds);
      notes.push(`${label} -> ${failed === undefined ? 'finished' : `failed in ${failed.phase ?? '?'}`} after ${seconds.toFixed(1)} s`);

      // The next run recovers the journaled move and converges.
      ({ spec, file } = await loadSpec(cluster.specFile));
      const again = await rebalance(spec, file, how);
      expect(again.recovered.filter((r) => r.action === 'failed'), label).toEqual([]);
      expect(again.ok, `${label}: ${JSON.stringify(again.moves.filter((m) => m.status === 'failed'))}`).toBe(true);
      await invariants();
    }
    process.stdout.write(`${notes.join('\n')}\n`);
    const { acknowledged, found } = await invariants();
    summarize({
      case: 'rebalance: source or target data node killed -9 / crashed / frozen as a move enters prepare, copy, switch, cleanup',
      source: source.label,
      runs: ROUNDS.length,
      rowsAcknowledged: acknowledged,
      rowsFound: found,
      secondsToError: worst,
    });
  });

  it.skipIf(source.skip !== undefined)('the rebalance CLI killed at a random point: the next run converges', async () => {
    const notes: string[] = [];
    for (let run = 0; run < SCALE.runs; run += 1) {
      const how = await nextMoves();
      const args = how.drain === undefined ? ['rebalance'] : ['node', 'drain', '--name', how.drain];
      const killAfterMs = between(300, 4_000);
      const killed = await withWriters(() => cluster.cli(args, { killAfterMs }));
      notes.push(`${args.join(' ')} ${killed.killed === 'on-purpose' ? `killed after ${killAfterMs} ms` : `finished (exit ${killed.code}) before ${killAfterMs} ms`}`);
      const again = await cluster.cli(args);
      expect(again.code, `${again.stdout}\n${again.stderr}`).toBe(0);
      await invariants();
    }
    process.stdout.write(`${notes.join('\n')}\n`);
    const { acknowledged, found } = await invariants();
    summarize({ case: 'rebalance / node drain CLI killed (SIGKILL) at a random point, then run again', source: source.label, runs: SCALE.runs, rowsAcknowledged: acknowledged, rowsFound: found, note: notes.join('; ') });
  });

  /** Adds a column and generates its migration (a change for every node). */
  const newMigration = async (column: string): Promise<void> => {
    const doc = parseDocument(await readFile(cluster.specFile, 'utf8'));
    doc.addIn(['hypertables', 0, 'columns'], doc.createNode({ name: column, type: 'text' }, { flow: true }));
    await writeFile(cluster.specFile, doc.toString());
    const { spec, file } = await loadSpec(cluster.specFile);
    await generateMigrations(spec, file);
  };

  it.skipIf(source.skip !== undefined)('the apply CLI killed at a random point: nothing half-applied, the next apply converges', async () => {
    const notes: string[] = [];
    for (let run = 0; run < SCALE.runs; run += 1) {
      await newMigration(`cli_killed_${run}`);
      const killAfterMs = between(100, 1_500);
      const killed = await cluster.cli(['apply'], { killAfterMs });
      notes.push(killed.killed === 'on-purpose' ? `killed after ${killAfterMs} ms` : `finished (exit ${killed.code})`);
      const again = await cluster.cli(['apply']);
      expect(again.code, `${again.stdout}\n${again.stderr}`).toBe(0);
      expect(await checkClean(cluster)).toEqual([]);
    }
    const { acknowledged, found } = await invariants();
    summarize({ case: 'apply CLI killed (SIGKILL) at a random point, then run again', source: source.label, runs: SCALE.runs, rowsAcknowledged: acknowledged, rowsFound: found, note: notes.join('; ') });
  });

  it.skipIf(source.skip !== undefined).each<[string, NodeStop]>([
    ['apply', 'kill'],
    ['maintain', FULL ? 'immediate' : 'kill'],
  ])('a data node killed at a random point of %s: exits naming it or finishes; the next run converges', async (command, how) => {
    let worst = 0;
    const notes: string[] = [];
    for (let run = 0; run < SCALE.runs; run += 1) {
      if (command === 'apply') await newMigration(`node_killed_${run}`);
      const running = cluster.cli([command], { deadlineMs: (BOUND_S + 30) * 1000 });
      await sleep(between(100, 1_500));
      const faultAt = performance.now();
      await cluster.stop('dn2', how);
      const run1 = await running;
      const seconds = (performance.now() - faultAt) / 1000;
      await cluster.start('dn2');
      expect(run1.killed).toBeUndefined();
      if (run1.code !== 0) {
        expect(`${run1.stdout}\n${run1.stderr}`).toContain('dn2');
        worst = Math.max(worst, Math.max(0, seconds));
      }
      notes.push(run1.code === 0 ? 'finished before the fault' : `exit ${run1.code} ${seconds.toFixed(1)} s after it`);
      const again = await cluster.cli([command]);
      expect(again.code, `${again.stdout}\n${again.stderr}`).toBe(0);
      expect(await checkClean(cluster)).toEqual([]);
    }
    summarize({ case: `data node ${FAULT_LABEL[how]} at a random point of ${command}`, source: source.label, runs: SCALE.runs, secondsToError: worst, note: notes.join('; ') });
  });
});
