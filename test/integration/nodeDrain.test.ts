/** A data node leaves: remove is refused while it holds shards, drain moves them off, then remove. */
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { removeDataNodeFromSpec } from '../../src/cluster/removeDataNode.js';
import { generateMigrations } from '../../src/migrations/files.js';
import { apply } from '../../src/nodes/apply.js';
import { rebalance } from '../../src/rebalance/rebalance.js';
import { loadSpec } from '../../src/spec/load.js';
import { clusterSources, type TestCluster } from '../support/clusters.js';
import { sql } from '../support/db.js';
import { writeExampleSpec, writeSecrets } from '../support/spec.js';

const BIN = fileURLToPath(new URL('../../bin/hypershard.js', import.meta.url));
const [first] = clusterSources();

describe('node drain and node remove', () => {
  let cluster: TestCluster;
  let specFile: string;
  const fingerprint = async (): Promise<unknown> =>
    (await sql(cluster.accessNode.url, `SELECT count(*)::int AS n, sum(hashtextextended(m::text, 0))::text AS h FROM metrics m`))[0];

  beforeAll(async () => {
    cluster = await first!.start(3);
    const dir = join(cluster.workDir, 'shrink');
    specFile = await writeExampleSpec(cluster, dir, { shards: 6 });
    await writeSecrets(dir);
    const { spec, file } = await loadSpec(specFile);
    await generateMigrations(spec, file);
    expect((await apply(spec, file)).ok).toBe(true);
    await sql(cluster.accessNode.url, `INSERT INTO metrics SELECT date_trunc('hour', now()) - i * interval '1 minute', i % 60, i % 100, 2, 3 FROM generate_series(1, 6000) i`);
  });
  afterAll(async () => {
    await cluster?.stop();
  });

  it('refuses to remove a node that holds shards, naming them, and leaves the spec as it was', async () => {
    const before = await readFile(specFile, 'utf8');
    const run = await new Promise<{ code: number; stderr: string }>((resolve) =>
      execFile(process.execPath, [BIN, 'node', 'remove', '-c', specFile, '--name', 'dn3'], (error, _out, stderr) => resolve({ code: error === null ? 0 : Number(error.code), stderr })),
    );
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('data node dn3 still holds metrics shard 2, metrics shard 5; move them first: hypershard node drain --name dn3');
    expect(await readFile(specFile, 'utf8')).toBe(before);
  });

  it('drains dn3 with data kept, then removes it; generate and apply are then quiet', async () => {
    const before = await fingerprint();
    const { spec, file } = await loadSpec(specFile);
    const drained = await rebalance(spec, file, { drain: 'dn3' });
    expect(drained.ok).toBe(true);
    expect(drained.moves.map((m) => [m.shard, m.source, m.status])).toEqual([
      [2, 'dn3', 'moved'],
      [5, 'dn3', 'moved'],
    ]);
    expect(new Set(drained.moves.map((m) => m.target))).toEqual(new Set(['dn1', 'dn2']));
    expect(await fingerprint()).toEqual(before);
    expect(await sql(cluster.dataNodes[2]!.url, `SELECT count(*)::int AS n FROM pg_class WHERE relnamespace = '_hypershard'::regnamespace AND relname LIKE 'metrics_s%'`)).toEqual([{ n: 0 }]);

    const removed = await removeDataNodeFromSpec(specFile, 'dn3');
    expect(removed.dataNodes.map((n) => n.name)).toEqual(['dn1', 'dn2']);
    const generated = await generateMigrations(removed, specFile);
    expect(generated.changes).toEqual(['data node dn3 removed']);
    const applied = await apply(removed, specFile);
    expect(applied.nodes.map((n) => [n.node, n.status])).toEqual([
      ['dn1', 'up-to-date'],
      ['dn2', 'up-to-date'],
      ['access', 'up-to-date'],
    ]);
    expect(await fingerprint()).toEqual(before);
    const again = await generateMigrations(removed, specFile);
    expect(again.changes).toEqual([]);
  });
});
