/** `audit`: where each query's work runs, what blocks pushdown, and how to fix it. */
import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { audit, isFailedAudit } from '../../audit/audit.js';
import { auditJson, auditMarkdown, auditText, worstSeverity } from '../../audit/format.js';
import { SEVERITY_RANK } from '../../audit/findings.js';
import { splitStatements } from '../../audit/statements.js';
import { HypershardError } from '../../errors.js';
import { loadSpec } from '../../spec/load.js';
import { timeoutFlag } from '../flags.js';
import { command, EXIT, json, out } from '../run.js';

interface AuditFlags {
  config: string;
  query: string[];
  file: string[];
  analyze?: boolean;
  force?: boolean;
  format: string;
  failOn?: string;
  timeout: string;
}

const collect = (value: string, previous: string[]): string[] => [...previous, value];

export function registerAuditCommand(program: Command): void {
  program
    .command('audit')
    .description('explain queries on the access node and report what reaches the data nodes, what does not, and how to fix it')
    .option('-c, --config <file>', 'spec file', 'hypershard.yaml')
    .option('-q, --query <sql>', 'a query to audit (repeatable)', collect, [])
    .option('-f, --file <file>', 'a file of SQL statements (repeatable); without --query or --file, statements are read from stdin', collect, [])
    .option('--analyze', 'run the queries (EXPLAIN ANALYZE, BUFFERS) for actual rows; read-only statements only')
    .option('--force', 'with --analyze, also run statements that write (inside a transaction that is rolled back)')
    .option('--format <format>', 'text, json or markdown', 'text')
    .option('--fail-on <severity>', 'exit 1 when a finding is at least this severe: warning or error')
    .option('--timeout <ms>', 'bound on reaching the access node', '10000')
    .action(
      command(async (opts: AuditFlags) => {
        if (!['text', 'json', 'markdown'].includes(opts.format)) throw new HypershardError('USAGE', `--format must be text, json or markdown, not ${JSON.stringify(opts.format)}`);
        if (opts.failOn !== undefined && opts.failOn !== 'warning' && opts.failOn !== 'error') {
          throw new HypershardError('USAGE', `--fail-on must be warning or error, not ${JSON.stringify(opts.failOn)}`);
        }
        const statements = [...opts.query];
        for (const file of opts.file) statements.push(...(await splitStatements(await readFile(file, 'utf8'))));
        if (opts.query.length === 0 && opts.file.length === 0) {
          if (process.stdin.isTTY) throw new HypershardError('USAGE', 'give --query, --file, or statements on stdin');
          statements.push(...(await splitStatements(await readStdin())));
        }
        if (statements.length === 0) throw new HypershardError('USAGE', 'no statements to audit');
        const { spec, file } = await loadSpec(opts.config);
        const results = await audit(spec, file, statements, {
          analyze: opts.analyze === true,
          force: opts.force === true,
          timeoutMs: timeoutFlag(opts.timeout),
        });
        if (opts.format === 'json') json(auditJson(results));
        else out(opts.format === 'markdown' ? auditMarkdown(results) : auditText(results));
        // A statement that could not be explained (a node stopped answering, a syntax error) fails the run.
        if (results.some(isFailedAudit)) return EXIT.failed;
        const worst = worstSeverity(results);
        const threshold = opts.failOn as 'warning' | 'error' | undefined;
        return threshold !== undefined && worst !== undefined && SEVERITY_RANK[worst] >= SEVERITY_RANK[threshold] ? EXIT.failed : EXIT.ok;
      }),
    );
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
