/** Audit results for people (text), for pull-request comments (Markdown) and for tools (JSON). */
import { isFailedAudit, type AuditEntry, type AuditedQuery, type FailedAudit } from './audit.js';
import { SEVERITY_RANK, type Severity } from './findings.js';

export type AuditFormat = 'text' | 'json' | 'markdown';

/** The JSON document `hypershard audit --format json` prints (documented in the README). */
export function auditJson(entries: readonly AuditEntry[]): unknown {
  return {
    queries: entries.map((q) => (isFailedAudit(q) ? { sql: q.sql, label: q.label ?? null, error: q.error } : {
      sql: q.sql,
      label: q.label ?? null,
      complete: q.complete,
      rowsShipped: q.rowsShipped,
      rowsShippedEstimated: q.rowsShippedEstimated,
      rowsShippedAtLeast: q.rowsShippedAtLeast,
      rewriterCompletes: q.rewriterCompletes ?? null,
      analyzed: q.analyzed,
      executionMs: q.executionMs ?? null,
      dataNodes: q.dataNodes,
      shards: q.shards,
      foreignScans: q.foreignScans.map((s) => ({
        foreignTables: s.tables.map((t) => `${t.schema}.${t.name}`),
        server: s.server ?? null,
        dataNode: s.dataNode,
        kind: s.kind,
        pushed: s.pushed,
        localFilter: s.localFilter ?? null,
        rows: s.rows,
        async: s.async,
        remoteSql: s.remoteSql,
      })),
      accessNodeWork: q.accessNodeWork,
      findings: q.findings,
    })),
  };
}

/** Rows shipped, labelled: actual (EXPLAIN ANALYZE) or the planner's estimate (a lower bound where the access node filters). */
function shippedText(q: AuditedQuery, count: (n: number, what: string) => string): string {
  const basis = !q.rowsShippedEstimated ? 'actual' : q.rowsShippedAtLeast ? 'estimated, at least: the access node filters them' : 'estimated';
  return `${q.rowsShippedAtLeast ? 'at least ' : ''}${count(q.rowsShipped, 'row')} shipped (${basis})`;
}

const title = (q: { sql: string; label?: string }): string => (q.label === undefined ? oneLine(q.sql) : `${q.label}: ${oneLine(q.sql.replace(/^\s*(--[^\n]*\n|\/\*[\s\S]*?\*\/)\s*/, ''))}`);

function failedText(q: FailedAudit): string {
  return `NOT EXPLAINED  ${title(q)}\n  ERROR ${q.error.split('\n')[0] ?? ''}`;
}

const count = (n: number, what: string): string => `${n.toLocaleString('en-US')} ${what}${n === 1 ? '' : 's'}`;

export function auditText(entries: readonly AuditEntry[]): string {
  return entries
    .map((q) => {
      if (isFailedAudit(q)) return failedText(q);
      const lines = [
        `${q.complete ? 'COMPLETE' : 'INCOMPLETE'}  ${title(q)}`,
        `  ${count(q.shards.length, 'shard')} on ${q.dataNodes.join(', ') || 'no data node'}; ${shippedText(q, count)}${q.executionMs === undefined ? '' : `; ${q.executionMs.toFixed(1)} ms`}`,
        ...(q.rewriterCompletes === undefined ? [] : [`  rewritten by hypershard: ${q.rewriterCompletes ? 'complete' : 'still incomplete'}`]),
        `  access node: ${q.accessNodeWork.join(' → ') || 'nothing'}`,
        ...q.foreignScans.map(
          (s) =>
            `  ${s.dataNode} ${s.tables.map((t) => t.name).join('+')}: ${s.kind}${s.pushed.length > 0 ? ` [${s.pushed.join(', ')}]` : ''}${s.localFilter === undefined ? '' : ' + local filter'}${s.async ? ', async' : ''}, ${count(s.rows, 'row')}\n      ${s.remoteSql}`,
        ),
        ...q.findings.map((f) => `  ${f.severity.toUpperCase()} ${f.code}: ${f.message}\n      fix: ${f.fix}`),
      ];
      return lines.join('\n');
    })
    .join('\n\n');
}

export function auditMarkdown(entries: readonly AuditEntry[]): string {
  const rows = entries.map((q, i) =>
    isFailedAudit(q)
      ? `| ${i + 1} | ⚠️ not explained | — | — | ${escapeMd(q.error.split('\n')[0] ?? '')} |`
      : `| ${i + 1} | ${q.complete ? '✅ complete' : '❌ incomplete'} | ${q.shards.length} | ${q.rowsShippedAtLeast ? '≥ ' : ''}${q.rowsShipped.toLocaleString('en-US')}${q.rowsShippedEstimated ? ' (est.)' : ''} | ${q.findings.filter((f) => f.severity !== 'info').map((f) => `\`${f.code}\``).join(' ') || '—'} |`,
  );
  const details = entries.map((q, i) => {
    const heading = `### ${i + 1}. ${q.label === undefined ? '' : `${escapeMd(q.label)}: `}${isFailedAudit(q) ? 'not explained' : q.complete ? 'complete' : 'incomplete'}`;
    if (isFailedAudit(q)) return [heading, '', '```sql', q.sql, '```', '', `Error: ${escapeMd(q.error)}`].join('\n');
    const findings = q.findings.map((f) => `- **${f.severity}** \`${f.code}\`: ${escapeMd(f.message)}  \n  _Fix:_ ${escapeMd(f.fix)}`);
    return [heading, '', '```sql', q.sql, '```', '', `Access node: ${q.accessNodeWork.join(' → ') || 'nothing'}`, '', ...findings].join('\n');
  });
  return ['## hypershard pushdown audit', '', '| # | verdict | shards | rows shipped | findings |', '|---|---|---:|---:|---|', ...rows, '', ...details].join('\n');
}

/** The most severe finding across queries, for `--fail-on`; a statement that could not be explained counts as an error. */
export function worstSeverity(entries: readonly AuditEntry[]): Severity | undefined {
  if (entries.some(isFailedAudit)) return 'error';
  let worst: Severity | undefined;
  for (const f of entries.flatMap((q) => (isFailedAudit(q) ? [] : q.findings))) if (worst === undefined || SEVERITY_RANK[f.severity] > SEVERITY_RANK[worst]) worst = f.severity;
  return worst;
}

function oneLine(sql: string): string {
  const flat = sql.replace(/\s+/g, ' ').trim();
  return flat.length > 120 ? `${flat.slice(0, 117)}...` : flat;
}

function escapeMd(text: string): string {
  return text.replaceAll('|', '\\|');
}
