/** What an evolution collects while it diffs two layouts: steps per node and what they change. */
import type { QualifiedName } from '../plan/layout.js';
import type { Step } from '../sql/statement.js';

export class Plan {
  readonly steps = new Map<string, Step[]>();
  readonly changes: string[] = [];
  readonly kinds = new Set<string>();
  readonly destructive: string[] = [];
  readonly refused: string[] = [];

  add(node: string, step: Step): void {
    if (step.up.length === 0 && step.down.length === 0) return;
    this.steps.set(node, [...(this.steps.get(node) ?? []), step]);
  }

  change(kind: string, description: string, destructive = false): void {
    this.kinds.add(kind);
    this.changes.push(description);
    if (destructive) this.destructive.push(description);
  }
}

/** A step of one statement and its undo. */
export const one = (what: string, up: string, down: string): Step => ({ up: [{ what, sql: up }], down: [{ what, sql: down }] });

/** The undo of a step as a step: drops become the up, creates the down. */
export function reversed(step: Step): Step {
  return { up: step.down, down: step.up };
}

export const tableName = (t: QualifiedName): string => `${t.schema}.${t.name}`;
