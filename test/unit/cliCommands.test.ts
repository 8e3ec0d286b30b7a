import { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { COMMANDS } from '../../src/cli/index.js';

describe('CLI command table', () => {
  it('names exactly the top-level commands each module registers (a run loads only the module of its command)', async () => {
    const seen = new Set<string>();
    for (const [names, load] of COMMANDS) {
      const program = new Command();
      (await load())(program);
      expect(program.commands.map((c) => c.name()).sort(), `add the commands of this module to COMMANDS in src/cli/index.ts`).toEqual([...names].sort());
      for (const n of names) {
        expect(seen.has(n), `${n} listed twice`).toBe(false);
        seen.add(n);
      }
    }
  }, 60_000);
});
