/** `check`: what differs between the live nodes and the spec, grouped per node. */
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { check } from '../../drift/check.js';
import type { CheckResult, NodeCheck } from '../../drift/model.js';
import { loadSpec } from '../../spec/load.js';
import { timeoutFlag } from '../flags.js';
import { command, EXIT, json, out } from '../run.js';

interface CheckFlags {
  config: string;
  out?: string;
  timeout: string;
  json?: boolean;
}

export function registerCheckCommand(program: Command): void {
  program
    .command('check')
    .description('compare every node\'s live catalogs with the spec and report each difference (read-only); exit 1 on drift')
    .option('-c, --config <file>', 'spec file', 'hypershard.yaml')
    .option('-o, --out <dir>', 'migrations folder (default: migrations/ next to the spec)')
    .option('--timeout <ms>', 'bound on reaching each node', '10000')
    .option('--json', 'machine-readable output')
    .action(
      command(async (opts: CheckFlags) => {
        const { spec, file } = await loadSpec(opts.config);
        const result = await check(spec, file, {
          timeoutMs: timeoutFlag(opts.timeout),
          ...(opts.out === undefined ? {} : { migrationsDir: resolve(opts.out) }),
        });
        if (opts.json === true) json(result);
        else out(renderCheck(result));
        return result.clean ? EXIT.ok : EXIT.failed;
      }),
    );
}

export function renderCheck(result: CheckResult): string {
  const lines: string[] = [];
  for (const node of result.nodes) {
    lines.push(`${node.node} (${node.role === 'access' ? 'access node' : 'data node'}${node.serverVersion === undefined ? '' : `, PostgreSQL ${node.serverVersion}`}): ${summary(node)}`);
    if (node.error !== undefined) lines.push(`  ${node.error}`);
    const width = Math.max(0, ...node.items.map((i) => i.kind.length));
    for (const item of node.items) {
      lines.push(`  ${item.kind.padEnd(width)}  ${item.object}: ${item.message}`);
      if (item.expected !== undefined || item.actual !== undefined) {
        lines.push(`  ${' '.repeat(width)}    expected ${item.expected ?? '(nothing)'}, found ${item.actual ?? '(nothing)'}`);
      }
    }
  }
  const drifted = result.nodes.filter((n) => n.error !== undefined || n.items.some((i) => i.kind !== 'warning')).length;
  lines.push('', result.clean ? 'No drift: every node matches the spec.' : `Drift on ${drifted} of ${result.nodes.length} nodes.`);
  return lines.join('\n');
}

function summary(node: NodeCheck): string {
  if (!node.reachable) return 'not checked';
  if (node.error !== undefined) return 'check failed';
  const drift = node.items.filter((i) => i.kind !== 'warning').length;
  const warnings = node.items.length - drift;
  if (node.items.length === 0) return 'matches the spec';
  return [drift > 0 ? `${drift} difference${drift === 1 ? '' : 's'}` : '', warnings > 0 ? `${warnings} warning${warnings === 1 ? '' : 's'}` : ''].filter(Boolean).join(', ');
}
