/** Small statistics for benchmark samples. */

export function median(xs: readonly number[]): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/**
 * Geometric mean, the right average for ratios: a 4× slowdown and a 4× speedup cancel out, where
 * an arithmetic mean would call the pair a 2.1× slowdown. NaN for an empty list.
 */
export function geometricMean(xs: readonly number[]): number {
  const usable = xs.filter((x) => Number.isFinite(x) && x > 0);
  if (usable.length === 0) return Number.NaN;
  return Math.exp(usable.reduce((sum, x) => sum + Math.log(x), 0) / usable.length);
}
