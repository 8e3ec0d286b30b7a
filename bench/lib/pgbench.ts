/** pgbench, run as the benchmarks run it: no vacuum, no password prompt, a failed transaction a failure. */
import { spawn } from 'node:child_process';

/** Runs `pgbench -n …`, returning its output; throws with its stderr when it fails or a transaction failed. */
export function pgbench(args: readonly string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('pgbench', ['-n', ...args], { env: { ...process.env, PGPASSWORD: '' } });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8');
    child.stdout.on('data', (d: string) => (out += d));
    child.stderr.on('data', (d: string) => (err += d));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 && !/failed transactions: [1-9]/.test(out) ? resolve(out) : reject(new Error(`pgbench ${args.join(' ')} failed (${code}): ${err}${out}`))));
  });
}

/** The average latency pgbench reports, in ms. */
export function latencyMs(output: string): number {
  const m = /latency average = ([\d.]+) ms/.exec(output);
  if (m === null) throw new Error(`no latency in pgbench output: ${output}`);
  return Number(m[1]);
}
