/**
 * Points the access node's FDW servers of one data node at its members as the spec now lists
 * them. ALTER SERVER also makes every session drop its cached connection to that server
 * (postgres_fdw invalidates connections whose server options change, and closes them at the
 * session's next use outside a transaction), so it is how a failover reaches sessions that
 * postgres_fdw_disconnect_all() — which acts on its own session only — cannot.
 */
import type pg from 'pg';
import type { ClusterLayout } from '../plan/layout.js';
import { render } from '../sql/templates.js';

/** Options a topology decides; the rest of a server's options are the migrations' business. */
const ADDRESS_OPTIONS = new Set(['host', 'port', 'target_session_attrs']);

/** Returns the servers altered. Every server of the node is altered, even when unchanged, to drop cached connections. */
export async function alignServers(access: pg.Client, layout: ClusterLayout, dataNode: string): Promise<string[]> {
  const servers = layout.servers.filter((s) => s.dataNode === dataNode);
  const { rows } = await access.query<{ srvname: string; srvoptions: string[] | null }>(
    'SELECT srvname, srvoptions FROM pg_catalog.pg_foreign_server WHERE srvname = ANY($1)',
    [servers.map((s) => s.name)],
  );
  const current = new Map(rows.map((r) => [r.srvname, new Map((r.srvoptions ?? []).map((o) => [o.slice(0, o.indexOf('=')), o.slice(o.indexOf('=') + 1)]))]));
  const altered: string[] = [];
  await access.query('BEGIN');
  try {
    for (const server of servers) {
      const was = current.get(server.name);
      if (was === undefined) continue; // not applied yet: apply creates it with these options
      const wanted = server.options.filter(([k]) => ADDRESS_OPTIONS.has(k));
      const changes = [
        ...wanted.map(([key, value]) => ({ action: was.has(key) ? 'SET' : 'ADD', key, value })),
        ...[...was.keys()].filter((k) => ADDRESS_OPTIONS.has(k) && !wanted.some(([w]) => w === k)).map((key) => ({ action: 'DROP', key, value: false as const })),
      ];
      await access.query(render('access/alter-server-options', { name: server.name, changes }));
      altered.push(server.name);
    }
    await access.query('COMMIT');
  } catch (error) {
    await access.query('ROLLBACK').catch(() => undefined);
    throw error;
  }
  return altered;
}
