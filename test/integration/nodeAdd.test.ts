/** A data node joins a running cluster: its base is applied, no shard moves, data stays readable. */
import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateMigrations } from '../../src/migrations/files.js';
import { apply } from '../../src/nodes/apply.js';
import { loadSpec } from '../../src/spec/load.js';
import { clusterSources, type TestCluster } from '../support/clusters.js';
import { sql } from '../support/db.js';
import { specNode, writeExampleSpec, writeSecrets } from '../support/spec.js';

const BIN = fileURLToPath(new URL('../../bin/hypershard.js', import.meta.url));
const [first] = clusterSources();

describe('node add', () => {
  let cluster: TestCluster;
  let specFile: string;

  beforeAll(async () => {
    cluster = await first!.start(3);
    const dir = join(cluster.workDir, 'grow');
    // The spec starts with two of the three data nodes.
    specFile = await writeExampleSpec({ ...cluster, dataNodes: cluster.dataNodes.slice(0, 2) }, dir);
    await writeSecrets(dir);
    const { spec, file } = await loadSpec(specFile);
    await generateMigrations(spec, file);
    expect((await apply(spec, file)).ok).toBe(true);
    await sql(cluster.accessNode.url, `INSERT INTO metrics SELECT now() - i * interval '1 minute', i % 20, 1, 2, 3 FROM generate_series(1, 2000) i`);
  });
  afterAll(async () => {
    await cluster?.stop();
  });

  it('adds dn3 to the spec, pins the hypertable to dn1 and dn2, and applies the new node\'s base', async () => {
    const dn3 = specNode(cluster.dataNodes[2]!);
    const run = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) =>
      execFile(process.execPath, [BIN, 'node', 'add', '-c', specFile, '--name', 'dn3', '--url', dn3.url, '--json'], (error, stdout, stderr) =>
        resolve({ code: error === null ? 0 : Number(error.code), stdout, stderr }),
      ),
    );
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const result = JSON.parse(run.stdout) as { pinned: string[]; changes: string[]; apply: { nodes: { node: string; status: string; migrations: string[] }[] } };
    expect(result.pinned).toEqual(['metrics']);
    expect(result.changes).toEqual(['data node dn3 added']);
    expect(result.apply.nodes.map((n) => [n.node, n.status, n.migrations])).toEqual([
      ['dn1', 'up-to-date', []],
      ['dn2', 'up-to-date', []],
      ['dn3', 'applied', ['0002_add_data_node']],
      ['access', 'up-to-date', []],
    ]);
    const yaml = await readFile(specFile, 'utf8');
    expect(yaml).toContain('    dataNodes: [ dn1, dn2 ]');
    expect(yaml).toContain('# Data nodes hold the rows.'); // comments survive

    const dn3Url = cluster.dataNodes[2]!.url;
    expect(await sql(dn3Url, `SELECT rolname FROM pg_roles WHERE rolname IN ('hypershard_fdw', 'metrics_reader', 'metrics_writer') ORDER BY 1`)).toEqual([
      { rolname: 'hypershard_fdw' },
      { rolname: 'metrics_reader' },
      { rolname: 'metrics_writer' },
    ]);
    expect(await sql(dn3Url, `SELECT to_regprocedure('_hypershard.create_chunks(regclass, text, int8, int4, int4, bool)') IS NOT NULL AS ok`)).toEqual([{ ok: true }]);
    expect(await sql(cluster.accessNode.url, 'SELECT count(*)::int AS n FROM metrics')).toEqual([{ n: 2000 }]);
  });

  it('refuses a node name that is taken, leaving the spec as it was', async () => {
    const before = await readFile(specFile, 'utf8');
    const run = await new Promise<{ code: number; stderr: string }>((resolve) =>
      execFile(process.execPath, [BIN, 'node', 'add', '-c', specFile, '--name', 'dn1', '--url', 'postgres://postgres@127.0.0.1:1/postgres'], (error, _stdout, stderr) =>
        resolve({ code: error === null ? 0 : Number(error.code), stderr }),
      ),
    );
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('a node named dn1 is already in');
    expect(await readFile(specFile, 'utf8')).toBe(before);
    await writeFile(specFile, before);
  });
});
