/**
 * `node add`: a new data node joins the cluster. The spec file gains the node (comments and
 * layout of the YAML kept), and hypertables that spread over "all data nodes" are pinned to the
 * nodes they use now, so no shard moves (moving shards is `rebalance`'s job). Generating and
 * applying then gives the new node its base (schema, chunk function, service role and roles) and
 * an empty copy of every reference table, which `addDataNode` fills from the access node.
 */
import { readFile, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { HypershardError } from '../errors.js';
import { generateMigrations } from '../migrations/files.js';
import { apply, type ApplyResult } from '../nodes/apply.js';
import { planLayout } from '../plan/layout.js';
import { syncReferenceTables, type ReferenceSyncNodeResult } from '../reference/sync.js';
import { SpecText } from '../spec/edit.js';
import { parseSpec } from '../spec/load.js';
import type { ClusterSpec } from '../spec/schema.js';
import { resolveSecret } from '../spec/secrets.js';

export interface NewDataNode {
  readonly name: string;
  readonly url: string;
  /** Absent only for a node that needs no password (trust, certificates, ~/.pgpass): the CLI makes users say so. */
  readonly password?: { env: string } | { file: string };
  readonly fdw?: { host?: string; port?: number; dbname?: string };
}

export interface AddDataNodeResult {
  readonly spec: ClusterSpec;
  /** Hypertables whose data nodes were pinned to keep their shards in place. */
  readonly pinned: readonly string[];
}

/**
 * @throws HypershardError when the node exists; SpecError when the result is invalid (the file is then left as it was).
 */
export async function addDataNodeToSpec(specFile: string, node: NewDataNode): Promise<AddDataNodeResult> {
  const text = await readFile(specFile, 'utf8');
  const before = parseSpec(text, specFile);
  if ([before.accessNode.name, ...before.dataNodes.map((n) => n.name)].includes(node.name)) {
    throw new HypershardError('USAGE', `a node named ${node.name} is already in ${specFile}`);
  }
  const edit = new SpecText(text);
  edit.append(['dataNodes'], { name: node.name, url: node.url, password: node.password, fdw: node.fdw });

  const pinned: string[] = [];
  const current = before.dataNodes.map((n) => n.name);
  before.hypertables.forEach((table, i) => {
    if (table.dataNodes !== undefined) return;
    edit.set(['hypertables', i], 'dataNodes', current, ['shards', 'spaceColumn']);
    pinned.push(table.name);
  });
  const updated = edit.text;
  const spec = parseSpec(updated, specFile); // throws before anything is written
  await writeFile(`${specFile}.tmp`, updated);
  await rename(`${specFile}.tmp`, specFile);
  return { spec, pinned };
}

export interface AddDataNodeOptions {
  /** Apply the generated migrations (and fill the new node's reference copies). @default true */
  readonly apply?: boolean;
  /** @default `migrations/` next to the spec */
  readonly migrationsDir?: string;
  /** Bound on reaching each node. @default 10000 */
  readonly timeoutMs?: number;
}

export interface AddDataNodeOutcome extends AddDataNodeResult {
  /** What the generated migration changes. */
  readonly changes: readonly string[];
  /** Undefined when not applied. */
  readonly apply: ApplyResult | undefined;
  /**
   * The new node's copies of the reference tables, filled from the access node once apply has
   * made them reachable; undefined when not applied, apply failed, or there are no reference tables.
   */
  readonly reference: ReferenceSyncNodeResult | undefined;
}

/**
 * The whole join: the node into the spec, its migration generated and applied, then its
 * reference-table copies filled (a migration cannot: see src/evolve/referenceTables.ts). Writes to
 * reference tables already reach the new copies from the apply on, so the fill's TRUNCATE and copy
 * under the tables' SHARE lock leave them equal.
 * @throws SecretError when the node's password cannot be read; as addDataNodeToSpec, generateMigrations
 * and apply do, before any node is changed.
 */
export async function addDataNode(specFile: string, node: NewDataNode, options: AddDataNodeOptions = {}): Promise<AddDataNodeOutcome> {
  // A secret apply could not read would leave the spec edited and the node not applied.
  if (options.apply !== false && node.password !== undefined) await resolveSecret(node.password, dirname(specFile), `node ${node.name} password`);
  const added = await addDataNodeToSpec(specFile, node);
  const dir = options.migrationsDir === undefined ? {} : { migrationsDir: options.migrationsDir };
  const timeout = options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs };
  const generated = await generateMigrations(added.spec, specFile, dir);
  const applied = options.apply === false ? undefined : await apply(added.spec, specFile, { ...dir, ...timeout });
  const fill = applied?.ok === true && planLayout(added.spec).referenceTables.length > 0;
  const reference = fill ? (await syncReferenceTables(added.spec, specFile, { dataNodes: [node.name], ...timeout })).nodes[0] : undefined;
  return { ...added, changes: generated.changes, apply: applied, reference };
}
