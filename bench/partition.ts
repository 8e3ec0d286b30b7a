/**
 * How long a statement on the access node waits on a data node behind a real network partition,
 * for several sets of the FDW servers' libpq options (the figures behind `fdw.timeouts`' defaults).
 * The data node runs in its own network namespace behind a veth pair; the cut drops packets
 * silently (test/support/netns.ts). Needs root.
 *
 *   idle        the session used dn2 before (postgres_fdw keeps the connection), then a query on
 *               dn2 after the cut: data is sent and never acknowledged (tcp_user_timeout)
 *   waiting     a query is waiting on dn2's answer (a remote pg_sleep) when the cut happens:
 *               nothing is in flight, only keepalives notice
 *   new         a new session's first query on dn2 after the cut: connect_timeout
 *   timeout     as `waiting`, but the application set statement_timeout = 10 s: the cancel
 *               itself has to reach the node
 *   next        after that timeout, how long the same session takes to answer `SELECT 1` (the
 *               access node's backend first cleans up its connection to the cut-off node)
 *   blip N s    the cut lasts N s during a 40-s remote statement, then heals: does it survive?
 *
 * Each figure is the seconds from the cut to the statement's error (the application set no
 * statement_timeout), capped at --cap seconds.
 *
 * Run: npx jiti bench/partition.ts [--system] [--cap 120]
 * Writes bench/results/partition-pg<major>.json and .md.
 */
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { writeExampleSpec, writeSecrets } from '../test/support/spec.js';
import { createVeth, moveIntoVeth, vethUnavailable, type Veth } from '../test/support/netns.js';
import { generateMigrations } from '../src/migrations/files.js';
import { apply } from '../src/nodes/apply.js';
import { clientConfig } from '../src/nodes/connect.js';
import { planLayout } from '../src/plan/layout.js';
import { loadSpec } from '../src/spec/load.js';
import { quoteIdent, quoteLiteral } from '../src/sql/quote.js';
import { SYSTEM_BIN_DIR, withBenchCluster } from './lib/cluster.js';
import { describeMachine, machineInfo } from './lib/machine.js';
import { writeResults } from './lib/results.js';

const OPTION_KEYS = ['connect_timeout', 'keepalives', 'keepalives_idle', 'keepalives_interval', 'keepalives_count', 'tcp_user_timeout'] as const;

/** The option sets compared. `none` leaves libpq's and the kernel's defaults. */
const CONFIGS: readonly { name: string; options: Readonly<Partial<Record<(typeof OPTION_KEYS)[number], string>>> }[] = [
  { name: 'none (libpq and kernel defaults)', options: {} },
  { name: 'connect 10 s, keepalives 10/5/3, tcp_user_timeout 30 s', options: { connect_timeout: '10', keepalives: '1', keepalives_idle: '10', keepalives_interval: '5', keepalives_count: '3', tcp_user_timeout: '30000' } },
  { name: 'connect 10 s, keepalives 10/5/3, tcp_user_timeout 20 s', options: { connect_timeout: '10', keepalives: '1', keepalives_idle: '10', keepalives_interval: '5', keepalives_count: '3', tcp_user_timeout: '20000' } },
  { name: 'connect 5 s, keepalives 3/2/3, tcp_user_timeout 10 s', options: { connect_timeout: '5', keepalives: '1', keepalives_idle: '3', keepalives_interval: '2', keepalives_count: '3', tcp_user_timeout: '10000' } },
];
const BLIPS_S = [5, 15, 25];

interface Row {
  readonly config: string;
  readonly idle: number | null;
  readonly waiting: number | null;
  readonly new: number | null;
  readonly timeout: number | null;
  readonly next: number | null;
  readonly blips: readonly { readonly seconds: number; readonly survived: boolean }[];
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { system: { type: 'boolean', default: false }, cap: { type: 'string', default: '120' } } });
  const cap = Number(values.cap) * 1000;
  const why = await vethUnavailable();
  if (why !== undefined) throw new Error(`cannot measure a partition here: ${why}`);
  const machine = machineInfo();
  await withBenchCluster({ dataNodes: 2, handleSignals: true, postgres: values.system ? { kind: 'system', binDir: SYSTEM_BIN_DIR } : { kind: 'embedded' }, onStep: (m) => process.stderr.write(`${m}\n`) }, async (dev, workDir) => {
    const veth = await createVeth();
    try {
      const dn2Url = await moveIntoVeth(dev, `${workDir}/cluster`, 'dn2', veth);
      const specDir = `${workDir}/spec`;
      const specPath = await writeExampleSpec(
        { label: 'bench', major: dev.postgres.version, accessNode: dev.accessNode, dataNodes: [dev.dataNodes[0]!, { name: 'dn2', url: dn2Url }], workDir, stop: async () => undefined },
        specDir,
      );
      await writeSecrets(specDir);
      const { spec, file } = await loadSpec(specPath);
      await generateMigrations(spec, file);
      const applied = await apply(spec, file);
      if (!applied.ok) throw new Error(`apply failed: ${JSON.stringify(applied.nodes)}`);
      const servers = planLayout(spec).servers.filter((s) => s.dataNode === 'dn2').map((s) => s.name);
      const server = servers[0]!;
      // A remote statement that waits: a view on dn2 that sleeps, read through one of its servers.
      await run(dn2Url, `CREATE VIEW _hypershard.partition_sleep AS SELECT pg_sleep(s) IS NULL AS slept, s FROM (VALUES (600), (40)) AS v(s);
                         GRANT SELECT ON _hypershard.partition_sleep TO hypershard_fdw`);
      await run(dev.accessNode.url, `CREATE FOREIGN TABLE _hypershard.partition_sleep (slept boolean, s int) SERVER ${quoteIdent(server)} OPTIONS (schema_name '_hypershard', table_name 'partition_sleep')`);
      const rows: Row[] = [];
      for (const config of CONFIGS) {
        await setOptions(dev.accessNode.url, servers, config.options);
        process.stderr.write(`${config.name}\n`);
        const idle = await measure(dev.accessNode.url, veth, cap, { warm: 'SELECT count(*) FROM metrics', statement: 'SELECT count(*) FROM metrics', cutAfterMs: 0 });
        const waiting = await measure(dev.accessNode.url, veth, cap, { warm: 'SELECT count(*) FROM metrics', statement: 'SELECT * FROM _hypershard.partition_sleep WHERE s = 600', cutAfterMs: 2_000 });
        const fresh = await measure(dev.accessNode.url, veth, cap, { statement: 'SELECT count(*) FROM metrics', cutAfterMs: 0 });
        let next: number | null = null;
        const timeout = await measure(dev.accessNode.url, veth, cap, {
          warm: "SET statement_timeout = '10s'",
          statement: 'SELECT * FROM _hypershard.partition_sleep WHERE s = 600',
          cutAfterMs: 2_000,
          after: async (client) => {
            const started = performance.now();
            const answered = await Promise.race([client.query('SELECT 1').then(() => true, () => true), new Promise<boolean>((r) => setTimeout(() => r(false), cap))]);
            next = answered ? (performance.now() - started) / 1000 : null;
          },
        });
        const blips = [];
        for (const seconds of BLIPS_S) blips.push({ seconds, survived: await blip(dev.accessNode.url, veth, seconds) });
        const row = { config: config.name, idle, waiting, new: fresh, timeout, next, blips };
        process.stderr.write(`  ${JSON.stringify(row)}\n`);
        rows.push(row);
      }
      const shown = (s: number | null): string => (s === null ? `> ${cap / 1000}` : s.toFixed(1));
      const md = [
        `# Partition: seconds from the cut to the statement's error (PostgreSQL ${dev.postgres.version})`,
        '',
        describeMachine(machine),
        '',
        `| FDW server options | idle connection, then a query | query waiting on the node | new session | waiting, statement_timeout 10 s | then SELECT 1 on that session | ${BLIPS_S.map((b) => `${b}-s blip`).join(' | ')} |`,
        `|---|---:|---:|---:|---:|---:|${BLIPS_S.map(() => '---').join('|')}|`,
        ...rows.map((r) => `| ${r.config} | ${shown(r.idle)} | ${shown(r.waiting)} | ${shown(r.new)} | ${shown(r.timeout)} | ${shown(r.next)} | ${r.blips.map((b) => (b.survived ? 'survives' : 'fails')).join(' | ')} |`),
        '',
      ].join('\n');
      const base = await writeResults(`partition-pg${dev.postgres.version}`, { postgres: dev.postgres.version, capSeconds: cap / 1000, machine, rows }, md);
      process.stdout.write(`${md}\nwritten: ${base}.{json,md}\n`);
    } finally {
      // dn2 keeps its namespace alive until withBenchCluster stops it; the veth pair goes with it.
      await veth.heal().catch(() => undefined);
      await veth.remove();
    }
  });
}

async function run(url: string, sql: string): Promise<void> {
  const client = new pg.Client(clientConfig(url));
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

async function setOptions(accessUrl: string, servers: readonly string[], options: Readonly<Record<string, string>>): Promise<void> {
  const client = new pg.Client(clientConfig(accessUrl));
  await client.connect();
  try {
    for (const server of servers) {
      const { rows } = await client.query<{ opts: string[] | null }>('SELECT srvoptions AS opts FROM pg_foreign_server WHERE srvname = $1', [server]);
      const present = new Set((rows[0]?.opts ?? []).map((o) => o.slice(0, o.indexOf('='))));
      const changes = [
        ...OPTION_KEYS.filter((k) => present.has(k) && options[k] === undefined).map((k) => `DROP ${k}`),
        ...Object.entries(options).map(([k, v]) => `${present.has(k) ? 'SET' : 'ADD'} ${k} ${quoteLiteral(v)}`),
      ];
      if (changes.length > 0) await client.query(`ALTER SERVER ${quoteIdent(server)} OPTIONS (${changes.join(', ')})`);
    }
  } finally {
    await client.end();
  }
}

/**
 * Seconds from the cut to the statement's error (null: still waiting at the cap). The session is
 * warmed first when asked (so postgres_fdw holds a connection), the cut happens `cutAfterMs` after
 * the statement starts (0: before it), and the link is healed before returning.
 */
async function measure(
  accessUrl: string,
  veth: Veth,
  capMs: number,
  step: { warm?: string; statement: string; cutAfterMs: number; after?: (client: pg.Client) => Promise<void> },
): Promise<number | null> {
  const client = new pg.Client(clientConfig(accessUrl));
  client.on('error', () => undefined);
  await client.connect();
  const pid = (await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
  try {
    if (step.warm !== undefined) await client.query(step.warm);
    let cutAt = 0;
    if (step.cutAfterMs === 0) {
      await veth.cut();
      cutAt = performance.now();
    } else {
      setTimeout(() => void veth.cut().then(() => (cutAt = performance.now())), step.cutAfterMs);
    }
    const outcome = await Promise.race([
      client.query(step.statement).then(
        () => 'answered' as const,
        () => 'error' as const,
      ),
      new Promise<'cap'>((resolve) => setTimeout(() => resolve('cap'), capMs + step.cutAfterMs)),
    ]);
    const seconds = (performance.now() - cutAt) / 1000;
    if (outcome === 'error') await step.after?.(client);
    return outcome === 'error' ? seconds : null;
  } finally {
    await veth.heal();
    // A backend still waiting goes now that the link is back (or is terminated).
    await run(accessUrl, `SELECT pg_terminate_backend(${pid})`).catch(() => undefined);
    await client.end().catch(() => undefined);
    await new Promise((r) => setTimeout(r, 1_000));
  }
}

/** A 40-s remote statement with the link cut for `seconds` in the middle: true if it still answers. */
async function blip(accessUrl: string, veth: Veth, seconds: number): Promise<boolean> {
  const client = new pg.Client(clientConfig(accessUrl));
  client.on('error', () => undefined);
  await client.connect();
  try {
    await client.query('SELECT count(*) FROM metrics');
    const query = client.query('SELECT * FROM _hypershard.partition_sleep WHERE s = 40').then(
      () => true,
      () => false,
    );
    await new Promise((r) => setTimeout(r, 3_000));
    await veth.cut();
    await new Promise((r) => setTimeout(r, seconds * 1000));
    await veth.heal();
    return await query;
  } finally {
    await veth.heal();
    await client.end().catch(() => undefined);
  }
}

await main();
