/** spec → layout → SQL per node. Pure: same spec, same statements, byte for byte. */
import { planLayout, type ClusterLayout } from '../plan/layout.js';
import type { ClusterSpec } from '../spec/schema.js';
import { accessNodeSteps } from './accessNode.js';
import { dataNodeSteps } from './dataNode.js';
import type { Statement, Step } from './statement.js';

export type NodeRole = 'access' | 'data';

export interface NodeSql {
  readonly node: string;
  readonly role: NodeRole;
  /** Statements that build the node, in order. */
  readonly up: readonly Statement[];
  /** Statements that undo `up`, in order. */
  readonly down: readonly Statement[];
}

export interface ClusterSql {
  readonly layout: ClusterLayout;
  /** Data nodes first (in spec order), then the access node: the order `apply` uses. */
  readonly nodes: readonly NodeSql[];
}

export function generateSql(spec: ClusterSpec): ClusterSql {
  const layout = planLayout(spec);
  return {
    layout,
    nodes: [
      ...layout.dataNodes.map((node) => nodeSql(node, 'data', dataNodeSteps(layout, node))),
      nodeSql(layout.accessNode, 'access', accessNodeSteps(layout)),
    ],
  };
}

function nodeSql(node: string, role: NodeRole, steps: readonly Step[]): NodeSql {
  return {
    node,
    role,
    up: steps.flatMap((s) => s.up),
    // Undo in reverse step order; each step's down list is already in undo order.
    down: [...steps].reverse().flatMap((s) => s.down),
  };
}
