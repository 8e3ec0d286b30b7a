/**
 * A test cluster with hypertables of chosen space-column types, generated and applied by
 * hypershard itself, for the router's and the loader's tests.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { generateMigrations } from '../../src/migrations/files.js';
import { apply } from '../../src/nodes/apply.js';
import { loadSpec } from '../../src/spec/load.js';
import type { ClusterSpec, HypertableSpec } from '../../src/spec/schema.js';
import type { TestCluster } from './clusters.js';
import { specNode, writeSecrets, SECRETS } from './spec.js';

export type HypertableInput = Omit<Partial<HypertableSpec>, 'columns'> & { name: string; columns: { name: string; type: string; notNull?: boolean }[]; spaceColumn: string; timeColumn: string; shards: number };

export interface AppliedSpec {
  readonly spec: ClusterSpec;
  readonly specFile: string;
  readonly dir: string;
}

export async function applySpec(cluster: TestCluster, folder: string, hypertables: readonly HypertableInput[], extra: Record<string, unknown> = {}): Promise<AppliedSpec> {
  const dir = join(cluster.workDir, folder);
  await mkdir(dir, { recursive: true });
  await writeSecrets(dir);
  const file = join(dir, 'hypershard.yaml');
  await writeFile(
    file,
    stringify({
      version: 1,
      accessNode: specNode(cluster.accessNode),
      dataNodes: cluster.dataNodes.map((n) => specNode(n)),
      fdw: { serviceRole: { name: 'hypershard_fdw', password: { file: SECRETS.service } } },
      hypertables: hypertables.map((h) => ({ chunks: { behind: 1, ahead: 1 }, ...h })),
      ...extra,
    }),
  );
  const { spec, file: specFile } = await loadSpec(file);
  await generateMigrations(spec, specFile);
  const result = await apply(spec, specFile);
  if (!result.ok) throw new Error(`apply failed: ${JSON.stringify(result.nodes.filter((n) => n.status !== 'applied' && n.status !== 'up-to-date'))}`);
  return { spec, specFile, dir };
}
