import { describe, expect, it } from 'vitest';
import { renderExec } from '../../src/cli/commands/exec.js';
import { renderStatus } from '../../src/cli/commands/status.js';
import { UnknownNodeError } from '../../src/errors.js';
import type { NodeTarget } from '../../src/nodes/targets.js';
import type { ExecResult } from '../../src/ops/execResult.js';
import { selectTargets } from '../../src/ops/select.js';
import { skew } from '../../src/ops/skew.js';
import type { StatusResult } from '../../src/ops/status.js';
import { transactionControlStatements } from '../../src/ops/transactionControl.js';

const targets: NodeTarget[] = [
  { name: 'dn1', role: 'data', url: 'postgres://u@h1/db', password: undefined },
  { name: 'dn2', role: 'data', url: 'postgres://u@h2/db', password: undefined },
  { name: 'access', role: 'access', url: 'postgres://u@h0/db', password: undefined },
];
const names = (selected: NodeTarget[]): string[] => selected.map((t) => t.name);

describe('selectTargets', () => {
  it('selects every node when nothing is named', () => {
    expect(names(selectTargets(targets))).toEqual(['dn1', 'dn2', 'access']);
    expect(names(selectTargets(targets, { nodes: [], dataNodes: false }))).toEqual(['dn1', 'dn2', 'access']);
  });

  it('takes the union of names and roles, in spec order', () => {
    expect(names(selectTargets(targets, { nodes: ['dn2'] }))).toEqual(['dn2']);
    expect(names(selectTargets(targets, { dataNodes: true }))).toEqual(['dn1', 'dn2']);
    expect(names(selectTargets(targets, { accessNode: true }))).toEqual(['access']);
    expect(names(selectTargets(targets, { nodes: ['access', 'dn1', 'dn1'] }))).toEqual(['dn1', 'access']);
    expect(names(selectTargets(targets, { nodes: ['dn2'], accessNode: true }))).toEqual(['dn2', 'access']);
  });

  it('refuses an unknown name, naming the known nodes', () => {
    const attempt = (): unknown => selectTargets(targets, { nodes: ['dn1', 'dn9', 'dn9', 'x'] });
    expect(attempt).toThrow(UnknownNodeError);
    expect(attempt).toThrow('unknown nodes dn9, x; the spec has dn1, dn2, access');
    try {
      attempt();
    } catch (error) {
      expect((error as UnknownNodeError).code).toBe('USAGE');
      expect((error as UnknownNodeError).known).toEqual(['dn1', 'dn2', 'access']);
    }
  });
});

describe('skew', () => {
  it('is undefined for no values, and even for equal values', () => {
    expect(skew([])).toBeUndefined();
    expect(skew([{ node: 'a', value: 5 }, { node: 'b', value: 5 }])).toEqual({ nodes: ['a', 'b'], min: 5, max: 5, mean: 5, maxOverMin: 1, cv: 0 });
    expect(skew([{ node: 'a', value: 0 }, { node: 'b', value: 0 }])).toMatchObject({ maxOverMin: 1, cv: 0 });
  });

  it('computes max/min and the coefficient of variation (population standard deviation / mean)', () => {
    const s = skew([{ node: 'a', value: 100 }, { node: 'b', value: 300 }]);
    expect(s).toMatchObject({ min: 100, max: 300, mean: 200, maxOverMin: 3 });
    expect(s?.cv).toBeCloseTo(0.5, 12); // sd 100 / mean 200
    const three = skew([{ node: 'a', value: 2 }, { node: 'b', value: 4 }, { node: 'c', value: 6 }]);
    expect(three?.cv).toBeCloseTo(Math.sqrt(8 / 3) / 4, 12);
  });

  it('reports an unbounded ratio when one node holds nothing', () => {
    expect(skew([{ node: 'a', value: 0 }, { node: 'b', value: 10 }])).toMatchObject({ maxOverMin: null, cv: 1 });
  });
});

describe('transactionControlStatements', () => {
  it('finds statements that end or split the transaction, and allows savepoints', async () => {
    const statements = ['BEGIN', 'start transaction', 'COMMIT', 'end', 'ROLLBACK', 'abort', "PREPARE TRANSACTION 'x'", "COMMIT PREPARED 'x'", "ROLLBACK PREPARED 'x'", 'SAVEPOINT a', 'RELEASE SAVEPOINT a', 'ROLLBACK TO SAVEPOINT a', 'SELECT 1', "SELECT 'commit'", 'PREPARE q AS SELECT 1'];
    expect(await transactionControlStatements(statements)).toEqual(statements.slice(0, 9));
  });
});

describe('renderExec', () => {
  const result: ExecResult = {
    ok: false,
    transactional: false,
    nodes: [
      {
        node: 'dn1',
        role: 'data',
        status: 'ok',
        statements: [{ sql: 'SELECT …', command: 'SELECT 3', rowCount: 3, columns: ['a', 'b'], rows: [['1', null], ['two\nlines', 'x']], truncated: true }],
      },
      {
        node: 'dn2',
        role: 'data',
        status: 'failed',
        statements: [{ sql: 'CREATE TABLE t ()', command: 'CREATE TABLE', rowCount: null, columns: [], rows: [], truncated: false }],
        error: { phase: 'statement', message: 'relation "x" does not exist', sqlState: '42P01', statement: 'SELECT * FROM x', statementIndex: 1 },
      },
    ],
  };

  it('shows a line per node, then rows as a table and failures with their statement', () => {
    expect(renderExec(result)).toBe(
      [
        'node  role  status  result',
        '----  ----  ------  ---------------------------',
        'dn1   data  ok      SELECT 3',
        'dn2   data  failed  relation "x" does not exist',
        '',
        'dn1: SELECT 3',
        '  a           b',
        '  ----------  ----',
        '  1           NULL',
        '  two\\nlines  x',
        '  (3 rows)',
        '  (1 more row)',
        '',
        'dn2 failed at statement 2 (statement): relation "x" does not exist',
        '  SELECT * FROM x',
      ].join('\n'),
    );
  });

  it('says what a transactional exec committed, and the one-phase caveat', () => {
    const text = renderExec({
      ok: false,
      transactional: true,
      commit: 'one-phase',
      caveat: 'without two-phase commit (…), the nodes commit one after another',
      nodes: [
        { node: 'dn1', role: 'data', status: 'failed', statements: [], error: { phase: 'statement', message: 'boom' } },
        { node: 'dn2', role: 'data', status: 'rolled-back', statements: [], reason: 'rolled back: dn1 failed' },
      ],
    });
    expect(text).toContain('dn2   data  rolled-back  rolled back: dn1 failed');
    expect(text).toContain('Nothing was committed on any node (one-phase commit).\nNote: without two-phase commit (…), the nodes commit one after another.');
  });
});

describe('renderStatus', () => {
  it('shows nodes, hypertables, skew and warnings; an unreachable node keeps its place', () => {
    const result: StatusResult = {
      ok: false,
      standbys: [],
      nodes: [
        {
          node: 'dn1', role: 'data', reachable: true, serverVersion: '18.1', bytes: 3 * 1024 * 1024, rows: 1200,
          shards: [
            { hypertable: 'public.metrics', index: 0, table: '_hypershard.metrics_s0', present: true, partitions: 8, bytes: 3 * 1024 * 1024, rows: 1200 },
            { hypertable: 'public.metrics', index: 2, table: '_hypershard.metrics_s2', present: false, partitions: 0, bytes: 0, rows: 0 },
          ],
          strayShards: [{ hypertable: 'public.metrics', index: 1, table: '_hypershard.metrics_s1', owner: 'dn2' }],
        },
        {
          node: 'dn2', role: 'data', reachable: false, error: 'node dn2: connection refused', bytes: null, rows: null,
          shards: [{ hypertable: 'public.metrics', index: 1, table: '_hypershard.metrics_s1', present: null, partitions: null, bytes: null, rows: null }],
          strayShards: [],
        },
        { node: 'access', role: 'access', reachable: true, serverVersion: '18.1', hypertables: [{ hypertable: 'public.metrics', shards: 2, present: true, foreignPartitions: 2, analyzedForeignPartitions: 0 }] },
      ],
      skew: { bytes: { nodes: ['dn1'], min: 1, max: 1, mean: 1, maxOverMin: 1, cv: 0 }, rows: null },
      hypertables: [{ hypertable: 'public.metrics', shards: 2, shardsMeasured: 1, bytes: 3 * 1024 * 1024, rows: 1200 }],
    };
    expect(renderStatus(result)).toBe(
      [
        'node    role    reachable  version  shards                bytes   rows (estimate)',
        '------  ------  ---------  -------  --------------------  ------  ---------------',
        'dn1     data    yes        18.1     public.metrics: 0, 2  3.0 MB  1,200',
        'dn2     data    no         -        public.metrics: 1     -       -',
        'access  access  yes        18.1     -                     -       -',
        'dn2: node dn2: connection refused',
        '',
        'hypertable      shards  bytes                   rows (estimate)        foreign partitions  with statistics',
        '--------------  ------  ----------------------  ---------------------  ------------------  ---------------',
        'public.metrics  2       3.0 MB (1 of 2 shards)  1,200 (1 of 2 shards)  2                   0',
        '',
        'Skew of bytes: max/min 1.00, coefficient of variation 0.000 over dn1',
        'Skew of rows:  not measured (no data node holding shards answered, or one has an unknown row estimate: ANALYZE it)',
        '',
        'Warnings:',
        '  - dn1: shard 2 of public.metrics (_hypershard.metrics_s2) is missing',
        '  - dn1: holds _hypershard.metrics_s1 (shard 1 of public.metrics), which the spec places on dn2',
        '  - access: 2 foreign partitions of public.metrics have no statistics: run ANALYZE public.metrics on the access node',
      ].join('\n'),
    );
  });
});
