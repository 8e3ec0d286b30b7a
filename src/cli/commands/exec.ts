/** `exec`: SQL on every node or the chosen ones, with a result per node. */
import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { HypershardError } from '../../errors.js';
import { exec } from '../../ops/exec.js';
import type { ExecResult, NodeExecResult } from '../../ops/execResult.js';
import type { StatementResult } from '../../ops/runStatements.js';
import { loadSpec } from '../../spec/load.js';
import { integerFlag, timeoutFlag } from '../flags.js';
import { command, EXIT, json, out } from '../run.js';
import { table } from '../table.js';

interface ExecFlags {
  config: string;
  sql?: string;
  file?: string;
  node: string[];
  dataNodes?: boolean;
  accessNode?: boolean;
  transactional?: boolean;
  rows: string;
  timeout: string;
  json?: boolean;
}

const collect = (value: string, previous: string[]): string[] => [...previous, value];

export function registerExecCommand(program: Command): void {
  program
    .command('exec')
    .description('run SQL on every node (or the chosen ones) concurrently and report a result per node')
    .option('-c, --config <file>', 'spec file', 'hypershard.yaml')
    .option('--sql <sql>', 'the statements to run')
    .option('-f, --file <file>', 'a file of statements to run (split with PostgreSQL\'s parser)')
    .option('--node <name>', 'run on this node (repeatable); default: every node', collect, [])
    .option('--data-nodes', 'run on every data node')
    .option('--access-node', 'run on the access node')
    .option('--transactional', 'commit on every node or on none: two-phase commit when max_prepared_transactions > 0 on every node, else commit node by node (see docs/operations.md)')
    .option('--rows <n>', 'rows kept and shown per statement', '20')
    .option('--timeout <ms>', 'bound on reaching each node', '10000')
    .option('--json', 'machine-readable output')
    .action(
      command(async (opts: ExecFlags) => {
        if ((opts.sql === undefined) === (opts.file === undefined)) throw new HypershardError('USAGE', 'give exactly one of --sql and --file');
        const maxRows = integerFlag('--rows', opts.rows);
        const timeoutMs = timeoutFlag(opts.timeout);
        const text = opts.sql ?? (await readSqlFile(opts.file as string));
        const { spec, file } = await loadSpec(opts.config);
        const result = await exec(spec, file, text, {
          nodes: opts.node,
          dataNodes: opts.dataNodes === true,
          accessNode: opts.accessNode === true,
          transactional: opts.transactional === true,
          maxRows,
          timeoutMs,
        });
        if (opts.json === true) json(result);
        else out(renderExec(result));
        return result.ok ? EXIT.ok : EXIT.failed;
      }),
    );
}

async function readSqlFile(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    throw new HypershardError('USAGE', `cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`, { cause: error });
  }
}

export function renderExec(result: ExecResult): string {
  const lines = [table(['node', 'role', 'status', 'result'], result.nodes.map((n) => [n.node, n.role, n.status, summary(n)]))];
  for (const n of result.nodes) {
    for (const s of n.statements) {
      if (s.columns.length === 0) continue;
      lines.push('', `${n.node}: ${s.command}`, indent(rowsTable(s)));
    }
    if (n.error !== undefined) {
      const where = n.error.statementIndex === undefined ? '' : ` at statement ${n.error.statementIndex + 1}`;
      lines.push('', `${n.node} failed${where} (${n.error.phase}): ${n.error.message}`);
      if (n.error.statement !== undefined) lines.push(indent(n.error.statement));
    }
    if (n.reason !== undefined && n.status !== 'rolled-back' && n.status !== 'not-run') lines.push('', `${n.node}: ${n.reason}`);
  }
  if (result.transactional) {
    lines.push('', transactionLine(result));
    if (result.caveat !== undefined) lines.push(`Note: ${result.caveat}.`);
  }
  return lines.join('\n');
}

function summary(n: NodeExecResult): string {
  if (n.status === 'failed' && n.error !== undefined) return firstLine(n.error.message);
  if (n.status === 'not-run' || n.status === 'rolled-back' || n.status === 'in-doubt') return firstLine(n.reason ?? '');
  const tags = n.statements.map((s) => s.command);
  return tags.length <= 3 ? tags.join(', ') : `${tags.length} statements, last ${tags[tags.length - 1] ?? ''}`;
}

function transactionLine(result: ExecResult): string {
  const how = result.commit === undefined ? '' : ` (${result.commit} commit)`;
  if (result.ok) return `Committed on every node${how}.`;
  if (result.nodes.every((n) => n.status !== 'ok' && n.status !== 'in-doubt')) return `Nothing was committed on any node${how}.`;
  return `Not committed everywhere${how}: see each node's status.`;
}

function rowsTable(s: StatementResult): string {
  const body = table(
    s.columns,
    // One line per row: a multi-line value shows its newlines escaped.
    s.rows.map((r) => r.map((v) => (v === null ? 'NULL' : v.replace(/\r?\n/g, '\\n')))),
  );
  const more = s.truncated && s.rowCount !== null ? `\n(${s.rowCount - s.rows.length} more row${s.rowCount - s.rows.length === 1 ? '' : 's'})` : '';
  return `${body}\n(${s.rowCount ?? s.rows.length} row${s.rowCount === 1 ? '' : 's'})${more}`;
}

const firstLine = (text: string): string => text.split('\n')[0] ?? text;
const indent = (text: string): string => text.split('\n').map((l) => `  ${l}`).join('\n');
