/**
 * The spec of a dev cluster: `dev up` writes `<dir>/hypershard.yaml` with the example hypertable,
 * and the generated passwords as secret files in `<dir>/.secrets/` (mode 0600) that the spec
 * references, so no secret is ever written into the spec itself.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { exampleSpecYaml } from '../spec/example.js';
import type { DevCluster } from './cluster.js';

export const DEV_SPEC_FILE = 'hypershard.yaml';
const SECRETS_DIR = '.secrets';

export interface DevSpecOptions {
  readonly shards?: number;
  readonly chunksBehind?: number;
}

export async function writeDevSpec(cluster: DevCluster, options: DevSpecOptions = {}): Promise<string> {
  const secrets = join(cluster.dir, SECRETS_DIR);
  await mkdir(secrets, { recursive: true, mode: 0o700 });
  const secretFile = async (name: string): Promise<{ file: string }> => {
    await writeFile(join(secrets, name), `${randomBytes(18).toString('base64url')}\n`, { mode: 0o600 });
    return { file: `${SECRETS_DIR}/${name}` };
  };
  await writeFile(join(cluster.dir, '.gitignore'), `${SECRETS_DIR}/\n`);
  const yaml = exampleSpecYaml({
    header: [
      `Dev cluster written by \`hypershard dev up\`: PostgreSQL ${cluster.postgres.version} (${cluster.postgres.source}),`,
      `1 access node and ${cluster.dataNodes.length} data node${cluster.dataNodes.length === 1 ? '' : 's'} on loopback.`,
    ],
    accessNode: { name: cluster.accessNode.name, url: cluster.accessNode.url },
    dataNodes: cluster.dataNodes.map((n) => ({ name: n.name, url: n.url, standbys: n.standbys.map((s) => ({ name: s.name, url: s.url })) })),
    ...(cluster.replication === null ? {} : { replicationPassword: { file: cluster.replication.passwordFile } }),
    servicePassword: await secretFile('fdw-service-password'),
    readerPassword: await secretFile('metrics-reader-password'),
    ...(options.shards === undefined ? {} : { shards: options.shards }),
    ...(options.chunksBehind === undefined ? {} : { chunksBehind: options.chunksBehind }),
  });
  const path = join(cluster.dir, DEV_SPEC_FILE);
  await writeFile(path, yaml);
  return path;
}
