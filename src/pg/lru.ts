/** A bounded map that forgets the least recently used entry first. */
export class Lru<K, V> {
  readonly #entries = new Map<K, V>();
  readonly #capacity: number;
  readonly #evicted: ((key: K, value: V) => void) | undefined;

  /** `evicted` hears of each entry forgotten to make room (not of those deleted or cleared). */
  constructor(capacity: number, evicted?: (key: K, value: V) => void) {
    this.#capacity = Math.max(1, capacity);
    this.#evicted = evicted;
  }

  get(key: K): V | undefined {
    const value = this.#entries.get(key);
    if (value !== undefined) {
      // A Map iterates in insertion order: re-inserting makes the entry the most recent.
      this.#entries.delete(key);
      this.#entries.set(key, value);
    }
    return value;
  }

  set(key: K, value: V): void {
    this.#entries.delete(key);
    this.#entries.set(key, value);
    if (this.#entries.size <= this.#capacity) return;
    const [oldest, forgotten] = this.#entries.entries().next().value as [K, V];
    this.#entries.delete(oldest);
    this.#evicted?.(oldest, forgotten);
  }

  delete(key: K): void {
    this.#entries.delete(key);
  }

  clear(): void {
    this.#entries.clear();
  }

  get size(): number {
    return this.#entries.size;
  }
}
