/**
 * The TSBS benchmark's quick scale, run as a test so it cannot rot: a real cluster made by
 * hypershard, real loads, all 15 query types timed on both targets with equal answers, and ingest
 * figures. Also the latency proxy the benchmark uses to stand in for a network.
 */
import net, { type AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { startLatencyProxy } from '../../bench/lib/latencyProxy.js';
import { QUICK, runBenchmark } from '../../bench/tsbs/benchmark.js';
import { QUERY_TYPES } from '../../bench/tsbs/queries.js';
import { toMarkdown } from '../../bench/tsbs/report.js';
import { pythonDrivers } from '../support/clients.js';

describe('TSBS benchmark, quick scale', () => {
  it('runs all 15 query types on both targets with equal answers, and measures ingest', { timeout: 180_000 }, async () => {
    const started = performance.now();
    const report = await runBenchmark({ ...QUICK, latencyMs: 0 });

    expect(new Set(report.queries.map((q) => q.type))).toEqual(new Set(QUERY_TYPES));
    for (const q of report.queries) {
      const label = `${q.type} (${q.form})`;
      expect(q.answersEqual, `${label}: ${q.difference ?? ''}`).toBe(true);
      expect(q.samplesMs.single.length, label).toBeGreaterThanOrEqual(5);
      expect(q.samplesMs.distributed.length, label).toBeGreaterThanOrEqual(5);
      for (const ms of [q.singleMs, q.distributedMs, q.ratio]) {
        expect(Number.isFinite(ms) && ms > 0, `${label}: ${ms}`).toBe(true);
      }
      expect(q.audit.verdict, `${label}: ${q.audit.error ?? ''}`).not.toBe('n/a');
      expect(q.audit.rowsShipped, label).toEqual(expect.any(Number));
    }
    // Each type has its TSBS form and at least one the benchmark compares it with.
    for (const type of QUERY_TYPES) {
      expect(report.queries.filter((q) => q.type === type && q.form === 'users-bucket'), type).toHaveLength(1);
      expect(report.queries.filter((q) => q.type === type).length, type).toBeGreaterThanOrEqual(2);
      // The product form is what hypershard/pg sent: the users' SQL, rewritten.
      const [written, product] = ['users-bucket', 'product'].map((form) => report.queries.find((q) => q.type === type && q.form === form));
      expect(product?.sql, type).toEqual(expect.any(String));
      expect(product?.sql, type).not.toBe(written?.sql);
    }
    expect(report.mismatches).toBe(0);

    expect(report.ingest.results.map((r) => `${r.method} ${r.target}`)).toEqual([
      'COPY single',
      'COPY distributed',
      'COPY routed',
      'COPY file single',
      'COPY file routed',
      'COPY file gateway',
      'INSERT single',
      'INSERT distributed',
      'INSERT gateway',
      'INSERT clients single',
      'INSERT clients gateway',
      'INSERT gateway-params',
      // Python services' batches, where asyncpg installs (the benchmark says why it left them out otherwise).
      ...('skip' in (await pythonDrivers()) ? [] : ['executemany single', 'executemany distributed', 'executemany gateway']),
    ]);
    for (const r of report.ingest.results) expect(r.rowsPerSecond, `${r.method} ${r.target}`).toBeGreaterThan(0);
    // COPY then INSERT load the data once into each target; COPY file, INSERT clients and executemany load rows again, into tables of their own.
    const loaded = (target: string): number => report.ingest.results.filter((r) => r.target === target && !['executemany', 'COPY file', 'INSERT clients'].includes(r.method)).reduce((sum, r) => sum + r.rows, 0);
    expect(loaded('single')).toBe(report.data.rows);
    expect(loaded('distributed')).toBe(report.data.rows);
    expect(report.data.rows).toBe(10 * 6 * 360);

    const markdown = toMarkdown(report);
    for (const type of QUERY_TYPES) expect(markdown).toContain(`| ${type} |`);
    expect(markdown).toContain('## Ingest');
    expect(performance.now() - started).toBeLessThan(180_000);
  });
});

describe('latency proxy', () => {
  it('forwards in order, delaying each direction by the latency, and closes everything', async () => {
    const echo = net.createServer((s) => s.pipe(s));
    await new Promise<void>((resolve) => echo.listen(0, '127.0.0.1', resolve));
    const proxy = await startLatencyProxy({ targetHost: '127.0.0.1', targetPort: (echo.address() as AddressInfo).port, latencyMs: 25 });
    try {
      const socket = net.connect({ host: proxy.host, port: proxy.port });
      await new Promise<void>((resolve) => socket.once('connect', resolve));
      const received: Buffer[] = [];
      socket.on('data', (d: Buffer) => received.push(d));
      const t0 = performance.now();
      const messages = Array.from({ length: 50 }, (_, i) => `message ${i};`);
      for (const m of messages) socket.write(m);
      const expected = messages.join('');
      while (Buffer.concat(received).toString() !== expected) {
        if (performance.now() - t0 > 5_000) throw new Error(`received only ${Buffer.concat(received).toString()}`);
        await new Promise((r) => setTimeout(r, 5));
      }
      const roundTrip = performance.now() - t0;
      // Two one-way delays, and pipelined: 50 writes do not take 50 round trips.
      expect(roundTrip).toBeGreaterThanOrEqual(49);
      expect(roundTrip).toBeLessThan(1_000);
      expect(proxy.stats.bytesUp).toBe(expected.length);
      expect(proxy.stats.bytesDown).toBe(expected.length);
      expect(proxy.stats.roundTrips).toBeGreaterThanOrEqual(1);
      expect(proxy.stats.connections).toBe(1);
      socket.destroy();
    } finally {
      await proxy.close();
      await new Promise<void>((resolve) => echo.close(() => resolve()));
    }
  });
});
