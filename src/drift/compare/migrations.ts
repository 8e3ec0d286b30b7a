/**
 * A node's migration history against the migrations folder: files edited after they were applied
 * (their checksum, recorded by apply, differs), migrations not applied yet, migrations applied
 * that are not on disk, and changes to the spec that no migration holds yet.
 */
import { finding, type Finding } from '../model.js';

export interface MigrationOnDisk {
  readonly name: string;
  readonly checksum: string;
}

export interface MigrationState {
  readonly applied: readonly string[];
  /** Checksums apply recorded, by migration name. */
  readonly recorded: ReadonlyMap<string, string>;
  /** This node's files, in name order. */
  readonly files: readonly MigrationOnDisk[];
  /** Why the spec needs a migration for this node that `generate` has not written yet. */
  readonly notGenerated: string | undefined;
}

export function compareMigrations(state: MigrationState): Finding[] {
  const out: Finding[] = [];
  const onDisk = new Map(state.files.map((f) => [f.name, f]));
  for (const name of state.applied) {
    const file = onDisk.get(name);
    const object = `migration ${name}`;
    if (file === undefined) {
      out.push(finding('extra', object, `${name} was applied but is not in the migrations folder`));
      continue;
    }
    const recorded = state.recorded.get(name);
    if (recorded !== undefined && recorded !== file.checksum) {
      out.push(finding('different', object, `${name} was edited after it was applied: the node ran another version of it`, {
        expected: `sha256 ${recorded.slice(0, 12)} (applied)`,
        actual: `sha256 ${file.checksum.slice(0, 12)} (on disk)`,
      }));
    }
  }
  const applied = new Set(state.applied);
  for (const file of state.files.filter((f) => !applied.has(f.name))) {
    out.push(finding('missing', `migration ${file.name}`, `${file.name} is not applied yet (run apply)`));
  }
  if (state.notGenerated !== undefined) out.push(finding('missing', 'migration (not generated)', state.notGenerated));
  return out;
}
