/** The demo's questions fit the fleet it loads. */
import { describe, expect, it } from 'vitest';
import { demoQueries } from '../../src/demo/queries.js';

describe('demo queries', () => {
  it('ask for the latest reading of a device the demo loaded (numbered from 1), 42 when there are that many', () => {
    const latest = (devices: number) => demoQueries(devices).find((q) => q.title.startsWith('Latest reading'))!;
    expect(latest(100).sql).toContain('WHERE device_id = 42 ORDER BY');
    expect(latest(10).sql).toContain('WHERE device_id = 10 ORDER BY');
    expect(latest(10).title).toBe('Latest reading of device 10');
    expect(latest(1).sql).toContain('WHERE device_id = 1 ORDER BY');
  });
});
