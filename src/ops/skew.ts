/** How unevenly a quantity (bytes, rows) is spread over data nodes. Pure. */

export interface Skew {
  /** The nodes measured, in order. */
  readonly nodes: readonly string[];
  readonly min: number;
  readonly max: number;
  readonly mean: number;
  /** max / min: 1 is perfectly even; null when min is 0 and max is not (unbounded). */
  readonly maxOverMin: number | null;
  /** Coefficient of variation: population standard deviation / mean; 0 when every value is equal. */
  readonly cv: number;
}

/** undefined for no values: there is nothing to compare. */
export function skew(values: readonly { readonly node: string; readonly value: number }[]): Skew | undefined {
  if (values.length === 0) return undefined;
  const numbers = values.map((v) => v.value);
  const min = Math.min(...numbers);
  const max = Math.max(...numbers);
  const mean = numbers.reduce((a, b) => a + b, 0) / numbers.length;
  const variance = numbers.reduce((a, b) => a + (b - mean) ** 2, 0) / numbers.length;
  return {
    nodes: values.map((v) => v.node),
    min,
    max,
    mean,
    maxOverMin: max === min ? 1 : min === 0 ? null : max / min,
    cv: mean === 0 ? 0 : Math.sqrt(variance) / mean,
  };
}
