/** `recover`: finish routed transactions a stopped writer left prepared, from their commit records. */
import type { Command } from 'commander';
import { recover, type RecoverResult } from '../../ingest/recover.js';
import { loadSpec } from '../../spec/load.js';
import { timeoutFlag } from '../flags.js';
import { command, EXIT, json, out } from '../run.js';
import { table } from '../table.js';

interface RecoverFlags {
  config: string;
  timeout: string;
  dryRun?: boolean;
  json?: boolean;
}

export function registerRecoverCommand(program: Command): void {
  program
    .command('recover')
    .description('commit the routed transactions whose commit record exists on the access node and roll back the others a stopped writer left prepared on data nodes; delete records nothing needs')
    .option('-c, --config <file>', 'spec file', 'hypershard.yaml')
    .option('--dry-run', 'say what would be done; change nothing')
    .option('--timeout <ms>', 'bound on reaching each node', '10000')
    .option('--json', 'machine-readable output')
    .action(
      command(async (opts: RecoverFlags) => {
        const { spec, file } = await loadSpec(opts.config);
        const result = await recover(spec, file, { timeoutMs: timeoutFlag(opts.timeout), dryRun: opts.dryRun === true });
        if (opts.json === true) json(result);
        else out(renderRecover(result, opts.dryRun === true));
        return result.ok ? EXIT.ok : EXIT.failed;
      }),
    );
}

export function renderRecover(result: RecoverResult, dryRun: boolean): string {
  const lines = [
    table(['data node', 'reachable', 'prepared'], result.nodes.map((n) => [n.node, n.reachable ? 'yes' : 'no', n.prepared])),
  ];
  for (const n of result.nodes) if (!n.reachable) lines.push(`${n.node}: ${n.error ?? 'unreachable'}`);
  if (result.transactions.length > 0) {
    lines.push('', table(['data node', 'transaction', dryRun ? 'would be' : 'action'], result.transactions.map((t) => [t.node, t.gid, t.error === undefined ? t.action : `${t.action}: ${t.error}`])));
  }
  lines.push('', `${result.transactions.length === 0 ? 'No routed transaction was left prepared.' : `${result.transactions.length} prepared routed transaction${result.transactions.length === 1 ? '' : 's'} ${dryRun ? 'found' : 'finished'}.`} Commit records deleted: ${result.recordsDeleted}, kept: ${result.recordsKept}.`);
  return lines.join('\n');
}
