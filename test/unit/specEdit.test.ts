/** Edits to a spec file keep every line they do not change, byte for byte. */
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { SpecText } from '../../src/spec/edit.js';
import { lineDiff } from '../support/lineDiff.js';

/** A spec written the way people write YAML: odd indents, quotes, flow and block, comments. */
const ODD = `version: 1
# the access node
accessNode: {name: access, url: "postgres://postgres@127.0.0.1:5432/a"}   # trailing comment


dataNodes:
    -   name: dn1      # first
        url: 'postgres://postgres@127.0.0.1:5433/d1'
    -   name: dn2
        url: postgres://postgres@127.0.0.1:5434/d2
        # password comes later

fdw:
  serviceRole: {name: hypershard_fdw, password: {env: FDW_PW}}
hypertables:
  - name: metrics
    columns: [{name: time, type: timestamptz, notNull: true}, {name: device_id, type: integer, notNull: true}, {name: cpu, type: double precision}]
    timeColumn: time
    spaceColumn: device_id
    shards: 4       # four
    placement: {"0": dn2}
  - {name: events, columns: [{name: t, type: timestamptz, notNull: true}, {name: k, type: integer, notNull: true}], timeColumn: t, spaceColumn: k, dataNodes: [dn1]}
`;

describe('SpecText', () => {
  it('appends a data node in the style of the others and pins hypertables, touching no other line', () => {
    const edit = new SpecText(ODD);
    edit.append(['dataNodes'], { name: 'dn3', url: 'postgres://postgres@127.0.0.1:5435/d3', password: { env: 'DN3_PW' } });
    edit.set(['hypertables', 0], 'dataNodes', ['dn1', 'dn2'], ['shards']);
    expect(lineDiff(ODD, edit.text)).toEqual({
      added: ['    -   name: dn3', '        url: postgres://postgres@127.0.0.1:5435/d3', '        password: { env: DN3_PW }', '    dataNodes: [ dn1, dn2 ]'],
      removed: [],
    });
    const spec = parse(edit.text) as { dataNodes: unknown[]; hypertables: { dataNodes?: string[]; shards?: number }[] };
    expect(spec.dataNodes.at(-1)).toEqual({ name: 'dn3', url: 'postgres://postgres@127.0.0.1:5435/d3', password: { env: 'DN3_PW' } });
    expect(spec.hypertables[0]).toMatchObject({ shards: 4, dataNodes: ['dn1', 'dn2'] });
    // Right after `shards: 4       # four`.
    expect(edit.text).toContain('    shards: 4       # four\n    dataNodes: [ dn1, dn2 ]\n    placement: {"0": dn2}\n');
  });

  it('quotes the new node\'s strings as the others are quoted (init writes name: "dn1")', () => {
    const quoted = `dataNodes:\n  - name: "dn1"\n    url: "postgres://postgres@dn1.internal:5432/metrics"\n    password: { env: "HYPERSHARD_DN1_PASSWORD" }\n`;
    const edit = new SpecText(quoted);
    edit.append(['dataNodes'], { name: 'dn3', url: 'postgres://postgres@dn3.internal:5432/metrics', password: { env: 'HYPERSHARD_DN3_PASSWORD' } });
    expect(lineDiff(quoted, edit.text).added).toEqual(['  - name: "dn3"', '    url: "postgres://postgres@dn3.internal:5432/metrics"', '    password: { env: "HYPERSHARD_DN3_PASSWORD" }']);
    const single = new SpecText(`dataNodes:\n  - name: 'dn1'\n    url: 'postgres://h/m'\n`);
    single.append(['dataNodes'], { name: 'dn3', url: 'postgres://h3/m' });
    expect(single.text).toContain(`  - name: 'dn3'\n    url: 'postgres://h3/m'\n`);
  });

  it('edits flow mappings and sequences in place', () => {
    const edit = new SpecText(ODD);
    edit.set(['hypertables', 1], 'placement', { '0': 'dn2' });
    edit.set(['hypertables', 1], 'dataNodes', ['dn1', 'dn2']);
    expect(lineDiff(ODD, edit.text).added).toEqual([
      '  - {name: events, columns: [{name: t, type: timestamptz, notNull: true}, {name: k, type: integer, notNull: true}], timeColumn: t, spaceColumn: k, dataNodes: [ dn1, dn2 ], placement: { "0": dn2 }}',
    ]);
    edit.delete(['hypertables', 1], 'placement');
    edit.delete(['hypertables', 0], 'placement');
    const spec = parse(edit.text) as { hypertables: Record<string, unknown>[] };
    expect(spec.hypertables[0]?.placement).toBeUndefined();
    expect(spec.hypertables[1]).toMatchObject({ name: 'events', dataNodes: ['dn1', 'dn2'] });
    expect(spec.hypertables[1]?.placement).toBeUndefined();
    expect(lineDiff(ODD, edit.text).removed).toEqual([
      '    placement: {"0": dn2}',
      '  - {name: events, columns: [{name: t, type: timestamptz, notNull: true}, {name: k, type: integer, notNull: true}], timeColumn: t, spaceColumn: k, dataNodes: [dn1]}',
    ]);
  });

  it('removes a list item and replaces a block value by a flow one', () => {
    const text = 'dataNodes:\n  - name: dn1\n    url: a\n  - name: dn2   # going\n    url: b\n  - name: dn3\n    url: c\nhypertables:\n  - name: m\n    dataNodes:\n      - dn1\n      - dn2\n    shards: 2\n';
    const edit = new SpecText(text);
    edit.remove(['dataNodes'], 1);
    edit.set(['hypertables', 0], 'dataNodes', ['dn1']);
    expect(edit.text).toBe('dataNodes:\n  - name: dn1\n    url: a\n  - name: dn3\n    url: c\nhypertables:\n  - name: m\n    dataNodes: [ dn1 ]\n    shards: 2\n');
  });

  it('deletes the first key of a list item by moving the next one up', () => {
    const edit = new SpecText('hypertables:\n  - placement: { "0": dn2 }\n    name: m\n');
    edit.delete(['hypertables', 0], 'placement');
    expect(edit.text).toBe('hypertables:\n  - name: m\n');
  });

  it('appends to a flow list and to a list of flow mappings', () => {
    const edit = new SpecText('dataNodes: [{name: dn1, url: a}]\nroles:\n  - {name: r1}\n');
    edit.append(['dataNodes'], { name: 'dn2', url: 'b' });
    edit.append(['roles'], { name: 'r2' });
    expect(edit.text).toBe('dataNodes: [{name: dn1, url: a}, { name: dn2, url: b }]\nroles:\n  - {name: r1}\n  - { name: r2 }\n');
  });
});
