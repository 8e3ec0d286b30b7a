/** `dev up` / `dev down`: an embedded local cluster to try hypershard on. */
import { resolve } from 'node:path';
import type { Command } from 'commander';
import type { PostgresSource } from '../../dev/binaries.js';
import { startDevCluster, stopDevCluster, type DevCluster } from '../../dev/cluster.js';
import { writeDevSpec } from '../../dev/devSpec.js';
import { HypershardError } from '../../errors.js';
import { command, EXIT, json, out } from '../run.js';
import { table } from '../table.js';

export interface PostgresFlags {
  postgres: string;
  binDir?: string;
}

export function postgresSource(flags: PostgresFlags): PostgresSource {
  if (flags.postgres === 'embedded') return { kind: 'embedded' };
  if (flags.postgres === 'system') return flags.binDir === undefined ? { kind: 'system' } : { kind: 'system', binDir: flags.binDir };
  throw new HypershardError('USAGE', `--postgres must be "embedded" or "system", not ${JSON.stringify(flags.postgres)}`);
}

export function positiveInt(name: string, value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new HypershardError('USAGE', `${name} must be a positive whole number, not ${JSON.stringify(value)}`);
  return n;
}

export function clusterJson(cluster: DevCluster): unknown {
  const node = (n: { name: string; url: string; dataDir: string }) => ({ name: n.name, url: n.url, dataDir: n.dataDir });
  return {
    accessNode: node(cluster.accessNode),
    dataNodes: cluster.dataNodes.map((n) => ({ ...node(n), standbys: n.standbys.map(node) })),
  };
}

export function registerDevCommands(program: Command): void {
  const dev = program.command('dev').description('a local embedded cluster (access node + data nodes on loopback)');

  dev
    .command('up')
    .description('start a cluster and write <dir>/hypershard.yaml for it')
    .option('--data-nodes <n>', 'number of data nodes', '2')
    .option('--standbys <k>', 'streaming standbys per data node (pg_basebackup, or a low-level base backup where the binaries lack it)', '0')
    .option('--dir <dir>', 'cluster folder', '.hypershard-dev')
    .option('--postgres <kind>', 'embedded (PostgreSQL 18 from npm) or system (the machine\'s own)', 'embedded')
    .option('--bin-dir <dir>', 'with --postgres system: the PostgreSQL bin folder')
    .option('--json', 'print the nodes as JSON')
    .action(
      command(async (opts: PostgresFlags & { dataNodes: string; standbys: string; dir: string; json?: boolean }) => {
        const standbys = Number(opts.standbys);
        if (!Number.isInteger(standbys) || standbys < 0) throw new HypershardError('USAGE', `--standbys must be a whole number, not ${JSON.stringify(opts.standbys)}`);
        const cluster = await startDevCluster({
          dir: resolve(opts.dir),
          dataNodes: positiveInt('--data-nodes', opts.dataNodes),
          standbys,
          postgres: postgresSource(opts),
          ...(opts.json === true ? {} : { onProgress: (e) => process.stderr.write(`  ${e.node}: ${e.step}\n`) }),
        });
        for (const note of cluster.notes) process.stderr.write(`note: ${note}\n`);
        const specFile = await writeDevSpec(cluster);
        if (opts.json === true) {
          json(clusterJson(cluster));
        } else {
          const rows = [cluster.accessNode, ...cluster.dataNodes.flatMap((n) => [n, ...n.standbys])].map((n) => [n.name, n.url, n.dataDir]);
          out(table(['node', 'url', 'data directory'], rows));
          out(`\nPostgreSQL ${cluster.postgres.version} (${cluster.postgres.source}). Spec: ${specFile}`);
          out(`Next: hypershard generate -c ${specFile} && hypershard apply -c ${specFile}`);
        }
        return EXIT.ok;
      }),
    );

  dev
    .command('down')
    .description('stop the cluster and remove its data')
    .option('--dir <dir>', 'cluster folder', '.hypershard-dev')
    .option('--json', 'machine-readable output')
    .action(
      command(async (opts: { dir: string; json?: boolean }) => {
        const results = await stopDevCluster(resolve(opts.dir));
        if (opts.json === true) json(results);
        else if (results.length === 0) out(`no cluster in ${resolve(opts.dir)}`);
        else out(table(['node', 'status', 'error'], results.map((r) => [r.node, r.status, r.error ?? ''])));
        return results.every((r) => r.status !== 'failed') ? EXIT.ok : EXIT.failed;
      }),
    );
}
