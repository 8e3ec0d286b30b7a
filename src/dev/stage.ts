/**
 * As root, PostgreSQL runs as an unprivileged OS user (see osUser.ts) that must reach its binaries.
 * The embedded ones live in node_modules, so a clone under root's home (mode 700 on Debian) hides
 * them. They are then staged: the package's self-contained tree (bin, lib, share) is hard-linked,
 * or copied across file systems, into a folder of the temp dir that user can reach, owned by root
 * and writable by no one else, and reused by later runs.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { DevClusterError, errorMessage } from '../errors.js';
import type { PostgresBinaries } from './binaries.js';
import { unreachableAncestor, type ServerUser } from './osUser.js';

const COMPLETE = '.hypershard-staged';

/** The same binaries from a folder `user` can reach. */
export async function stageBinaries(bins: PostgresBinaries, user: ServerUser): Promise<PostgresBinaries> {
  const tree = path.dirname(bins.binDir); // native/: bin, lib, share
  const postgres = await fs.stat(bins.postgres);
  const key = createHash('sha256').update(`${tree}\0${postgres.size}\0${postgres.mtimeMs}`).digest('hex').slice(0, 12);
  const target = path.join(os.tmpdir(), `hypershard-postgres-${bins.version}-${key}`);
  const staged = (await trusted(target)) ? target : await copyTree(tree, target);
  const problem = await unreachableAncestor(user, path.join(staged, 'bin', 'postgres'));
  if (problem !== undefined) throw new DevClusterError(`the PostgreSQL binaries were staged in ${staged}, but ${problem}; set TMPDIR to a folder it can reach`);
  const binDir = path.join(staged, 'bin');
  return { ...bins, binDir, initdb: path.join(binDir, 'initdb'), pgCtl: path.join(binDir, 'pg_ctl'), postgres: path.join(binDir, 'postgres') };
}

/** A complete staging folder that only we can have written: ours, a directory, writable by no one else. */
async function trusted(dir: string): Promise<boolean> {
  try {
    const st = await fs.lstat(dir);
    if (!st.isDirectory() || st.uid !== process.getuid?.() || (st.mode & 0o022) !== 0) return false;
    await fs.access(path.join(dir, COMPLETE));
    return true;
  } catch {
    return false;
  }
}

/**
 * Copies `tree` to `target` through a partial folder renamed into place, so a concurrent or
 * interrupted run never sees half a tree. When `target` is taken by something not to be trusted,
 * the copy stays in its own fresh folder.
 */
async function copyTree(tree: string, target: string): Promise<string> {
  const partial = await fs.mkdtemp(`${target}.partial-`);
  try {
    await copyInto(tree, partial);
    await fs.writeFile(path.join(partial, COMPLETE), `staged from ${tree}\n`);
    await fs.chmod(partial, 0o755);
  } catch (error) {
    await fs.rm(partial, { recursive: true, force: true });
    throw new DevClusterError(`cannot stage the PostgreSQL binaries from ${tree} into ${partial}: ${errorMessage(error)}`, { cause: error });
  }
  try {
    await fs.rename(partial, target);
    return target;
  } catch {
    // Another run staged it first (then it is trusted), or the name is taken: keep ours.
    if (await trusted(target)) {
      await fs.rm(partial, { recursive: true, force: true });
      return target;
    }
    return partial;
  }
}

async function copyInto(from: string, to: string): Promise<void> {
  for (const entry of await fs.readdir(from, { withFileTypes: true })) {
    const source = path.join(from, entry.name);
    const destination = path.join(to, entry.name);
    if (entry.isSymbolicLink()) {
      await fs.symlink(await fs.readlink(source), destination);
    } else if (entry.isDirectory()) {
      await fs.mkdir(destination, { mode: 0o755 });
      await copyInto(source, destination);
    } else if (entry.isFile()) {
      const mode = (await fs.stat(source)).mode & 0o777;
      // Readable by everyone, executable by everyone where the owner may execute it.
      const wanted = (mode | 0o444 | (mode & 0o100 ? 0o111 : 0)) & 0o755;
      const linked = mode === wanted && (await fs.link(source, destination).then(() => true, () => false));
      if (!linked) {
        await fs.copyFile(source, destination);
        await fs.chmod(destination, wanted);
      }
    }
  }
}
