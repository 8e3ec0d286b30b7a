/** Specs for test clusters: the example spec (or a given one) with secrets in files. */
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { exampleSpecYaml } from '../../src/spec/example.js';
import type { TestCluster, TestNode } from './clusters.js';

export const SECRETS = {
  service: '.secrets/service',
  reader: '.secrets/reader',
} as const;

/** Writes the secret files and returns their values. */
export async function writeSecrets(dir: string): Promise<{ service: string; reader: string }> {
  await mkdir(join(dir, '.secrets'), { recursive: true });
  const service = randomBytes(12).toString('base64url');
  const reader = `r'\\${randomBytes(6).toString('hex')}"`; // quotes and a backslash: literal paths must cope
  await writeFile(join(dir, SECRETS.service), `${service}\n`, { mode: 0o600 });
  await writeFile(join(dir, SECRETS.reader), `${reader}\n`, { mode: 0o600 });
  return { service, reader };
}

/** The node as a spec entry: containers need a password and a different FDW address. */
export function specNode(node: TestNode, database?: string): { name: string; url: string; password?: { env: string }; fdw?: { host: string; port: number } } {
  const url = new URL(node.url);
  if (database !== undefined) url.pathname = `/${database}`;
  const isContainer = node.fdw !== undefined;
  return {
    name: node.name,
    url: url.toString(),
    ...(isContainer ? { password: { env: 'HYPERSHARD_TEST_CONTAINER_PASSWORD' }, fdw: node.fdw } : {}),
  };
}

export async function writeExampleSpec(cluster: TestCluster, dir: string, options: { database?: string; shards?: number } = {}): Promise<string> {
  await mkdir(dir, { recursive: true });
  const file = join(dir, 'hypershard.yaml');
  await writeFile(
    file,
    exampleSpecYaml({
      accessNode: specNode(cluster.accessNode, options.database),
      dataNodes: cluster.dataNodes.map((n) => specNode(n, options.database)),
      servicePassword: { file: SECRETS.service },
      readerPassword: { file: SECRETS.reader },
      shards: options.shards ?? 4,
      chunksBehind: 3,
    }),
  );
  return file;
}
