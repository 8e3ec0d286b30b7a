/** The spec file after failover and node rebuild: only the data node's lines change. */
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { recordTopology } from '../../src/ha/specFile.js';
import { compareLsn, withAddress } from '../../src/ha/failover.js';
import { synchronousStandbyNames } from '../../src/ha/members.js';

const SPEC = `version: 1
# the cluster
accessNode: { name: access, url: "postgres://postgres@a:5432/app" }
replication:
  role: { password: { env: REPL } }   # streaming role
dataNodes:
  - name: dn1
    url: postgres://postgres@10.0.0.1:5432/app   # primary
    fdw: { host: dn1a.internal, dbname: app }
    standbys:
      - name: s1     # first standby
        url: postgres://postgres@10.0.0.2:5432/app
        password: { env: S1 }
        fdw: { host: dn1b.internal, port: 6432 }
      - { name: s2, url: "postgres://postgres@10.0.0.3:5432/app" }
    replication: { synchronous: true }
  - name: dn2
    url: postgres://postgres@10.0.0.9/app
fdw: { serviceRole: { password: { env: SVC } } }
`;

async function specFile(text: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'hs-ha-spec-'));
  const file = join(dir, 'hypershard.yaml');
  await writeFile(file, text);
  return file;
}

describe('recordTopology', () => {
  it('promotes a standby: its address becomes the node\'s, the rest of the file stays byte for byte', async () => {
    const file = await specFile(SPEC);
    const result = await recordTopology(file, join(file, '..', 'migrations'), 'dn1', { kind: 'promote', standby: 's1' });
    expect(result.specWritten).toBe(true);
    const node = result.spec.dataNodes[0]!;
    expect(node.url).toBe('postgres://postgres@10.0.0.2:5432/app');
    expect(node.password).toEqual({ env: 'S1' });
    expect(node.fdw).toEqual({ host: 'dn1b.internal', port: 6432, dbname: 'app' });
    expect(node.standbys.map((s) => s.name)).toEqual(['s2']);
    const text = await readFile(file, 'utf8');
    expect(text).toContain('# the cluster\n');
    expect(text).toContain('role: { password: { env: REPL } }   # streaming role');
    expect(text).toContain('      - { name: s2, url: "postgres://postgres@10.0.0.3:5432/app" }\n    replication: { synchronous: true }');
    expect(text).not.toContain('10.0.0.1');
    // Twice: nothing more to write.
    expect((await recordTopology(file, join(file, '..', 'migrations'), 'dn1', { kind: 'promote', standby: 's1' })).specWritten).toBe(false);
  });

  it('promotes the last standby, leaving an empty list, and adds a rebuilt one back', async () => {
    const file = await specFile(SPEC);
    const dir = join(file, '..', 'migrations');
    await recordTopology(file, dir, 'dn1', { kind: 'promote', standby: 's1' });
    const r = await recordTopology(file, dir, 'dn1', { kind: 'promote', standby: 's2' });
    expect(r.spec.dataNodes[0]!.standbys).toEqual([]);
    expect(r.spec.dataNodes[0]!.url).toBe('postgres://postgres@10.0.0.3:5432/app');
    const added = await recordTopology(file, dir, 'dn1', { kind: 'add-standby', standby: { name: 'old', url: 'postgres://postgres@10.0.0.1:5432/app' } });
    expect(added.spec.dataNodes[0]!.standbys).toEqual([{ name: 'old', url: 'postgres://postgres@10.0.0.1:5432/app' }]);
    expect((await readFile(file, 'utf8')).split('\n').filter((l) => l.includes('dn2'))).toEqual(['  - name: dn2']);
  });
});

describe('failover helpers', () => {
  it('orders LSNs numerically, unknown first', () => {
    expect(compareLsn('0/A0000000', '0/9FFFFFFF')).toBe(1);
    expect(compareLsn('1/0', 'FF/0')).toBe(-1);
    expect(compareLsn(null, '0/0')).toBe(-1);
    expect(compareLsn('0/3000060', '0/3000060')).toBe(0);
  });

  it('repoints a conninfo at another host, keeping user, password file and application name', () => {
    expect(withAddress(`host=127.0.0.1 port=5433 user=hypershard_replication passfile='/tmp/a b/p' application_name=dn1_s2`, 'db2', '5434')).toBe(
      `host='db2' port='5434' user='hypershard_replication' passfile='/tmp/a b/p' application_name='dn1_s2'`,
    );
  });

  it('waits for any one standby, or for none when there is none or replication is asynchronous', () => {
    const s = (name: string) => ({ name, slot: `hypershard_${name}`, applicationName: name });
    expect(synchronousStandbyNames(true, [s('a'), s('b"c')])).toBe('ANY 1 ("a", "b""c")');
    expect(synchronousStandbyNames(true, [])).toBe('');
    expect(synchronousStandbyNames(false, [s('a')])).toBe('');
  });
});
