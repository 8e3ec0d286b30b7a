/**
 * Reads a migration file hypershard wrote back into statements, to name the one that fails and to
 * rehearse it. Safe because of how files are written (render.ts): each statement is a
 * `-- what` line and its SQL, statements are separated by a blank line, and no name or value can
 * hold a line break (validation rejects control characters and line separators).
 */
import type { Statement } from '../sql/statement.js';

export interface ParsedMigration {
  readonly up: readonly Statement[];
  readonly down: readonly Statement[];
}

export function parseMigration(content: string): ParsedMigration {
  const upAt = content.indexOf('\n-- Up Migration\n');
  const downAt = content.indexOf('\n-- Down Migration\n');
  if (upAt < 0 || downAt < upAt) return { up: [], down: [] };
  return {
    up: statements(content.slice(upAt + '\n-- Up Migration\n'.length, downAt)),
    down: statements(content.slice(downAt + '\n-- Down Migration\n'.length)),
  };
}

function statements(section: string): Statement[] {
  return section
    .split('\n\n')
    .map((block) => block.trim())
    .filter((block) => block.startsWith('-- ') && block.includes('\n'))
    .map((block) => {
      const newline = block.indexOf('\n');
      return { what: block.slice(3, newline), sql: block.slice(newline + 1) };
    });
}
