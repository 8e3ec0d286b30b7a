/**
 * A throwaway dev cluster for one benchmark run: started in a fresh temporary folder and always
 * stopped and removed afterwards, on success, on error and on Ctrl-C / SIGTERM, so no PostgreSQL
 * server outlives the benchmark.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startDevCluster, stopDevCluster, type DevCluster } from '../../src/dev/cluster.js';
import type { PostgresSource } from '../../src/dev/binaries.js';

export const SYSTEM_BIN_DIR = '/usr/lib/postgresql/15/bin';

export interface BenchClusterOptions {
  readonly dataNodes: number;
  readonly postgres?: PostgresSource;
  /** Streaming standbys per data node (`<node>_s1..`). @default 0 */
  readonly standbys?: number;
  /** Extra postgresql.conf settings for every node. */
  readonly settings?: Readonly<Record<string, string>>;
  /** Exit the process after stopping on SIGINT/SIGTERM (scripts); tests leave signals alone. */
  readonly handleSignals?: boolean;
  readonly onStep?: (message: string) => void;
}

export async function withBenchCluster<T>(options: BenchClusterOptions, fn: (cluster: DevCluster, workDir: string) => Promise<T>): Promise<T> {
  // mkdtemp makes a 0700 folder; as root the servers run as another OS user, so open it up.
  const workDir = await fs.mkdtemp(path.join(os.tmpdir(), 'hypershard-bench-'));
  await fs.chmod(workDir, 0o755);
  const clusterDir = path.join(workDir, 'cluster');

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      options.onStep?.('stopping the cluster');
      const failed = (await stopDevCluster(clusterDir)).filter((r) => r.status === 'failed');
      if (failed.length > 0) {
        // Keep the folder: `hypershard dev down --dir` can retry from its cluster.json.
        process.stderr.write(`could not stop the dev cluster in ${clusterDir} (kept for \`dev down\`): ${failed.map((f) => `${f.node}: ${f.error ?? ''}`).join('; ')}\n`);
        return;
      }
      await fs.rm(workDir, { recursive: true, force: true });
    })());
  const onSignal = (sig: NodeJS.Signals): void => {
    process.stderr.write(`\n${sig}: stopping the dev cluster in ${clusterDir}\n`);
    void stop().finally(() => process.exit(130));
  };
  if (options.handleSignals === true) {
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
  }
  try {
    options.onStep?.(`starting an access node and ${options.dataNodes} data node${options.dataNodes === 1 ? '' : 's'}`);
    const cluster = await startDevCluster({
      dir: clusterDir,
      dataNodes: options.dataNodes,
      postgres: options.postgres ?? { kind: 'embedded' },
      ...(options.standbys === undefined ? {} : { standbys: options.standbys }),
      ...(options.settings === undefined ? {} : { settings: options.settings }),
    });
    return await fn(cluster, workDir);
  } finally {
    await stop();
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
  }
}
