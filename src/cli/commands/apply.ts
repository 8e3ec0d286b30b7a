/** plan and apply: the migrations, reviewed, onto the nodes. */
import { resolve } from 'node:path';
import type { Command } from 'commander';
import type { ApplyResult } from '../../nodes/apply.js';
import { apply } from '../../nodes/apply.js';
import { plan, type NodePlan } from '../../nodes/plan.js';
import { loadSpec } from '../../spec/load.js';
import { integerFlag, timeoutFlag } from '../flags.js';
import { command, EXIT, json, out } from '../run.js';
import { plural } from '../../plural.js';
import { table } from '../table.js';

interface NodeOptions {
  config: string;
  out?: string;
  json?: boolean;
  timeout: string;
}

function nodeOptions(cmd: Command): Command {
  return cmd
    .option('-c, --config <file>', 'spec file', 'hypershard.yaml')
    .option('-o, --out <dir>', 'migrations folder (default: migrations/ next to the spec)')
    .option('--timeout <ms>', 'bound on reaching each node', '10000')
    .option('--json', 'machine-readable output');
}

function common(opts: NodeOptions): { migrationsDir?: string; timeoutMs: number } {
  return { ...(opts.out === undefined ? {} : { migrationsDir: resolve(opts.out) }), timeoutMs: timeoutFlag(opts.timeout) };
}

export function registerApplyCommands(program: Command): void {
  nodeOptions(program.command('plan'))
    .description('show, per node, what `apply` would run (read-only: changes nothing)')
    .option('--sql', 'print the full SQL of pending migrations')
    .action(
      command(async (opts: NodeOptions & { sql?: boolean }) => {
        const { spec, file } = await loadSpec(opts.config);
        const plans = await plan(spec, file, common(opts));
        if (opts.json === true) json({ ok: true, nodes: plans.map(planJson) });
        else out(renderPlan(plans, opts.sql === true));
        return EXIT.ok;
      }),
    );

  nodeOptions(program.command('apply'))
    .description('apply pending migrations: data nodes in parallel, then the access node')
    .option('--lock-timeout <ms>', 'bound on waiting for a table lock; the migration then fails and is rolled back', '10000')
    .action(
      command(async (opts: NodeOptions & { lockTimeout: string }) => {
        const lockTimeoutMs = integerFlag('--lock-timeout', opts.lockTimeout, 1);
        const { spec, file } = await loadSpec(opts.config);
        const result = await apply(spec, file, {
          ...common(opts),
          lockTimeoutMs,
          ...(opts.json === true ? {} : { onProgress: (e) => e.phase !== 'done' && process.stderr.write(`  ${e.node}: ${e.phase}\n`) }),
        });
        if (opts.json === true) json(result);
        else out(renderApply(result));
        return result.ok ? EXIT.ok : EXIT.failed;
      }),
    );
}

function planJson(p: NodePlan): unknown {
  return {
    node: p.node,
    role: p.role,
    serverVersion: p.serverVersion,
    applied: p.applied,
    pending: p.pending.map((m) => ({ name: m.name, statements: m.up.map((s) => ({ what: s.what, sql: s.sql })) })),
    secretsToSet: p.secretsToSet,
  };
}

function renderPlan(plans: readonly NodePlan[], withSql: boolean): string {
  const lines = [
    table(
      ['node', 'role', 'version', 'applied', 'pending', 'secrets to set'],
      plans.map((p) => [p.node, p.role, p.serverVersion, p.applied.length, p.pending.map((m) => m.name).join(', ') || '-', p.secretsToSet]),
    ),
  ];
  for (const p of plans) {
    for (const m of p.pending) {
      lines.push('', `${p.node}: ${m.name} (${plural(m.up.length, 'statement')})`);
      for (const s of m.up) lines.push(withSql ? `-- ${s.what}\n${s.sql}` : `  - ${s.what}`);
    }
  }
  if (plans.every((p) => p.pending.length === 0 && p.secretsToSet === 0)) lines.push('', 'Nothing to do: every node is up to date.');
  return lines.join('\n');
}

function renderApply(result: ApplyResult): string {
  const lines = [
    table(
      ['node', 'role', 'status', 'migrations', 'secrets set'],
      result.nodes.map((n) => [n.node, n.role, n.status, n.migrations.join(', ') || '-', n.secretsChanged]),
    ),
  ];
  for (const n of result.nodes) {
    if (n.error !== undefined) {
      lines.push('', `${n.node} failed${n.error.migration === undefined ? '' : ` in migration ${n.error.migration}`}${n.error.statement === undefined ? '' : `, statement "${n.error.statement}"`}:`, `  ${n.error.message}`);
    } else if (n.reason !== undefined && !result.nodes.every((x) => x.status === 'not-run')) {
      lines.push(`${n.node} not run: ${n.reason}`);
    }
    for (const set of n.settings ?? []) lines.push(`${n.node}: set ${set} (it differed)`);
    for (const made of n.guards ?? []) lines.push(`${n.node}: made the ${made} (it was missing)`);
    for (const w of n.warnings ?? []) lines.push(`${n.node}: warning: ${w}`);
  }
  return lines.join('\n');
}
