/** `rebalance`: move shards so that the data nodes hold even bytes; a progress bar per move. */
import type { Command } from 'commander';
import { rebalance } from '../../rebalance/rebalance.js';
import type { MoveResult, RebalanceResult } from '../../rebalance/result.js';
import { loadSpec } from '../../spec/load.js';
import { integerFlag, timeoutFlag } from '../flags.js';
import { progressBar, type Progress } from '../progress.js';
import { command, EXIT, json, out } from '../run.js';
import { plural } from '../../plural.js';
import { size, table } from '../table.js';

export interface RebalanceFlags {
  config: string;
  /** Move every shard off this node (`node drain`). */
  drain?: string;
  migrations?: string;
  timeout: string;
  lockTimeout: string;
  dryRun?: boolean;
  json?: boolean;
}

export function registerRebalanceCommand(program: Command): void {
  const cmd = program
    .command('rebalance')
    .description('move shards between data nodes until their sizes are even; reads go on during a move, an interrupted move is rolled back or finished by the next run');
  moveOptions(cmd)
    .option('--drain <node>', 'move every shard off this data node instead of evening out')
    .action(command(runRebalance));
}

/** The options of every command that moves shards (rebalance, node drain). */
export function moveOptions(cmd: Command): Command {
  return cmd
    .option('-c, --config <file>', 'spec file', 'hypershard.yaml')
    .option('-o, --migrations <dir>', 'migrations folder (default: migrations/ next to the spec)')
    .option('--dry-run', 'print the moves; change nothing')
    .option('--timeout <ms>', 'bound on reaching each node', '10000')
    .option('--lock-timeout <ms>', "bound on waiting for the shard's writers and, at the switch, the hypertable's readers", '10000')
    .option('--json', 'machine-readable output');
}

/** The rebalance command's work, shared with `node drain`. */
export async function runRebalance(opts: RebalanceFlags): Promise<number> {
  const timeoutMs = timeoutFlag(opts.timeout);
  const lockTimeoutMs = integerFlag('--lock-timeout', opts.lockTimeout, 1);
  const { spec, file } = await loadSpec(opts.config);
  let bar: { key: string; progress: Progress } | undefined;
  const result = await rebalance(spec, file, {
    dryRun: opts.dryRun === true,
    ...(opts.drain === undefined ? {} : { drain: opts.drain }),
    timeoutMs,
    lockTimeoutMs,
    ...(opts.migrations === undefined ? {} : { migrationsDir: opts.migrations }),
    ...(opts.json === true
      ? {}
      : {
          onProgress: (e) => {
            const key = `${e.hypertable} shard ${e.shard}`;
            if (e.phase === 'copy' && e.totalRows > 0) {
              if (bar?.key !== key) bar = { key, progress: progressBar(e.totalRows, `${key} ${e.source} → ${e.target}`, 'rows') };
              bar.progress.update(e.rowsCopied);
            } else if (e.phase !== 'copy') {
              if (bar?.key === key) {
                bar.progress.stop();
                bar = undefined;
              }
              if (e.phase === 'prepare') process.stderr.write(`${key}: ${e.source} → ${e.target}\n`);
            }
          },
        }),
  });
  bar?.progress.stop();
  if (opts.json === true) json(result);
  else out(renderRebalance(result));
  return result.ok ? EXIT.ok : EXIT.failed;
}

export function renderRebalance(result: RebalanceResult): string {
  const lines: string[] = [];
  for (const r of result.recovered) {
    lines.push(`interrupted move of ${r.hypertable} shard ${r.shard} ${r.source} → ${r.target} (${r.phase}): ${r.action}${r.error === undefined ? '' : `: ${r.error}`}`);
  }
  if (result.moves.length === 0) lines.push(`Balanced already (by ${result.measure === 'bytes' ? 'bytes' : 'shard count'}): nothing to move.`);
  else {
    if (result.dryRun) lines.push('Dry run: nothing was changed. A run would make these moves:');
    const why = (m: MoveResult): string => reasonText(m, result.measure);
    lines.push(
      result.dryRun
        ? table(['hypertable', 'shard', 'from', 'to', 'size', 'why'], result.moves.map((m) => [m.hypertable, m.shard, m.source, m.target, size(m.bytes), why(m)]))
        : table(
            ['hypertable', 'shard', 'from', 'to', 'size', 'status', 'rows', 'rows/s', 'switch ms', 'why'],
            result.moves.map((m) => [m.hypertable, m.shard, m.source, m.target, size(m.bytes), m.status, m.rows, m.rowsPerSecond, m.switchMs, why(m)]),
          ),
    );
    // The moves to a new node can leave the old ones uneven; say why a move between them is planned.
    const emptyBefore = new Set(result.nodes.filter((n) => n.shardsBefore === 0).map((n) => n.node));
    if (emptyBefore.size > 0 && result.moves.some((m) => !emptyBefore.has(m.target))) {
      lines.push(
        `Moves go from the fullest node to the emptiest while that lowers max/min; once ${[...emptyBefore].join(', ')} ${emptyBefore.size === 1 ? 'has' : 'have'} shards, ` +
          'a move between nodes that held shards before evens out what is left (whole shards cannot be split).',
      );
    }
  }
  lines.push('', table(['node', 'shards', 'bytes'], result.nodes.map((n) => [n.node, `${n.shardsBefore} → ${n.shardsAfter}`, `${size(n.bytesBefore)} → ${size(n.bytesAfter)}`])));
  for (const m of result.moves) if (m.error !== undefined) lines.push(`${m.hypertable} shard ${m.shard}: failed in ${m.phase ?? 'move'}: ${m.error}; the next run rolls it back`);
  if (result.specWritten) lines.push('The spec file now records the placement (hypertables[].placement).');
  if (result.snapshot !== null) lines.push(`Snapshot written: ${result.snapshot}`);
  if (result.serversDropped.length > 0) lines.push(`Unused FDW servers dropped: ${result.serversDropped.join(', ')}`);
  return lines.join('\n');
}

/** A move's reason in words: what the two nodes hold before and after, and the spread over all nodes. */
function reasonText(m: MoveResult, measure: RebalanceResult['measure']): string {
  const amount = (n: number): string => (measure === 'bytes' ? size(n) : plural(n, 'shard'));
  const spread = (r: number | null): string => (r === null ? 'a node empty' : r.toFixed(2));
  const { source, target, maxOverMin } = m.why;
  return (
    `${m.source} ${amount(source.before)} → ${amount(source.after)}, ${m.target} ${amount(target.before)} → ${amount(target.after)}; ` +
    `max/min ${spread(maxOverMin.before)} → ${spread(maxOverMin.after)}`
  );
}
