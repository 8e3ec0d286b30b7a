/**
 * Hostile and mistaken input as the CLI meets it: a YAML alias bomb, bytes that are not UTF-8 in
 * a name, more columns than PostgreSQL allows, a password in a URL's query string: each exits 2
 * with the path and line, no stack trace, and writes nothing. Two applies at once: the second
 * says which node the first holds, instead of failing on a catalog race.
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseDocument } from 'yaml';
import { APPLY_LOCK_KEY } from '../../src/nodes/applyLock.js';
import { clusterSources, type TestCluster } from '../support/clusters.js';
import { catalogFingerprint } from '../support/db.js';
import { connect, runCli } from '../support/faults.js';
import { writeExampleSpec, writeSecrets } from '../support/spec.js';

const source = clusterSources().find((s) => s.label.includes('embedded'));

describe('bad input to the CLI', () => {
  let cluster: TestCluster | undefined;
  let skip: string | undefined;
  let dir: string;
  let good: string;

  beforeAll(async () => {
    skip = source === undefined ? 'no embedded source selected' : await source.unavailable();
    if (source === undefined || skip !== undefined) return;
    cluster = await source.start(2);
    dir = join(cluster.workDir, 'inputs');
    const file = await writeExampleSpec(cluster, dir);
    await writeSecrets(dir);
    good = await readFile(file, 'utf8');
  });
  afterAll(async () => {
    await cluster?.stop();
  });

  /** Writes a spec into its own folder and runs generate on it. */
  const generate = async (name: string, content: string | Buffer): Promise<{ code: number | null; stderr: string; stdout: string; migrations: string }> => {
    const folder = join(dir, name);
    await mkdir(join(folder, '.secrets'), { recursive: true });
    await writeFile(join(folder, 'hypershard.yaml'), content);
    const run = await runCli(['generate', '-c', join(folder, 'hypershard.yaml')], { cwd: folder, deadlineMs: 60_000 });
    return { ...run, migrations: join(folder, 'migrations') };
  };

  it.skipIf(source === undefined)('an alias bomb: exit 2, the line, no stack trace, nothing written', async () => {
    const levels = ['a: &a [x, x, x, x, x, x, x, x, x, x]', ...'bcdefghi'.split('').map((l, i) => `${l}: &${l} [${Array(10).fill(`*${'abcdefghi'[i]}`).join(', ')}]`)];
    const run = await generate('bomb', `${good}\n${levels.join('\n')}\n`);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/hypershard\.yaml: 1 problem:\n {2}- line \d+: YAML aliases expand more than 100 times \(an alias bomb\?\); write the values out/);
    expect(run.stderr).not.toMatch(/\n\s+at /);
    expect(existsSync(run.migrations)).toBe(false);
  });

  it.skipIf(source === undefined)('a column name with a byte that is not UTF-8: exit 2 naming it, nothing written', async () => {
    const bytes = Buffer.from(good.replace('{ name: cpu,', '{ name: "cpu_\u0000",'), 'latin1');
    bytes[bytes.indexOf(0)] = 0xfe;
    const run = await generate('latin1', bytes);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/- hypertables\[0\]\.columns\[2\]\.name: holds bytes that are not UTF-8 \(0xFE at line \d+, column \d+\); save the file as UTF-8/);
    expect(existsSync(run.migrations)).toBe(false);
  });

  it.skipIf(source === undefined)('5,000 columns: exit 2, nothing written', async () => {
    const doc = parseDocument(good);
    for (let i = 0; i < 4995; i += 1) doc.addIn(['hypertables', 0, 'columns'], doc.createNode({ name: `c${i}`, type: 'integer' }, { flow: true }));
    const run = await generate('wide', doc.toString());
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/- hypertables\[0\]\.columns: 5000 columns; PostgreSQL allows at most 1600 in a table \(line \d+\)/);
    expect(existsSync(run.migrations)).toBe(false);
  });

  it.skipIf(source === undefined)('a password in a URL query string: exit 2 with path and line, never written to a snapshot', async () => {
    const doc = parseDocument(good);
    doc.setIn(['dataNodes', 1, 'url'], `${String(doc.getIn(['dataNodes', 1, 'url']))}?sslmode=prefer&password=hunter2-in-url`);
    const run = await generate('query-password', doc.toString());
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/- dataNodes\[1\]\.url: its query string holds a secret \(password\); put the password in `password: \{ env: VARIABLE \}` instead \(line \d+\)/);
    expect(`${run.stdout}${run.stderr}`).not.toContain('hunter2');
    expect(existsSync(join(run.migrations, '.hypershard'))).toBe(false);
  });

  it.skipIf(source === undefined)('a second apply stops at once, naming the node the first holds; two at once never race', async () => {
    const file = join(dir, 'hypershard.yaml');
    expect((await runCli(['generate', '-c', file], { cwd: dir })).code).toBe(0);
    // Another apply holds dn1 (as its session would).
    const holder = await connect(cluster!.dataNodes[0]!.url);
    await holder.query('SELECT pg_advisory_lock($1::int8)', [APPLY_LOCK_KEY]);
    const before = await Promise.all([cluster!.accessNode, ...cluster!.dataNodes].map((n) => catalogFingerprint(n.url)));
    const blocked = await runCli(['apply', '-c', file], { cwd: dir, deadlineMs: 60_000 });
    await holder.end();
    expect(blocked.code).toBe(1);
    expect(blocked.stderr).toMatch(/another apply holds node dn1 \(backend pid \d+ from 127\.0\.0\.1, connected since [0-9-]+ [0-9:]+ UTC, application hypershard\)\nNothing was applied; run apply again when it has finished\./);
    expect(blocked.seconds).toBeLessThan(30);
    expect(await Promise.all([cluster!.accessNode, ...cluster!.dataNodes].map((n) => catalogFingerprint(n.url)))).toEqual(before);

    // Two applies of the same migrations at once: each applies or is told another holds a node.
    const both = await Promise.all([runCli(['apply', '-c', file], { cwd: dir }), runCli(['apply', '-c', file], { cwd: dir })]);
    for (const run of both) {
      expect(run.stderr).not.toMatch(/duplicate key|pg_type_typname_nsp_index/);
      if (run.code !== 0) expect(run.stderr).toMatch(/another apply holds node/);
    }
    expect(both.some((r) => r.code === 0)).toBe(true);
    const check = await runCli(['check', '-c', file], { cwd: dir });
    expect(check.code, check.stdout).toBe(0);
  });
});
