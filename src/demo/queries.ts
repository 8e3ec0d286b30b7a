/**
 * The typical questions the demo asks of the device-metrics hypertable. Most bound time with bind
 * parameters and bucket with date_bin, which postgres_fdw ships; the last is written as people
 * write it (date_trunc, now()), which it does not ship, and the demo runs it through the rewriter.
 */
export interface DemoQuery {
  readonly title: string;
  readonly sql: string;
  readonly params: (window: { start: Date; end: Date }) => unknown[];
}

/** The questions, for a fleet of `devices` devices numbered from 1 (the latest reading is of one that exists). */
export function demoQueries(devices: number): readonly DemoQuery[] {
  const device = Number.isInteger(devices) && devices >= 1 ? Math.min(42, devices) : 42;
  return [
    {
      title: 'Per device: readings, average CPU and peak temperature',
      sql: `SELECT device_id, count(*) AS readings, round(avg(cpu)::numeric, 2) AS avg_cpu, max(temperature) AS peak_temp
FROM metrics GROUP BY device_id ORDER BY device_id`,
      params: () => [],
    },
    {
      title: 'Hourly average CPU per device over the last 6 hours',
      sql: `SELECT device_id, date_bin('1 hour', time, '2000-01-01') AS hour, round(avg(cpu)::numeric, 2) AS avg_cpu
FROM metrics WHERE time >= $1 GROUP BY device_id, hour ORDER BY device_id, hour`,
      params: ({ end }) => [new Date(end.getTime() - 6 * 3600_000)],
    },
    {
      title: 'The 5 hottest devices',
      sql: `SELECT device_id, max(temperature) AS peak_temp FROM metrics
GROUP BY device_id ORDER BY peak_temp DESC, device_id LIMIT 5`,
      params: () => [],
    },
    {
      title: `Latest reading of device ${device}`,
      sql: `SELECT time, cpu, memory, temperature FROM metrics WHERE device_id = ${device} ORDER BY time DESC LIMIT 1`,
      params: () => [],
    },
    {
      title: 'Fleet-wide hourly peak CPU, as people write it (not grouped by device, now(), date_trunc)',
      sql: `SELECT date_trunc('hour', time) AS hour, max(cpu) AS peak_cpu
FROM metrics WHERE time >= now() - interval '3 hours' GROUP BY hour ORDER BY hour DESC LIMIT 3`,
      params: () => [],
    },
  ];
}
