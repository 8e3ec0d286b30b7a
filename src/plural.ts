/** A count with its noun, for messages: `1 statement`, `2 statements`, `12,000 rows`. */
export function plural(n: number, word: string, words = `${word}s`): string {
  return `${n.toLocaleString('en-US')} ${n === 1 ? word : words}`;
}
