/** Progress for long work: a bar on a terminal, a line every few seconds otherwise (CI logs). */
import cliProgress from 'cli-progress';

export interface Progress {
  update(done: number, extra?: Record<string, string | number>): void;
  stop(): void;
}

export function progressBar(total: number, label: string, unit: string): Progress {
  if (process.stderr.isTTY) {
    const bar = new cliProgress.SingleBar(
      {
        format: `${label} [{bar}] {percentage}% | {value}/{total} ${unit} | {rate} ${unit}/s | ETA {eta_formatted}`,
        stream: process.stderr,
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
  let last = 0;
  const started = Date.now();
  return {
    update: (done) => {
      const now = Date.now();
      if (now - last < 2000 && done < total) return;
      last = now;
      const rate = Math.round(done / Math.max((now - started) / 1000, 0.001));
      process.stderr.write(`${label}: ${done}/${total} ${unit} (${Math.round((100 * done) / total)}%, ${rate} ${unit}/s)\n`);
    },
    stop: () => undefined,
  };
}
