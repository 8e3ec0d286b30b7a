/**
 * Names a standby is known by on its primary. Pure, shared by the spec validator (collisions),
 * the migrations and the failover, so every part means the same slot and application_name.
 */

/** Replication slot names take lowercase letters, digits and underscores only (63 bytes at most). */
export function standbySlotName(standby: string): string {
  return `hypershard_${standby.toLowerCase().replace(/-/g, '_')}`;
}

/**
 * The standby's application_name, which synchronous_standby_names matches (case-insensitively,
 * so two standbys must differ in more than case: the validator checks through the slot name).
 */
export function standbyApplicationName(standby: string): string {
  return standby;
}
