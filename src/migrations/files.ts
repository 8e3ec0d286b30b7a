/**
 * The migrations folder: `access-node/` and `data-nodes/<node>/`, each a node-pg-migrate
 * directory. Deterministic: the same spec gives byte-identical files.
 */
import { mkdir, readdir, readFile, rename, writeFile } from 'node:fs/promises';
import { basename, dirname, join, relative } from 'node:path';
import { MigrationStateError } from '../errors.js';
import { generateSql, type ClusterSql, type NodeRole } from '../sql/generate.js';
import type { Statement } from '../sql/statement.js';
import type { ClusterSpec } from '../spec/schema.js';
import { renderMigration } from './render.js';

export const INITIAL_MIGRATION = '0001_hypershard_init';

export interface MigrationFile {
  readonly node: string;
  readonly role: NodeRole;
  /** node-pg-migrate's name for it: the file name without `.sql`. */
  readonly name: string;
  /** Folder of this node's migrations, relative to the migrations root. */
  readonly dir: string;
  readonly content: string;
  /** The statements of the Up section, to name the one that fails. */
  readonly up: readonly Statement[];
}

export function nodeMigrationDir(role: NodeRole, node: string): string {
  return role === 'access' ? 'access-node' : join('data-nodes', node);
}

/** Default migrations folder: `migrations/` next to the spec file. */
export function defaultMigrationsDir(specFile: string): string {
  return join(dirname(specFile), 'migrations');
}

export function migrationFiles(spec: ClusterSpec, specFile: string, sql: ClusterSql = generateSql(spec)): MigrationFile[] {
  return sql.nodes.map((node) => ({
    node: node.node,
    role: node.role,
    name: INITIAL_MIGRATION,
    dir: nodeMigrationDir(node.role, node.node),
    content: renderMigration(node, basename(specFile)),
    up: node.up,
  }));
}

export interface WriteResult {
  readonly path: string;
  readonly status: 'written' | 'unchanged';
}

/**
 * Writes the migration files. A file that exists with other content is never overwritten
 * unless `force` is set: it may already be applied somewhere.
 * @throws MigrationStateError listing every file that differs.
 */
export async function writeMigrations(files: readonly MigrationFile[], root: string, options: { force?: boolean } = {}): Promise<WriteResult[]> {
  const existing = await Promise.all(files.map((f) => readIfExists(join(root, f.dir, `${f.name}.sql`))));
  const conflicts = files.filter((f, i) => existing[i] !== undefined && existing[i] !== f.content);
  if (conflicts.length > 0 && options.force !== true) {
    throw new MigrationStateError(
      `these migrations exist with different content and may already be applied:\n` +
        conflicts.map((f) => `  - ${join(root, f.dir, `${f.name}.sql`)}`).join('\n') +
        `\nhypershard does not rewrite migrations; for a cluster where they were never applied, pass --force.`,
    );
  }
  const results: WriteResult[] = [];
  for (const [i, file] of files.entries()) {
    const path = join(root, file.dir, `${file.name}.sql`);
    if (existing[i] === file.content) {
      results.push({ path, status: 'unchanged' });
      continue;
    }
    await mkdir(dirname(path), { recursive: true });
    // Write then rename, so a reader never sees half a migration.
    await writeFile(`${path}.tmp`, file.content);
    await rename(`${path}.tmp`, path);
    results.push({ path, status: 'written' });
  }
  return results;
}

/**
 * Checks that the migrations on disk are exactly what the spec generates, so `apply` never runs
 * SQL the DBA did not review, nor misses SQL the spec needs.
 * @throws MigrationStateError naming each missing, changed or unexpected file.
 */
export async function verifyMigrationsOnDisk(files: readonly MigrationFile[], root: string): Promise<void> {
  const problems: string[] = [];
  for (const file of files) {
    const path = join(root, file.dir, `${file.name}.sql`);
    const content = await readIfExists(path);
    if (content === undefined) problems.push(`missing ${relative(process.cwd(), path)}`);
    else if (content !== file.content) problems.push(`${relative(process.cwd(), path)} differs from what the spec generates`);
    const others = (await readdir(join(root, file.dir)).catch(() => [] as string[]))
      .filter((name) => name.endsWith('.sql') && name !== `${file.name}.sql`);
    for (const other of others) problems.push(`unexpected migration ${relative(process.cwd(), join(root, file.dir, other))}`);
  }
  if (problems.length > 0) {
    throw new MigrationStateError(
      `migrations in ${root} do not match the spec:\n${problems.map((p) => `  - ${p}`).join('\n')}\nrun \`hypershard generate\` and review the result first.`,
    );
  }
}

async function readIfExists(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

export interface GenerateOptions {
  /** @default `migrations/` next to the spec */
  readonly migrationsDir?: string;
  /** Overwrite migrations whose content differs (only for a cluster that never applied them). */
  readonly force?: boolean;
}

/** `generate`: writes every node's migration; returns what was written or already up to date. */
export async function generateMigrations(spec: ClusterSpec, specFile: string, options: GenerateOptions = {}): Promise<WriteResult[]> {
  const root = options.migrationsDir ?? defaultMigrationsDir(specFile);
  return writeMigrations(migrationFiles(spec, specFile), root, options.force === undefined ? {} : { force: options.force });
}
