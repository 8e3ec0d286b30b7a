/**
 * After moves: the spec file gets each hypertable's `placement` (comments and layout of the YAML
 * kept, as `node add` does) and the migrations a snapshot of the last generated spec with the same
 * placement, so `generate`, `apply` and `check` see the cluster as it now is and have nothing to do.
 */
import { readFile, rename, writeFile } from 'node:fs/promises';
import { isDeepStrictEqual } from 'node:util';
import { sameSql } from '../migrations/files.js';
import { readSnapshots, writeSnapshot } from '../migrations/snapshots.js';
import { fdwServerName } from '../plan/names.js';
import { SpecText } from '../spec/edit.js';
import { parseSpec } from '../spec/load.js';
import type { ClusterSpec, HypertableSpec } from '../spec/schema.js';

/** Shard index → data node, for every shard of every hypertable (by name). */
export type Placement = ReadonlyMap<string, ReadonlyMap<number, string>>;

/** The overrides of round-robin that put the shards where `actual` says. */
export function placementOverrides(spec: ClusterSpec, table: HypertableSpec, actual: ReadonlyMap<number, string>): Record<string, string> {
  const nodes = table.dataNodes ?? spec.dataNodes.map((n) => n.name);
  const overrides: Record<string, string> = {};
  for (let index = 0; index < table.shards; index += 1) {
    const node = actual.get(index) ?? table.placement?.[String(index)] ?? nodes[index % nodes.length];
    if (node !== undefined && node !== nodes[index % nodes.length]) overrides[String(index)] = node;
  }
  return overrides;
}

export function withPlacement(spec: ClusterSpec, placement: Placement): ClusterSpec {
  return {
    ...spec,
    hypertables: spec.hypertables.map((t) => {
      const actual = placement.get(t.name);
      if (actual === undefined) return t;
      const overrides = placementOverrides(spec, t, actual);
      const { placement: _old, ...rest } = t;
      return Object.keys(overrides).length === 0 ? rest : { ...rest, placement: overrides };
    }),
  };
}

/** The data node a shard slot's FDW server name belongs to. */
export function serverNode(spec: ClusterSpec, index: number, server: string): string | undefined {
  return spec.dataNodes.find((n) => fdwServerName(n.name, index) === server)?.name;
}


/**
 * Writes the placement into the spec file and a new snapshot; returns what it wrote.
 * @throws SpecError when the result would be invalid (nothing is written then).
 */
export async function recordPlacement(specFile: string, migrationsDir: string, placement: Placement): Promise<{ specWritten: boolean; snapshot: string | null }> {
  const text = await readFile(specFile, 'utf8');
  const spec = parseSpec(text, specFile);
  const next = withPlacement(spec, placement);
  let specWritten = false;
  if (!sameSql(spec, next)) {
    const edit = new SpecText(text);
    next.hypertables.forEach((table, i) => {
      if (isDeepStrictEqual(table.placement, spec.hypertables[i]?.placement)) return;
      // Beside what it overrides: after dataNodes, else after shards.
      if (table.placement === undefined) edit.delete(['hypertables', i], 'placement');
      else edit.set(['hypertables', i], 'placement', table.placement, ['dataNodes', 'shards']);
    });
    const updated = edit.text;
    const parsed = parseSpec(updated, specFile); // throws before anything is written
    if (!sameSql(parsed, next)) throw new TypeError('the spec file did not take the placement');
    await writeFile(`${specFile}.tmp`, updated);
    await rename(`${specFile}.tmp`, specFile);
    specWritten = true;
  }
  const last = (await readSnapshots(migrationsDir)).at(-1);
  if (last === undefined) return { specWritten, snapshot: null };
  const snapshotSpec = withPlacement(last.spec, placement);
  if (sameSql(last.spec, snapshotSpec)) return { specWritten, snapshot: null };
  return { specWritten, snapshot: await writeSnapshot(migrationsDir, last.step + 1, snapshotSpec) };
}
