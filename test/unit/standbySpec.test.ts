/** Standbys and replication in the spec: validation, the FDW host lists, the replication role's migration. */
import { describe, expect, it } from 'vitest';
import { SpecError } from '../../src/errors.js';
import { evolve } from '../../src/evolve/diff.js';
import { planLayout } from '../../src/plan/layout.js';
import { parseSpec } from '../../src/spec/load.js';
import { validateSpec } from '../../src/spec/validate.js';
import { dataNodeSteps } from '../../src/sql/dataNode.js';

const base = (dataNodes: unknown[], extra: Record<string, unknown> = {}) => ({
  version: 1,
  accessNode: { name: 'access', url: 'postgres://postgres@access.internal/app' },
  dataNodes,
  fdw: { serviceRole: { password: { env: 'SVC' } } },
  replication: { role: { password: { env: 'REPL' } } },
  hypertables: [
    {
      name: 'm',
      columns: [
        { name: 't', type: 'timestamptz', notNull: true },
        { name: 'k', type: 'int', notNull: true },
      ],
      timeColumn: 't',
      spaceColumn: 'k',
      shards: 2,
    },
  ],
  ...extra,
});

const dn1 = {
  name: 'dn1',
  url: 'postgres://postgres@10.0.0.11:5432/app',
  fdw: { host: 'dn1a.internal' },
  standbys: [
    { name: 'dn1b', url: 'postgres://postgres@10.0.0.21:5432/app', fdw: { host: 'dn1b.internal', port: 6432 } },
    { name: 'dn1c', url: 'postgres://postgres@10.0.0.31:5433/app' },
  ],
  replication: { synchronous: true, maxLagSeconds: 10 },
};
const dn2 = { name: 'dn2', url: 'postgres://postgres@10.0.0.12/app' };

function issues(input: unknown): string[] {
  try {
    validateSpec(input);
  } catch (error) {
    expect(error).toBeInstanceOf(SpecError);
    return (error as SpecError).issues.map((i) => `${i.path}: ${i.message}`);
  }
  return [];
}

describe('standbys in the spec', () => {
  it('fills in the replication defaults', () => {
    const spec = validateSpec(base([dn1, dn2]));
    expect(spec.dataNodes[0]!.replication).toEqual({ synchronous: true, maxLagBytes: 16 * 1024 * 1024, maxLagSeconds: 10, manager: 'hypershard' });
    expect(spec.dataNodes[1]!.standbys).toEqual([]);
    expect(spec.replication?.role.name).toBe('hypershard_replication');
  });

  it('reports every problem with its path', () => {
    const bad = base([
      {
        ...dn1,
        standbys: [
          { name: 'dn2', url: 'postgres://postgres@10.0.0.11:5432/app' },
          { name: 'DN1-b', url: 'postgres://postgres@10.0.0.40/other' },
          { name: 'dn1_b', url: 'postgres://postgres:secret@10.0.0.41/app' },
          { name: 'x', url: 'postgres://postgres@10.0.0.42/app', fdw: { host: 'h' }, extra: 1 },
        ],
        replication: { synchronous: 'yes' },
      },
      dn2,
    ]);
    expect(issues(bad)).toEqual(
      expect.arrayContaining([
        expect.stringContaining('dataNodes[0].standbys[0].url: same server as node "dn1"'),
        expect.stringContaining('dataNodes[0].standbys[1].url: names database "other"'),
        expect.stringContaining('dataNodes[0].standbys[2].name: its replication slot hypershard_dn1_b would be the one of dataNodes[0].standbys[1]'),
        expect.stringContaining('dataNodes[0].standbys[2].url: contains a password'),
        expect.stringContaining('dataNodes[0].standbys[3].extra: Unrecognized key'),
        expect.stringContaining('dataNodes[0].replication.synchronous'),
      ]),
    );
    expect(issues(bad)).toContain('dataNodes[0].standbys[0].name: duplicate node name "dn2" (also at dataNodes[1])');
  });

  it('needs the replication role when a data node has standbys, and keeps its name apart', () => {
    const { replication: _, ...withoutRole } = base([dn1, dn2]);
    expect(issues(withoutRole)).toEqual([expect.stringMatching(/^dataNodes\[0\]\.standbys: standbys need the replication role/)]);
    expect(issues(base([dn1], { replication: { role: { name: 'hypershard_fdw', password: { env: 'R' } } } }))).toEqual([
      expect.stringContaining('replication.role.name: "hypershard_fdw" is the FDW service role'),
    ]);
  });

  it('gives the line of a problem in a YAML file', () => {
    const yaml = [
      'version: 1',
      'accessNode: { name: access, url: "postgres://postgres@a/app" }',
      'replication: { role: { password: { env: R } } }',
      'dataNodes:',
      '  - name: dn1',
      '    url: postgres://postgres@b/app',
      '    standbys:',
      '      - { name: s1, url: "postgres://postgres@c/nope" }',
      'fdw: { serviceRole: { password: { env: SVC } } }',
    ].join('\n');
    expect(() => parseSpec(yaml, 'h.yaml')).toThrow(/dataNodes\[0\]\.standbys\[0\]\.url: names database "nope".*line 8/);
  });

  it('lets the target session attributes alone be hypershard\'s', () => {
    expect(issues(base([{ ...dn2, fdw: { options: { target_session_attrs: 'any' } } }]))).toEqual([
      expect.stringContaining('option "target_session_attrs" is set by hypershard'),
    ]);
  });
});

describe('FDW servers of a data node with standbys', () => {
  it('list the primary first, then each standby, and ask for the one that takes writes', () => {
    const layout = planLayout(validateSpec(base([dn1, dn2])));
    const server = layout.servers.find((s) => s.dataNode === 'dn1')!;
    expect(Object.fromEntries(server.options)).toMatchObject({
      host: 'dn1a.internal,dn1b.internal,10.0.0.31',
      port: '5432,6432,5433',
      target_session_attrs: 'read-write',
    });
    const plain = layout.servers.find((s) => s.dataNode === 'dn2')!;
    expect(Object.fromEntries(plain.options)).toMatchObject({ host: '10.0.0.12', port: '5432' });
    expect(plain.options.some(([k]) => k === 'target_session_attrs')).toBe(false);
  });
});

describe('the replication role', () => {
  it('is created on every data node with LOGIN REPLICATION and nothing else', () => {
    const layout = planLayout(validateSpec(base([dn1, dn2])));
    const sql = dataNodeSteps(layout, 'dn2').flatMap((s) => s.up).map((s) => s.sql).join('\n');
    expect(sql).toContain(`ALTER ROLE "hypershard_replication" WITH LOGIN NOINHERIT NOSUPERUSER NOCREATEDB NOCREATEROLE REPLICATION NOBYPASSRLS CONNECTION LIMIT -1;`);
  });

  it('is added by a migration when the spec gains replication, and the servers change in place', () => {
    const { replication: _, ...before } = base([dn2]);
    const after = base([{ ...dn2, standbys: [{ name: 's1', url: 'postgres://postgres@10.0.0.22/app' }] }]);
    const e = evolve(planLayout(validateSpec(before)), planLayout(validateSpec(after)));
    expect(e.refused).toEqual([]);
    expect(e.changes).toEqual(expect.arrayContaining(['replication role hypershard_replication added']));
    const access = (e.steps.get('access') ?? []).flatMap((s) => s.up).map((s) => s.sql).join('\n');
    expect(access).toMatch(/SET "host" '10\.0\.0\.12,10\.0\.0\.22'/);
    expect(access).toMatch(/ADD "target_session_attrs" 'read-write'/);
  });
});
