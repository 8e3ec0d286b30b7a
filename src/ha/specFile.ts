/**
 * A data node's topology written back to the spec file after `failover` (a standby becomes the
 * primary, the old primary leaves the spec) and `node rebuild` (a standby joins), comments and
 * layout of the YAML kept, and to the migrations' last snapshot, so `generate` has nothing to do
 * and `check` finds the FDW servers as the failover left them. Like `rebalance`'s placement, the
 * change is operational, not a migration: the access node's servers are altered by the command.
 */
import { readFile, rename, writeFile } from 'node:fs/promises';
import { HypershardError } from '../errors.js';
import { sameSql } from '../migrations/files.js';
import { readSnapshots, writeSnapshot } from '../migrations/snapshots.js';
import { SpecText } from '../spec/edit.js';
import { parseSpec } from '../spec/load.js';
import type { ClusterSpec, DataNodeSpec, StandbySpec } from '../spec/schema.js';

export type TopologyChange = { readonly kind: 'promote'; readonly standby: string } | { readonly kind: 'add-standby'; readonly standby: StandbySpec };

/** The spec after `change` to data node `dataNode`; pure. */
export function changeTopology(spec: ClusterSpec, dataNode: string, change: TopologyChange): ClusterSpec {
  return { ...spec, dataNodes: spec.dataNodes.map((n) => (n.name === dataNode ? changeNode(n, change) : n)) };
}

function changeNode(node: DataNodeSpec, change: TopologyChange): DataNodeSpec {
  if (change.kind === 'add-standby') return { ...node, standbys: [...node.standbys.filter((s) => s.name !== change.standby.name), change.standby] };
  const promoted = node.standbys.find((s) => s.name === change.standby);
  if (promoted === undefined) return node;
  const { password: _p, fdw: _f, ...rest } = node;
  const { host: _h, port: _o, ...kept } = node.fdw ?? {};
  const fdw = {
    ...kept,
    ...(promoted.fdw?.host === undefined ? {} : { host: promoted.fdw.host }),
    ...(promoted.fdw?.port === undefined ? {} : { port: promoted.fdw.port }),
  };
  return {
    ...rest,
    url: promoted.url,
    ...(promoted.password === undefined ? {} : { password: promoted.password }),
    ...(Object.keys(fdw).length === 0 ? {} : { fdw }),
    standbys: node.standbys.filter((s) => s !== promoted),
  };
}

export interface RecordedTopology {
  readonly spec: ClusterSpec;
  readonly specWritten: boolean;
  /** The snapshot written, or null (no snapshot yet, or the spec was not generated before the change). */
  readonly snapshot: string | null;
}

/**
 * Writes `change` into the spec file and a new snapshot. A second call with the same change
 * writes nothing (the standby is already the primary, or already listed).
 * @throws SpecError when the result would be invalid (nothing is written then).
 */
export async function recordTopology(specFile: string, migrationsDir: string, dataNode: string, change: TopologyChange): Promise<RecordedTopology> {
  const text = await readFile(specFile, 'utf8');
  const before = parseSpec(text, specFile);
  const next = changeTopology(before, dataNode, change);
  let specWritten = false;
  if (canonical(before) !== canonical(next)) {
    const edit = new SpecText(text);
    const index = before.dataNodes.findIndex((n) => n.name === dataNode);
    if (index < 0) throw new HypershardError('USAGE', `${specFile}: no data node ${dataNode}`);
    if (change.kind === 'promote') promoteInText(edit, before.dataNodes[index] as DataNodeSpec, index, change.standby);
    else addStandbyInText(edit, before.dataNodes[index] as DataNodeSpec, index, change.standby);
    const updated = edit.text;
    const parsed = parseSpec(updated, specFile); // throws before anything is written
    if (canonical(parsed) !== canonical(next)) throw new TypeError(`the spec file did not take the new topology of ${dataNode}`);
    await writeFile(`${specFile}.tmp`, updated);
    await rename(`${specFile}.tmp`, specFile);
    specWritten = true;
  }
  const last = (await readSnapshots(migrationsDir)).at(-1);
  // Only a snapshot of this very spec is carried forward: one that lags behind it still needs
  // generate. Specs are compared as data first: generating every statement of both (sameSql) costs
  // seconds of a busy host's CPU, after the failover is otherwise done.
  const ofThisSpec = last !== undefined && (canonical(last.spec) === canonical(before) || sameSql(last.spec, before));
  if (last === undefined || !ofThisSpec || canonical(before) === canonical(next)) return { spec: next, specWritten, snapshot: null };
  return { spec: next, specWritten, snapshot: await writeSnapshot(migrationsDir, last.step + 1, changeTopology(last.spec, dataNode, change)) };
}

/** The standby's url, password and FDW address become the node's; its entry leaves `standbys`. */
function promoteInText(edit: SpecText, node: DataNodeSpec, index: number, standby: string): void {
  const at = node.standbys.findIndex((s) => s.name === standby);
  const promoted = node.standbys[at];
  if (promoted === undefined) return;
  const path = ['dataNodes', index];
  edit.set(path, 'url', promoted.url);
  if (promoted.password === undefined) edit.delete(path, 'password');
  else edit.set(path, 'password', promoted.password, ['url']);
  // The node's own dbname and options stay; host and port are the promoted server's.
  const fdw = { host: promoted.fdw?.host, port: promoted.fdw?.port };
  if (node.fdw === undefined) {
    if (fdw.host !== undefined || fdw.port !== undefined) edit.set(path, 'fdw', Object.fromEntries(Object.entries(fdw).filter(([, v]) => v !== undefined)), ['password', 'url']);
  } else {
    for (const key of ['host', 'port'] as const) {
      if (fdw[key] === undefined) edit.delete([...path, 'fdw'], key);
      else edit.set([...path, 'fdw'], key, fdw[key]);
    }
    const left = Object.entries({ ...node.fdw, ...fdw }).filter(([, v]) => v !== undefined);
    if (left.length === 0) edit.delete(path, 'fdw');
  }
  if (node.standbys.length === 1) edit.set(path, 'standbys', []);
  else edit.remove([...path, 'standbys'], at);
}

function addStandbyInText(edit: SpecText, node: DataNodeSpec, index: number, standby: StandbySpec): void {
  const path = ['dataNodes', index];
  const at = node.standbys.findIndex((s) => s.name === standby.name);
  if (node.standbys.length === 0 || (at >= 0 && node.standbys.length === 1)) {
    edit.set(path, 'standbys', [standby], ['fdw', 'password', 'url']);
    return;
  }
  if (at >= 0) edit.remove([...path, 'standbys'], at);
  edit.append([...path, 'standbys'], standby);
}

/** JSON with keys sorted, so two specs compare by content whatever order their keys were written in. */
function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v !== null && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) : v,
  );
}
