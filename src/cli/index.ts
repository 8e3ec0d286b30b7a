/** The hypershard CLI: a thin layer over the library that renders results and picks exit codes. */
import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import { registerApplyCommands } from './commands/apply.js';
import { registerAuditCommand } from './commands/audit.js';
import { registerCheckCommand } from './commands/check.js';
import { registerDemoCommand } from './commands/demo.js';
import { registerDevCommands } from './commands/dev.js';
import { registerExecCommand } from './commands/exec.js';
import { registerFailoverCommand } from './commands/failover.js';
import { registerGatewayCommand } from './commands/gateway.js';
import { registerMaintainCommands } from './commands/maintain.js';
import { registerNodeCommand } from './commands/node.js';
import { registerQueryCommand } from './commands/query.js';
import { registerRebalanceCommand } from './commands/rebalance.js';
import { registerReferenceCommand } from './commands/reference.js';
import { registerRewriteCommand } from './commands/rewrite.js';
import { registerSpecCommands } from './commands/spec.js';
import { registerStatusCommand } from './commands/status.js';
import { EXIT } from './run.js';

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
  registerSpecCommands(program);
  registerApplyCommands(program);
  registerNodeCommand(program);
  registerDevCommands(program);
  registerDemoCommand(program);
  registerAuditCommand(program);
  registerRewriteCommand(program);
  registerQueryCommand(program);
  registerGatewayCommand(program);
  registerExecCommand(program);
  registerStatusCommand(program);
  registerCheckCommand(program);
  registerMaintainCommands(program);
  registerRebalanceCommand(program);
  registerFailoverCommand(program);
  registerReferenceCommand(program);
  await program.parseAsync([...argv]);
}
