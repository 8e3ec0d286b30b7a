/** Progress off a terminal: a few plain lines, never a redrawn bar. */
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { progressBar } from '../../src/cli/progress.js';

function capture(): { stream: NodeJS.WriteStream; text: () => string } {
  let text = '';
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      text += chunk.toString();
      done();
    },
  }) as unknown as NodeJS.WriteStream;
  return { stream, text: () => text };
}

describe('progressBar without a terminal', () => {
  it('prints a line at each quarter and one at the end, however many updates', () => {
    const { stream, text } = capture();
    const bar = progressBar(864_000, '  rows', 'rows', stream);
    for (let done = 5000; done < 864_000; done += 5000) bar.update(done);
    bar.update(864_000);
    bar.update(864_000);
    bar.stop();
    const lines = text().trimEnd().split('\n');
    expect(lines).toHaveLength(4);
    expect(lines.slice(0, 3).map((l) => l.replace(/, [\d,]+ rows\/s\)$/, ')'))).toEqual([
      'rows: 25% (220,000 of 864,000 rows)',
      'rows: 50% (435,000 of 864,000 rows)',
      'rows: 75% (650,000 of 864,000 rows)',
    ]);
    expect(lines[3]).toMatch(/^rows: 864,000 rows in \d+\.\d s \([\d,]+ rows\/s\)$/);
    for (const redraw of ['\r', '\u001b', '█', '░']) expect(text()).not.toContain(redraw);
  });

  it('prints only the end for work done in one step, and nothing after a stop short of it', () => {
    const one = capture();
    const bar = progressBar(10, 'copy', 'rows', one.stream);
    bar.update(10);
    expect(one.text().split('\n').filter(Boolean)).toHaveLength(1);
    const cut = capture();
    const stopped = progressBar(100, 'copy', 'rows', cut.stream);
    stopped.update(10);
    stopped.stop();
    expect(cut.text()).toBe('');
  });
});
