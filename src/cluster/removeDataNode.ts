/**
 * `node remove`: a data node that holds no shard leaves the spec. Refused while it holds any
 * (drain it first), so nothing is lost. Hypertables listing it stop listing it, with their
 * placement written out so no other shard moves; generate then drops its FDW servers.
 */
import { readFile, rename, writeFile } from 'node:fs/promises';
import { HypershardError, UnknownNodeError } from '../errors.js';
import { planLayout } from '../plan/layout.js';
import { placementOverrides } from '../rebalance/specFile.js';
import { SpecText } from '../spec/edit.js';
import { parseSpec } from '../spec/load.js';
import type { ClusterSpec } from '../spec/schema.js';

export async function removeDataNodeFromSpec(specFile: string, node: string): Promise<ClusterSpec> {
  const text = await readFile(specFile, 'utf8');
  const spec = parseSpec(text, specFile);
  const names = spec.dataNodes.map((n) => n.name);
  if (!names.includes(node)) throw new UnknownNodeError([node], names);
  if (names.length === 1) throw new HypershardError('USAGE', `${node} is the only data node; a cluster needs one`);
  const held = planLayout(spec).hypertables.flatMap((h) => h.shards.filter((s) => s.dataNode === node).map((s) => `${h.table.name} shard ${s.index}`));
  if (held.length > 0) {
    throw new HypershardError('NODE_NOT_EMPTY', `data node ${node} still holds ${held.join(', ')}; move them first: hypershard node drain --name ${node}`);
  }

  const edit = new SpecText(text);
  edit.remove(['dataNodes'], names.indexOf(node));
  const layout = planLayout(spec);
  spec.hypertables.forEach((table, i) => {
    const nodes = table.dataNodes ?? names;
    if (!nodes.includes(node)) return;
    const remaining = nodes.filter((n) => n !== node);
    // Keep every shard where it is: placement relative to the shorter list.
    const actual = new Map((layout.hypertables.find((h) => h.table.name === table.name)?.shards ?? []).map((s) => [s.index, s.dataNode]));
    const overrides = placementOverrides(spec, { ...table, dataNodes: remaining }, actual);
    edit.set(['hypertables', i], 'dataNodes', remaining, ['shards', 'spaceColumn']);
    if (Object.keys(overrides).length === 0) edit.delete(['hypertables', i], 'placement');
    else edit.set(['hypertables', i], 'placement', overrides, ['dataNodes']);
  });
  const updated = edit.text;
  const next = parseSpec(updated, specFile); // throws before anything is written
  await writeFile(`${specFile}.tmp`, updated);
  await rename(`${specFile}.tmp`, specFile);
  return next;
}
