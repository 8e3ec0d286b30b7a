/** `demo`: the main job in one command, rendered for people. */
import type { Command } from 'commander';
import { runDemo, type DemoConnection, type DemoQueryResult, type DemoReport } from '../../demo/runDemo.js';
import { plural } from '../../plural.js';
import { progressBar, type Progress } from '../progress.js';
import { command, EXIT, json, out } from '../run.js';
import { table } from '../table.js';
import { positiveInt, postgresSource, type PostgresFlags } from './dev.js';

export function registerDemoCommand(program: Command): void {
  program
    .command('demo')
    .description('start an embedded cluster, create a distributed hypertable, load device metrics, query it, tear it down')
    .option('--data-nodes <n>', 'number of data nodes', '2')
    .option('--devices <n>', 'devices sending metrics', '100')
    .option('--hours <n>', 'hours of metrics, one row per device every 10 s', '24')
    .option('--postgres <kind>', 'embedded (PostgreSQL 18 from npm) or system', 'embedded')
    .option('--bin-dir <dir>', 'with --postgres system: the PostgreSQL bin folder')
    .option('--keep <dir>', 'keep the cluster running in <dir> (stop it with `hypershard dev down --dir <dir>/cluster`)')
    .option('--json', 'print the report as JSON')
    .action(
      command(async (opts: PostgresFlags & { dataNodes: string; devices: string; hours: string; keep?: string; json?: boolean }) => {
        let bar: Progress | undefined;
        const report = await runDemo({
          dataNodes: positiveInt('--data-nodes', opts.dataNodes),
          devices: positiveInt('--devices', opts.devices),
          hours: positiveInt('--hours', opts.hours),
          postgres: postgresSource(opts),
          ...(opts.keep === undefined ? {} : { dir: opts.keep, keep: true }),
          onEvent: (event) => {
            if (event.type === 'step') process.stderr.write(`» ${event.message}\n`);
            else if (event.type === 'load-start') {
              process.stderr.write(`» loading ${event.total.toLocaleString('en-US')} rows through the access node\n`);
              bar = progressBar(event.total, '  rows', 'rows');
            } else {
              bar?.update(event.done);
              if (event.done >= event.total) bar?.stop();
            }
          },
        });
        if (opts.json === true) json(report);
        else out(renderReport(report));
        return EXIT.ok;
      }),
    );
}

function renderReport(report: DemoReport): string {
  const lines = [
    '',
    `Cluster: ${report.cluster.postgres}, access node + ${report.cluster.dataNodes.join(', ')}`,
    `Applied: ${report.apply.nodes.map((n) => `${n.node} ${n.status}`).join(', ')}`,
    `Loaded ${report.load.rows.toLocaleString('en-US')} rows through the access node in ${report.load.seconds.toFixed(1)} s (${report.load.rowsPerSecond.toLocaleString('en-US')} rows/s)`,
  ];
  for (const q of report.queries) lines.push('', ...renderQuery(q));
  if (report.cluster.connect !== undefined) lines.push('', ...renderConnection(report.cluster.connect, report.cluster.postgres));
  return lines.join('\n');
}

/** How to use the cluster the demo left running, and how to stop it. */
function renderConnection(c: DemoConnection, postgres: string): string[] {
  const access = c.nodes.find((n) => n.role === 'access');
  return [
    `The cluster is still running (${postgres}). Connect as the superuser postgres (no password on loopback):`,
    ...table(['node', 'role', 'url'], c.nodes.map((n) => [n.name, n.role === 'access' ? 'access node (applications connect here)' : 'data node', n.url]))
      .split('\n')
      .map((l) => `  ${l}`),
    '',
    `  psql ${access?.url ?? ''} -c 'SELECT device_id, max(cpu) FROM metrics GROUP BY device_id LIMIT 5'`,
    '',
    'Roles of the spec (created on every node):',
    ...c.roles.map((r) =>
      r.login
        ? `  ${r.name}: PGPASSWORD="$(cat ${r.passwordFile ?? '<its secret>'})" psql ${r.url ?? ''}`
        : `  ${r.name}: no login (grant it to a login role)`,
    ),
    'Through the gateway, every client (psql, Grafana, Python, JDBC) gets the rewrites (docs/gateway.md):',
    `  ${c.gateway.command}`,
    `  ${c.gateway.passwordFile === undefined ? '' : `PGPASSWORD="$(cat ${c.gateway.passwordFile})" `}psql ${c.gateway.url}   # from another shell`,
    'Secrets (files, mode 0600, referenced by the spec):',
    ...c.secrets.map((s) => `  ${s.file}: password of ${s.of}`),
    `Spec: ${c.specFile}; try hypershard status -c ${c.specFile}, or hypershard query -c ${c.specFile} -q '…'`,
    `Stop it and remove its data: ${c.stop}`,
  ];
}

function renderQuery(q: DemoQueryResult): string[] {
  const columns = Object.keys(q.rows[0] ?? {});
  const shown = q.rows.slice(0, 5);
  const answer =
    q.rows.length === 0
      ? '(no rows)'
      : table(columns, shown.map((r) => columns.map((c) => format(r[c])))) + (q.rows.length > shown.length ? `\n… ${q.rows.length} rows in all` : '');
  const byNode = new Map<string, (typeof q.audit.foreignScans)[number][]>();
  for (const scan of q.audit.foreignScans) byNode.set(scan.dataNode, [...(byNode.get(scan.dataNode) ?? []), scan]);
  const work = [...byNode].map(([node, scans]) =>
    `  ${node}: ${scans
      .map((s) => `shard ${s.tables.map((t) => t.shardIndex ?? t.name).join('+')} ${s.kind}${s.pushed.length === 0 ? '' : ` (${s.pushed.join(', ')})`}, ${rowsBack(s)}`)
      .join('; ')}`,
  );
  const shipped = `${q.audit.rowsShippedEstimated ? 'about ' : ''}${plural(q.audit.rowsShipped, 'row')}`;
  const findings = q.audit.findings.filter((f) => f.severity !== 'info').map((f) => `  ${f.severity} ${f.code}: ${f.message}\n    fix: ${f.fix}`);
  const r = q.rewritten;
  const rewritten =
    r === undefined
      ? []
      : [
          '',
          `Rewritten by hypershard (${[...new Set(r.rewrites.map((w) => w.kind))].join(', ')}): ${r.ms.toFixed(1)} ms, pushdown ${r.audit.complete ? 'complete' : 'incomplete'}, ` +
            `${r.audit.rowsShippedEstimated ? 'about ' : ''}${plural(r.audit.rowsShipped, 'row')} shipped, ${r.sameAnswer ? 'same answer' : 'DIFFERENT ANSWER'}`,
          ...r.rewrites.map((w) => `  ${w.kind}: ${w.detail}`),
        ];
  return [
    `■ ${q.title}  (${q.ms.toFixed(1)} ms)`,
    ...q.sql.split('\n').map((l) => `  ${l}`),
    '',
    answer,
    '',
    'Where the work ran:',
    ...work,
    `  access node: ${q.audit.accessNodeWork.join(' → ') || 'nothing'}; ${shipped} shipped in all`,
    `Pushdown: ${q.audit.complete ? 'complete' : 'incomplete'}`,
    ...findings,
    ...rewritten,
  ];
}

/** Rows a shard sent; a Limit that stopped the scan early used fewer than postgres_fdw fetched. */
function rowsBack(s: DemoQueryResult['audit']['foreignScans'][number]): string {
  if (s.rowsUsed >= s.rows) return `${plural(s.rows, 'row')} back`;
  return `about ${plural(s.rows, 'row')} back (fetched in batches of fetch_size rows; the Limit used ${s.rowsUsed.toLocaleString('en-US')})`;
}

function format(value: unknown): string {
  if (value instanceof Date) return value.toISOString().replace('.000Z', 'Z');
  if (value === null) return 'NULL';
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'bigint' || typeof value === 'boolean') return value.toString();
  return JSON.stringify(value) ?? 'undefined'; // json columns
}
