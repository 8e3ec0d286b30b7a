/**
 * The migrations folder: `access-node/` and `data-nodes/<node>/`, each a node-pg-migrate
 * directory, and `.hypershard/` with the spec each step was generated from. The first generate
 * writes `0001_hypershard_init` for every node; each later one writes only what changed since the
 * last snapshot, as `<NNNN>_<kinds>` for the nodes it touches. Existing migrations are never
 * rewritten, and the same spec and history always give byte-identical files.
 */
import { mkdir, readdir, readFile, rename, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { MigrationStateError } from '../errors.js';
import { evolve, type Evolution } from '../evolve/diff.js';
import { objectKey, roleGrantsOn } from '../evolve/referenceTables.js';
import { COMMIT_LOG, commitLogStep } from '../ingest/commitLog.js';
import { planLayout, type ClusterLayout, type Hypertable } from '../plan/layout.js';
import { serviceRoleSettingsStep } from '../sql/dataNode.js';
import { createLastpointView, lastpointFunctionLabel, lastpointShards } from '../sql/lastpoint.js';
import { nodeLastpointLabelPrefix, nodeLastpointTableStep, nodeLastpointViewStep, nodeViews } from '../sql/nodeViews.js';
import { generateSql, type NodeRole, type NodeSql } from '../sql/generate.js';
import { quoteQualified } from '../sql/quote.js';
import type { Statement, Step } from '../sql/statement.js';
import type { ClusterSpec } from '../spec/schema.js';
import { parseMigration } from './parse.js';
import { renderMigration } from './render.js';
import { readSnapshots, writeSnapshot } from './snapshots.js';

export const INITIAL_MIGRATION = '0001_hypershard_init';

export interface MigrationFile {
  readonly node: string;
  readonly role: NodeRole;
  /** node-pg-migrate's name for it: the file name without `.sql`. */
  readonly name: string;
  /** Folder of this node's migrations, relative to the migrations root. */
  readonly dir: string;
  readonly content: string;
  /** The statements of the Up section, to rehearse and to name the one that fails. */
  readonly up: readonly Statement[];
}

export function nodeMigrationDir(role: NodeRole, node: string): string {
  return role === 'access' ? 'access-node' : join('data-nodes', node);
}

/** Default migrations folder: `migrations/` next to the spec file. */
export function defaultMigrationsDir(specFile: string): string {
  return join(dirname(specFile), 'migrations');
}

/** The first migration of every node, from a spec. */
export function migrationFiles(spec: ClusterSpec, specFile: string): MigrationFile[] {
  return generateSql(spec).nodes.map((node) => toFile(node, INITIAL_MIGRATION, basename(specFile)));
}

function toFile(node: NodeSql, name: string, specName: string): MigrationFile {
  return { node: node.node, role: node.role, name, dir: nodeMigrationDir(node.role, node.node), content: renderMigration(node, specName), up: node.up };
}

/** The files of one step of change, for the nodes it touches, in apply order. */
function stepFiles(step: number, kinds: readonly string[], steps: ReadonlyMap<string, readonly Step[]>, layout: ClusterLayout, specName: string): MigrationFile[] {
  const name = `${String(step).padStart(4, '0')}_${kinds.join('_').slice(0, 60).replace(/_+$/, '')}`;
  return [...layout.dataNodes, layout.accessNode]
    .filter((node) => steps.has(node))
    .map((node) => {
      const list = steps.get(node) ?? [];
      const role: NodeRole = node === layout.accessNode ? 'access' : 'data';
      return toFile({ node, role, up: list.flatMap((s) => s.up), down: [...list].reverse().flatMap((s) => s.down) }, name, specName);
    });
}

export interface WriteResult {
  readonly path: string;
  readonly status: 'written' | 'unchanged';
}

export interface GenerateResult {
  readonly files: readonly WriteResult[];
  /** What the new step changes (empty when the spec is unchanged since the last generate). */
  readonly changes: readonly string[];
}

export interface GenerateOptions {
  /** @default `migrations/` next to the spec */
  readonly migrationsDir?: string;
  /** Rewrite the first migration for a cluster that never applied it. */
  readonly force?: boolean;
  /** Allow changes that drop data (columns, hypertables) or may lose it (narrowing types). */
  readonly allowDestructive?: boolean;
}

/**
 * `generate`: the first migrations, or one new step with what changed since the last snapshot.
 * @throws MigrationStateError when a change is refused or destructive without the flag; nothing is written then.
 */
export async function generateMigrations(spec: ClusterSpec, specFile: string, options: GenerateOptions = {}): Promise<GenerateResult> {
  const root = options.migrationsDir ?? defaultMigrationsDir(specFile);
  const snapshots = await readSnapshots(root);
  const last = snapshots.at(-1);
  if (last === undefined || (snapshots.length === 1 && options.force === true)) {
    const files = await writeMigrations(migrationFiles(spec, specFile), root, options.force === true);
    await writeSnapshot(root, 1, spec);
    return { files, changes: files.some((f) => f.status === 'written') ? ['initial migrations'] : [] };
  }
  const onDisk = await readMigrations(root, planLayout(spec), planLayout(last.spec));
  const existing = onDisk.map((f): WriteResult => ({ path: join(root, f.dir, `${f.name}.sql`), status: 'unchanged' }));
  const layout = planLayout(spec);
  const upgrade = baseUpgrade(onDisk, layout.accessNode);
  // Objects newer than the cluster's migrations, by node: each added once, in one step.
  const upgrades = [settingsUpgrade(onDisk, layout), nodeLastpointUpgrade(onDisk, layout), lastpointFunctionUpgrade(onDisk, layout)];
  if (sameSql(last.spec, spec) && upgrade === undefined && upgrades.every((u) => u.steps.size === 0)) return { files: existing, changes: [] };

  const evolution = upgrades.reduceRight(withNodeSteps, withUpgrade(evolve(planLayout(last.spec), layout), upgrade, layout.accessNode));
  if (evolution.refused.length > 0) {
    throw new MigrationStateError(`the spec changes what hypershard cannot change in place; nothing was written:\n${evolution.refused.map((r) => `  - ${r}`).join('\n')}`);
  }
  if (evolution.destructive.length > 0 && options.allowDestructive !== true) {
    throw new MigrationStateError(
      `these changes drop or may lose data; nothing was written. Review them and pass --allow-destructive:\n${evolution.destructive.map((r) => `  - ${r}`).join('\n')}`,
    );
  }
  const step = last.step + 1;
  const files = await writeMigrations(stepFiles(step, evolution.kinds, evolution.steps, planLayout(spec), basename(specFile)), root, false);
  await writeSnapshot(root, step, spec);
  return { files: [...existing, ...files], changes: evolution.changes };
}

/**
 * Base objects newer than a cluster's first migration: the commit log of routed writes, which
 * access-node migrations generated before it existed do not create. One step adds it.
 */
function baseUpgrade(onDisk: readonly MigrationFile[], accessNode: string): Step | undefined {
  const log = `CREATE TABLE ${quoteQualified(COMMIT_LOG.schema, COMMIT_LOG.name)}`;
  const access = onDisk.filter((f) => f.node === accessNode);
  return access.length === 0 || access.some((f) => f.content.includes(log)) ? undefined : commitLogStep();
}

function withUpgrade(evolution: Evolution, upgrade: Step | undefined, accessNode: string): Evolution {
  if (upgrade === undefined) return evolution;
  const steps = new Map(evolution.steps);
  steps.set(accessNode, [upgrade, ...(steps.get(accessNode) ?? [])]);
  return { ...evolution, steps, changes: ['commit log of routed writes added to the access node', ...evolution.changes], kinds: ['commit_log', ...evolution.kinds] };
}

/**
 * The service role's planner settings (DATA_NODE_SETTINGS), for data nodes whose migrations never
 * set them as they are now: made before they existed, or before a setting was added or changed.
 */
function settingsUpgrade(onDisk: readonly MigrationFile[], layout: ClusterLayout): NodeSteps {
  const step = serviceRoleSettingsStep(layout);
  const sql = step.up.map((s) => s.sql);
  const upgrades = new Map<string, Step>();
  for (const node of layout.dataNodes) {
    const files = onDisk.filter((f) => f.node === node);
    if (files.length > 0 && !sql.every((s) => files.some((f) => f.content.includes(s)))) upgrades.set(node, step);
  }
  return { steps: upgrades, change: `planner settings of the FDW service role on data node${upgrades.size === 1 ? '' : 's'} ${[...upgrades.keys()].join(', ')}`, kind: 'role_settings' };
}

interface NodeSteps {
  /** By node: the step, put before the evolution's own. */
  readonly steps: ReadonlyMap<string, Step>;
  readonly change: string;
  readonly kind: string;
}

function withNodeSteps(evolution: Evolution, upgrade: NodeSteps): Evolution {
  if (upgrade.steps.size === 0) return evolution;
  const steps = new Map(evolution.steps);
  for (const [node, step] of upgrade.steps) steps.set(node, [step, ...(steps.get(node) ?? [])]);
  return { ...evolution, steps, changes: [upgrade.change, ...evolution.changes], kinds: [upgrade.kind, ...evolution.kinds] };
}

/**
 * Node lastpoint views (sql/nodeViews.ts) for hypertables with node views and lastpoint views
 * whose migrations were generated before they existed: none of the access node's migrations makes
 * one. Made for the node views as placed now (a rebalance names them); the foreign tables are
 * dropped first if there, since a move by a newer hypershard may have made some.
 */
function nodeLastpointUpgrade(onDisk: readonly MigrationFile[], layout: ClusterLayout): NodeSteps {
  const access = onDisk.filter((f) => f.node === layout.accessNode);
  const made = (h: Hypertable): boolean => access.some((f) => f.content.includes(`-- ${nodeLastpointLabelPrefix(h)}`));
  const stale = access.length === 0 ? [] : layout.hypertables.filter((h) => (h.nodeViews ?? []).some((v) => v.lastpoint !== undefined) && !made(h));
  const steps = new Map<string, Step>();
  const add = (node: string, step: Step): void => {
    const had = steps.get(node);
    steps.set(node, had === undefined ? step : { up: [...had.up, ...step.up], down: [...step.down, ...had.down] });
  };
  for (const h of stale) {
    for (const v of nodeViews(h)) add(v.dataNode, nodeLastpointViewStep(h, v, layout.serviceRole));
    const tables = nodeViews(h).map((v) => nodeLastpointTableStep(h, v));
    add(layout.accessNode, { up: tables.flatMap((t) => t.up), down: tables.flatMap((t) => t.down) });
    add(layout.accessNode, roleGrantsOn(layout, 'access', new Set(nodeViews(h).flatMap((v) => (v.lastpoint === undefined ? [] : [objectKey(v.lastpoint)])))));
  }
  const names = stale.map((h) => `${h.table.schema}.${h.table.name}`).join(', ');
  return { steps, change: `node lastpoint views of ${names} added (one remote query a data node for lastpoint queries)`, kind: 'node_lastpoint' };
}

/**
 * Lastpoint views made before they read a PL/pgSQL function (planned once a session, not per
 * query): on each data node none of whose migrations makes one for its shards of the hypertable.
 * The function made and the view replaced in place (same columns: views reading it stay), for the
 * shards as placed now. Its down leaves them: the view answers the same either way.
 */
function lastpointFunctionUpgrade(onDisk: readonly MigrationFile[], layout: ClusterLayout): NodeSteps {
  const steps = new Map<string, Step>();
  const tables = new Set<string>();
  for (const node of layout.dataNodes) {
    const files = onDisk.filter((f) => f.node === node);
    if (files.length === 0) continue;
    const up = layout.hypertables.flatMap((h) => {
      const shards = lastpointShards(h, node);
      if (shards.length === 0 || files.some((f) => shards.some((s) => f.content.includes(`-- ${lastpointFunctionLabel(h, s)}`)))) return [];
      tables.add(`${h.table.schema}.${h.table.name}`);
      return shards.flatMap((s) => createLastpointView(h, s, layout.serviceRole));
    });
    if (up.length > 0) steps.set(node, { up, down: [] });
  }
  return { steps, change: `lastpoint views of ${[...tables].join(', ')} read a function planned once a session (on data node${steps.size === 1 ? '' : 's'} ${[...steps.keys()].join(', ')})`, kind: 'lastpoint_function' };
}

/** Whether two specs build the same cluster (their generated SQL is identical). */
export function sameSql(a: ClusterSpec, b: ClusterSpec): boolean {
  return JSON.stringify(generateSql(a).nodes) === JSON.stringify(generateSql(b).nodes);
}

/**
 * Writes migration files. A file that exists with other content is never overwritten unless
 * `force` is set: it may already be applied somewhere.
 * @throws MigrationStateError listing every file that differs.
 */
async function writeMigrations(files: readonly MigrationFile[], root: string, force: boolean): Promise<WriteResult[]> {
  const existing = await Promise.all(files.map((f) => readIfExists(join(root, f.dir, `${f.name}.sql`))));
  const conflicts = files.filter((f, i) => existing[i] !== undefined && existing[i] !== f.content);
  if (conflicts.length > 0 && !force) {
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
 * The migrations on disk for every node of the layout(s), in name order, with their statements.
 * Files, not the spec, are what gets applied: the DBA reviewed them.
 */
export async function readMigrations(root: string, ...layouts: ClusterLayout[]): Promise<MigrationFile[]> {
  const nodes = new Map<string, NodeRole>();
  for (const layout of layouts) {
    for (const node of layout.dataNodes) nodes.set(node, 'data');
    nodes.set(layout.accessNode, 'access');
  }
  const files: MigrationFile[] = [];
  for (const [node, role] of nodes) {
    const dir = nodeMigrationDir(role, node);
    const names = (await readdir(join(root, dir)).catch(() => [] as string[])).filter((n) => n.endsWith('.sql')).sort();
    for (const file of names) {
      const content = await readFile(join(root, dir, file), 'utf8');
      files.push({ node, role, name: file.slice(0, -'.sql'.length), dir, content, up: parseMigration(content).up });
    }
  }
  return files;
}

/**
 * Checks that migrations were generated from the spec as it is now, so `apply` never runs SQL
 * for another spec, nor misses SQL the spec needs.
 * @throws MigrationStateError saying to run generate.
 */
export async function checkMigrationsCurrent(spec: ClusterSpec, root: string): Promise<void> {
  const last = (await readSnapshots(root)).at(-1);
  if (last === undefined) throw new MigrationStateError(`no migrations in ${root}: run \`hypershard generate\` and review the result first`);
  if (!sameSql(last.spec, spec)) {
    throw new MigrationStateError(`the spec changed since the migrations in ${root} were generated: run \`hypershard generate\` and review the new migration first`);
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
