/**
 * `node add`: a new data node joins the cluster. The spec file gains the node (comments and
 * layout of the YAML kept), and hypertables that spread over "all data nodes" are pinned to the
 * nodes they use now, so no shard moves (moving shards is `rebalance`'s job). The caller then
 * generates and applies, which gives the new node its base: schema, chunk function, service role
 * and roles.
 */
import { readFile, rename, writeFile } from 'node:fs/promises';
import { isMap, isSeq, parseDocument, YAMLMap } from 'yaml';
import { HypershardError } from '../errors.js';
import { parseSpec } from '../spec/load.js';
import type { ClusterSpec } from '../spec/schema.js';

export interface NewDataNode {
  readonly name: string;
  readonly url: string;
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
  const doc = parseDocument(text);
  const dataNodes = doc.get('dataNodes');
  if (!isSeq(dataNodes)) throw new HypershardError('USAGE', `${specFile}: dataNodes is not a list`);
  dataNodes.add(doc.createNode({ name: node.name, url: node.url, ...(node.password === undefined ? {} : { password: node.password }), ...(node.fdw === undefined ? {} : { fdw: node.fdw }) }));

  const pinned: string[] = [];
  const current = before.dataNodes.map((n) => n.name);
  const tables = doc.get('hypertables');
  if (isSeq(tables)) {
    for (const item of tables.items) {
      if (isMap(item) && !item.has('dataNodes')) {
        (item as YAMLMap).set('dataNodes', doc.createNode(current, { flow: true }));
        pinned.push(String(item.get('name')));
      }
    }
  }
  const updated = doc.toString();
  const spec = parseSpec(updated, specFile); // throws before anything is written
  await writeFile(`${specFile}.tmp`, updated);
  await rename(`${specFile}.tmp`, specFile);
  return { spec, pinned };
}
