/**
 * As root, with the clone inside a folder the PostgreSQL OS user cannot traverse (root's home is
 * mode 700 on Debian): `dev up` and `demo` stage the embedded binaries and keep the nodes' data
 * where that user can reach them, say so, and `dev down` removes what they made. The clone is a
 * copy of this checkout (node_modules hard-linked) in a mkdtemp folder, which is mode 700.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clusterSources } from '../support/clusters.js';
import { sql } from '../support/db.js';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const embedded = clusterSources().find((s) => s.label.includes('embedded'));
const skip =
  process.getuid?.() !== 0
    ? 'runs as root only (PostgreSQL then runs as another OS user)'
    : embedded === undefined
      ? 'embedded PostgreSQL is not among HYPERSHARD_TEST_SOURCES'
      : await embedded.unavailable();

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

describe.skipIf(skip !== undefined)(`a clone in a folder PostgreSQL's OS user cannot enter${skip === undefined ? '' : ` — skipped: ${skip}`}`, () => {
  let privateDir: string;
  let clone: string;
  const staged = new Set<string>();

  const hypershard = async (args: string[]): Promise<Run> => {
    try {
      const { stdout, stderr } = await run(process.execPath, [join(clone, 'bin', 'hypershard.js'), ...args], { cwd: clone, timeout: 170_000 });
      return { code: 0, stdout, stderr };
    } catch (error) {
      const e = error as { code?: number; stdout?: string; stderr?: string };
      return { code: typeof e.code === 'number' ? e.code : 1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
    }
  };
  /** The folders the notes name, so the test removes them. */
  const remember = (stderr: string): void => {
    for (const m of stderr.matchAll(/staged in (\S+) \(/g)) staged.add(m[1]!);
  };

  beforeAll(async () => {
    privateDir = await mkdtemp(join(tmpdir(), 'hs-private-')); // mode 700
    clone = join(privateDir, 'hypershard');
    await run('mkdir', [clone]);
    await run('cp', ['-a', 'package.json', 'bin', 'dist', 'templates', 'schema', clone], { cwd: ROOT });
    await run('cp', ['-al', 'node_modules', clone], { cwd: ROOT }); // hard links: fast, and inside the private folder
  }, 120_000);
  afterAll(async () => {
    if (clone !== undefined) await hypershard(['dev', 'down', '--dir', join(clone, '.dev')]);
    await rm(privateDir, { recursive: true, force: true });
    for (const dir of staged) await rm(dir, { recursive: true, force: true });
  });

  it('dev up stages the binaries and the data where PostgreSQL can reach them, says so, and dev down removes them', async () => {
    const dev = join(clone, '.dev');
    const up = await hypershard(['dev', 'up', '--data-nodes', '1', '--dir', dev]);
    remember(up.stderr);
    expect(up.stderr).not.toContain('hypershard:');
    expect(up.code).toBe(0);
    expect(up.stderr).toMatch(new RegExp(`note: PostgreSQL runs as OS user \\w+ \\(it refuses root\\), and ${privateDir} \\(mode 700, owner 0\\) is not traversable by OS user \\w+: the embedded binaries were staged in /\\S+/hypershard-postgres-18-\\w+ \\(kept for later runs\\)`));
    const dataRoot = /the nodes' data is in (\S+) \(dev down removes it\)/.exec(up.stderr)?.[1];
    expect(dataRoot).toMatch(/hypershard-nodes-/);
    const state = JSON.parse(await readFile(join(dev, 'cluster.json'), 'utf8')) as { nodes: { dataDir: string }[] };
    expect(state.nodes.every((n) => n.dataDir.startsWith(dataRoot!))).toBe(true);

    const spec = join(dev, 'hypershard.yaml');
    expect((await hypershard(['generate', '-c', spec])).code).toBe(0);
    expect((await hypershard(['apply', '-c', spec])).code).toBe(0);
    const accessUrl = /url: "(postgres:\/\/[^"]+)"/.exec(await readFile(spec, 'utf8'))![1]!;
    await sql(accessUrl, `INSERT INTO metrics SELECT now(), i, 1, 2, 3 FROM generate_series(1, 100) i`);
    expect(await sql(accessUrl, 'SELECT count(*)::int AS n FROM metrics')).toEqual([{ n: 100 }]);

    const down = await hypershard(['dev', 'down', '--dir', dev]);
    expect(down.code).toBe(0);
    expect(existsSync(dataRoot!)).toBe(false);
  });

  it('demo runs, reusing the staged binaries', async () => {
    const demo = await hypershard(['demo', '--devices', '4', '--hours', '1']);
    remember(demo.stderr);
    expect(demo.stderr).not.toContain('hypershard:');
    expect(demo.code).toBe(0);
    expect(demo.stderr).toMatch(/note: PostgreSQL runs as OS user \w+ .* the embedded binaries were staged in/);
    expect(staged.size).toBe(1); // the same folder both times
    expect(demo.stdout).toContain('Cluster: PostgreSQL 18 (embedded)');
  });
});
