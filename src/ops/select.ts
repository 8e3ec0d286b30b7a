/** Which nodes an operation runs on: named ones, a role, or all of them. */
import { UnknownNodeError } from '../errors.js';
import type { NodeTarget } from '../nodes/targets.js';

export interface NodeSelection {
  /** Nodes by name. */
  readonly nodes?: readonly string[];
  /** Every data node. */
  readonly dataNodes?: boolean;
  /** The access node. */
  readonly accessNode?: boolean;
}

/**
 * The union of what the selection names, in the spec's order; every node when it names nothing.
 * @throws UnknownNodeError for a name the spec does not have, before anything is contacted.
 */
export function selectTargets(targets: readonly NodeTarget[], selection: NodeSelection = {}): NodeTarget[] {
  const names = selection.nodes ?? [];
  const known = targets.map((t) => t.name);
  const unknown = [...new Set(names.filter((n) => !known.includes(n)))];
  if (unknown.length > 0) throw new UnknownNodeError(unknown, known);
  const everything = names.length === 0 && selection.dataNodes !== true && selection.accessNode !== true;
  if (everything) return [...targets];
  return targets.filter(
    (t) => names.includes(t.name) || (selection.dataNodes === true && t.role === 'data') || (selection.accessNode === true && t.role === 'access'),
  );
}
