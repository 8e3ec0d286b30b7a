/**
 * A real network partition for fault tests: a data node runs in its own network namespace, reached
 * over a veth pair. `cut()` takes the namespace's end of the pair down: packets to it are dropped
 * without a word (no RST, no ICMP; static neighbour entries keep ARP from failing fast), exactly
 * like a host behind a broken link. `heal()` brings it back. Needs root and `ip`; `tc` and
 * iptables are not needed (and are missing on these machines).
 */
import { execFile } from 'node:child_process';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import pg from 'pg';
import { stopDevNode, type DevCluster } from '../../src/dev/cluster.js';

export interface Veth {
  readonly namespace: string;
  /** The address the node listens on inside the namespace. */
  readonly nodeAddress: string;
  /** The root namespace's end. */
  readonly hostAddress: string;
  cut(): Promise<void>;
  heal(): Promise<void>;
  remove(): Promise<void>;
}

function run(file: string, args: readonly string[], options: { env?: NodeJS.ProcessEnv; cwd?: string } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(file, [...args], { timeout: 90_000, ...options }, (error, stdout, stderr) =>
      error === null ? resolve(stdout) : reject(new Error(`${file} ${args.join(' ')}: ${(stderr || error.message).trim()}`)),
    );
  });
}

/** Why namespaces cannot be used here, or undefined. */
export async function vethUnavailable(): Promise<string | undefined> {
  if (process.getuid?.() !== 0) return 'network namespaces need root';
  try {
    await run('ip', ['netns', 'list']);
    await run('nsenter', ['--version']);
    return undefined;
  } catch (error) {
    return `ip netns / nsenter unavailable: ${error instanceof Error ? error.message : String(error)}`;
  }
}

/** A namespace and a veth pair on a free 10.213.x.0/24, silent when cut. */
export async function createVeth(): Promise<Veth> {
  const used = await run('ip', ['-4', '-o', 'addr', 'show']);
  let subnet = 0;
  for (let i = 0; i < 100; i += 1) {
    const candidate = 1 + Math.floor(Math.random() * 250);
    if (!used.includes(`10.213.${candidate}.`)) {
      subnet = candidate;
      break;
    }
  }
  if (subnet === 0) throw new Error('no free 10.213.x.0/24 subnet');
  const namespace = `hs-part-${subnet}`;
  const host = `hspa${subnet}`;
  const peer = `hspb${subnet}`;
  const hostAddress = `10.213.${subnet}.1`;
  const nodeAddress = `10.213.${subnet}.2`;
  const inside = (...args: string[]): Promise<string> => run('ip', ['netns', 'exec', namespace, ...args]);
  await run('ip', ['netns', 'add', namespace]);
  try {
    await run('ip', ['link', 'add', host, 'type', 'veth', 'peer', 'name', peer]);
    await run('ip', ['link', 'set', peer, 'netns', namespace]);
    await run('ip', ['addr', 'add', `${hostAddress}/24`, 'dev', host]);
    await run('ip', ['link', 'set', host, 'up']);
    await inside('ip', 'addr', 'add', `${nodeAddress}/24`, 'dev', peer);
    await inside('ip', 'link', 'set', peer, 'up');
    await inside('ip', 'link', 'set', 'lo', 'up');
    // Static neighbours: with the link down, ARP would otherwise fail and connects end at once with
    // "no route to host"; across routers, a partition is silence.
    const hostMac = (await run('cat', [`/sys/class/net/${host}/address`])).trim();
    const peerMac = (await inside('cat', `/sys/class/net/${peer}/address`)).trim();
    await run('ip', ['neigh', 'replace', nodeAddress, 'lladdr', peerMac, 'dev', host, 'nud', 'permanent']);
    await inside('ip', 'neigh', 'replace', hostAddress, 'lladdr', hostMac, 'dev', peer, 'nud', 'permanent');
  } catch (error) {
    await run('ip', ['netns', 'del', namespace]).catch(() => undefined);
    await run('ip', ['link', 'del', host]).catch(() => undefined);
    throw error;
  }
  return {
    namespace,
    nodeAddress,
    hostAddress,
    cut: async () => {
      await inside('ip', 'link', 'set', peer, 'down');
    },
    heal: async () => {
      await inside('ip', 'link', 'set', peer, 'up');
    },
    remove: async () => {
      await run('ip', ['netns', 'del', namespace]).catch(() => undefined);
      await run('ip', ['link', 'del', host]).catch(() => undefined);
    },
  };
}

/**
 * Moves a running dev-cluster node into the namespace: it listens on the veth address (and takes
 * connections from the host's end), is stopped and started again inside the namespace as the same
 * OS user, on the same port. Returns its new URL.
 */
export async function moveIntoVeth(dev: DevCluster, clusterDir: string, name: string, veth: Veth): Promise<string> {
  const node = dev.dataNodes.find((n) => n.name === name);
  if (node === undefined) throw new Error(`no data node ${name}`);
  const client = new pg.Client({ connectionString: node.url });
  await client.connect();
  await client.query(`ALTER SYSTEM SET listen_addresses = '${veth.nodeAddress}'`);
  await client.end();
  const hba = join(node.dataDir, 'pg_hba.conf');
  const subnet = `${veth.hostAddress.replace(/\.1$/, '.0')}/24`;
  await run('sh', ['-c', `printf 'host all postgres ${subnet} trust\\nhost all all ${subnet} scram-sha-256\\n' | cat - '${hba}' > '${hba}.new' && cat '${hba}.new' > '${hba}' && rm '${hba}.new'`]);
  await stopDevNode(clusterDir, name, 'fast');
  const owner = await stat(node.dataDir);
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: join(node.dataDir, '..'), LC_ALL: 'C' };
  await run(
    'nsenter',
    [`--net=/run/netns/${veth.namespace}`, 'setpriv', `--reuid=${owner.uid}`, `--regid=${owner.gid}`, '--clear-groups', join(dev.postgres.binDir, 'pg_ctl'), 'start', '-D', node.dataDir, '-l', node.logFile, '-w', '-t', '60'],
    { env, cwd: join(node.dataDir, '..') },
  );
  const url = new URL(node.url);
  url.hostname = veth.nodeAddress;
  return url.toString();
}
