/** `reference sync`: every data node's copy of every reference table, copied again from the access node. */
import type { Command } from 'commander';
import { syncReferenceTables, type ReferenceSyncResult } from '../../reference/sync.js';
import { loadSpec } from '../../spec/load.js';
import { integerFlag, timeoutFlag } from '../flags.js';
import { command, EXIT, json, out } from '../run.js';
import { table } from '../table.js';

interface SyncFlags {
  config: string;
  node?: string[];
  ifDifferent?: boolean;
  timeout: string;
  lockTimeout: string;
  json?: boolean;
}

export function registerReferenceCommand(program: Command): void {
  const reference = program.command('reference').description('reference tables: small tables copied to every data node');
  reference
    .command('sync')
    .description('copy every reference table from the access node to the data nodes again (per data node one transaction; writers wait meanwhile)')
    .option('-c, --config <file>', 'spec file', 'hypershard.yaml')
    .option('--node <name...>', 'only these data nodes (default: all)')
    .option('--if-different', 'copy only the tables whose copy differs (row count and checksum)')
    .option('--timeout <ms>', 'bound on reaching the access node', '10000')
    .option('--lock-timeout <ms>', 'bound on waiting for writers of a reference table (that node then fails)', '10000')
    .option('--json', 'machine-readable output')
    .action(
      command(async (opts: SyncFlags) => {
        const timeoutMs = timeoutFlag(opts.timeout);
        const lockTimeoutMs = integerFlag('--lock-timeout', opts.lockTimeout, 1);
        const { spec, file } = await loadSpec(opts.config);
        const result = await syncReferenceTables(spec, file, {
          timeoutMs,
          lockTimeoutMs,
          onlyIfDifferent: opts.ifDifferent === true,
          ...(opts.node === undefined ? {} : { dataNodes: opts.node }),
        });
        if (opts.json === true) json(result);
        else out(renderSync(result));
        return result.ok ? EXIT.ok : EXIT.failed;
      }),
    );
}

export function renderSync(result: ReferenceSyncResult): string {
  if (result.nodes.length > 0 && result.nodes.every((n) => n.status === 'no-tables')) return 'the spec declares no reference tables: nothing to copy, no node contacted';
  const rows = result.nodes.flatMap((n) =>
    n.tables.length === 0
      ? [[n.node, n.status, '-', '-', n.durationMs]]
      : n.tables.map((t) => [n.node, n.status, t.table, t.copied ? `${numbers.format(t.rows)} copied` : `${numbers.format(t.rows)}, equal`, n.durationMs]),
  );
  return [
    table(['node', 'status', 'reference table', 'rows', 'ms'], rows),
    ...result.nodes.filter((n) => n.error !== undefined).map((n) => `${n.node}: ${n.error ?? ''}`),
  ].join('\n');
}

const numbers = new Intl.NumberFormat('en-US');
