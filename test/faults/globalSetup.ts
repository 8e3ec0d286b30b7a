/**
 * The fault suite's closing table: every case appends its summary line (as JSON) to one file;
 * after the run, the lines are printed as the table the lead's report uses.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';

export default function setup(project: TestProject): () => void {
  const dir = mkdtempSync(join(tmpdir(), 'hs-faults-'));
  const file = join(dir, 'summary.jsonl');
  project.provide('faultSummaryFile', file);
  return () => {
    let lines: string[] = [];
    try {
      lines = readFileSync(file, 'utf8').split('\n').filter((l) => l !== '');
    } catch {
      // no case ran
    }
    rmSync(dir, { recursive: true, force: true });
    if (lines.length === 0) return;
    const rows = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    const cell = (v: unknown): string => (v === undefined ? '-' : typeof v === 'number' && !Number.isInteger(v) ? v.toFixed(1) : typeof v === 'string' ? v : JSON.stringify(v));
    const table = [
      '| case | PostgreSQL | runs | rows acknowledged/found | seconds to a clear error | note |',
      '|---|---|---:|---:|---:|---|',
      ...rows.map((r) => `| ${cell(r.case)} | ${cell(r.source)} | ${cell(r.runs)} | ${r.rowsAcknowledged === undefined ? '-' : `${cell(r.rowsAcknowledged)}/${cell(r.rowsFound)}`} | ${cell(r.secondsToError)} | ${cell(r.note)} |`),
    ];
    process.stdout.write(`\nFault suite summary\n${table.join('\n')}\n`);
  };
}
