/** The benchmark's report: its JSON shape, the Markdown written next to it, and the stdout table. */
import type { ProxyStats } from '../lib/latencyProxy.js';
import { describeMachine, type MachineInfo } from '../lib/machine.js';
import { geometricMean } from '../lib/stats.js';
import type { IngestResult, MemoryPeak } from './load.js';
import type { QueryMeasurement } from './measure.js';
import { FORMS, type Form } from './queries.js';

export interface BenchmarkReport {
  readonly name: string;
  readonly generatedAt: string;
  readonly machine: MachineInfo;
  /** 1-minute load average when the run ended, and the highest sampled during it (other work on the machine). */
  readonly loadAverageAtEnd: number;
  readonly loadAverageMax: number;
  readonly postgres: { readonly source: 'embedded' | 'system'; readonly version: string; readonly jit: string };
  readonly topology: { readonly dataNodes: number; readonly shards: number; readonly latencyMs: number; readonly lastpoint?: boolean; readonly nodeViews?: boolean; readonly referenceTags?: boolean; readonly routerReads?: boolean; readonly fdw: Record<string, string> };
  readonly data: {
    readonly hosts: number;
    readonly hours: number;
    readonly intervalSeconds: number;
    readonly rows: number;
    readonly from: string;
    readonly to: string;
    readonly seed: number;
  };
  readonly ingest: {
    readonly generatorRowsPerSecond: number;
    readonly results: readonly IngestResult[];
    readonly memoryPeak: MemoryPeak;
  };
  readonly runs: number;
  readonly backToBack?: boolean;
  readonly queries: readonly QueryMeasurement[];
  readonly summary: readonly FormSummary[];
  readonly mismatches: number;
  /** Latency proxies' totals, when used. */
  readonly proxy?: ProxyStats;
  readonly wallSeconds: Record<string, number>;
}

export interface FormSummary {
  readonly form: Form;
  readonly queries: number;
  readonly complete: number;
  /** Geometric mean of distributed / single over the form's queries. */
  readonly geomeanRatio: number;
  /** The slowest query's distributed / single. */
  readonly worstRatio: number;
}

export function summarize(queries: readonly QueryMeasurement[]): FormSummary[] {
  return FORMS.map((form) => {
    const qs = queries.filter((q) => q.form === form);
    return { form, queries: qs.length, complete: qs.filter((q) => q.audit.verdict === 'complete').length, geomeanRatio: geometricMean(qs.map((q) => q.ratio)), worstRatio: Math.max(...qs.map((q) => q.ratio)) };
  }).filter((s) => s.queries > 0);
}

const fmtMs = (ms: number): string => (ms < 10 ? ms.toFixed(2) : ms < 1000 ? ms.toFixed(1) : ms.toFixed(0));
const fmtRatio = (r: number): string => (!Number.isFinite(r) ? '–' : r < 10 ? r.toFixed(2) : r.toFixed(0));
const fmtInt = (n: number | null | undefined): string => (n === null || n === undefined ? '–' : Math.round(n).toLocaleString('en-US'));
const fmtBytes = (n: number | undefined): string =>
  n === undefined ? '–' : n < 2 ** 20 ? `${(n / 1024).toFixed(1)} KiB` : n < 2 ** 30 ? `${(n / 2 ** 20).toFixed(1)} MiB` : `${(n / 2 ** 30).toFixed(2)} GiB`;

export function verdictText(q: QueryMeasurement): string {
  if (q.audit.verdict !== 'incomplete') return q.audit.verdict;
  const codes = [...new Set(q.audit.findings.filter((f) => f.severity === 'error').map((f) => f.code))];
  return `incomplete: ${codes.join(', ')}`;
}

interface Table {
  readonly headers: readonly string[];
  /** true: right-aligned (numbers). */
  readonly numeric: readonly boolean[];
  readonly rows: readonly (readonly string[])[];
}

function markdownTable(t: Table): string[] {
  return [
    `| ${t.headers.join(' | ')} |`,
    `|${t.numeric.map((n) => (n ? '---:' : '---')).join('|')}|`,
    ...t.rows.map((r) => `| ${r.join(' | ')} |`),
  ];
}

/** Fixed-width text for a terminal. */
export function textTable(t: Table): string {
  const widths = t.headers.map((h, i) => Math.max(h.length, ...t.rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    cells.map((c, i) => (t.numeric[i] === true ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ').trimEnd();
  return [line(t.headers), widths.map((w) => '-'.repeat(w)).join('  '), ...t.rows.map(line)].join('\n');
}

export function queryTable(r: BenchmarkReport): Table {
  const withNetwork = r.queries.some((q) => q.network !== undefined);
  return {
    headers: ['query type', 'form', 'single ms', 'distributed ms', 'ratio', 'rows shipped', ...(withNetwork ? ['bytes from data nodes', 'round trips'] : []), 'verdict', 'same answer'],
    numeric: [false, false, true, true, true, true, ...(withNetwork ? [true, true] : []), false, false],
    rows: r.queries.map((q) => [
      q.type,
      q.form,
      fmtMs(q.singleMs),
      fmtMs(q.distributedMs),
      fmtRatio(q.ratio),
      fmtInt(q.audit.rowsShipped),
      ...(withNetwork ? [fmtBytes(q.network?.bytesFromDataNodes), fmtInt(q.network?.roundTrips)] : []),
      verdictText(q),
      q.answersEqual ? 'yes' : `**NO**: ${q.difference ?? ''}`,
    ]),
  };
}

const TARGETS: Readonly<Record<IngestResult['target'], string>> = {
  single: 'single node',
  distributed: 'access node → data nodes (postgres_fdw)',
  routed: 'routed: hypershard loader → data nodes',
  gateway: 'psql → hypershard gateway',
  'gateway-params': 'node-postgres ($n: Parse/Bind/Execute) → hypershard gateway',
};

const METHODS: Readonly<Record<IngestResult['method'], (x: IngestResult) => string>> = {
  COPY: () => 'COPY (CSV streamed from the benchmark)',
  'COPY file': (x) => `COPY from a CSV file (${x.target === 'routed' ? 'hypershard load' : 'psql \\copy'})`,
  INSERT: (x) => `INSERT (${x.batchRows ?? '?'} rows/statement)`,
  'INSERT clients': (x) => `INSERT (${x.batchRows ?? '?'} rows/statement, ${x.clients ?? '?'} psql clients at once)`,
  executemany: (x) => `asyncpg executemany of a one-row INSERT (${x.batchRows ?? '?'} rows/call)`,
};

export function ingestTable(r: BenchmarkReport): Table {
  const single = (method: IngestResult['method']): IngestResult | undefined => r.ingest.results.find((x) => x.method === method && x.target === 'single');
  const withNetwork = r.ingest.results.some((x) => x.network !== undefined);
  return {
    headers: ['method', 'target', 'rows', 'seconds', 'rows/s', 'vs single node', 'CPU s / M rows', ...(withNetwork ? ['round trips', 'rows per round trip'] : [])],
    numeric: [false, false, true, true, true, true, true, ...(withNetwork ? [true, true] : [])],
    rows: r.ingest.results.map((x) => {
      const base = single(x.method);
      const trips = x.network?.roundTrips;
      return [
        METHODS[x.method](x),
        x.method === 'executemany' ? TARGETS[x.target].replace('psql', 'asyncpg') : TARGETS[x.target],
        fmtInt(x.rows),
        x.seconds.toFixed(2),
        fmtInt(x.rowsPerSecond),
        base === undefined ? '–' : `${(x.rowsPerSecond / base.rowsPerSecond).toFixed(2)}×`,
        x.cpuSecondsPerMillionRows === undefined ? '–' : x.cpuSecondsPerMillionRows.toFixed(2),
        ...(withNetwork ? [fmtInt(trips), trips === undefined || trips === 0 ? '–' : (x.rows / trips).toFixed(0)] : []),
      ];
    }),
  };
}

export function summaryTable(r: BenchmarkReport): Table {
  return {
    headers: ['form', 'queries', 'pushdown-complete', 'geometric mean of ratios', 'worst ratio'],
    numeric: [false, true, true, true, true],
    rows: r.summary.map((s) => [s.form, String(s.queries), String(s.complete), fmtRatio(s.geomeanRatio), fmtRatio(s.worstRatio)]),
  };
}

/** An ingest-only run (`npm run bench:ingest`): the ingest table and how it was measured. */
function ingestMarkdown(r: BenchmarkReport): string {
  return [
    `# Ingest: one node vs through the access node vs routed vs the gateway, ${r.topology.dataNodes} data node${r.topology.dataNodes === 1 ? '' : 's'}${r.topology.latencyMs > 0 ? `, +${r.topology.latencyMs} ms one-way latency` : ''}`,
    '',
    `PostgreSQL ${r.postgres.version} (${r.postgres.source}); 1 access node + ${r.topology.dataNodes} data nodes on loopback, ${r.topology.shards} shards` +
      (r.topology.latencyMs > 0 ? `; the access node and the loader reach each data node through a userspace TCP proxy adding ${r.topology.latencyMs} ms each way.` : '; no added latency.'),
    `FDW server options: ${Object.entries(r.topology.fdw).map(([k, v]) => `${k}=${v}`).join(', ') || 'defaults'}.`,
    `Data: TSBS cpu rows, ${r.data.hosts} hosts every ${r.data.intervalSeconds} s (seed ${r.data.seed}). Machine: ${describeMachine(r.machine)}, load average at most ${r.loadAverageMax}.`,
    '',
    ...markdownTable(ingestTable(r)),
    '',
    `COPY loads the first ${fmtInt(r.ingest.results.find((x) => x.method === 'COPY')?.rows)} rows, batched INSERT the rest, into each target, one after another. ` +
      'Routed and gateway targets load a twin of `cpu` and are checked to hold, per shard, exactly the rows the access node put there (count and checksum). ' +
      'COPY from a CSV file loads the same rows again from one file, each target\'s client a process of its own (psql, `hypershard load`), into an empty twin. ' +
      'CPU s / M rows: CPU seconds of the loading process per million rows (this process, less its row generator; for gateway rows the in-process gateway, psql being another process; ' +
      'for psql \\copy into the plain table and for `hypershard load`, that process). ' +
      `The generator alone makes ${fmtInt(r.ingest.generatorRowsPerSecond)} CSV rows/s. Peak memory: ${r.ingest.memoryPeak.rssMiB} MiB RSS. Generated ${r.generatedAt}.`,
    '',
  ].join('\n');
}

export function toMarkdown(r: BenchmarkReport): string {
  if (r.queries.length === 0) return ingestMarkdown(r);
  const lines = [
    `# TSBS devops (cpu-only) benchmark: single node vs distributed hypertable${r.topology.latencyMs > 0 ? `, +${r.topology.latencyMs} ms one-way latency` : ''}`,
    '',
    `PostgreSQL ${r.postgres.version} (${r.postgres.source}, ${r.postgres.jit}); 1 access node + ${r.topology.dataNodes} data nodes on loopback, ` +
      `${r.topology.shards} shards, made by hypershard (spec → generateMigrations → apply)` +
      (r.topology.latencyMs > 0 ? `; the access node reaches each data node through a userspace TCP proxy adding ${r.topology.latencyMs} ms each way.` : '; no added latency.'),
    `Single node: a plain table on the access node (same server), same indexes: (tags_id, time DESC), (time DESC).` +
      ` Distributed: per-shard lastpoint views ${r.topology.lastpoint === true ? 'on' : 'off'}; node views ${r.topology.nodeViews === true ? 'on (one remote query per data node)' : 'off'}; tags ${r.topology.referenceTags === true ? 'a reference table on every data node' : 'a plain table on the access node'}` +
      `${r.topology.routerReads === true ? '; the product (hypershard/pg) with ingest: single-shard SELECTs answered by their data node (router reads)' : ''}.`,
    `Data: ${r.data.hosts} hosts × every ${r.data.intervalSeconds} s × ${r.data.hours} h = ${fmtInt(r.data.rows)} rows (${r.data.from} .. ${r.data.to}, seed ${r.data.seed}).`,
    `Machine: ${describeMachine(r.machine)}, ${r.loadAverageAtEnd} at end, at most ${r.loadAverageMax} during the run.`,
    `Median of ${r.runs} runs after a warm-up, single and distributed interleaved${r.backToBack === true ? ', each timed right after an untimed run of the same statement on the same session (steady state)' : ''}; ratio = distributed / single (below 1: distributed is faster). ` +
      `Rows shipped: rows the data nodes sent, from EXPLAIN ANALYZE of the distributed statement (each foreign scan's actual rows plus the rows its access-node filter removed, × loops); ` +
      `verdict: hypershard's audit of that plan (\`complete\`: no row-level work left on the access node). Generated ${r.generatedAt}.`,
    '',
    '## Queries',
    '',
    'Forms: **users-bucket** is TSBS\'s SQL as people write it on vanilla PostgreSQL (`date_trunc` buckets, `now() - interval` windows, hosts by a sub-select on `tags`); ' +
      '**shippable** follows hypershard\'s advice (`date_bin` with a literal origin, time bounds and host ids as parameters); ' +
      '**per-shard** also aggregates per host first (`GROUP BY tags_id, …`, which every shard can finish) and combines on the access node ' +
      '(lastpoint: each host\'s last time per shard, then its row by key); **rewritten** is users-bucket as hypershard\'s rewriter alone turns it; ' +
      '**product** is users-bucket sent through a client of `hypershard/pg`\'s Pool (rewritten, and outside a transaction the keys of a sub-select on a reference table read first, that round trip timed, as the gateway does). The same statement runs on both targets, both on that client\'s session (equally idle between rounds). ' +
      'The data ends when loading began, and `now()` moves on during the run, so the users-bucket windows hold fewer rows in later rounds; ' +
      'both targets run each round back to back, and the answers are compared in one transaction (one `now()`).',
    '',
    ...markdownTable(queryTable(r)),
    '',
    ...markdownTable(summaryTable(r)),
    '',
    r.mismatches === 0 ? 'Every distributed answer equals the single-node answer.' : `**${r.mismatches} distributed answers differ from the single node's.**`,
    '',
    '## Ingest',
    '',
    ...markdownTable(ingestTable(r)),
    '',
    `COPY loads the first ${fmtInt(r.ingest.results.find((x) => x.method === 'COPY')?.rows)} rows, batched INSERT the rest, into each target. ` +
      `The generator alone makes ${fmtInt(r.ingest.generatorRowsPerSecond)} CSV rows/s. Peak memory while loading: ${r.ingest.memoryPeak.rssMiB} MiB RSS, ${r.ingest.memoryPeak.heapUsedMiB} MiB heap.`,
    '',
    '## Why queries are not pushdown-complete',
    '',
    'From the audit of each distributed plan: every error finding, with the query types it was found in and its message for the first of them. ' +
      'Per-query findings, the access node\'s plan nodes and the Remote SQL are in the JSON.',
    '',
    ...whyIncomplete(r.queries),
    '',
    'Rows shipped counts the rows the foreign scans read (returned or filtered on the access node). A remote scan fetches `fetch_size` rows per round trip, ' +
      'so where the access node stops reading early (a LIMIT above a parameterized scan, as in lastpoint users-bucket) the data nodes send more than that; ' +
      'the latency runs measure the bytes they actually sent.',
    '',
    `Wall time: ${Object.entries(r.wallSeconds).map(([k, v]) => `${k} ${v.toFixed(1)} s`).join(', ')}.`,
    ...(r.proxy === undefined
      ? []
      : [
          `Latency proxies: ${r.proxy.connections} connections, ${fmtInt(r.proxy.roundTrips)} requests, ${fmtBytes(r.proxy.bytesUp)} to the data nodes, ${fmtBytes(r.proxy.bytesDown)} back. ` +
            'Round trips count how often a connection\'s traffic turned towards a data node; per query, bytes and round trips are medians per distributed run.',
        ]),
    '',
  ];
  return lines.join('\n');
}

/** One line per (form, finding code): which query types have it, and why (the first message). */
function whyIncomplete(queries: readonly QueryMeasurement[]): string[] {
  const lines: string[] = [];
  for (const form of FORMS) {
    const qs = queries.filter((q) => q.form === form && q.audit.verdict !== 'complete');
    if (qs.length === 0) continue;
    lines.push(`**${form}**: ${qs.length} of ${queries.filter((q) => q.form === form).length} not complete`, '');
    const byCode = new Map<string, { types: string[]; message: string }>();
    for (const q of qs) {
      if (q.audit.error !== undefined) byCode.set(`audit failed`, { types: [...(byCode.get('audit failed')?.types ?? []), q.type], message: q.audit.error });
      for (const f of q.audit.findings.filter((x) => x.severity === 'error')) {
        const entry = byCode.get(f.code) ?? { types: [], message: f.message };
        if (!entry.types.includes(q.type)) entry.types.push(q.type);
        byCode.set(f.code, entry);
      }
    }
    for (const [code, { types, message }] of byCode) lines.push(`- \`${code}\` in ${types.join(', ')}: ${message}`);
    lines.push('');
  }
  lines.pop(); // the caller separates sections
  return lines.length === 0 ? ['All queries are pushdown-complete.'] : lines;
}

export function toText(r: BenchmarkReport): string {
  if (r.queries.length === 0) return textTable(ingestTable(r));
  return [
    textTable(queryTable(r)),
    '',
    textTable(summaryTable(r)),
    '',
    textTable(ingestTable(r)),
    '',
    r.mismatches === 0 ? 'answers: all equal' : `ANSWERS DIFFER for ${r.mismatches} queries`,
  ].join('\n');
}
