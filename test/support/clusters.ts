/**
 * Real PostgreSQL clusters for integration tests, from three sources: embedded PostgreSQL 18
 * (npm), the machine's PostgreSQL 15 (Debian), and testcontainers where a Docker engine is
 * reachable. The same suites run on each; an unavailable source is skipped with the reason.
 */
import { existsSync } from 'node:fs';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDevCluster, stopDevCluster } from '../../src/dev/cluster.js';

export interface TestNode {
  readonly name: string;
  /** How the test (and the CLI) reaches the node. */
  readonly url: string;
  /** How the access node reaches it, when that differs (container networks). */
  readonly fdw?: { readonly host: string; readonly port: number };
}

export interface TestCluster {
  readonly label: string;
  readonly major: number;
  readonly accessNode: TestNode;
  readonly dataNodes: readonly TestNode[];
  /** A folder for spec, secrets and migrations, removed by stop(). */
  readonly workDir: string;
  stop(): Promise<void>;
}

export interface ClusterSource {
  readonly label: string;
  /** undefined when available, else why not. */
  unavailable(): Promise<string | undefined>;
  /** `settings`: extra postgresql.conf settings (dev clusters; containers ignore them). */
  start(dataNodes: number, settings?: Readonly<Record<string, string>>): Promise<TestCluster>;
}

const SYSTEM_PG = process.env.HYPERSHARD_TEST_SYSTEM_BIN ?? '/usr/lib/postgresql/15/bin';

function devSource(label: string, postgres: { kind: 'embedded' } | { kind: 'system'; binDir: string }): ClusterSource {
  return {
    label,
    unavailable: async () => {
      const missing =
        postgres.kind === 'system' && !existsSync(join(postgres.binDir, 'postgres'))
          ? `no PostgreSQL at ${postgres.binDir} (apt-get install postgresql-15, or set HYPERSHARD_TEST_SYSTEM_BIN)`
          : undefined;
      // In CI a PostgreSQL the suite runs on must be there: a missing one fails, it does not skip.
      if (missing !== undefined && process.env.CI === 'true') throw new Error(`CI=true and ${label} is missing: ${missing}`);
      return missing;
    },
    start: async (dataNodes, settings) => {
      const workDir = await mkdtemp(join(tmpdir(), 'hs-test-'));
      // mkdtemp makes it 0700; as root, the servers run as an unprivileged user that must enter it.
      await chmod(workDir, 0o755);
      const clusterDir = join(workDir, 'cluster');
      const cluster = await startDevCluster({ dir: clusterDir, dataNodes, postgres, ...(settings === undefined ? {} : { settings }) });
      return {
        label,
        major: cluster.postgres.version,
        accessNode: { name: cluster.accessNode.name, url: cluster.accessNode.url },
        dataNodes: cluster.dataNodes.map((n) => ({ name: n.name, url: n.url })),
        workDir,
        stop: async () => {
          await stopDevCluster(clusterDir);
          await rm(workDir, { recursive: true, force: true });
        },
      };
    },
  };
}

const containerSource: ClusterSource = {
  label: 'testcontainers PostgreSQL 18',
  unavailable: async () => {
    let testcontainers: typeof import('testcontainers');
    try {
      testcontainers = await import('testcontainers');
    } catch (error) {
      return `testcontainers is not installed (a devDependency: npm ci installs it): ${error instanceof Error ? error.message.split('\n')[0] : String(error)}`;
    }
    try {
      await testcontainers.getContainerRuntimeClient();
      return undefined;
    } catch (error) {
      return `no Docker engine reachable (${error instanceof Error ? error.message.split('\n')[0] : String(error)}); the testcontainers run needs one`;
    }
  },
  start: async (dataNodes) => {
    const { Network } = await import('testcontainers');
    const { PostgreSqlContainer } = await import('@testcontainers/postgresql');
    const network = await new Network().start();
    const names = ['access', ...Array.from({ length: dataNodes }, (_, i) => `dn${i + 1}`)];
    const containers = await Promise.all(
      names.map((name) =>
        new PostgreSqlContainer('postgres:18')
          .withNetwork(network)
          .withNetworkAliases(name)
          .withUsername('postgres')
          .withPassword('postgres')
          .withDatabase('postgres')
          .start(),
      ),
    );
    const workDir = await mkdtemp(join(tmpdir(), 'hs-test-'));
    const node = (i: number): TestNode => {
      const c = containers[i]!;
      // The CLI reaches mapped ports on the host; the access node reaches data nodes by alias.
      return { name: names[i]!, url: `postgres://postgres@${c.getHost()}:${c.getPort()}/postgres`, fdw: { host: names[i]!, port: 5432 } };
    };
    process.env.HYPERSHARD_TEST_CONTAINER_PASSWORD = 'postgres';
    return {
      label: 'testcontainers PostgreSQL 18',
      major: 18,
      accessNode: node(0),
      dataNodes: names.slice(1).map((_, i) => node(i + 1)),
      workDir,
      stop: async () => {
        await Promise.all(containers.map((c) => c.stop()));
        await network.stop();
        await rm(workDir, { recursive: true, force: true });
      },
    };
  },
};

/** Sources selected with HYPERSHARD_TEST_SOURCES (comma list of embedded, system, containers); default all. */
export function clusterSources(): ClusterSource[] {
  const all: Record<string, ClusterSource> = {
    embedded: devSource('embedded PostgreSQL 18', { kind: 'embedded' }),
    system: devSource('system PostgreSQL 15', { kind: 'system', binDir: SYSTEM_PG }),
    containers: containerSource,
  };
  const wanted = (process.env.HYPERSHARD_TEST_SOURCES ?? 'embedded,system,containers').split(',').map((s) => s.trim());
  return wanted.map((w) => {
    const source = all[w];
    if (source === undefined) throw new Error(`HYPERSHARD_TEST_SOURCES: unknown source ${w}`);
    return source;
  });
}
