/**
 * A deterministic TSBS-shaped data generator: the devops `cpu-only` use case of timescale/tsbs
 * (shared/research/timescaledb-multinode.md §6).
 *
 * Each host emits one `cpu` row every `intervalSeconds` with 10 metrics, each a random walk with
 * N(0, 1) steps clamped to [0, 100] from a start drawn in [0, 100), as TSBS does. Every host has
 * its own seeded generator, so a host's series does not depend on how many hosts there are, and
 * the same options always give the same rows. Rows come out in time order (all hosts at t, then
 * t + interval), as a collector would send them, and lazily: nothing holds more than one chunk,
 * so memory stays flat at any scale.
 */
// One seeded PRNG for all generated data, the demo's.
import { prng } from '../../src/demo/devices.js';

export const METRICS = [
  'usage_user', 'usage_system', 'usage_idle', 'usage_nice', 'usage_iowait',
  'usage_irq', 'usage_softirq', 'usage_steal', 'usage_guest', 'usage_guest_nice',
] as const;
export type Metric = (typeof METRICS)[number];

export const CPU_COLUMNS = ['time', 'tags_id', ...METRICS] as const;

export const TAG_COLUMNS = [
  'hostname', 'region', 'datacenter', 'rack', 'os', 'arch', 'team', 'service', 'service_version', 'service_environment',
] as const;

export interface CpuRow {
  /** Epoch milliseconds. */
  readonly time: number;
  /** = host index + 1, the `tags.id` of the host (TSBS's SERIAL in insertion order). */
  readonly tagsId: number;
  readonly values: readonly number[];
}

export interface DataShape {
  readonly hosts: number;
  /** Epoch ms of the first row (inclusive) and of the end (exclusive). */
  readonly startMs: number;
  readonly endMs: number;
  readonly intervalSeconds: number;
  readonly seed: number;
}

/** Standard normal draws (Box-Muller, both values used). */
function normal(random: () => number): () => number {
  let spare: number | undefined;
  return () => {
    if (spare !== undefined) {
      const s = spare;
      spare = undefined;
      return s;
    }
    const u = 1 - random(); // (0, 1]: log(0) never happens
    const v = random();
    const r = Math.sqrt(-2 * Math.log(u));
    spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  };
}

/** Per-host seed: different for every host and every run seed, stable across scales. */
function hostSeed(seed: number, host: number): number {
  return (Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) + Math.imul(host + 1, 0xc2b2ae35)) >>> 0;
}

export function rowsPerHost(shape: DataShape): number {
  return Math.ceil((shape.endMs - shape.startMs) / (shape.intervalSeconds * 1000));
}

export function totalRows(shape: DataShape, slice?: { fromMs: number; toMs: number }): number {
  const step = shape.intervalSeconds * 1000;
  const from = Math.max(shape.startMs, slice?.fromMs ?? shape.startMs);
  const to = Math.min(shape.endMs, slice?.toMs ?? shape.endMs);
  if (to <= from) return 0;
  // Rows sit at startMs + k·step; count the k with from <= t < to.
  const first = Math.ceil((from - shape.startMs) / step);
  const last = Math.ceil((to - shape.startMs) / step);
  return (last - first) * shape.hosts;
}

const round2 = (v: number): number => Math.round(v * 100) / 100;

/**
 * The rows of [slice.fromMs, slice.toMs) (default: all). The walks always start at startMs, so a
 * slice has exactly the values the full series has there; rows before the slice are computed and
 * dropped, which costs no string building.
 */
export function* cpuRows(shape: DataShape, slice?: { fromMs: number; toMs: number }): Generator<CpuRow> {
  const walks = Array.from({ length: shape.hosts }, (_, h) => {
    const random = prng(hostSeed(shape.seed, h));
    return { step: normal(random), values: METRICS.map(() => random() * 100) };
  });
  const from = slice?.fromMs ?? shape.startMs;
  const to = Math.min(slice?.toMs ?? shape.endMs, shape.endMs);
  const stepMs = shape.intervalSeconds * 1000;
  for (let t = shape.startMs; t < to; t += stepMs) {
    const emit = t >= from;
    for (let h = 0; h < shape.hosts; h++) {
      const walk = walks[h]!;
      const v = walk.values;
      for (let m = 0; m < v.length; m++) v[m] = Math.min(100, Math.max(0, v[m]! + walk.step()));
      // Two decimals, as a collector would report a percentage; the walk itself stays exact.
      if (emit) yield { time: t, tagsId: h + 1, values: v.map(round2) };
    }
  }
}

/**
 * CSV for `COPY cpu (time, tags_id, usage_user, …) FROM STDIN (FORMAT csv)`, a few hundred rows
 * per string so the stream is not dominated by per-chunk overhead. Numbers print in JavaScript's
 * shortest round-trip form, which PostgreSQL parses back to the same double.
 */
export function* cpuCsv(rows: Iterable<CpuRow>, rowsPerChunk = 500): Generator<string> {
  let lines: string[] = [];
  let lastTime = Number.NaN;
  let iso = '';
  for (const row of rows) {
    if (row.time !== lastTime) {
      lastTime = row.time;
      iso = new Date(row.time).toISOString();
    }
    lines.push(`${iso},${row.tagsId},${row.values.join(',')}\n`);
    if (lines.length >= rowsPerChunk) {
      yield lines.join('');
      lines = [];
    }
  }
  if (lines.length > 0) yield lines.join('');
}

/** Rows in batches of `size`, for multi-row INSERTs. */
export function* batches<T>(items: Iterable<T>, size: number): Generator<T[]> {
  let batch: T[] = [];
  for (const item of items) {
    batch.push(item);
    if (batch.length >= size) {
      yield batch;
      batch = [];
    }
  }
  if (batch.length > 0) yield batch;
}

// ---------------------------------------------------------------------------------------------
// tags

const REGIONS: readonly (readonly [string, readonly string[]])[] = [
  ['us-east-1', ['us-east-1a', 'us-east-1b', 'us-east-1c', 'us-east-1e']],
  ['us-west-1', ['us-west-1a', 'us-west-1b']],
  ['us-west-2', ['us-west-2a', 'us-west-2b', 'us-west-2c']],
  ['eu-west-1', ['eu-west-1a', 'eu-west-1b', 'eu-west-1c']],
  ['eu-central-1', ['eu-central-1a', 'eu-central-1b']],
  ['ap-southeast-1', ['ap-southeast-1a', 'ap-southeast-1b']],
  ['ap-southeast-2', ['ap-southeast-2a', 'ap-southeast-2b']],
  ['ap-northeast-1', ['ap-northeast-1a', 'ap-northeast-1c']],
  ['sa-east-1', ['sa-east-1a', 'sa-east-1b', 'sa-east-1c']],
];
const OSES = ['Ubuntu16.10', 'Ubuntu16.04LTS', 'Ubuntu15.10'];
const ARCHES = ['x64', 'x86'];
const TEAMS = ['SF', 'NYC', 'LON', 'CHI'];
const ENVIRONMENTS = ['production', 'staging', 'test'];

export interface TagRow {
  readonly id: number;
  readonly values: Readonly<Record<(typeof TAG_COLUMNS)[number], string>>;
}

/** TSBS's host tags: `host_<i>` and nine more, drawn from the same lists TSBS draws from. */
export function tagRows(hosts: number, seed: number): TagRow[] {
  const random = prng(seed ^ 0x7a65);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
  return Array.from({ length: hosts }, (_, i) => {
    const [region, datacenters] = pick(REGIONS);
    return {
      id: i + 1,
      values: {
        hostname: `host_${i}`,
        region,
        datacenter: pick(datacenters),
        rack: String(Math.floor(random() * 100)),
        os: pick(OSES),
        arch: pick(ARCHES),
        team: pick(TEAMS),
        service: String(Math.floor(random() * 20)),
        service_version: String(Math.floor(random() * 2)),
        service_environment: pick(ENVIRONMENTS),
      },
    };
  });
}
