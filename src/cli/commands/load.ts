/** `load`: files or stdin into a distributed hypertable, routed straight to the data nodes, committed on all or none. */
import type { Command } from 'commander';
import { HypershardError } from '../../errors.js';
import { load, type LoadInput, type LoadResult } from '../../ingest/load.js';
import type { ClientSettings } from '../../ingest/settings.js';
import { loadSpec } from '../../spec/load.js';
import { integerFlag, timeoutFlag } from '../flags.js';
import { progressBar, type Progress } from '../progress.js';
import { command, EXIT, json, out } from '../run.js';
import { table } from '../table.js';

interface LoadFlags {
  config: string;
  table: string;
  format: string;
  header?: boolean;
  headerMatch?: boolean;
  columns?: string;
  delimiter?: string;
  null?: string;
  quote?: string;
  escape?: string;
  forceNull?: string;
  forceNotNull?: string;
  encoding?: string;
  timeZone?: string;
  dateStyle?: string;
  intervalStyle?: string;
  onePhase?: boolean;
  lanes: string;
  timeout: string;
  lockTimeout: string;
  json?: boolean;
}

const list = (value: string | undefined): string[] | undefined => (value === undefined ? undefined : value.split(',').map((c) => c.trim()).filter((c) => c !== ''));

export function registerLoadCommand(program: Command): void {
  program
    .command('load')
    .description('COPY files (or stdin) into a distributed hypertable straight to the data nodes owning each row, in parallel, committed on every node or none (two-phase commit)')
    .argument('[files...]', 'input files; none or - reads stdin')
    .option('-c, --config <file>', 'spec file', 'hypershard.yaml')
    .requiredOption('--table <name>', 'the hypertable, as named in the spec (optionally schema.name)')
    .option('--format <format>', 'text, csv or binary (COPY formats)', 'text')
    .option('--header', 'the first line names the columns and is skipped')
    .option('--header-match', 'like --header, and the names must equal the columns')
    .option('--columns <a,b,…>', 'the input\'s columns, in order (default: every column of the table)')
    .option('--delimiter <char>', 'field delimiter (default: tab for text, comma for csv)')
    .option('--null <string>', 'the string that means NULL (default: \\N for text, empty for csv)')
    .option('--quote <char>', 'csv quote character (default ")')
    .option('--escape <char>', 'csv escape character (default: the quote)')
    .option('--force-null <a,b,…>', 'csv: columns whose quoted null string is NULL too')
    .option('--force-not-null <a,b,…>', 'csv: columns whose null string is never NULL')
    .option('--encoding <name>', 'the input\'s encoding (default UTF8)')
    .option('--time-zone <tz>', 'TimeZone values are read in (default: the access node\'s for the spec\'s user)')
    .option('--date-style <style>', 'DateStyle values are read in, e.g. "ISO, DMY" (default: the access node\'s)')
    .option('--interval-style <style>', 'IntervalStyle values are read in (default: the access node\'s)')
    .option(
      '--one-phase',
      'allow data nodes without prepared transactions (max_prepared_transactions = 0): commit on each node in turn. ' +
        'If a node fails or the load is killed between two commits, the rows already committed on other nodes stay (a partial load), and nothing records which',
    )
    .option('--lanes <n>', 'connections per data node (at most one per shard there)', '2')
    .option('--timeout <ms>', 'bound on reaching each node and on each commit step', '10000')
    .option('--lock-timeout <ms>', 'bound on waiting for a shard that a rebalance is moving', '60000')
    .option('--json', 'print {"rows","seconds","rowsPerSecond","perNode"} and no progress')
    .action(
      command(async (files: string[], opts: LoadFlags) => {
        const format = opts.format;
        if (format !== 'text' && format !== 'csv' && format !== 'binary') throw new HypershardError('USAGE', `--format must be text, csv or binary, not ${JSON.stringify(format)}`);
        const inputs: LoadInput[] = (files.length === 0 ? ['-'] : files).map((f) => (f === '-' ? { name: 'stdin', source: process.stdin } : { name: f, source: f }));
        if (inputs.filter((i) => i.name === 'stdin').length > 1) throw new HypershardError('USAGE', 'stdin (-) can be read once');
        const settings: Partial<ClientSettings> = {
          ...(opts.timeZone === undefined ? {} : { timeZone: opts.timeZone }),
          ...(opts.dateStyle === undefined ? {} : { dateStyle: opts.dateStyle }),
          ...(opts.intervalStyle === undefined ? {} : { intervalStyle: opts.intervalStyle }),
          ...(opts.encoding === undefined ? {} : { clientEncoding: opts.encoding }),
        };
        const { spec, file } = await loadSpec(opts.config);
        let bar: Progress | undefined;
        let started = false;
        const columns = list(opts.columns);
        const forceNull = list(opts.forceNull);
        const forceNotNull = list(opts.forceNotNull);
        const result = await load(spec, file, {
          table: opts.table,
          inputs,
          format,
          ...(opts.header === true || opts.headerMatch === true ? { header: opts.headerMatch === true ? ('match' as const) : true } : {}),
          ...(columns === undefined ? {} : { columns }),
          ...(opts.delimiter === undefined ? {} : { delimiter: opts.delimiter }),
          ...(opts.null === undefined ? {} : { null: opts.null }),
          ...(opts.quote === undefined ? {} : { quote: opts.quote }),
          ...(opts.escape === undefined ? {} : { escape: opts.escape }),
          ...(forceNull === undefined ? {} : { forceNull }),
          ...(forceNotNull === undefined ? {} : { forceNotNull }),
          ...(opts.encoding === undefined ? {} : { encoding: opts.encoding }),
          settings,
          onePhase: opts.onePhase === true,
          lanesPerNode: integerFlag('--lanes', opts.lanes, 1),
          timeoutMs: timeoutFlag(opts.timeout),
          lockTimeoutMs: integerFlag('--lock-timeout', opts.lockTimeout, 1),
          ...(opts.json === true
            ? {}
            : {
                onProgress: (p) => {
                  if (!started) {
                    started = true;
                    bar = p.totalBytes === undefined ? undefined : progressBar(p.totalBytes, `load ${opts.table}`, 'bytes');
                  }
                  if (bar !== undefined) bar.update(p.bytes);
                  else process.stderr.write(`load ${opts.table}: ${p.rows} rows\r`);
                },
              }),
        }).finally(() => bar?.stop());
        if (opts.json === true) json({ rows: result.rows, seconds: round(result.seconds, 3), rowsPerSecond: Math.round(result.rowsPerSecond), perNode: result.perNode, commit: result.commit });
        else out(renderLoad(result));
        return result.commit.inDoubt.length === 0 ? EXIT.ok : EXIT.failed;
      }),
    );
}

const round = (n: number, digits: number): number => Math.round(n * 10 ** digits) / 10 ** digits;

export function renderLoad(result: LoadResult): string {
  const lines = [
    `Loaded ${result.rows.toLocaleString('en-US')} rows in ${result.seconds.toFixed(2)} s (${Math.round(result.rowsPerSecond).toLocaleString('en-US')} rows/s), committed ${describeCommit(result)}.`,
    '',
    table(['data node', 'rows'], Object.entries(result.perNode).sort(([a], [b]) => (a < b ? -1 : 1)).map(([node, rows]) => [node, rows.toLocaleString('en-US')])),
  ];
  for (const d of result.commit.inDoubt) lines.push(`${d.node}: COMMIT PREPARED ${d.gid} got no answer (${d.error}); the commit is recorded: run hypershard recover to finish it`);
  return lines.join('\n');
}

function describeCommit(result: LoadResult): string {
  switch (result.commit.mode) {
    case 'two-phase': return 'on every data node with two-phase commit';
    case 'single': return 'on its one data node';
    case 'one-phase': return 'node by node (one-phase)';
    case 'none': return '(nothing to write)';
  }
}
