/** Turns a node's statements into a node-pg-migrate SQL migration (Up and Down sections). */
import type { NodeSql } from '../sql/generate.js';
import { commentText } from '../sql/quote.js';
import type { Statement } from '../sql/statement.js';

export const GENERATOR = 'hypershard';

export function renderMigration(node: NodeSql, specName: string): string {
  const role = node.role === 'access' ? 'access node' : 'data node';
  return [
    `-- ${GENERATOR}: ${role} ${node.node}, generated from ${commentText(specName)}.`,
    '-- Review it; do not edit it: change the spec and run `hypershard generate` again.',
    '',
    '-- Up Migration',
    '',
    statements(node.up),
    '',
    '-- Down Migration',
    '',
    statements(node.down),
    '',
  ].join('\n');
}

function statements(list: readonly Statement[]): string {
  return list.map((s) => `-- ${commentText(s.what)}\n${s.sql}`).join('\n\n');
}
