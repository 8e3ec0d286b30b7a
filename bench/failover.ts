/**
 * Where the seconds of a failover go: 4 writers insert single rows through the access node into
 * every shard; dn1's primary is killed (SIGKILL to every process) and `hypershard failover --node
 * dn1` is started at once, as an operator's script would; the seconds from the kill to the first
 * acknowledged write on one of dn1's shards, and each step of the command (its progress lines as
 * they arrive on stderr: start-up, probing, promotion, access node, spec, exit). Each round then
 * rebuilds a standby for the next one (`node rebuild`).
 *
 *   npx jiti bench/failover.ts [--system] [--rounds N] [--compare DIR]
 *
 * `--compare DIR` alternates rounds with the CLI built in another checkout (DIR/bin/hypershard.js),
 * e.g. the commit before a change: before and after side by side in one run, on one cluster.
 * Writes bench/results/failover-pg<major>.json and .md.
 */
import { spawn } from 'node:child_process';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type pg from 'pg';
import { readDevCluster, stopDevNode, type DevCluster } from '../src/dev/cluster.js';
import { writeDevSpec } from '../src/dev/devSpec.js';
import { rebuildStandby } from '../src/ha/rebuild.js';
import { generateMigrations } from '../src/migrations/files.js';
import { apply } from '../src/nodes/apply.js';
import { planLayout } from '../src/plan/layout.js';
import { loadSpec } from '../src/spec/load.js';
import { SYSTEM_BIN_DIR, withBenchCluster } from './lib/cluster.js';
import { describeMachine, machineInfo } from './lib/machine.js';
import { connect } from './lib/pg.js';
import { writeResults } from './lib/results.js';
import { median } from './lib/stats.js';

const { values } = parseArgs({
  options: {
    system: { type: 'boolean', default: false },
    rounds: { type: 'string', default: '3' },
    compare: { type: 'string' },
  },
});
const ROUNDS = Number(values.rounds);
const THIS_CLI = fileURLToPath(new URL('../bin/hypershard.js', import.meta.url));
const CLIS: readonly { readonly label: string; readonly bin: string }[] = [
  { label: 'this checkout', bin: THIS_CLI },
  ...(values.compare === undefined ? [] : [{ label: `compared (${resolve(values.compare)})`, bin: join(resolve(values.compare), 'bin/hypershard.js') }]),
];

/** Seconds from the kill to each point of one failover. */
interface Round {
  readonly cli: string;
  /** Each progress line of the command, then `output` (its result) and `exit`. */
  readonly steps: readonly { readonly step: string; readonly at: number }[];
  readonly firstWrite: number | null;
  readonly exitCode: number | null;
}

interface Write {
  /** When the statement was sent and when its outcome arrived. */
  readonly started: number;
  readonly at: number;
  readonly ok: boolean;
  readonly device: number;
}

/** Writers cycling over every device until stopped; `log` holds each outcome with its time. */
function startWriters(url: string, count: number): { readonly log: readonly Write[]; stop(): Promise<void> } {
  let running = true;
  let next = 0;
  const log: Write[] = [];
  const one = async (): Promise<void> => {
    let client: pg.Client | undefined;
    while (running) {
      const device = next++ % 20;
      let started = performance.now();
      try {
        client ??= await connect(url);
        started = performance.now();
        await client.query('INSERT INTO metrics (time, device_id, memory) VALUES (now(), $1, 1)', [device]);
        log.push({ started, at: performance.now(), ok: true, device });
      } catch {
        log.push({ started, at: performance.now(), ok: false, device });
        void client?.end().catch(() => undefined);
        client = undefined;
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    await client?.end().catch(() => undefined);
  };
  const done = Promise.all(Array.from({ length: count }, one));
  return {
    log,
    stop: async () => {
      running = false;
      await done;
    },
  };
}

/** Runs the CLI, timing each stderr progress line, the first stdout bytes and the exit, in seconds from `zero`. */
function timedCli(bin: string, args: readonly string[], zero: number): Promise<{ steps: { step: string; at: number }[]; code: number | null }> {
  const steps: { step: string; at: number }[] = [];
  const at = (): number => (performance.now() - zero) / 1000;
  return new Promise((done) => {
    const child = spawn(process.execPath, [bin, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stderr.on('data', (d: Buffer) => {
      // Steps named without the standby or address, so rounds line up.
      for (const line of d.toString().split('\n')) {
        if (line.trim() !== '') steps.push({ step: line.trim().replace(/\bdn\d+_s\d+\b/g, 'the standby').replace(/ \S+@\S+/g, ''), at: at() });
      }
    });
    child.stdout.once('data', () => steps.push({ step: 'result printed', at: at() }));
    const deadline = setTimeout(() => child.kill('SIGKILL'), 120_000);
    child.on('close', (code) => {
      clearTimeout(deadline);
      steps.push({ step: 'exit', at: at() });
      done({ steps, code });
    });
  });
}

/**
 * The first acknowledged write to one of `devices` sent after the old primary was gone
 * (`gone`), in seconds from `zero`: only the new primary can have acknowledged it. (A write
 * acknowledged just after the kill may have committed just before it: on a busy machine the
 * acknowledgement takes tens of milliseconds to reach the client through the access node.)
 */
function firstWriteBack(log: readonly Write[], devices: ReadonlySet<number>, zero: number, gone: number): number | null {
  const back = log.find((w) => w.ok && w.started > gone && devices.has(w.device));
  return back === undefined ? null : (back.at - zero) / 1000;
}

async function round(cluster: DevCluster, specFile: string, dn1Devices: ReadonlySet<number>, cli: (typeof CLIS)[number]): Promise<Round> {
  const { spec } = await loadSpec(specFile);
  // The server dn1's primary runs on: a promoted standby keeps its dev cluster name.
  const port = Number(new URL(spec.dataNodes.find((n) => n.name === 'dn1')!.url).port);
  const state = (await readDevCluster(cluster.dir))!;
  const primary = state.dataNodes.flatMap((n) => [n, ...n.standbys]).find((n) => n.port === port)!;
  const writers = startWriters(cluster.accessNode.url, 4);
  await new Promise((r) => setTimeout(r, 1_500));
  const killed = performance.now();
  await stopDevNode(cluster.dir, primary.name, 'kill');
  const gone = performance.now();
  const run = await timedCli(cli.bin, ['failover', '-c', specFile, '--node', 'dn1'], killed);
  const deadline = performance.now() + 20_000;
  while (firstWriteBack(writers.log, dn1Devices, killed, gone) === null && performance.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  await writers.stop();
  return { cli: cli.label, steps: run.steps, firstWrite: firstWriteBack(writers.log, dn1Devices, killed, gone), exitCode: run.code };
}

const machine = machineInfo();
const report = await withBenchCluster(
  {
    dataNodes: 2,
    standbys: 1,
    settings: { synchronous_commit: 'on' },
    postgres: values.system ? { kind: 'system', binDir: SYSTEM_BIN_DIR } : { kind: 'embedded' },
    handleSignals: true,
    onStep: (m) => process.stderr.write(`${m}\n`),
  },
  async (cluster) => {
    const specFile = await writeDevSpec(cluster);
    const { spec, file } = await loadSpec(specFile);
    await generateMigrations(spec, file);
    if (!(await apply(spec, file)).ok) throw new Error('apply failed');
    // Which devices' rows land on dn1 (the access node's hash partitioning decides).
    const access = await connect(cluster.accessNode.url);
    await access.query('INSERT INTO metrics (time, device_id, memory) SELECT now(), d, 0 FROM generate_series(0, 19) d');
    const layout = planLayout(spec);
    const { rows } = await access.query<{ device_id: number; shard: string }>('SELECT device_id, tableoid::regclass::text AS shard FROM metrics');
    await access.end();
    const dn1Devices = new Set(rows.filter((r) => layout.hypertables[0]!.shards.find((s) => r.shard.endsWith(s.table.name))?.dataNode === 'dn1').map((r) => r.device_id));
    const rounds: Round[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      for (const cli of i % 2 === 0 ? CLIS : [...CLIS].reverse()) {
        const r = await round(cluster, specFile, dn1Devices, cli);
        rounds.push(r);
        process.stderr.write(`round ${i + 1} (${cli.label}): first write ${r.firstWrite?.toFixed(2) ?? 'none'} s after the kill; ${r.steps.map((s) => `${s.step} ${s.at.toFixed(2)}`).join(', ')}\n`);
        // A new standby for the next round, copied from the new primary.
        const { spec: now } = await loadSpec(specFile);
        await rebuildStandby(now, specFile, 'dn1');
      }
    }
    return { generatedAt: new Date().toISOString(), postgres: `${cluster.postgres.version} (${cluster.postgres.source})`, major: cluster.postgres.version, machine, rounds };
  },
);

/** Median seconds from the kill per step, per CLI, steps in the order the first round saw them. */
const lines: string[] = [];
for (const cli of CLIS) {
  const mine = report.rounds.filter((r) => r.cli === cli.label);
  const steps = mine[0]?.steps.map((s) => s.step) ?? [];
  const at = (step: string): number => median(mine.flatMap((r) => r.steps.filter((s) => s.step === step).map((s) => s.at)));
  const first = median(mine.flatMap((r) => (r.firstWrite === null ? [] : [r.firstWrite])));
  lines.push(
    `### ${cli.label}: first write on dn1 ${first.toFixed(2)} s after the kill (median of ${mine.length}; ${mine.map((r) => r.firstWrite?.toFixed(2) ?? 'none').join(', ')})`,
    '',
    '| step (seconds from the kill to its start) | median s |',
    '|---|---:|',
    '| failover started | 0.00 |',
    ...steps.map((s) => `| ${s} | ${at(s).toFixed(2)} |`),
    '',
  );
}
const markdown = [
  '# Failover: seconds from the kill to the first write',
  '',
  `PostgreSQL ${report.postgres}; 1 access node + 2 data nodes on loopback, 1 synchronous standby each; 4 writers inserting single rows through the access node into every shard; dn1's primary killed with SIGKILL and \`hypershard failover --node dn1\` started at once.`,
  `Machine: ${describeMachine(report.machine)}. Generated ${report.generatedAt}.`,
  '',
  ...lines,
].join('\n');
const base = await writeResults(`failover-pg${report.major}`, report, markdown);
process.stdout.write(`${markdown}\nWrote ${base}.json and .md\n`);
