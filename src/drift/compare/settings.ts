/** The access node's database settings that give every session pushdown (ALTER DATABASE … SET). */
import type { ClusterLayout } from '../../plan/layout.js';
import { finding, type Finding } from '../model.js';

/** Boolean settings may be written on/true/yes/1, numbers 1 or 1.0; they mean the same. */
export function sameSetting(a: string, b: string): boolean {
  const normalized = (value: string): string => {
    const v = value.trim().toLowerCase();
    if (['on', 'true', 'yes'].includes(v)) return 'on';
    if (['off', 'false', 'no'].includes(v)) return 'off';
    return v;
  };
  const [x, y] = [normalized(a), normalized(b)];
  if (x === y) return true;
  const bool = (v: string): string => (v === '1' ? 'on' : v === '0' ? 'off' : v);
  if (bool(x) === bool(y) && ['on', 'off'].includes(bool(x))) return true;
  return x !== '' && y !== '' && Number.isFinite(Number(x)) && Number(x) === Number(y);
}

export function compareSettings(layout: ClusterLayout, actual: ReadonlyMap<string, string>): Finding[] {
  return layout.accessSettings.flatMap(([name, value]): Finding[] => {
    const found = actual.get(name);
    const object = `database setting ${name}`;
    if (found === undefined) return [finding('missing', object, `${name} is not set on the database; sessions get the server default`, { expected: `${name}=${value}` })];
    if (!sameSetting(found, value)) return [finding('different', object, `${name} is ${found} on the database, expected ${value}`, { expected: `${name}=${value}`, actual: `${name}=${found}` })];
    return [];
  });
}

/** A data node's settings of the FDW service role (how it plans the access node's queries). */
export function compareRoleSettings(layout: ClusterLayout, actual: ReadonlyMap<string, string>): Finding[] {
  return layout.dataSettings.flatMap(([name, value]): Finding[] => {
    const found = actual.get(name);
    const object = `setting ${name} of role ${layout.serviceRole}`;
    const fix = 'apply sets it again';
    if (found === undefined) {
      return [finding('missing', object, `${name} is not set for ${layout.serviceRole} in this database; the access node's queries are planned with the server default (${fix})`, { expected: `${name}=${value}` })];
    }
    if (!sameSetting(found, value)) {
      return [finding('different', object, `${name} is ${found} for ${layout.serviceRole} in this database, expected ${value} (${fix})`, { expected: `${name}=${value}`, actual: `${name}=${found}` })];
    }
    return [];
  });
}
