import { describe, expect, it } from 'vitest';
import { fitnessProblem, type NodeInfo } from '../../src/nodes/connect.js';

const info = (overrides: Partial<NodeInfo> = {}): NodeInfo => ({
  serverVersionNum: 180004,
  serverVersion: '18.4',
  database: 'postgres',
  user: 'postgres',
  superuser: true,
  manager: true,
  fdwInstalled: false,
  ...overrides,
});

describe('fitnessProblem', () => {
  it('accepts PostgreSQL 14 to 18 with postgres_fdw on the access node', () => {
    for (const num of [140000, 150018, 160002, 170009, 180004]) {
      expect(fitnessProblem('access', info({ serverVersionNum: num }), true)).toBeUndefined();
    }
  });

  it('refuses a node below PostgreSQL 14, whatever its role', () => {
    const old = info({ serverVersionNum: 130016, serverVersion: '13.16' });
    expect(fitnessProblem('data', old, true)).toBe('PostgreSQL 13.16 is too old; hypershard needs PostgreSQL 14 or later');
    expect(fitnessProblem('access', old, true)).toBe('PostgreSQL 13.16 is too old; hypershard needs PostgreSQL 14 or later');
  });

  it('needs postgres_fdw on the access node only', () => {
    expect(fitnessProblem('access', info(), false)).toMatch(/^the postgres_fdw extension is not available/);
    expect(fitnessProblem('data', info(), false)).toBeUndefined();
  });

  it('refuses a user that is neither a superuser nor a role manager owning the database', () => {
    expect(fitnessProblem('data', info({ superuser: false, manager: false, user: 'app' }), true)).toMatch(/^user app is neither a superuser nor a role manager owning database postgres/);
  });

  it('accepts the admin user of managed PostgreSQL: CREATEROLE and owner of the database', () => {
    expect(fitnessProblem('access', info({ superuser: false, manager: true }), true)).toBeUndefined();
  });

  it('reads with any user', () => {
    expect(fitnessProblem('data', info({ superuser: false, manager: false }), true, false)).toBeUndefined();
  });
});
