/** One SQL statement with the object it creates or removes, for reviewable output and errors. */
export interface Statement {
  /** Human description of what the statement does, e.g. `server hypershard_dn1_0`. */
  readonly what: string;
  readonly sql: string;
}

/** A reversible step: `up` statements, and the `down` statements that undo them. */
export interface Step {
  readonly up: readonly Statement[];
  readonly down: readonly Statement[];
}

export function step(up: Statement[], down: Statement[]): Step {
  return { up, down };
}
