/**
 * The FDW service role's planner settings on a data node (DATA_NODE_SETTINGS): its migration sets
 * them, and every `apply` sets again those that differ (a DBA's ALTER ROLE, a role recreated, a
 * cluster whose migrations predate a setting), as `check` reports them.
 */
import type pg from 'pg';
import { readRoleSettings } from '../drift/catalog/settings.js';
import { sameSetting } from '../drift/compare/settings.js';
import type { ClusterLayout } from '../plan/layout.js';
import { render } from '../sql/templates.js';

/** Sets the settings that differ; returns what it set (`name=value`), empty when all were right. */
export async function syncRoleSettings(client: pg.Client, layout: Pick<ClusterLayout, 'serviceRole' | 'dataSettings'>): Promise<string[]> {
  const actual = await readRoleSettings(client, layout.serviceRole);
  const stale = layout.dataSettings.filter(([name, value]) => {
    const found = actual.get(name);
    return found === undefined || !sameSetting(found, value);
  });
  if (stale.length === 0) return [];
  await client.query(render('data/set-role-settings', { role: layout.serviceRole, settings: stale }));
  return stale.map(([name, value]) => `${name}=${value} for ${layout.serviceRole}`);
}
