/** `node add`: a data node joins; its base is generated and applied. */
import { dirname, isAbsolute, relative, resolve } from 'node:path';
import type { Command } from 'commander';
import { addDataNode, type NewDataNode } from '../../cluster/addDataNode.js';
import { removeDataNodeFromSpec } from '../../cluster/removeDataNode.js';
import { HypershardError } from '../../errors.js';
import { rebuildStandby } from '../../ha/rebuild.js';
import { loadSpec } from '../../spec/load.js';
import { generateMigrations } from '../../migrations/files.js';
import { apply, type ApplyResult } from '../../nodes/apply.js';
import { command, EXIT, json, out } from '../run.js';
import { table } from '../table.js';
import { moveOptions, runRebalance, type RebalanceFlags } from './rebalance.js';

interface AddFlags {
  config: string;
  name: string;
  url: string;
  passwordEnv?: string;
  passwordFile?: string;
  /** false with --no-password: the node needs none (trust, certificates, ~/.pgpass). */
  password: boolean;
  fdwHost?: string;
  fdwPort?: string;
  fdwDbname?: string;
  apply: boolean;
  json?: boolean;
}

export function registerNodeCommand(program: Command): void {
  const node = program.command('node').description('data nodes joining or leaving the cluster');
  node
    .command('add')
    .description('add a data node to the spec (shards stay where they are), generate its migration and apply it')
    .option('-c, --config <file>', 'spec file', 'hypershard.yaml')
    .requiredOption('--name <name>', 'the new data node\'s name')
    .requiredOption('--url <url>', 'how the CLI reaches it (libpq URL without a password)')
    .option('--password-env <var>', 'environment variable holding the password for --url (written to the spec as a reference)')
    .option('--password-file <file>', 'file holding the password for --url (written to the spec as a reference)')
    .option('--no-password', 'the node takes no password (trust, client certificates or ~/.pgpass)')
    .option('--fdw-host <host>', 'how the access node reaches it, when that differs')
    .option('--fdw-port <port>', 'port the access node uses')
    .option('--fdw-dbname <name>', 'database the access node uses')
    .option('--no-apply', 'only update the spec and generate the migration')
    .option('--json', 'machine-readable output')
    .action(
      command(async (opts: AddFlags) => {
        const fdw = {
          ...(opts.fdwHost === undefined ? {} : { host: opts.fdwHost }),
          ...(opts.fdwPort === undefined ? {} : { port: Number(opts.fdwPort) }),
          ...(opts.fdwDbname === undefined ? {} : { dbname: opts.fdwDbname }),
        };
        const file = resolve(opts.config);
        const password = passwordReference(opts, file);
        const newNode: NewDataNode = {
          name: opts.name,
          url: opts.url,
          ...(password === undefined ? {} : { password }),
          ...(Object.keys(fdw).length === 0 ? {} : { fdw }),
        };
        // The library's join: spec edit, migrations, apply, then the new node's reference copies filled.
        const added = await addDataNode(file, newNode, { apply: opts.apply });
        const applied = added.apply;
        if (opts.json === true) {
          json({ pinned: added.pinned, changes: added.changes, apply: applied ?? null, reference: added.reference ?? null });
        } else {
          if (added.pinned.length > 0) out(`Pinned to their current data nodes (no shard moves): ${added.pinned.join(', ')}`);
          out(`Changes: ${added.changes.join('; ')}`);
          if (applied !== undefined) out(applyTable(applied));
          if (added.reference !== undefined) out(`Reference copies on ${opts.name}: ${added.reference.status}`);
        }
        return (applied === undefined || applied.ok) && (added.reference === undefined || added.reference.status !== 'failed') ? EXIT.ok : EXIT.failed;
      }),
    );

  moveOptions(node.command('drain').description('move every shard off a data node (the same moves as rebalance), so it can be removed'))
    .requiredOption('--name <name>', 'the data node to empty')
    .action(command(async (opts: RebalanceFlags & { name: string }) => runRebalance({ ...opts, drain: opts.name })));

  node
    .command('rebuild')
    .description('make a new streaming standby of a data node from its current primary (dev clusters), list it in the spec and the FDW servers')
    .option('-c, --config <file>', 'spec file', 'hypershard.yaml')
    .requiredOption('--node <name>', 'the data node')
    .option('--name <standby>', 'the standby\'s name (default <node>_s<n>); an existing standby or the old primary of that name is replaced')
    .option('--dir <dir>', 'the dev cluster folder (default: the spec\'s folder)')
    .option('--json', 'machine-readable output')
    .action(
      command(async (opts: { config: string; node: string; name?: string; dir?: string; json?: boolean }) => {
        const { spec, file } = await loadSpec(opts.config);
        const result = await rebuildStandby(spec, file, opts.node, { ...(opts.name === undefined ? {} : { name: opts.name }), ...(opts.dir === undefined ? {} : { devDir: opts.dir }) });
        if (opts.json === true) json(result);
        else {
          out(`${result.standby.name} (${result.standby.url}, ${result.standby.dataDir}) streams from ${result.dataNode}'s primary.`);
          if (result.replication.length > 0) out(`On the primary: ${result.replication.join('; ')}.`);
          out(`Access node: ${result.servers.join(', ') || 'no server'} now list it. Spec ${result.specWritten ? 'updated' : 'unchanged'}.`);
        }
        return EXIT.ok;
      }),
    );

  node
    .command('remove')
    .description('remove a data node that holds no shard from the spec, generate and apply (refused while it holds any)')
    .option('-c, --config <file>', 'spec file', 'hypershard.yaml')
    .requiredOption('--name <name>', 'the data node to remove')
    .option('--no-apply', 'only update the spec and generate')
    .option('--json', 'machine-readable output')
    .action(
      command(async (opts: { config: string; name: string; apply: boolean; json?: boolean }) => {
        const file = resolve(opts.config);
        const spec = await removeDataNodeFromSpec(file, opts.name);
        const generated = await generateMigrations(spec, file);
        const applied = opts.apply ? await apply(spec, file) : undefined;
        if (opts.json === true) json({ changes: generated.changes, apply: applied ?? null });
        else {
          out(`Changes: ${generated.changes.join('; ')}`);
          if (applied !== undefined) out(applyTable(applied));
        }
        return applied === undefined || applied.ok ? EXIT.ok : EXIT.failed;
      }),
    );
}

/**
 * The new node's secret reference. One is required unless --no-password says the node needs none:
 * a node written without one works only while PGPASSWORD happens to be set. A file given relative
 * to the current directory is written relative to the spec, as the spec reads it.
 */
function passwordReference(opts: AddFlags, specFile: string): NewDataNode['password'] {
  const given = [opts.passwordEnv !== undefined, opts.passwordFile !== undefined, !opts.password].filter(Boolean).length;
  if (given !== 1) {
    throw new HypershardError(
      'USAGE',
      `${given === 0 ? 'node add needs' : 'give only one of'} --password-env VAR (an environment variable holding ${opts.name}'s password), ` +
        '--password-file FILE, or --no-password when the node takes none (trust, client certificates, ~/.pgpass)',
    );
  }
  if (opts.passwordEnv !== undefined) return { env: opts.passwordEnv };
  if (opts.passwordFile === undefined) return undefined;
  const fromSpec = relative(dirname(specFile), resolve(opts.passwordFile));
  return { file: isAbsolute(opts.passwordFile) || fromSpec.startsWith('..') ? resolve(opts.passwordFile) : fromSpec };
}

function applyTable(applied: ApplyResult): string {
  return table(['node', 'status', 'migrations'], applied.nodes.map((n) => [n.node, n.status, n.migrations.join(', ') || '-']));
}
