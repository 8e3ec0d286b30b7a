/** A data node joins a running cluster: its base is applied, no shard moves, data stays readable. */
import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateMigrations } from '../../src/migrations/files.js';
import { apply } from '../../src/nodes/apply.js';
import { connectNode } from '../../src/nodes/connect.js';
import { status } from '../../src/ops/status.js';
import { loadSpec } from '../../src/spec/load.js';
import { clusterSources, type TestCluster } from '../support/clusters.js';
import { sql, withDatabase } from '../support/db.js';
import { lineDiff } from '../support/lineDiff.js';
import { writeExampleSpec, writeSecrets } from '../support/spec.js';

const BIN = fileURLToPath(new URL('../../bin/hypershard.js', import.meta.url));
const [first] = clusterSources();

function cli(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) =>
    execFile(process.execPath, [BIN, ...args], { env }, (error, stdout, stderr) => resolve({ code: error === null ? 0 : Number(error.code), stdout, stderr })),
  );
}

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
    // dn3 is reached as a superuser that logs in with a password (scram on loopback), so the reference is used.
    await sql(cluster.dataNodes[2]!.url, `CREATE ROLE dn3_admin LOGIN SUPERUSER PASSWORD 'dn3 secret'`);
    await sql(cluster.accessNode.url, `INSERT INTO metrics SELECT now() - i * interval '1 minute', i % 20, 1, 2, 3 FROM generate_series(1, 2000) i`);
  });
  afterAll(async () => {
    await cluster?.stop();
  });

  it('refuses a node without a secret reference or --no-password, and a reference it cannot read, leaving the spec as it was', async () => {
    const before = await readFile(specFile, 'utf8');
    const url = withDatabase(cluster.dataNodes[2]!.url, 'postgres', 'dn3_admin');
    const bare = await cli(['node', 'add', '-c', specFile, '--name', 'dn3', '--url', url]);
    expect(bare.code).toBe(2);
    expect(bare.stderr).toContain('node add needs --password-env VAR');
    expect(bare.stderr).toContain('--password-file FILE, or --no-password');
    const both = await cli(['node', 'add', '-c', specFile, '--name', 'dn3', '--url', url, '--password-env', 'X', '--no-password']);
    expect(both.stderr).toContain('give only one of');
    const { DN3_PASSWORD: _, ...unset } = process.env;
    const missing = await cli(['node', 'add', '-c', specFile, '--name', 'dn3', '--url', url, '--password-env', 'DN3_PASSWORD'], unset);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('node dn3 password: environment variable DN3_PASSWORD is not set');
    expect(await readFile(specFile, 'utf8')).toBe(before);
  });

  it('names the missing password when a node asks for one the spec does not give', async () => {
    const url = withDatabase(cluster.dataNodes[2]!.url, 'postgres', 'dn3_admin');
    const { PGPASSWORD: _, ...env } = process.env;
    const saved = process.env;
    process.env = env;
    try {
      await expect(connectNode({ name: 'dn3', role: 'data', url, password: undefined })).rejects.toThrow(
        /node dn3: dn3_admin@127\.0\.0\.1:\d+\/postgres asks for a password and the spec gives this node none: add password: \{ env: VARIABLE \}/,
      );
    } finally {
      process.env = saved;
    }
  });

  it('adds dn3 with a password reference, keeping every line of the spec, pins the hypertable to dn1 and dn2, and applies the new node\'s base', async () => {
    const url = withDatabase(cluster.dataNodes[2]!.url, 'postgres', 'dn3_admin');
    const before = await readFile(specFile, 'utf8');
    const { PGPASSWORD: _, ...env } = process.env;
    const run = await cli(['node', 'add', '-c', specFile, '--name', 'dn3', '--url', url, '--password-env', 'DN3_PASSWORD', '--json'], { ...env, DN3_PASSWORD: 'dn3 secret' });
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
    // Only new lines: the node, in the style of the others (quoted as the example spec quotes), and the pin.
    expect(lineDiff(before, await readFile(specFile, 'utf8'))).toEqual({
      added: ['  - name: "dn3"', `    url: "${url}"`, '    password: { env: "DN3_PASSWORD" }', '    dataNodes: [ dn1, dn2 ]'],
      removed: [],
    });
    // Every command reaches dn3 through the reference, with PGPASSWORD unset.
    const saved = process.env;
    process.env = { ...env, DN3_PASSWORD: 'dn3 secret' };
    try {
      const { spec, file } = await loadSpec(specFile);
      const seen = await status(spec, file);
      expect(seen.nodes.map((n) => [n.node, n.reachable])).toEqual([['dn1', true], ['dn2', true], ['dn3', true], ['access', true]]);
    } finally {
      process.env = saved;
    }

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
      execFile(process.execPath, [BIN, 'node', 'add', '-c', specFile, '--name', 'dn1', '--url', 'postgres://postgres@127.0.0.1:1/postgres', '--no-password'], (error, _stdout, stderr) =>
        resolve({ code: error === null ? 0 : Number(error.code), stderr }),
      ),
    );
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('a node named dn1 is already in');
    expect(await readFile(specFile, 'utf8')).toBe(before);
    await writeFile(specFile, before);
  });
});
