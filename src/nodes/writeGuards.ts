/**
 * The write guard on each shard of a data node (templates/data/create-write-guard-function.sql.hbs):
 * its migration makes it with the shard, and every `apply` makes it again where it is missing (a
 * cluster whose migrations predate it, a trigger dropped by hand), as `check` reports it.
 */
import type pg from 'pg';
import { readWriteGuards } from '../drift/catalog/writeGuards.js';
import { nameKey } from '../drift/model.js';
import { INTERNAL_SCHEMA, type ClusterLayout } from '../plan/layout.js';
import { writeGuardStatement } from '../sql/dataNode.js';
import { render } from '../sql/templates.js';

/** Makes what is missing on `node`; returns what it made, empty when all was there. */
export async function syncWriteGuards(client: pg.Client, layout: Pick<ClusterLayout, 'hypertables'>, node: string): Promise<string[]> {
  const held = layout.hypertables.flatMap((h) => h.shards.filter((s) => s.dataNode === node).map((shard) => ({ h, shard })));
  const guards = await readWriteGuards(client, held.map((x) => x.shard.table));
  const present = held.filter((x) => guards.existing.has(nameKey(x.shard.table)));
  const made: string[] = [];
  // The function even without shards (apply ran the migrations, so the schema is there): a rebalance makes guarded shards here later.
  if (!guards.function) {
    await client.query(render('data/create-write-guard-function', { schema: INTERNAL_SCHEMA }));
    made.push(`write guard function ${INTERNAL_SCHEMA}.refuse_ctid_writes`);
  }
  for (const { h, shard } of present) {
    if (guards.guarded.has(nameKey(shard.table))) continue;
    await client.query(writeGuardStatement(h, shard).sql);
    made.push(`write guard on ${shard.table.schema}.${shard.table.name}`);
  }
  return made;
}
