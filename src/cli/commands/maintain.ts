/** `maintain` (chunks ahead, retention, default-chunk repair, statistics) and `chunks` (what each shard holds). */
import type { Command } from 'commander';
import { listChunks, type ChunkInfo, type ChunksResult } from '../../maintain/chunks.js';
import { maintain } from '../../maintain/maintain.js';
import type { MaintainNodeResult, MaintainResult } from '../../maintain/result.js';
import { loadSpec } from '../../spec/load.js';
import { integerFlag, timeoutFlag } from '../flags.js';
import { command, EXIT, json, out } from '../run.js';
import { size, table } from '../table.js';
import { plural } from '../../plural.js';

interface MaintainFlags {
  config: string;
  timeout: string;
  lockTimeout: string;
  dryRun?: boolean;
  json?: boolean;
}

interface ChunksFlags {
  config: string;
  timeout: string;
  hypertable?: string;
  json?: boolean;
}

export function registerMaintainCommands(program: Command): void {
  program
    .command('maintain')
    .description('on every data node: move rows out of default chunks, create chunks ahead, drop expired chunks; ANALYZE hypertables on the access node')
    .option('-c, --config <file>', 'spec file', 'hypershard.yaml')
    .option('--dry-run', 'report what would be done; change nothing')
    .option('--timeout <ms>', 'bound on reaching each node', '10000')
    .option('--lock-timeout <ms>', 'bound on waiting for a busy chunk or shard (that step then fails)', '10000')
    .option('--json', 'machine-readable output')
    .action(
      command(async (opts: MaintainFlags) => {
        const timeoutMs = timeoutFlag(opts.timeout);
        const lockTimeoutMs = integerFlag('--lock-timeout', opts.lockTimeout, 1);
        const { spec, file } = await loadSpec(opts.config);
        const result = await maintain(spec, file, {
          dryRun: opts.dryRun === true,
          timeoutMs,
          lockTimeoutMs,
          ...(opts.json === true ? {} : { onProgress: (e) => e.step !== 'done' && process.stderr.write(`  ${e.node}: ${e.detail}\n`) }),
        });
        if (opts.json === true) json(result);
        else out(renderMaintain(result));
        return result.ok ? EXIT.ok : EXIT.failed;
      }),
    );

  program
    .command('chunks')
    .description('list the chunks of every shard on the data nodes: range, size, row estimate; default chunks with their rows (read-only)')
    .option('-c, --config <file>', 'spec file', 'hypershard.yaml')
    .option('--hypertable <name>', 'only this hypertable (name or schema.name)')
    .option('--timeout <ms>', 'bound on reaching each node', '10000')
    .option('--json', 'machine-readable output')
    .action(
      command(async (opts: ChunksFlags) => {
        const timeoutMs = timeoutFlag(opts.timeout);
        const { spec, file } = await loadSpec(opts.config);
        const result = await listChunks(spec, file, { timeoutMs, ...(opts.hypertable === undefined ? {} : { hypertable: opts.hypertable }) });
        if (opts.json === true) json(result);
        else out(renderChunks(result));
        return result.ok ? EXIT.ok : EXIT.failed;
      }),
    );
}

export function renderMaintain(result: MaintainResult): string {
  const lines = [
    ...(result.dryRun ? ['Dry run: nothing was changed. A run would do this:', ''] : []),
    table(
      ['node', 'role', 'status', 'chunks created', 'chunks dropped', 'rows moved', 'analyzed', 'ms'],
      result.nodes.map((n) => [n.node, n.role, n.status, n.created.length, n.dropped.length, n.rowsMoved, n.analyzed.length, n.durationMs]),
    ),
  ];
  const details = [...result.nodes.flatMap((n) => nodeDetails(n, result.dryRun)), ...recoverDetails(result)];
  if (details.length > 0) lines.push('', ...details);
  return lines.join('\n');
}

function recoverDetails(result: MaintainResult): string[] {
  const r = result.recovered;
  if (r === undefined) return [];
  if ('error' in r) return [`recover: ${r.error}`];
  return [
    ...r.transactions.map((t) => `${t.node}: ${result.dryRun ? 'would finish' : 'finished'} routed transaction ${t.gid}: ${t.action}${t.error === undefined ? '' : ` (${t.error})`}`),
    ...r.nodes.filter((n) => !n.reachable).map((n) => `${n.node}: recover could not read prepared transactions: ${n.error ?? ''}`),
  ];
}

function nodeDetails(n: MaintainNodeResult, dryRun: boolean): string[] {
  const verb = (done: string, would: string): string => (dryRun ? would : done);
  return [
    ...(n.status === 'skipped' ? [`${n.node}: skipped: ${n.reason ?? ''}`] : []),
    ...n.created.map((c) =>
      `${n.node}: ${verb('created', 'would create')} ${c.chunk} [${c.from}, ${c.to})` +
        (c.reason === 'ahead' ? ' ahead' : `, ${verb('moved', 'moving')} ${plural(c.rows, 'row')} from the default chunk`),
    ),
    ...n.dropped.map((c) => `${n.node}: ${verb('dropped', 'would drop')} ${c.chunk} [${c.from}, ${c.to}), expired`),
    ...(n.rowsLeftInDefault > 0
      ? [`${n.node}: ${plural(n.rowsLeftInDefault, 'row')} left in default chunks: no chunk can hold an infinite time or a year outside 1-9999`]
      : []),
    ...(n.role === 'access' && n.analyzed.length > 0 ? [`${n.node}: ${verb('analyzed', 'would analyze')} ${n.analyzed.join(', ')}`] : []),
    ...n.errors.map((e) => `${n.node}: failed (${[e.step, e.hypertable, e.shard === undefined ? undefined : `shard ${e.shard}`].filter((x) => x !== undefined).join(', ')}): ${e.message}`),
  ];
}

export function renderChunks(result: ChunksResult): string {
  const chunks = result.nodes.flatMap((n) => n.chunks);
  const lines = [
    table(
      ['node', 'hypertable', 'shard', 'chunk', 'range', 'size', 'rows (estimate)'],
      chunks.map((c) => [c.node, c.hypertable, c.shard, c.chunk, c.range.replace(/^FOR VALUES /, ''), size(c.bytes), rowsCell(c)]),
    ),
  ];
  const inDefault = chunks.filter((c) => c.default && (c.rows ?? 0) > 0);
  if (inDefault.length > 0) {
    lines.push('', `${plural(inDefault.reduce((a, c) => a + (c.rows ?? 0), 0), 'row')} in default chunks, where queries cannot skip them by time: run maintain to move them into chunks`);
  }
  for (const n of result.nodes) if (n.error !== undefined) lines.push(`${n.node}: ${n.error}`);
  return lines.join('\n');
}

function rowsCell(c: ChunkInfo): string {
  if (c.default) return c.rows === 0 ? 'default, empty' : `default, ${plural(c.rows ?? 0, 'row')}`;
  return c.rowEstimate === null ? 'unknown' : numbers.format(Math.round(c.rowEstimate));
}

const numbers = new Intl.NumberFormat('en-US');

