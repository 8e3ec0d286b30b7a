/**
 * Secrets never at rest in cleartext where hypershard writes them. Every node records everything
 * it can: pg_stat_statements loaded (nested statements and utility statements tracked),
 * auto_explain of nested statements, `log_statement = all`, `log_min_duration_statement = 0`,
 * parameters logged in full (also on error), parse trees logged. A full apply, a password
 * rotation and a second apply run while pg_stat_activity is sampled on every node; afterwards no
 * secret (nor any SCRAM verifier) is in any node's log, pg_stat_statements, a sampled
 * pg_stat_activity, the CLI's output, or any file hypershard wrote. A canary proves the recorders
 * do record. What stays (documented in the README): the password in pg_user_mapping.
 */
import { randomBytes } from 'node:crypto';
import { chmod, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDevCluster, stopDevCluster, type DevCluster } from '../../src/dev/cluster.js';
import { SecretExposureError } from '../../src/errors.js';
import { clientConfig } from '../../src/nodes/connect.js';
import { runSecretStatements } from '../../src/nodes/secretStatements.js';
import { exampleSpecYaml } from '../../src/spec/example.js';
import { runCli, type CliRun } from '../support/faults.js';

const SYSTEM_BIN = process.env.HYPERSHARD_TEST_SYSTEM_BIN ?? '/usr/lib/postgresql/15/bin';
const SOURCES = [
  { label: 'PostgreSQL 18 (embedded)', postgres: { kind: 'embedded' as const } },
  { label: 'PostgreSQL 15 (system)', postgres: { kind: 'system' as const, binDir: SYSTEM_BIN } },
].filter((s) => (process.env.HYPERSHARD_TEST_SOURCES ?? 'embedded,system').includes(s.postgres.kind));

/** Every recorder on. */
const RECORDING = {
  shared_preload_libraries: 'pg_stat_statements,auto_explain',
  'pg_stat_statements.track': 'all',
  'pg_stat_statements.track_utility': 'on',
  'auto_explain.log_min_duration': '0',
  'auto_explain.log_nested_statements': 'on',
  log_statement: 'all',
  log_min_duration_statement: '0',
  log_min_error_statement: 'debug5',
  log_parameter_max_length: '-1',
  log_parameter_max_length_on_error: '-1',
  debug_print_parse: 'on',
};

const secret = (tag: string): string => `${tag}-${randomBytes(9).toString('base64url')}`;

/** Samples the query text of every session on the nodes until stopped. */
function sampleActivity(urls: readonly string[]): { stop(): Promise<string[]> } {
  let running = true;
  const texts = new Set<string>();
  const loops = urls.map(async (url) => {
    const client = new pg.Client(clientConfig(url));
    await client.connect();
    try {
      while (running) {
        const { rows } = await client.query<{ query: string }>(`SELECT query FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND query <> ''`);
        for (const r of rows) texts.add(r.query);
      }
    } finally {
      await client.end();
    }
  });
  return {
    stop: async () => {
      running = false;
      await Promise.all(loops);
      return [...texts];
    },
  };
}

async function filesUnder(dir: string, skip: (path: string) => boolean): Promise<{ path: string; text: string }[]> {
  const out: { path: string; text: string }[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    const path = join(entry.parentPath, entry.name);
    if (entry.isFile() && !skip(path)) out.push({ path, text: await readFile(path, 'utf8') });
  }
  return out;
}

describe.each(SOURCES)('$label', ({ postgres }) => {
  let work: string;
  let dev: DevCluster;
  let specDir: string;
  let specFile: string;
  const nodes = (): { name: string; url: string; logFile: string }[] => [dev.accessNode, ...dev.dataNodes];

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'hs-secrets-'));
    await chmod(work, 0o755);
    dev = await startDevCluster({ dir: join(work, 'cluster'), dataNodes: 2, postgres, settings: RECORDING });
    for (const n of nodes()) {
      const client = new pg.Client(clientConfig(n.url));
      await client.connect();
      await client.query('CREATE EXTENSION pg_stat_statements');
      await client.end();
    }
    specDir = join(work, 'spec');
    specFile = join(specDir, 'hypershard.yaml');
    await import('node:fs/promises').then((fs) => fs.mkdir(join(specDir, '.secrets'), { recursive: true }));
    await writeFile(
      specFile,
      exampleSpecYaml({
        accessNode: { name: 'access', url: dev.accessNode.url },
        dataNodes: dev.dataNodes.map((n) => ({ name: n.name, url: n.url })),
        servicePassword: { file: '.secrets/service' },
        readerPassword: { env: 'HS_TEST_READER_PASSWORD' },
      }),
    );
  });
  afterAll(async () => {
    if (work === undefined) return;
    await stopDevCluster(join(work, 'cluster'));
    await rm(work, { recursive: true, force: true });
  });

  it('a full apply and a password rotation leave no secret in any log, pg_stat_statements, pg_stat_activity or file', async () => {
    const secrets = [secret('service1'), secret('reader1'), secret('service2'), secret('reader2')];
    const [service1, reader1, service2, reader2] = secrets as [string, string, string, string];
    const runs: CliRun[] = [];
    let activity: string[] = [];
    const cli = async (args: string[], env: Record<string, string>): Promise<CliRun> => {
      const run = await runCli([...args, '-c', specFile], { cwd: specDir, env });
      runs.push(run);
      return run;
    };
    const sampler = sampleActivity(nodes().map((n) => n.url));
    let rotated: CliRun;
    try {
      await writeFile(join(specDir, '.secrets/service'), `${service1}\n`, { mode: 0o600 });
      expect((await cli(['generate'], {})).code).toBe(0);
      expect((await cli(['plan', '--sql'], { HS_TEST_READER_PASSWORD: reader1 })).code).toBe(0);
      const first = await cli(['apply', '--json'], { HS_TEST_READER_PASSWORD: reader1 });
      expect(first.code, first.stderr).toBe(0);
      // Rotation: both secrets change; apply sets them again, and a second apply has nothing to do.
      await writeFile(join(specDir, '.secrets/service'), `${service2}\n`, { mode: 0o600 });
      rotated = await cli(['apply'], { HS_TEST_READER_PASSWORD: reader2 });
      expect((await cli(['apply', '--json'], { HS_TEST_READER_PASSWORD: reader2 })).code).toBe(0);
      expect((await cli(['check'], { HS_TEST_READER_PASSWORD: reader2 })).code).toBe(0);
    } finally {
      activity = await sampler.stop();
    }
    expect(rotated.code, rotated.stderr).toBe(0);
    expect(rotated.stdout).toMatch(/access +access +applied/);

    // The rotated passwords work: the reader logs in with the new one, the FDW with the new one.
    const reader = new pg.Client(clientConfig(dev.accessNode.url.replace('postgres@', 'metrics_reader@'), reader2));
    await reader.connect();
    await reader.query('SELECT count(*) FROM metrics');
    await reader.end();

    // Canary: the recorders do record what they are given.
    const canary = secret('canary');
    for (const n of nodes()) {
      const client = new pg.Client(clientConfig(n.url));
      await client.connect();
      await client.query(`SELECT '${canary}' AS canary`);
      await client.end();
    }

    const places: { where: string; text: string }[] = [];
    for (const n of nodes()) {
      places.push({ where: `${n.name} log`, text: await readFile(n.logFile, 'utf8') });
      const client = new pg.Client(clientConfig(n.url));
      await client.connect();
      const { rows } = await client.query<{ query: string }>('SELECT query FROM pg_stat_statements');
      places.push({ where: `${n.name} pg_stat_statements`, text: rows.map((r) => r.query).join('\n') });
      await client.end();
    }
    places.push({ where: 'sampled pg_stat_activity', text: activity.join('\n') });
    places.push(...runs.map((r, i) => ({ where: `CLI run ${i} output`, text: `${r.stdout}\n${r.stderr}` })));
    for (const f of await filesUnder(specDir, (p) => p.includes('/.secrets/'))) places.push({ where: f.path, text: f.text });

    for (const n of nodes()) {
      expect(places.find((p) => p.where === `${n.name} log`)?.text, 'the log records statements').toContain(canary);
      expect(places.find((p) => p.where === `${n.name} pg_stat_statements`)?.text, 'pg_stat_statements records statements').toContain('canary');
    }
    expect(activity.length, 'the sampler saw apply at work').toBeGreaterThan(5);
    const leaks = places.flatMap((p) => [...secrets, 'SCRAM-SHA-256$'].filter((s) => p.text.includes(s)).map((s) => `${p.where} holds ${s === 'SCRAM-SHA-256$' ? 'a SCRAM verifier' : s}`));
    expect(leaks).toEqual([]);

    // What stays: postgres_fdw needs the plaintext in the user mapping (superusers can read it).
    const client = new pg.Client(clientConfig(dev.accessNode.url));
    await client.connect();
    const { rows } = await client.query<{ n: number }>(`SELECT count(*)::int AS n FROM pg_user_mappings WHERE $1 = ANY (umoptions)`, [`password=${service2}`]);
    await client.end();
    expect(rows[0]?.n).toBeGreaterThan(0);
  });

  it('refuses to send a secret a user may not keep out of a recorder, and changes nothing', async () => {
    const admin = new pg.Client(clientConfig(dev.accessNode.url));
    await admin.connect();
    await admin.query(`CREATE ROLE hs_manager LOGIN CREATEROLE PASSWORD 'manager'; CREATE ROLE hs_target`);
    try {
      // Non-superusers may not change log_statement; set for the role, it is on in its sessions.
      await admin.query(`ALTER ROLE hs_manager SET log_statement = 'all'`);
      const session = new pg.Client(clientConfig(dev.accessNode.url.replace('postgres@', 'hs_manager@'), 'manager'));
      await session.connect();
      const error = await runSecretStatements(session, 'access', [{ template: `ALTER ROLE hs_target PASSWORD %L`, secret: 'not-sent' }]).catch((e: unknown) => e);
      await session.end();
      expect(error).toBeInstanceOf(SecretExposureError);
      expect(String(error)).toMatch(/node access: a password was not set, because it would reach the server log \(log_statement\): log_statement is all/);
      const { rows } = await admin.query<{ p: string | null }>(`SELECT rolpassword AS p FROM pg_authid WHERE rolname = 'hs_target'`);
      expect(rows[0]?.p).toBeNull();
    } finally {
      await admin.query('DROP ROLE hs_target; DROP ROLE hs_manager');
      await admin.end();
    }
  });
});
