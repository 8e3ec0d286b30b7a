/**
 * Grants that a later migration must make exactly as a first one would: after each spec change
 * (a role with its first grant on a table in `public`, a hypertable in a new schema granted to it,
 * grants taken away, the role dropped), generate + apply leave nothing `check` reports. A grant
 * that only the first migration made (USAGE on the table's schema) used to leave drift `apply`
 * never repaired.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseDocument, type Document } from 'yaml';
import { check } from '../../src/drift/check.js';
import { generateMigrations } from '../../src/migrations/files.js';
import { apply } from '../../src/nodes/apply.js';
import { loadSpec } from '../../src/spec/load.js';
import { clusterSources, type TestCluster } from '../support/clusters.js';
import { writeExampleSpec, writeSecrets } from '../support/spec.js';

const sources = await Promise.all(
  clusterSources()
    .filter((s) => !s.label.includes('testcontainers'))
    .map(async (s) => ({ source: s, skip: await s.unavailable() })),
);

describe.each(sources)('$source.label', ({ source, skip }) => {
  let cluster: TestCluster | undefined;
  let specFile: string;

  beforeAll(async () => {
    if (skip !== undefined) return;
    cluster = await source.start(2);
    const dir = join(cluster.workDir, 'grants');
    specFile = await writeExampleSpec(cluster, dir);
    await writeSecrets(dir);
    const { spec, file } = await loadSpec(specFile);
    await generateMigrations(spec, file);
    expect((await apply(spec, file)).ok).toBe(true);
  });
  afterAll(async () => {
    await cluster?.stop();
  });

  /** Edits the spec, generates, applies, and returns what check still finds. */
  const change = async (edit: (doc: Document) => void): Promise<string[]> => {
    const doc = parseDocument(await readFile(specFile, 'utf8'));
    edit(doc);
    await writeFile(specFile, doc.toString());
    const { spec, file } = await loadSpec(specFile);
    await generateMigrations(spec, file, { allowDestructive: true });
    const applied = await apply(spec, file);
    expect(applied.nodes.filter((n) => n.status === 'failed').map((n) => `${n.node}: ${n.error?.message ?? ''} (${n.error?.statement ?? ''})`)).toEqual([]);
    const result = await check(spec, file);
    return result.nodes.flatMap((n) => [...(n.error === undefined ? [] : [`${n.node}: ${n.error}`]), ...n.items.filter((i) => i.kind !== 'warning').map((i) => `${n.node}: ${i.message}`)]);
  };

  it.skipIf(skip !== undefined)('a role added with a grant on a table in public: check is clean after apply', async () => {
    const drift = await change((doc) => doc.addIn(['roles'], doc.createNode({ name: 'auditor', grants: [{ on: 'metrics', privileges: ['SELECT'] }] })));
    expect(drift).toEqual([]);
  });

  it.skipIf(skip !== undefined)('a hypertable in a new schema, granted to that role: clean', async () => {
    const drift = await change((doc) => {
      doc.addIn(['hypertables'], doc.createNode({
        name: 'events',
        schema: 'iot',
        columns: [{ name: 'time', type: 'timestamptz', notNull: true }, { name: 'device_id', type: 'integer', notNull: true }],
        timeColumn: 'time',
        spaceColumn: 'device_id',
        shards: 2,
      }));
      doc.addIn(['roles', 2, 'grants'], doc.createNode({ on: 'events', privileges: ['SELECT', 'INSERT'] }));
    });
    expect(drift).toEqual([]);
  });

  it.skipIf(skip !== undefined)('the grant on public.metrics taken away (USAGE on public goes with it): clean', async () => {
    const drift = await change((doc) => doc.deleteIn(['roles', 2, 'grants', 0]));
    expect(drift).toEqual([]);
  });

  it.skipIf(skip !== undefined)('the role dropped while it still holds grants: apply drops it, clean', async () => {
    const drift = await change((doc) => doc.deleteIn(['roles', 2]));
    expect(drift).toEqual([]);
  });
});
