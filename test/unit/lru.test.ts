import { describe, expect, it } from 'vitest';
import { Lru } from '../../src/pg/lru.js';

describe('Lru', () => {
  it('forgets the least recently used entry first, telling who asked; deleted entries are not evictions', () => {
    const evicted: string[] = [];
    const lru = new Lru<string, number>(2, (key, value) => evicted.push(`${key}=${value}`));
    lru.set('a', 1);
    lru.set('b', 2);
    expect(lru.get('a')).toBe(1);
    lru.set('c', 3);
    expect(evicted).toEqual(['b=2']);
    expect(lru.get('b')).toBeUndefined();
    lru.delete('a');
    lru.set('d', 4);
    expect(evicted).toEqual(['b=2']);
    expect([lru.get('c'), lru.get('d'), lru.size]).toEqual([3, 4, 2]);
  });
});
