/** Writes a benchmark's JSON and Markdown side by side under bench/results/. */
import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const RESULTS_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'results');

/** Returns the base path written (`<dir>/<name>`, with `.json` and `.md`). */
export async function writeResults(name: string, report: unknown, markdown: string, dir = RESULTS_DIR): Promise<string> {
  await fs.mkdir(dir, { recursive: true });
  const base = path.join(dir, name);
  // Write-then-rename: an interrupted run never leaves half a result next to a whole one.
  for (const [file, text] of [[`${base}.json`, JSON.stringify(report, null, 2) + '\n'], [`${base}.md`, markdown]] as const) {
    await fs.writeFile(`${file}.tmp`, text);
    await fs.rename(`${file}.tmp`, file);
  }
  return base;
}
