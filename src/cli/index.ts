/** The hypershard CLI: a thin layer over the library that renders results and picks exit codes. */
import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import { EXIT } from './run.js';

type Register = (program: Command) => void;

/**
 * Each command module with the top-level commands it registers, in the order help lists them.
 * Starting the CLI is mostly loading modules (every command's: ~0.7 s of CPU, seconds on a busy
 * host), and some commands are timed from an outage (`failover`), so a run loads only its own.
 * A unit test checks this table against what each module registers.
 */
export const COMMANDS: readonly (readonly [names: readonly string[], load: () => Promise<Register>])[] = [
  [['init', 'generate', 'schema'], async () => (await import('./commands/spec.js')).registerSpecCommands],
  [['plan', 'apply'], async () => (await import('./commands/apply.js')).registerApplyCommands],
  [['node'], async () => (await import('./commands/node.js')).registerNodeCommand],
  [['dev'], async () => (await import('./commands/dev.js')).registerDevCommands],
  [['demo'], async () => (await import('./commands/demo.js')).registerDemoCommand],
  [['audit'], async () => (await import('./commands/audit.js')).registerAuditCommand],
  [['rewrite'], async () => (await import('./commands/rewrite.js')).registerRewriteCommand],
  [['query'], async () => (await import('./commands/query.js')).registerQueryCommand],
  [['gateway'], async () => (await import('./commands/gateway.js')).registerGatewayCommand],
  [['exec'], async () => (await import('./commands/exec.js')).registerExecCommand],
  [['status'], async () => (await import('./commands/status.js')).registerStatusCommand],
  [['check'], async () => (await import('./commands/check.js')).registerCheckCommand],
  [['maintain', 'chunks'], async () => (await import('./commands/maintain.js')).registerMaintainCommands],
  [['rebalance'], async () => (await import('./commands/rebalance.js')).registerRebalanceCommand],
  [['load'], async () => (await import('./commands/load.js')).registerLoadCommand],
  [['recover'], async () => (await import('./commands/recover.js')).registerRecoverCommand],
  [['failover'], async () => (await import('./commands/failover.js')).registerFailoverCommand],
  [['reference'], async () => (await import('./commands/reference.js')).registerReferenceCommand],
];

const { version } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

export async function main(argv: readonly string[]): Promise<void> {
  const program = new Command('hypershard')
    .description('Distributed hypertables for vanilla PostgreSQL with postgres_fdw')
    .version(version)
    .showHelpAfterError()
    .exitOverride((error) => {
      // Usage errors exit 2, like a bad spec; --help and --version exit 0.
      process.exit(error.exitCode === 0 ? EXIT.ok : EXIT.input);
    });
  // Only the module of the command named on the command line is loaded; help, an unknown or
  // unlisted name loads them all.
  const name = argv.slice(2).find((a) => !a.startsWith('-'));
  const own = COMMANDS.find(([names]) => name !== undefined && names.includes(name));
  for (const [, load] of own === undefined ? COMMANDS : [own]) (await load())(program);
  await program.parseAsync([...argv]);
}
