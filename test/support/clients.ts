/**
 * Real PostgreSQL clients other than node-postgres, installed where the machine allows: Python's
 * psycopg 3, psycopg2 and asyncpg in a virtualenv (from the wheels on the machine, or the package
 * index pip is configured with), and the PostgreSQL JDBC driver (Debian's libpostgresql-jdbc-java).
 * What cannot be installed is skipped with the reason.
 */
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from './gateway.js';

const VENV = join(process.cwd(), 'node_modules', '.cache', 'hypershard-test-venv');
const WHEEL_DIRS = ['/opt/pypi/files', '/opt/wheels'];
const PACKAGES = ['psycopg', 'psycopg-binary', 'psycopg2-binary', 'asyncpg'];
export const JDBC_JAR = '/usr/share/java/postgresql.jar';

let python: Promise<{ python: string } | { skip: string }> | undefined;

/** A Python with psycopg 3, psycopg2 and asyncpg, or why there is none. */
export function pythonDrivers(): Promise<{ python: string } | { skip: string }> {
  python ??= (async () => {
    const bin = join(VENV, 'bin', 'python');
    const check = async (): Promise<boolean> => (await run(bin, ['-c', 'import psycopg, psycopg2, asyncpg'], { timeoutMs: 30_000 }).catch(() => ({ code: 1 }))).code === 0;
    if (existsSync(bin) && (await check())) return { python: bin };
    await mkdir(join(VENV, '..'), { recursive: true });
    const venv = await run('python3', ['-m', 'venv', VENV], { timeoutMs: 120_000 }).catch((e: Error) => ({ code: 1, stdout: '', stderr: e.message }));
    if (venv.code !== 0) return { skip: `python3 -m venv failed: ${venv.stderr.trim().split('\n').at(-1) ?? ''}` };
    // The machine's wheels first, without asking an index it cannot reach; else pip's own configuration.
    const local = WHEEL_DIRS.flatMap((d) => (existsSync(d) ? ['--find-links', d] : []));
    const attempts = local.length > 0 ? [['--no-index', ...local], []] : [[]];
    let last = '';
    for (const extra of attempts) {
      const pip = await run(join(VENV, 'bin', 'pip'), ['install', '-q', '--disable-pip-version-check', ...extra, ...PACKAGES], { timeoutMs: 300_000 });
      if (pip.code === 0 && (await check())) return { python: bin };
      last = pip.stderr.trim().split('\n').at(-1) ?? '';
    }
    return { skip: `cannot install ${PACKAGES.join(', ')} into a virtualenv: ${last}` };
  })();
  return python;
}

/** Java with the PostgreSQL JDBC driver, or why there is none. */
export async function jdbcDriver(): Promise<{ java: string; jar: string } | { skip: string }> {
  if (!existsSync(JDBC_JAR)) return { skip: `no JDBC driver at ${JDBC_JAR} (apt-get install libpostgresql-jdbc-java)` };
  const version = await run('java', ['-version'], { timeoutMs: 30_000 }).catch(() => ({ code: 1 }));
  if (version.code !== 0) return { skip: 'no java on the PATH' };
  return { java: 'java', jar: JDBC_JAR };
}
