/**
 * oxlint with its type-aware rules (`.oxlintrc.json`) over the whole tree finds nothing. A unit
 * test, so that every run of the unit project (and the merge protocol, which runs it) catches a
 * finding before it lands; `npm run lint` prints the same findings in full.
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** The files git tracks (a work in progress not yet added is not judged), or the whole tree outside git. */
function trackedSources(): Promise<string[]> {
  return new Promise((resolve) =>
    execFile('git', ['ls-files', '-z', '--', '*.ts', '*.mts', '*.cts', '*.js', '*.mjs', '*.cjs'], { cwd: ROOT, maxBuffer: 16 * 1024 * 1024 }, (error, stdout) =>
      resolve(error === null ? stdout.split('\0').filter((f) => f !== '' && !/^(dist|node_modules|bench\/results|coverage)\//.test(f)) : []),
    ),
  );
}

describe('oxlint', () => {
  it('finds nothing in src, test, bench and scripts', async () => {
    const files = await trackedSources();
    const run = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) =>
      execFile(process.execPath, ['node_modules/oxlint/bin/oxlint', '--type-aware', '-f', 'unix', ...files], { cwd: ROOT, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) =>
        resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : 1, stdout, stderr }),
      ),
    );
    const findings = run.stdout.split('\n').filter((l) => /^\S+:\d+:\d+: /.test(l));
    expect(findings, run.stderr).toEqual([]);
    expect(run.code, `${run.stdout}\n${run.stderr}`).toBe(0);
  }, 180_000);
});
