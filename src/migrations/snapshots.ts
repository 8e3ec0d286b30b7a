/**
 * What each generate produced migrations from: `migrations/.hypershard/<NNNN>.json` holds the
 * spec of step NNNN, as drizzle-kit and Atlas keep snapshots. The next generate diffs the last
 * snapshot with the spec to write only the change. Snapshots hold no secrets (only references).
 */
import { mkdir, readdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { MigrationStateError } from '../errors.js';
import { clusterSpec, type ClusterSpec } from '../spec/schema.js';

export const SNAPSHOT_DIR = '.hypershard';

export interface Snapshot {
  readonly step: number;
  readonly spec: ClusterSpec;
}

export async function readSnapshots(root: string): Promise<Snapshot[]> {
  const dir = join(root, SNAPSHOT_DIR);
  const names = (await readdir(dir).catch(() => [] as string[])).filter((n) => /^\d{4}\.json$/.test(n)).sort();
  const snapshots: Snapshot[] = [];
  for (const name of names) {
    const parsed = clusterSpec.safeParse(upgradeSnapshot(JSON.parse(await readFile(join(dir, name), 'utf8'))));
    if (!parsed.success) throw new MigrationStateError(`snapshot ${join(dir, name)} is not a valid spec; it was edited or comes from another version`);
    snapshots.push({ step: Number(name.slice(0, 4)), spec: parsed.data });
  }
  snapshots.forEach((s, i) => {
    if (s.step !== i + 1) throw new MigrationStateError(`snapshots in ${dir} skip step ${i + 1}`);
  });
  return snapshots;
}

/**
 * A snapshot written before a field with a default existed describes what was generated then:
 * without the field's effect, not with today's default (which the next generate then adds).
 */
function upgradeSnapshot(raw: unknown): unknown {
  if (raw === null || typeof raw !== 'object') return raw;
  let upgraded = raw as Record<string, unknown>;
  // Snapshots from before hypershard created TimescaleDB's functions lack the key; their
  // migrations have none, so the next generate writes one that adds them.
  if (!('timescaledb' in upgraded)) upgraded = { ...upgraded, timescaledb: { functions: false } };
  const fdw = upgraded.fdw;
  // FDW servers got timeout options (connect_timeout, keepalives, tcp_user_timeout) with fdw.timeouts.
  if (fdw !== null && typeof fdw === 'object' && !('timeouts' in fdw)) upgraded = { ...upgraded, fdw: { ...fdw, timeouts: false } };
  return upgraded;
}

export async function writeSnapshot(root: string, step: number, spec: ClusterSpec): Promise<string> {
  const dir = join(root, SNAPSHOT_DIR);
  await mkdir(dir, { recursive: true });
  const path = join(dir, `${String(step).padStart(4, '0')}.json`);
  await writeFile(`${path}.tmp`, `${JSON.stringify(spec, null, 2)}\n`);
  await rename(`${path}.tmp`, path);
  return path;
}
