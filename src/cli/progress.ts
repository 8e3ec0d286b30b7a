/** Progress for long work: a bar on a terminal, a few plain lines otherwise. */
import cliProgress from 'cli-progress';

export interface Progress {
  update(done: number, extra?: Record<string, string | number>): void;
  stop(): void;
}

/**
 * A bar on a terminal. Elsewhere (CI logs, pipes, cron mail) a redrawn bar would print a line per
 * update, so it prints a plain line at each quarter of the work and one when it is done.
 */
export function progressBar(total: number, label: string, unit: string, stream: NodeJS.WriteStream = process.stderr): Progress {
  if (stream.isTTY) {
    const bar = new cliProgress.SingleBar(
      {
        format: `${label} [{bar}] {percentage}% | {value}/{total} ${unit} | {rate} ${unit}/s | ETA {eta_formatted}`,
        stream,
        hideCursor: true,
      },
      cliProgress.Presets.shades_classic,
    );
    const started = Date.now();
    bar.start(total, 0, { rate: 0 });
    return {
      update: (done) => bar.update(done, { rate: Math.round(done / Math.max((Date.now() - started) / 1000, 0.001)) }),
      stop: () => bar.stop(),
    };
  }
  const started = Date.now();
  const numbers = new Intl.NumberFormat('en-US');
  let quarter = 0;
  let finished = false;
  const rate = (done: number): string => `${numbers.format(Math.round(done / Math.max((Date.now() - started) / 1000, 0.001)))} ${unit}/s`;
  return {
    update: (done) => {
      if (finished) return;
      if (done >= total) {
        finished = true;
        stream.write(`${label.trim()}: ${numbers.format(done)} ${unit} in ${((Date.now() - started) / 1000).toFixed(1)} s (${rate(done)})\n`);
        return;
      }
      const reached = Math.floor((4 * done) / Math.max(total, 1));
      if (reached <= quarter) return;
      quarter = reached;
      stream.write(`${label.trim()}: ${25 * reached}% (${numbers.format(done)} of ${numbers.format(total)} ${unit}, ${rate(done)})\n`);
    },
    stop: () => undefined,
  };
}
