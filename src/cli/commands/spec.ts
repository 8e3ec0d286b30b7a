/** Commands that work from the spec alone: init, generate, schema. */
import { access, writeFile } from 'node:fs/promises';
import { relative, resolve } from 'node:path';
import type { Command } from 'commander';
import { HypershardError } from '../../errors.js';
import { generateMigrations } from '../../migrations/files.js';
import { exampleSpecYaml } from '../../spec/example.js';
import { loadSpec } from '../../spec/load.js';
import { clusterSpecJsonSchema } from '../../spec/schema.js';
import { command, EXIT, json, out } from '../run.js';
import { table } from '../table.js';

export function registerSpecCommands(program: Command): void {
  program
    .command('init')
    .description('write an example spec (device metrics on 2 data nodes) to adapt to your cluster')
    .option('-c, --config <file>', 'spec file to write', 'hypershard.yaml')
    .option('--force', 'overwrite an existing file')
    .action(
      command(async (opts: { config: string; force?: boolean }) => {
        const file = resolve(opts.config);
        if (opts.force !== true && (await exists(file))) {
          throw new HypershardError('INIT_EXISTS', `${file} exists; pass --force to overwrite it`);
        }
        await writeFile(
          file,
          exampleSpecYaml({
            header: ['hypershard cluster spec: edit the URLs, then `hypershard generate` and `hypershard apply`.'],
            accessNode: { name: 'access', url: 'postgres://postgres@access.internal:5432/metrics', password: { env: 'HYPERSHARD_ACCESS_PASSWORD' } },
            dataNodes: [1, 2].map((i) => ({ name: `dn${i}`, url: `postgres://postgres@dn${i}.internal:5432/metrics`, password: { env: `HYPERSHARD_DN${i}_PASSWORD` } })),
            servicePassword: { env: 'HYPERSHARD_FDW_PASSWORD' },
            readerPassword: { env: 'METRICS_READER_PASSWORD' },
          }),
        );
        out(`wrote ${relative(process.cwd(), file) || file}`);
        return EXIT.ok;
      }),
    );

  program
    .command('generate')
    .description('write the migrations for every node from the spec (deterministic; never touches a node)')
    .option('-c, --config <file>', 'spec file', 'hypershard.yaml')
    .option('-o, --out <dir>', 'migrations folder (default: migrations/ next to the spec)')
    .option('--force', 'rewrite the first migration (only for a cluster that never applied it)')
    .option('--allow-destructive', 'allow changes that drop or may lose data (dropped columns or hypertables, narrowed types)')
    .option('--json', 'machine-readable output')
    .action(
      command(async (opts: { config: string; out?: string; force?: boolean; allowDestructive?: boolean; json?: boolean }) => {
        const { spec, file } = await loadSpec(opts.config);
        const result = await generateMigrations(spec, file, {
          ...(opts.out === undefined ? {} : { migrationsDir: resolve(opts.out) }),
          ...(opts.force === undefined ? {} : { force: opts.force }),
          ...(opts.allowDestructive === undefined ? {} : { allowDestructive: opts.allowDestructive }),
        });
        if (opts.json === true) {
          json(result);
          return EXIT.ok;
        }
        out(table(['file', 'status'], result.files.map((r) => [relative(process.cwd(), r.path), r.status])));
        out(result.changes.length === 0 ? '\nNo change since the last generate.' : `\nChanges:\n${result.changes.map((c) => `  - ${c}`).join('\n')}`);
        return EXIT.ok;
      }),
    );

  program
    .command('schema')
    .description('print the JSON Schema of the spec (for editor autocompletion)')
    .action(
      command(async () => {
        json(clusterSpecJsonSchema());
        return EXIT.ok;
      }),
    );
}

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}
