/**
 * A data node's topology written back to the spec file after `failover` (a standby becomes the
 * primary, the old primary leaves the spec) and `node rebuild` (a standby joins), comments and
 * layout of the YAML kept, and to the migrations' last snapshot, so `generate` has nothing to do
 * and `check` finds the FDW servers as the failover left them. Like `rebalance`'s placement, the
 * change is operational, not a migration: the access node's servers are altered by the command.
 */
import { readFile, rename, writeFile } from 'node:fs/promises';
import { isMap, isSeq, parseDocument, type Document, type YAMLMap, type YAMLSeq } from 'yaml';
import { HypershardError } from '../errors.js';
import { sameSql } from '../migrations/files.js';
import { readSnapshots, writeSnapshot } from '../migrations/snapshots.js';
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
  if (JSON.stringify(before) !== JSON.stringify(next)) {
    const doc = parseDocument(text);
    const item = nodeItem(doc, dataNode, specFile);
    if (change.kind === 'promote') promoteInYaml(doc, item, change.standby);
    else addStandbyInYaml(doc, item, change.standby);
    const updated = doc.toString();
    const parsed = parseSpec(updated, specFile); // throws before anything is written
    if (JSON.stringify(parsed) !== JSON.stringify(next)) throw new TypeError(`the spec file did not take the new topology of ${dataNode}`);
    await writeFile(`${specFile}.tmp`, updated);
    await rename(`${specFile}.tmp`, specFile);
    specWritten = true;
  }
  const last = (await readSnapshots(migrationsDir)).at(-1);
  // Only a snapshot of this very spec is carried forward: one that lags behind it still needs generate.
  if (last === undefined || !sameSql(last.spec, before) || sameSql(last.spec, next)) return { spec: next, specWritten, snapshot: null };
  return { spec: next, specWritten, snapshot: await writeSnapshot(migrationsDir, last.step + 1, changeTopology(last.spec, dataNode, change)) };
}

function nodeItem(doc: Document, dataNode: string, specFile: string): YAMLMap {
  const nodes = doc.get('dataNodes');
  const item = isSeq(nodes) ? nodes.items.find((i) => isMap(i) && i.get('name') === dataNode) : undefined;
  if (!isMap(item)) throw new HypershardError('USAGE', `${specFile}: no data node ${dataNode}`);
  return item as YAMLMap;
}

function promoteInYaml(doc: Document, item: YAMLMap, standby: string): void {
  const standbys = item.get('standbys') as YAMLSeq | undefined;
  const index = standbys?.items.findIndex((s) => isMap(s) && s.get('name') === standby) ?? -1;
  const promoted = standbys?.items[index];
  if (standbys === undefined || !isMap(promoted)) return;
  item.set('url', promoted.get('url'));
  if (promoted.has('password')) item.set('password', promoted.get('password'));
  else item.delete('password');
  // The node's own dbname and options stay; host and port are the promoted server's.
  const fdw = item.get('fdw');
  const from = promoted.get('fdw');
  for (const key of ['host', 'port']) {
    const value = isMap(from) ? from.get(key) : undefined;
    if (isMap(fdw)) {
      if (value === undefined) fdw.delete(key);
      else fdw.set(key, value);
    } else if (value !== undefined) {
      item.set('fdw', doc.createNode({ [key]: value }, { flow: true }));
    }
  }
  if (isMap(fdw) && fdw.items.length === 0) item.delete('fdw');
  standbys.items.splice(index, 1);
  if (standbys.items.length === 0) standbys.flow = true;
}

function addStandbyInYaml(doc: Document, item: YAMLMap, standby: StandbySpec): void {
  const entry = doc.createNode(standby, { flow: true });
  const standbys = item.get('standbys');
  if (isSeq(standbys)) {
    const at = standbys.items.findIndex((s) => isMap(s) && s.get('name') === standby.name);
    if (at >= 0) standbys.items.splice(at, 1, entry);
    else standbys.items.push(entry);
    if (standbys.items.length > 0 && standbys.flow === true) standbys.flow = false;
  } else {
    item.set('standbys', doc.createNode([standby], { flow: false }));
    const seq = item.get('standbys') as YAMLSeq;
    seq.items = [entry];
  }
}
