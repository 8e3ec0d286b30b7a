/** `status`: per node, reachable or not and what it holds; the spread over data nodes. */
import type { Command } from 'commander';
import type { Skew } from '../../ops/skew.js';
import { status, type NodeStatus, type StatusResult } from '../../ops/status.js';
import { loadSpec } from '../../spec/load.js';
import { timeoutFlag } from '../flags.js';
import { command, EXIT, json, out } from '../run.js';
import { size, table } from '../table.js';

interface StatusFlags {
  config: string;
  timeout: string;
  json?: boolean;
}

export function registerStatusCommand(program: Command): void {
  program
    .command('status')
    .description('per node: reachable, version, shards held, size, row estimates; skew across data nodes (read-only)')
    .option('-c, --config <file>', 'spec file', 'hypershard.yaml')
    .option('--timeout <ms>', 'bound on reaching each node', '10000')
    .option('--json', 'machine-readable output')
    .action(
      command(async (opts: StatusFlags) => {
        const timeoutMs = timeoutFlag(opts.timeout);
        const { spec, file } = await loadSpec(opts.config);
        const result = await status(spec, file, { timeoutMs });
        if (opts.json === true) json(result);
        else out(renderStatus(result));
        return result.ok ? EXIT.ok : EXIT.failed;
      }),
    );
}

export function renderStatus(result: StatusResult): string {
  const lines = [
    table(
      ['node', 'role', 'reachable', 'version', 'shards', 'bytes', 'rows (estimate)'],
      result.nodes.map((n) => [
        n.node,
        n.role,
        n.reachable ? (n.error === undefined ? 'yes' : 'yes, unreadable') : 'no',
        n.serverVersion ?? '-',
        n.role === 'data' ? shardList(n) : '-',
        n.role === 'data' ? size(n.bytes) : '-',
        n.role === 'data' ? rows(n.bytes === null ? undefined : n.rows) : '-',
      ]),
    ),
  ];
  for (const n of result.nodes) if (n.error !== undefined) lines.push(`${n.node}: ${n.error}`);
  if (result.standbys.length > 0) {
    lines.push(
      '',
      table(
        ['data node', 'standby', 'address', 'state', 'sync', 'lag bytes', 'lag seconds'],
        result.standbys.map((s) => [s.dataNode, s.standby, s.address, s.state, s.syncState ?? '-', s.lagBytes === null ? '-' : String(s.lagBytes), s.lagSeconds === null ? '-' : s.lagSeconds.toFixed(3)]),
      ),
    );
    for (const s of result.standbys) if (s.error !== undefined) lines.push(`${s.standby}: ${s.error}`);
  }

  lines.push(
    '',
    table(
      ['hypertable', 'shards', 'bytes', 'rows (estimate)', 'foreign partitions', 'with statistics'],
      result.hypertables.map((h) => {
        const access = accessOf(result.nodes)?.hypertables.find((a) => a.hypertable === h.hypertable);
        const partial = h.shardsMeasured < h.shards ? ` (${h.shardsMeasured} of ${h.shards} shards)` : '';
        return [
          h.hypertable,
          h.shards,
          size(h.bytes) + partial,
          rows(h.rows) + partial,
          access?.foreignPartitions ?? '-',
          access?.analyzedForeignPartitions ?? '-',
        ];
      }),
    ),
  );

  lines.push('', `Skew of bytes: ${skewLine(result.skew.bytes)}`, `Skew of rows:  ${skewLine(result.skew.rows)}`);
  const warnings = warningsOf(result);
  if (warnings.length > 0) lines.push('', 'Warnings:', ...warnings.map((w) => `  - ${w}`));
  return lines.join('\n');
}

function shardList(n: NodeStatus & { role: 'data' }): string {
  const byTable = new Map<string, number[]>();
  for (const s of n.shards) byTable.set(s.hypertable, [...(byTable.get(s.hypertable) ?? []), s.index]);
  return [...byTable].map(([t, indexes]) => `${t}: ${indexes.join(', ')}`).join('; ') || '-';
}

function skewLine(s: Skew | null): string {
  if (s === null) return 'not measured (no data node holding shards answered, or one has an unknown row estimate: ANALYZE it)';
  const ratio = s.maxOverMin === null ? 'unbounded (a node holds none)' : s.maxOverMin.toFixed(2);
  return `max/min ${ratio}, coefficient of variation ${s.cv.toFixed(3)} over ${s.nodes.join(', ')}`;
}

function warningsOf(result: StatusResult): string[] {
  const warnings: string[] = [];
  for (const n of result.nodes) {
    if (n.role === 'data') {
      for (const s of n.shards) if (s.present === false) warnings.push(`${n.node}: shard ${s.index} of ${s.hypertable} (${s.table}) is missing`);
      for (const s of n.strayShards) warnings.push(`${n.node}: holds ${s.table} (shard ${s.index} of ${s.hypertable}), which the spec places on ${s.owner}`);
      if (n.rows === null && n.bytes !== null) warnings.push(`${n.node}: some chunks were never analyzed, so its row estimate is unknown (ANALYZE on the node)`);
    } else {
      for (const h of n.hypertables) {
        if (h.present === false) warnings.push(`${n.node}: hypertable ${h.hypertable} does not exist (apply the migrations)`);
        else if (h.foreignPartitions !== null && h.foreignPartitions !== h.shards) warnings.push(`${n.node}: ${h.hypertable} has ${h.foreignPartitions} foreign partitions, the layout ${h.shards}`);
        if (h.present === true && h.analyzedForeignPartitions !== null && h.foreignPartitions !== null && h.analyzedForeignPartitions < h.foreignPartitions) {
          warnings.push(`${n.node}: ${h.foreignPartitions - h.analyzedForeignPartitions} foreign partitions of ${h.hypertable} have no statistics: run ANALYZE ${h.hypertable} on the access node`);
        }
      }
    }
  }
  return warnings;
}

const accessOf = (nodes: readonly NodeStatus[]): (NodeStatus & { role: 'access' }) | undefined =>
  nodes.find((n): n is NodeStatus & { role: 'access' } => n.role === 'access');

const numbers = new Intl.NumberFormat('en-US');

function rows(value: number | null | undefined): string {
  if (value === undefined) return '-';
  return value === null ? 'unknown' : numbers.format(Math.round(value));
}

