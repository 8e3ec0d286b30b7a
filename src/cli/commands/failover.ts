/** `failover`: promote a standby of a data node whose primary is gone, and make the cluster follow it. */
import type { Command } from 'commander';
import { failover, type FailoverResult } from '../../ha/failover.js';
import { loadSpec } from '../../spec/load.js';
import { timeoutFlag } from '../flags.js';
import { command, EXIT, json, out } from '../run.js';
import { table } from '../table.js';

interface FailoverFlags {
  config: string;
  node: string;
  to?: string;
  force?: boolean;
  migrations?: string;
  timeout: string;
  promoteTimeout: string;
  json?: boolean;
}

export function registerFailoverCommand(program: Command): void {
  program
    .command('failover')
    .description('promote a standby of a data node whose primary is unreachable; the access node, the other standbys and the spec follow it')
    .option('-c, --config <file>', 'spec file', 'hypershard.yaml')
    .requiredOption('--node <name>', 'the data node whose primary failed')
    .option('--to <standby>', 'the standby to promote (default: the reachable one furthest ahead in WAL)')
    .option('--force', 'fail over although the primary answers: a planned switchover (the primary is fenced first, nothing committed is lost)')
    .option('-o, --migrations <dir>', 'migrations folder (its snapshot records the new topology)')
    .option('--timeout <ms>', 'bound on reaching each server', '5000')
    .option('--promote-timeout <ms>', 'bound on the promotion and on catching up', '60000')
    .option('--json', 'machine-readable output')
    .action(
      command(async (opts: FailoverFlags) => {
        const { spec, file } = await loadSpec(opts.config);
        const result = await failover(spec, file, opts.node, {
          ...(opts.to === undefined ? {} : { to: opts.to }),
          force: opts.force === true,
          ...(opts.migrations === undefined ? {} : { migrationsDir: opts.migrations }),
          timeoutMs: timeoutFlag(opts.timeout),
          promoteTimeoutMs: timeoutFlag(opts.promoteTimeout),
          ...(opts.json === true ? {} : { onProgress: (step: string) => process.stderr.write(`  ${step}\n`) }),
        });
        if (opts.json === true) json(result);
        else out(renderFailover(result));
        return result.ok ? EXIT.ok : EXIT.failed;
      }),
    );
}

export function renderFailover(r: FailoverResult): string {
  const lines = [
    table(
      ['member', 'address', 'reachable', 'role', 'WAL position'],
      r.probes.map((p) => [p.member, p.address, p.reachable ? 'yes' : 'no', p.standby === null ? '-' : p.standby ? 'standby' : 'primary', p.lsn ?? '-']),
    ),
    '',
  ];
  if (r.newPrimary === undefined) {
    lines.push(`${r.dataNode}: ${r.status}: ${r.reason ?? ''}`);
    return lines.join('\n');
  }
  lines.push(
    `${r.dataNode}: ${r.newPrimary.name} (${r.newPrimary.address}) is the primary now (${r.newPrimary.promoted ? 'promoted' : 'already promoted; recorded'}), taking writes ${((r.writableAfterMs ?? 0) / 1000).toFixed(1)} s after the start.`,
    `Old primary ${r.oldPrimary.address} fenced: ${r.oldPrimary.fenced.join('; ')}.`,
  );
  if (r.replication.length > 0) lines.push(`On the new primary: ${r.replication.join('; ')}.`);
  for (const s of r.standbys) lines.push(`Standby ${s.name}: ${s.repointed ? 'now streams from the new primary' : `not repointed: ${s.error ?? ''}`}.`);
  if (r.standbys.length === 0) lines.push(`${r.dataNode} has no standby left: commits are not replicated until \`hypershard node rebuild --node ${r.dataNode}\` gives it one.`);
  lines.push(`Access node: ${r.servers.length} FDW server${r.servers.length === 1 ? '' : 's'} altered (${r.servers.join(', ')}); every session's next query connects to the new primary.`);
  lines.push(`Spec ${r.specWritten ? 'updated' : 'already up to date'}${r.snapshot === null ? '' : `, snapshot ${r.snapshot}`}.`);
  if (r.reason !== undefined) lines.push(r.reason);
  return lines.join('\n');
}
