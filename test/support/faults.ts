/**
 * The fault suite's frame (`test/faults/`): clusters whose nodes a case can freeze, crash, kill and
 * restart; the built CLI run under a hard deadline; writers that record what was acknowledged;
 * the invariants every case asserts; and the one summary line each case prints.
 *
 * Scale: `npm test` runs every case small (one run, few rows, embedded PostgreSQL 18);
 * `npm run test:faults` sets HYPERSHARD_FAULTS=full (more runs and rows, PostgreSQL 18 and 15).
 */
import { execFile, execFileSync, spawn } from 'node:child_process';
import { appendFileSync, existsSync } from 'node:fs';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { inject } from 'vitest';
import {
  freezeDevNode,
  startDevCluster,
  startDevNode,
  stopDevCluster,
  stopDevNode,
  type DevCluster,
  type NodeStop,
} from '../../src/dev/cluster.js';
import { check } from '../../src/drift/check.js';
import { generateMigrations } from '../../src/migrations/files.js';
import { apply } from '../../src/nodes/apply.js';
import { clientConfig } from '../../src/nodes/connect.js';
import { planLayout, type ClusterLayout } from '../../src/plan/layout.js';
import { loadSpec } from '../../src/spec/load.js';
import type { ClusterSpec } from '../../src/spec/schema.js';
import type { TestCluster } from './clusters.js';
import { createVeth, moveIntoVeth, type Veth } from './netns.js';
import { writeExampleSpec, writeSecrets } from './spec.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** JSON-lines file the cases' summaries are appended to; globalSetup prints them as a table. */
    faultSummaryFile: string;
  }
}

export const FULL = process.env.HYPERSHARD_FAULTS === 'full';

/** How much each case does: small in `npm test`, more under `npm run test:faults`. */
export const SCALE = {
  /** Repetitions of a case with a random fault point. */
  runs: FULL ? 5 : 1,
  /** Rows written around a fault. */
  rows: FULL ? 20_000 : 2_000,
} as const;

export const BIN = fileURLToPath(new URL('../../bin/hypershard.js', import.meta.url));
/** The built dev-cluster module, for faults injected from a child process (faultSync). */
const DEV_MODULE = new URL('../../dist/dev/cluster.js', import.meta.url).href;
const SYSTEM_BIN = process.env.HYPERSHARD_TEST_SYSTEM_BIN ?? '/usr/lib/postgresql/15/bin';

export interface FaultSource {
  readonly label: string;
  /** Why this source cannot run here, or undefined. */
  readonly skip: string | undefined;
  readonly postgres: { kind: 'embedded' } | { kind: 'system'; binDir: string };
}

/** Embedded PostgreSQL 18 always; Debian's 15 at full scale (or when HYPERSHARD_TEST_SOURCES names `system`). */
export function faultSources(): FaultSource[] {
  const wanted = process.env.HYPERSHARD_TEST_SOURCES?.split(',').map((s) => s.trim()) ?? (FULL ? ['embedded', 'system'] : ['embedded']);
  const sources: FaultSource[] = [];
  if (wanted.includes('embedded')) sources.push({ label: 'PostgreSQL 18 (embedded)', skip: undefined, postgres: { kind: 'embedded' } });
  if (wanted.includes('system')) {
    sources.push({
      label: 'PostgreSQL 15 (system)',
      skip: existsSync(join(SYSTEM_BIN, 'postgres')) ? undefined : `no PostgreSQL at ${SYSTEM_BIN} (apt-get install postgresql-15)`,
      postgres: { kind: 'system', binDir: SYSTEM_BIN },
    });
  }
  return sources;
}

/**
 * Settings of every node in a fault cluster. Acknowledged means durable: a commit returns after its
 * WAL reached the OS (the dev cluster's `fsync = off` only matters if the machine itself crashes).
 */
export const FAULT_SETTINGS: Readonly<Record<string, string>> = { synchronous_commit: 'on' };

export interface FaultCluster {
  readonly label: string;
  readonly major: number;
  readonly dev: DevCluster;
  readonly workDir: string;
  /** The example spec, generated and applied (4 shards over the data nodes). */
  readonly specFile: string;
  readonly spec: ClusterSpec;
  readonly layout: ClusterLayout;
  /** The node started behind a veth pair (`options.veth`): `cut()` partitions it, `heal()` restores it. */
  readonly veth: Veth | undefined;
  /** SIGSTOP every process of a node (it accepts TCP and never answers) / SIGCONT them. */
  freeze(node: string): Promise<void>;
  thaw(node: string): Promise<void>;
  stop(node: string, how: NodeStop): Promise<void>;
  start(node: string): Promise<void>;
  /**
   * Freezes or stops a node before returning, from synchronous code (a library's progress
   * callback), so the fault lands exactly at the point the callback reports.
   */
  faultSync(node: string, how: NodeStop | 'freeze'): void;
  /** The built CLI with `-c <spec>` appended, killed if it outlives `deadlineMs`. */
  cli(args: readonly string[], options?: CliOptions): Promise<CliRun>;
  /** Thaws and starts every node (a case that failed halfway must not leave the next one a frozen node). */
  heal(): Promise<void>;
  close(): Promise<void>;
}

/**
 * Starts a cluster, writes the example spec, generates and applies it. `settings` go into every
 * node's postgresql.conf over FAULT_SETTINGS.
 */
export async function startFaultCluster(
  source: FaultSource,
  options: {
    dataNodes?: number;
    settings?: Readonly<Record<string, string>>;
    shards?: number;
    /** A data node to run in its own network namespace behind a veth pair (see netns.ts; needs root). */
    veth?: string;
  } = {},
): Promise<FaultCluster> {
  const workDir = await mkdtemp(join(tmpdir(), 'hs-fault-'));
  await chmod(workDir, 0o755);
  const clusterDir = join(workDir, 'cluster');
  const dev = await startDevCluster({ dir: clusterDir, dataNodes: options.dataNodes ?? 2, postgres: source.postgres, settings: { ...FAULT_SETTINGS, ...options.settings } });
  const frozen = new Set<string>();
  const stopped = new Set<string>();
  let veth: Veth | undefined;
  try {
    const urls = new Map(dev.dataNodes.map((n) => [n.name, n.url]));
    if (options.veth !== undefined) {
      veth = await createVeth();
      urls.set(options.veth, await moveIntoVeth(dev, clusterDir, options.veth, veth));
    }
    const test: TestCluster = {
      label: source.label,
      major: dev.postgres.version,
      accessNode: { name: dev.accessNode.name, url: dev.accessNode.url },
      dataNodes: dev.dataNodes.map((n) => ({ name: n.name, url: urls.get(n.name) ?? n.url })),
      workDir,
      stop: async () => undefined,
    };
    const dir = join(workDir, 'spec');
    const specPath = await writeExampleSpec(test, dir, { shards: options.shards ?? 4 });
    await writeSecrets(dir);
    const { spec, file } = await loadSpec(specPath);
    await generateMigrations(spec, file);
    const applied = await apply(spec, file);
    if (!applied.ok) throw new Error(`apply failed: ${JSON.stringify(applied.nodes)}`);
    const cluster: FaultCluster = {
      label: source.label,
      major: dev.postgres.version,
      dev,
      workDir,
      specFile: file,
      spec,
      layout: planLayout(spec),
      veth,
      freeze: async (node) => {
        frozen.add(node);
        await freezeDevNode(clusterDir, node, true);
      },
      thaw: async (node) => {
        frozen.delete(node);
        await freezeDevNode(clusterDir, node, false);
      },
      stop: async (node, how) => {
        stopped.add(node);
        await stopDevNode(clusterDir, node, how);
      },
      start: async (node) => {
        await startDevNode(clusterDir, node);
        stopped.delete(node);
      },
      faultSync: (node, how) => {
        const script = how === 'freeze'
          ? `import { freezeDevNode } from ${JSON.stringify(DEV_MODULE)}; await freezeDevNode(${JSON.stringify(clusterDir)}, ${JSON.stringify(node)}, true);`
          : `import { devNodePids, stopDevNode } from ${JSON.stringify(DEV_MODULE)};
             const [dir, node] = [${JSON.stringify(clusterDir)}, ${JSON.stringify(node)}];
             const pids = await devNodePids(dir, node);
             await stopDevNode(dir, node, ${JSON.stringify(how)});
             // Gone, not only exiting, before returning: a start right after must not find the old postmaster's PID alive.
             const gone = (pid) => { try { process.kill(pid, 0); return false; } catch (e) { return e.code === 'ESRCH'; } };
             for (let i = 0; i < 400 && !pids.every(gone); i += 1) await new Promise((r) => setTimeout(r, 50));`;
        execFileSync(process.execPath, ['--input-type=module', '-e', script], { timeout: 60_000, stdio: ['ignore', 'ignore', 'pipe'] });
        (how === 'freeze' ? frozen : stopped).add(node);
      },
      cli: (args, cliOptions) => runCli([...args, '-c', file], { cwd: dir, ...cliOptions }),
      heal: async () => {
        // thaw() and start() take the node out of the set being walked: walk copies.
        for (const node of Array.from(frozen)) await cluster.thaw(node);
        for (const node of Array.from(stopped)) await cluster.start(node);
      },
      close: async () => {
        await cluster.heal().catch(() => undefined);
        await veth?.heal().catch(() => undefined);
        await stopDevCluster(clusterDir);
        await veth?.remove();
        await rm(workDir, { recursive: true, force: true });
      },
    };
    return cluster;
  } catch (error) {
    await veth?.heal().catch(() => undefined);
    await stopDevCluster(clusterDir).catch(() => undefined);
    await veth?.remove();
    await rm(workDir, { recursive: true, force: true });
    throw error;
  }
}

/** 2,000 rows in the example's `metrics`, a minute apart up to now, over 20 devices (through the access node). */
export async function seedMetrics(cluster: FaultCluster): Promise<void> {
  const client = await connect(cluster.dev.accessNode.url);
  try {
    await client.query(`INSERT INTO metrics (time, device_id, cpu) SELECT now() - i * interval '1 minute', i % 20, i FROM generate_series(1, 2000) AS i`);
  } finally {
    await client.end();
  }
}

export interface CliOptions {
  readonly cwd?: string;
  /** The CLI is killed (SIGKILL) if still running after this; the run then reports `killed`. @default 120000 */
  readonly deadlineMs?: number;
  /** Kill it on purpose after this many ms (the "CLI killed at a random point" cases). */
  readonly killAfterMs?: number;
  readonly env?: Readonly<Record<string, string>>;
  /**
   * Written to the CLI's stdin (closed at the end), with backpressure: a case can fault a node
   * between two chunks. Writing stops when the CLI exits. @default stdin ignored
   */
  readonly input?: AsyncIterable<string | Buffer>;
}

export interface CliRun {
  /** Exit code; null when it was killed. */
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly seconds: number;
  /** Killed by the deadline (a hang) or by killAfterMs. */
  readonly killed: 'deadline' | 'on-purpose' | undefined;
}

/** Runs the built CLI (`npm test` and `npm run test:faults` build first). */
export function runCli(args: readonly string[], options: CliOptions = {}): Promise<CliRun> {
  const started = performance.now();
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd: options.cwd, env: { ...process.env, ...options.env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let exited = false;
    const stdin = child.stdin;
    stdin.on('error', () => undefined); // EPIPE once the CLI has exited
    const input = options.input;
    if (input === undefined) stdin.end();
    else {
      void (async () => {
        for await (const chunk of input) {
          if (exited || stdin.destroyed) break;
          if (!stdin.write(chunk)) await new Promise<void>((r) => { stdin.once('drain', r); stdin.once('close', r); });
        }
        stdin.end();
      })().catch(() => stdin.destroy());
    }
    let stdout = '';
    let stderr = '';
    let killed: CliRun['killed'];
    // Decoded as a stream: a character whose bytes two chunks share is read whole.
    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8');
    child.stdout.on('data', (d: string) => (stdout += d));
    child.stderr.on('data', (d: string) => (stderr += d));
    const kill = (why: NonNullable<CliRun['killed']>) => (): void => {
      killed ??= why;
      child.kill('SIGKILL');
    };
    const deadline = setTimeout(kill('deadline'), options.deadlineMs ?? 120_000);
    const onPurpose = options.killAfterMs === undefined ? undefined : setTimeout(kill('on-purpose'), options.killAfterMs);
    child.on('close', (code) => {
      exited = true;
      clearTimeout(deadline);
      if (onPurpose !== undefined) clearTimeout(onPurpose);
      resolve({ code: killed === undefined ? code : null, stdout, stderr, seconds: (performance.now() - started) / 1000, killed });
    });
  });
}

/** A client of the spec's superuser on a node (the tests' own reads and writes). */
export async function connect(url: string, settings: Readonly<Record<string, string>> = {}): Promise<pg.Client> {
  const client = new pg.Client(clientConfig(url));
  client.on('error', () => undefined);
  await client.connect();
  for (const [key, value] of Object.entries(settings)) await client.query('SELECT pg_catalog.set_config($1, $2, false)', [key, value]);
  return client;
}

export interface WriterResult {
  /** Ids whose INSERT returned success. */
  readonly acknowledged: readonly number[];
  /** Ids whose INSERT failed or never returned: each may be present at most once. */
  readonly uncertain: readonly number[];
  /** Every failed statement, with when it failed (`performance.now()`). */
  readonly errors: readonly { readonly at: number; readonly message: string }[];
}

/**
 * Writers inserting one row per statement through the access node into `metrics` until stopped
 * (or `rows` ids are used), each row with a unique id in `memory` (devices spread over every
 * shard). A writer whose statement fails reconnects and goes on; one whose statement hangs is
 * abandoned at stop. `statementTimeoutMs` is what a client should set (see README).
 */
export function startWriters(
  accessUrl: string,
  options: { writers?: number; rows: number; statementTimeoutMs?: number; firstId?: number },
): { stop(): Promise<WriterResult>; acknowledgedSoFar(): number } {
  let next = options.firstId ?? 1;
  let running = true;
  const acknowledged: number[] = [];
  const uncertain: number[] = [];
  const errors: { at: number; message: string }[] = [];
  const clients = new Set<pg.Client>();
  const writer = async (): Promise<void> => {
    let client: pg.Client | undefined;
    while (running && next < (options.firstId ?? 1) + options.rows) {
      const id = next++;
      try {
        client ??= await connect(accessUrl, options.statementTimeoutMs === undefined ? {} : { statement_timeout: String(options.statementTimeoutMs) });
        clients.add(client);
        await client.query('INSERT INTO metrics (time, device_id, memory) VALUES (now(), $1, $2)', [id % 20, id]);
        acknowledged.push(id);
      } catch (error) {
        uncertain.push(id);
        errors.push({ at: performance.now(), message: error instanceof Error ? error.message : String(error) });
        if (client !== undefined) {
          clients.delete(client);
          void client.end().catch(() => undefined);
          client = undefined;
        }
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  };
  const done = Promise.all(Array.from({ length: options.writers ?? 4 }, writer));
  return {
    acknowledgedSoFar: () => acknowledged.length,
    stop: async () => {
      running = false;
      // A writer stuck on a hung statement is abandoned: its id stays uncertain.
      const stuck = await Promise.race([done.then(() => false), new Promise<boolean>((r) => setTimeout(() => r(true), 5_000))]);
      if (stuck) for (const c of clients) (c as unknown as { connection: { stream: { destroy(): void } } }).connection.stream.destroy();
      const inFlight = stuck ? [next - 1] : [];
      return { acknowledged: [...acknowledged], uncertain: [...uncertain, ...inFlight], errors: [...errors] };
    },
  };
}

/**
 * Acknowledged rows are present exactly once, uncertain ones at most once, and nothing else was
 * written. Returns how many acknowledged ids were found (once each).
 */
export async function verifyRows(accessUrl: string, written: WriterResult, firstId = 1): Promise<{ found: number; problems: string[] }> {
  const client = await connect(accessUrl);
  try {
    const { rows } = await client.query<{ id: number; n: number }>('SELECT memory AS id, count(*)::int AS n FROM metrics WHERE memory >= $1 GROUP BY memory', [firstId]);
    const counts = new Map(rows.map((r) => [r.id, r.n]));
    const problems: string[] = [];
    let found = 0;
    for (const id of written.acknowledged) {
      const n = counts.get(id) ?? 0;
      if (n === 1) found += 1;
      else problems.push(`acknowledged row ${id} found ${n} times`);
    }
    const known = new Set([...written.acknowledged, ...written.uncertain]);
    for (const id of written.uncertain) if ((counts.get(id) ?? 0) > 1) problems.push(`unacknowledged row ${id} found ${counts.get(id)} times`);
    for (const id of counts.keys()) if (!known.has(id)) problems.push(`row ${id} was never written`);
    return { found, problems };
  } finally {
    await client.end();
  }
}

/** `check` finds no drift on any node (the spec as the file says now). Returns its problems (empty when clean). */
export async function checkClean(cluster: FaultCluster): Promise<string[]> {
  const { spec, file } = await loadSpec(cluster.specFile);
  const result = await check(spec, file, { timeoutMs: 10_000 });
  return result.nodes.flatMap((n) => [...(n.error === undefined ? [] : [`${n.node}: ${n.error}`]), ...n.items.filter((i) => i.kind !== 'warning').map((i) => `${n.node}: ${i.kind} ${i.object}: ${i.message}`)]);
}

export interface FaultSummary {
  /** e.g. "data node killed -9 during INSERT through the access node". */
  readonly case: string;
  readonly source: string;
  readonly runs: number;
  readonly rowsAcknowledged?: number;
  readonly rowsFound?: number;
  /** Longest time from the fault to a clear error (a command's exit, a statement's error). */
  readonly secondsToError?: number;
  readonly note?: string;
}

/** The one line each case prints, also collected for the closing table of `npm run test:faults`. */
export function summarize(summary: FaultSummary): void {
  const rows = summary.rowsAcknowledged === undefined ? '-' : `${summary.rowsAcknowledged}/${summary.rowsFound ?? '?'}`;
  const seconds = summary.secondsToError === undefined ? '-' : summary.secondsToError.toFixed(1);
  process.stdout.write(`FAULT ${summary.case} [${summary.source}]: runs ${summary.runs}, rows acknowledged/found ${rows}, seconds to a clear error ${seconds}${summary.note === undefined ? '' : ` (${summary.note})`}\n`);
  const file = inject('faultSummaryFile');
  if (file !== undefined) appendFileSync(file, `${JSON.stringify(summary)}\n`);
}

/** Seconds from `faultAt` to the first error at or after it (undefined when none). */
export function secondsToFirstError(errors: readonly { readonly at: number }[], faultAt: number): number | undefined {
  const after = errors.filter((e) => e.at >= faultAt).map((e) => e.at);
  return after.length === 0 ? undefined : (Math.min(...after) - faultAt) / 1000;
}

/** A random integer in [min, max]: where in an operation a fault hits. */
export function between(min: number, max: number): number {
  return min + Math.floor(Math.random() * (max - min + 1));
}

/** Runs `fn` over `items`, `size` at a time, results in order. */
export async function inBatches<T, R>(items: readonly T[], size: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = [];
  for (let i = 0; i < items.length; i += size) results.push(...(await Promise.all(items.slice(i, i + size).map(fn))));
  return results;
}

/** Resolves after ms. */
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Runs a shell command, for harnesses (network namespaces). */
export function sh(command: string, args: readonly string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(command, [...args], { timeout: 30_000 }, (error, stdout, stderr) => (error === null ? resolve(stdout) : reject(new Error(`${command} ${args.join(' ')}: ${stderr || error.message}`))));
  });
}
