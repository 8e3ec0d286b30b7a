/**
 * Deterministic device metrics: each device's cpu, memory and temperature are clamped random walks
 * from a seeded generator, so every demo run loads the same rows.
 */
export interface MetricsBatch {
  readonly time: Date[];
  readonly deviceId: number[];
  readonly cpu: number[];
  readonly memory: number[];
  readonly temperature: number[];
}

export interface DeviceDataOptions {
  readonly devices: number;
  readonly start: Date;
  readonly end: Date;
  readonly intervalSeconds: number;
  readonly batchRows: number;
  readonly seed?: number;
}

/** mulberry32: small, fast, good enough for test data, and reproducible on every platform. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const clamp = (v: number, lo: number, hi: number): number => Math.min(hi, Math.max(lo, v));
const round2 = (v: number): number => Math.round(v * 100) / 100;

export function rowCount(options: DeviceDataOptions): number {
  return options.devices * Math.ceil((options.end.getTime() - options.start.getTime()) / (options.intervalSeconds * 1000));
}

export function* deviceMetrics(options: DeviceDataOptions): Generator<MetricsBatch> {
  const random = prng(options.seed ?? 42);
  const state = Array.from({ length: options.devices }, () => {
    const baseline = 15 + 60 * random();
    return { baseline, cpu: baseline, memory: 30 + 50 * random(), temperature: 40 + baseline * 0.3 };
  });
  let batch = emptyBatch();
  for (let t = options.start.getTime(); t < options.end.getTime(); t += options.intervalSeconds * 1000) {
    const time = new Date(t);
    state.forEach((s, i) => {
      // Mean-reverting walks: noisy, but each device keeps its own typical load and heat.
      s.cpu = clamp(s.cpu + (random() - 0.5) * 8 + (s.baseline - s.cpu) * 0.05, 0, 100);
      s.memory = clamp(s.memory + (random() - 0.5) * 2, 0, 100);
      s.temperature = clamp(s.temperature + (random() - 0.5) * 0.8 + (40 + s.cpu * 0.3 - s.temperature) * 0.05, 20, 95);
      batch.time.push(time);
      batch.deviceId.push(i + 1);
      batch.cpu.push(round2(s.cpu));
      batch.memory.push(round2(s.memory));
      batch.temperature.push(round2(s.temperature));
    });
    if (batch.time.length >= options.batchRows) {
      yield batch;
      batch = emptyBatch();
    }
  }
  if (batch.time.length > 0) yield batch;
}

function emptyBatch(): MetricsBatch {
  return { time: [], deviceId: [], cpu: [], memory: [], temperature: [] };
}
