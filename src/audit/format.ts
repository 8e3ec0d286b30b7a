/** Audit results for people (text), for pull-request comments (Markdown) and for tools (JSON). */
import type { AuditedQuery } from './audit.js';
import { SEVERITY_RANK, type Severity } from './findings.js';

export type AuditFormat = 'text' | 'json' | 'markdown';

/** The JSON document `hypershard audit --format json` prints (documented in the README). */
export function auditJson(queries: readonly AuditedQuery[]): unknown {
  return {
    queries: queries.map((q) => ({
      sql: q.sql,
      complete: q.complete,
      rowsShipped: q.rowsShipped,
      rowsShippedEstimated: q.rowsShippedEstimated,
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

const count = (n: number, what: string): string => `${n.toLocaleString('en-US')} ${what}${n === 1 ? '' : 's'}`;

export function auditText(queries: readonly AuditedQuery[]): string {
  return queries
    .map((q) => {
      const lines = [
        `${q.complete ? 'COMPLETE' : 'INCOMPLETE'}  ${oneLine(q.sql)}`,
        `  ${count(q.shards.length, 'shard')} on ${q.dataNodes.join(', ') || 'no data node'}; ${count(q.rowsShipped, 'row')} shipped${q.rowsShippedEstimated ? ' (estimate)' : ''}${q.executionMs === undefined ? '' : `; ${q.executionMs.toFixed(1)} ms`}`,
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

export function auditMarkdown(queries: readonly AuditedQuery[]): string {
  const rows = queries.map(
    (q, i) =>
      `| ${i + 1} | ${q.complete ? '✅ complete' : '❌ incomplete'} | ${q.shards.length} | ${q.rowsShipped.toLocaleString('en-US')}${q.rowsShippedEstimated ? ' (est.)' : ''} | ${q.findings.filter((f) => f.severity !== 'info').map((f) => `\`${f.code}\``).join(' ') || '—'} |`,
  );
  const details = queries.map((q, i) => {
    const findings = q.findings.map((f) => `- **${f.severity}** \`${f.code}\`: ${escapeMd(f.message)}  \n  _Fix:_ ${escapeMd(f.fix)}`);
    return [`### ${i + 1}. ${q.complete ? 'complete' : 'incomplete'}`, '', '```sql', q.sql, '```', '', `Access node: ${q.accessNodeWork.join(' → ') || 'nothing'}`, '', ...findings].join('\n');
  });
  return ['## hypershard pushdown audit', '', '| # | verdict | shards | rows shipped | findings |', '|---|---|---:|---:|---|', ...rows, '', ...details].join('\n');
}

/** The most severe finding across queries, for `--fail-on`. */
export function worstSeverity(queries: readonly AuditedQuery[]): Severity | undefined {
  let worst: Severity | undefined;
  for (const f of queries.flatMap((q) => q.findings)) if (worst === undefined || SEVERITY_RANK[f.severity] > SEVERITY_RANK[worst]) worst = f.severity;
  return worst;
}

function oneLine(sql: string): string {
  const flat = sql.replace(/\s+/g, ' ').trim();
  return flat.length > 120 ? `${flat.slice(0, 117)}...` : flat;
}

function escapeMd(text: string): string {
  return text.replaceAll('|', '\\|');
}
