/**
 * PostgreSQL refuses to run as root. When the toolkit itself runs as root (containers, CI), the
 * dev cluster's server processes run as an unprivileged OS user chosen here.
 */
import { execFile } from 'node:child_process';
import type { Stats } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { DevClusterError, errorMessage } from '../errors.js';

const execFileAsync = promisify(execFile);

export interface ServerUser {
  readonly uid: number;
  readonly gid: number;
  readonly name: string;
}

/** Prefer the distribution's own `postgres` account; create ours only on machines without one. */
const PREFERRED_USER = 'postgres';
const CREATED_USER = 'hypershard';

/** The OS user to run PostgreSQL as, or undefined when not root (then the current user runs it). */
export async function resolveServerUser(): Promise<ServerUser | undefined> {
  if (process.getuid?.() !== 0) return undefined;
  const existing = (await lookupUser(PREFERRED_USER)) ?? (await lookupUser(CREATED_USER));
  if (existing !== undefined) return existing;
  try {
    await execFileAsync('useradd', ['--system', '--no-create-home', '--shell', '/usr/sbin/nologin', CREATED_USER], {
      timeout: 30_000,
    });
  } catch (error) {
    // A concurrent run may have created it in the meantime; only fail if it still does not exist.
    const raced = await lookupUser(CREATED_USER);
    if (raced !== undefined) return raced;
    throw new DevClusterError(
      `running as root, and PostgreSQL refuses to run as root; no '${PREFERRED_USER}' OS user exists and ` +
        `creating '${CREATED_USER}' with useradd failed: ${errorMessage(error)}. ` +
        `Create an unprivileged user named ${PREFERRED_USER} or ${CREATED_USER}, or run as a non-root user.`,
      { cause: error },
    );
  }
  const created = await lookupUser(CREATED_USER);
  if (created === undefined) throw new DevClusterError(`useradd reported success but user '${CREATED_USER}' cannot be found`);
  return created;
}

/** Uses getent so NSS sources (LDAP, sssd) count, falling back to /etc/passwd where getent is missing. */
async function lookupUser(name: string): Promise<ServerUser | undefined> {
  let line: string | undefined;
  try {
    line = (await execFileAsync('getent', ['passwd', name], { timeout: 10_000 })).stdout.split('\n')[0];
  } catch (error) {
    // getent exits 2 for "not found"; anything else (ENOENT) means fall back.
    if ((error as { code?: unknown }).code === 2) return undefined;
    try {
      line = (await fs.readFile('/etc/passwd', 'utf8')).split('\n').find((l) => l.startsWith(`${name}:`));
    } catch {
      return undefined;
    }
  }
  const fields = line?.split(':');
  if (fields === undefined || fields[0] !== name) return undefined;
  const uid = Number(fields[2]);
  const gid = Number(fields[3]);
  if (!Number.isInteger(uid) || !Number.isInteger(gid)) return undefined;
  return { uid, gid, name };
}

/**
 * Checks that `user` can reach `target` (every ancestor searchable) and has `need` permission on it.
 * Spawned processes drop supplementary groups, so only the primary group is considered.
 */
export async function assertAccessible(user: ServerUser, target: string, need: 'rx' | 'x', what: string): Promise<void> {
  const abs = path.resolve(target);
  for (const dir of ancestors(abs)) {
    const st = await statOrThrow(dir, what);
    if (!allows(st, user, 0o1)) throw notAccessible(user, abs, what, dir, st, 'not traversable');
  }
  const st = await statOrThrow(abs, what);
  if (!allows(st, user, need === 'rx' ? 0o5 : 0o1)) {
    throw notAccessible(user, abs, what, abs, st, need === 'rx' ? 'not readable and executable' : 'not traversable');
  }
}

/** The first ancestor of `target` that `user` cannot traverse, as words, or undefined when every one can be. */
export async function unreachableAncestor(user: ServerUser, target: string): Promise<string | undefined> {
  for (const dir of ancestors(path.resolve(target))) {
    let st: Stats;
    try {
      st = await fs.stat(dir);
    } catch {
      return undefined; // created later, by us
    }
    if (!allows(st, user, 0o1)) return `${dir} (mode ${(st.mode & 0o7777).toString(8).padStart(3, '0')}, owner ${st.uid}) is not traversable by OS user ${user.name}`;
  }
  return undefined;
}

/**
 * Makes the cluster directory itself searchable by `user` (mkdtemp creates 0700 dirs) by adding
 * only the other-execute bit; its ancestors are the caller's business and are merely checked.
 */
export async function ensureTraversable(user: ServerUser, dir: string): Promise<void> {
  const abs = path.resolve(dir);
  const st = await statOrThrow(abs, 'cluster directory');
  if (!allows(st, user, 0o1)) await fs.chmod(abs, (st.mode & 0o7777) | 0o001);
  await assertAccessible(user, abs, 'x', 'cluster directory');
}

function ancestors(abs: string): string[] {
  const out: string[] = [];
  for (let dir = path.dirname(abs); ; dir = path.dirname(dir)) {
    out.unshift(dir);
    if (dir === path.dirname(dir)) return out;
  }
}

function allows(st: Stats, user: ServerUser, bits: number): boolean {
  if (user.uid === 0) return true;
  // Like the kernel: the owner class applies exclusively to the owner, the group class to the group.
  const shift = st.uid === user.uid ? 6 : st.gid === user.gid ? 3 : 0;
  return ((st.mode >> shift) & bits) === bits;
}

async function statOrThrow(p: string, what: string): Promise<Stats> {
  try {
    return await fs.stat(p);
  } catch (error) {
    throw new DevClusterError(`${what} ${p}: ${errorMessage(error)}`, { cause: error });
  }
}

function notAccessible(user: ServerUser, target: string, what: string, culprit: string, st: Stats, problem: string): DevClusterError {
  const mode = (st.mode & 0o7777).toString(8).padStart(3, '0');
  return new DevClusterError(
    `${what} ${target} is not accessible to OS user ${user.name} (uid ${user.uid}), which runs PostgreSQL ` +
      `because PostgreSQL refuses to run as root: ${culprit} is ${problem} for it ` +
      `(mode ${mode}, owner ${st.uid}:${st.gid}). Grant access (e.g. chmod o+x on the directory) or move the files elsewhere.`,
  );
}
