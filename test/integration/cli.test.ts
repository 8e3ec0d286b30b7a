/**
 * The CLI as a new user runs it: dev up → generate → plan → apply (twice) → a pushed aggregate →
 * dev down, plus bad input. Runs the built CLI (`npm test` builds first).
 */
import { execFile } from 'node:child_process';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from '../support/db.js';

const BIN = fileURLToPath(new URL('../../bin/hypershard.js', import.meta.url));

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function hypershard(args: string[], cwd: string): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { cwd, timeout: 120_000 }, (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : 1, stdout, stderr });
    });
  });
}

/** A process that exists and is not a zombie waiting for this sandbox's init to reap it. */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return false;
  }
}

describe('hypershard CLI', () => {
  let work: string;
  let clusterDir: string;
  let spec: string;
  let nodes: { accessNode: { name: string; url: string }; dataNodes: { name: string; url: string }[] };

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'hs-cli-'));
    await chmod(work, 0o755);
    clusterDir = join(work, 'dev');
    spec = join(clusterDir, 'hypershard.yaml');
  });
  afterAll(async () => {
    await hypershard(['dev', 'down', '--dir', clusterDir], work);
    await rm(work, { recursive: true, force: true });
  });

  it('dev up --json starts a cluster and prints its nodes', async () => {
    const run = await hypershard(['dev', 'up', '--data-nodes', '2', '--dir', clusterDir, '--json'], work);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    nodes = JSON.parse(run.stdout) as typeof nodes;
    expect(Object.keys(nodes)).toEqual(['accessNode', 'dataNodes']);
    expect(nodes.accessNode.name).toBe('access');
    expect(nodes.dataNodes.map((n) => n.name)).toEqual(['dn1', 'dn2']);
    for (const n of [nodes.accessNode, ...nodes.dataNodes]) expect(n.url).toMatch(/^postgres:\/\/postgres@127\.0\.0\.1:\d+\/postgres$/);
    const yaml = await readFile(spec, 'utf8');
    expect(yaml).toContain('password: { file: ".secrets/fdw-service-password" }');
  });

  it('generate, plan and apply twice give an access node that pushes a space-grouped aggregate to every shard', async () => {
    const generate = await hypershard(['generate', '-c', spec], work);
    expect(generate.code).toBe(0);
    expect(generate.stdout).toMatch(/access-node\/0001_hypershard_init\.sql\s+written/);

    const plan = await hypershard(['plan', '-c', spec, '--json'], work);
    expect(plan.code).toBe(0);
    // The same shape as every other command's --json.
    const planned = JSON.parse(plan.stdout) as { ok: boolean; nodes: { node: string; pending: { name: string }[]; secretsToSet: number }[] };
    expect(planned.ok).toBe(true);
    expect(planned.nodes.map((p) => [p.node, p.pending.length])).toEqual([['dn1', 1], ['dn2', 1], ['access', 1]]);

    const first = await hypershard(['apply', '-c', spec, '--json'], work);
    expect(first.code).toBe(0);
    const applied = JSON.parse(first.stdout) as { nodes: { node: string; status: string; secretsChanged: number }[] };
    expect(applied.nodes.map((n) => n.status)).toEqual(['applied', 'applied', 'applied']);
    // plan counts what apply sets: role passwords, and on the access node the user mappings of servers not created yet.
    expect(planned.nodes.map((p) => [p.node, p.secretsToSet])).toEqual(applied.nodes.map((n) => [n.node, n.secretsChanged]));
    expect(applied.nodes.find((n) => n.node === 'access')?.secretsChanged).toBe(1 + 4); // metrics_reader, 4 servers
    const second = await hypershard(['apply', '-c', spec], work);
    expect(second.code).toBe(0);
    expect(second.stdout.match(/up-to-date/g)).toHaveLength(3);

    await sql(nodes.accessNode.url, `INSERT INTO metrics SELECT now() - i * interval '1 minute', i % 50, 1, 2, 3 FROM generate_series(1, 5000) i; ANALYZE metrics`);
    const explain = await sql<{ 'QUERY PLAN': string }>(nodes.accessNode.url, 'EXPLAIN (VERBOSE) SELECT device_id, avg(cpu) FROM metrics GROUP BY device_id');
    const text = explain.map((r) => r['QUERY PLAN']).join('\n');
    expect(text.match(/Relations: Aggregate on \(_hypershard\.metrics_s\d /g)).toHaveLength(4);
  });

  it('an invalid spec gets every error at once, exit code 2, and no node is touched', async () => {
    const bad = join(work, 'bad.yaml');
    const text = (await readFile(spec, 'utf8'))
      .replace('timeColumn: time', 'timeColumn: tiem')
      .replace('type: double precision }', 'type: "float; DROP TABLE metrics" }')
      .replace('shards: 4', 'shards: 0')
      .replace('fetchSize: 10000', 'fetchSize: 10000\n  surprise: true');
    await writeFile(bad, text);
    const run = await hypershard(['apply', '-c', bad], work);
    expect(run.code).toBe(2);
    expect(run.stdout).toBe('');
    expect(run.stderr).toContain('4 problems');
    expect(run.stderr).toMatch(/fdw\.surprise: Unrecognized key: "surprise" \(line \d+\)/);
    expect(run.stderr).toMatch(/hypertables\[0\]\.shards: .*>=1/);
    expect(run.stderr).toMatch(/hypertables\[0\]\.columns\[2\]\.type: unsupported column type "float; DROP TABLE metrics"/);
    expect(run.stderr).toMatch(/hypertables\[0\]\.timeColumn: no column named "tiem"/);
  });

  it('a missing required key is named, and every missing secret is reported at once', async () => {
    const text = await readFile(spec, 'utf8');
    const noShards = join(work, 'no-shards.yaml');
    await writeFile(noShards, text.replace(/\n\s*shards: 4/, ''));
    const missing = await hypershard(['plan', '-c', noShards], work);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/hypertables\[0\]\.shards: required key "shards" is missing \(expected number\) \(line \d+\)/);

    // A node password and two role secrets, all missing: one error names all three.
    const secrets = join(clusterDir, 'missing.yaml');
    await writeFile(
      secrets,
      text
        .replace('.secrets/fdw-service-password', '.secrets/not-there')
        .replace('.secrets/metrics-reader-password', '.secrets/nor-this')
        .replace(/(name: "dn2"\n\s*url: "[^"]+")/, '$1\n    password: { env: "HS_TEST_UNSET_DN2" }'),
    );
    for (const command of ['plan', 'apply']) {
      const run = await hypershard([command, '-c', secrets], work);
      expect(run.code).toBe(2);
      expect(run.stderr).toContain('hypershard: 3 secrets cannot be read:\n  - node dn2 password: environment variable HS_TEST_UNSET_DN2 is not set\n  - ');
      expect(run.stderr).toMatch(/fdw\.serviceRole\.password \(hypershard_fdw\): cannot read secret file .*not-there/);
      expect(run.stderr).toMatch(/password of role metrics_reader: cannot read secret file .*nor-this/);
    }
  });

  it('plan counts statements in words a person reads', async () => {
    const text = await readFile(spec, 'utf8');
    await writeFile(spec, text.replace('{ name: temperature, type: double precision }', '{ name: temperature, type: double precision }\n      - { name: humidity, type: double precision }'));
    expect((await hypershard(['generate', '-c', spec], work)).code).toBe(0);
    const plan = await hypershard(['plan', '-c', spec], work);
    expect(plan.code).toBe(0);
    expect(plan.stdout).toMatch(/dn1: 0002_\w+ \(1 statement\)/);
    expect(plan.stdout).not.toMatch(/\(1 statements\)/);
    expect((await hypershard(['apply', '-c', spec], work)).code).toBe(0);
  });

  it('a usage error exits 2 with the reason', async () => {
    const run = await hypershard(['dev', 'up', '--data-nodes', 'two', '--dir', join(work, 'x')], work);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('--data-nodes must be a positive whole number, not "two"');
  });

  it('dev down stops every server and leaves no process behind', async () => {
    const state = JSON.parse(await readFile(join(clusterDir, 'cluster.json'), 'utf8')) as { nodes?: { pid?: number }[] };
    const pids = JSON.stringify(state).match(/"pid":\s*(\d+)/g)?.map((m) => Number(m.replace(/\D/g, ''))) ?? [];
    expect(pids.length).toBe(3);
    const run = await hypershard(['dev', 'down', '--dir', clusterDir, '--json'], work);
    expect(run.code).toBe(0);
    expect((JSON.parse(run.stdout) as { status: string }[]).map((r) => r.status)).toEqual(['stopped', 'stopped', 'stopped']);
    expect(pids.filter(alive)).toEqual([]);
  });
});
