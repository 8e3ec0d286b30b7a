/** The access node's database settings that give every session pushdown (ALTER DATABASE … SET). */
import type { ClusterLayout } from '../../plan/layout.js';
import { finding, type Finding } from '../model.js';

/** Boolean settings may be written on/true/yes/1; they mean the same. */
function normalized(value: string): string {
  const v = value.toLowerCase();
  if (['on', 'true', 'yes', '1'].includes(v)) return 'on';
  if (['off', 'false', 'no', '0'].includes(v)) return 'off';
  return value;
}

export function compareSettings(layout: ClusterLayout, actual: ReadonlyMap<string, string>): Finding[] {
  return layout.accessSettings.flatMap(([name, value]): Finding[] => {
    const found = actual.get(name);
    const object = `database setting ${name}`;
    if (found === undefined) return [finding('missing', object, `${name} is not set on the database; sessions get the server default`, { expected: `${name}=${value}` })];
    if (normalized(found) !== normalized(value)) return [finding('different', object, `${name} is ${found} on the database, expected ${value}`, { expected: `${name}=${value}`, actual: `${name}=${found}` })];
    return [];
  });
}
