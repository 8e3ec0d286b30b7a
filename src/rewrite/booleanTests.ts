/**
 * `x IS [NOT] TRUE / FALSE / UNKNOWN` in the words postgres_fdw ships. Its deparser has no case
 * for a BooleanTest, so a filter holding one stays on the access node and every row of the
 * shards it reads crosses the network. The same truth table, in shippable nodes:
 *
 *   x IS TRUE      → x IS NOT DISTINCT FROM true      x IS NOT TRUE    → x IS DISTINCT FROM true
 *   x IS FALSE     → x IS NOT DISTINCT FROM false     x IS NOT FALSE   → x IS DISTINCT FROM false
 *   x IS UNKNOWN   → x IS NULL                        x IS NOT UNKNOWN → x IS NOT NULL
 *
 * (IS DISTINCT FROM is a DistinctExpr and NOT of it a BoolExpr; both are shipped. A NULL x is
 * distinct from true and from false, which is what IS NOT TRUE / IS NOT FALSE say of it.)
 */
import type { Node } from '@pgsql/types';
import { transform } from './ast.js';
import type { Rewrite } from './model.js';
import { deparse, parseExpression } from './parser.js';

const FORMS: Record<string, (arg: string) => string> = {
  IS_TRUE: (a) => `(${a}) IS NOT DISTINCT FROM true`,
  IS_NOT_TRUE: (a) => `(${a}) IS DISTINCT FROM true`,
  IS_FALSE: (a) => `(${a}) IS NOT DISTINCT FROM false`,
  IS_NOT_FALSE: (a) => `(${a}) IS DISTINCT FROM false`,
  IS_UNKNOWN: (a) => `(${a}) IS NULL`,
  IS_NOT_UNKNOWN: (a) => `(${a}) IS NOT NULL`,
};

/** `node` with every BooleanTest outside sub-selects in its shippable form; each one made is told in `rewrites`. */
export function shippableBooleanTests(node: Node, rewrites: Rewrite[]): Node {
  return transform(node, (n) => {
    if (!('BooleanTest' in n) || n.BooleanTest.arg === undefined) return undefined;
    const form = FORMS[n.BooleanTest.booltesttype ?? ''];
    if (form === undefined) return undefined;
    const before = deparse(n);
    const after = parseExpression(form(deparse(n.BooleanTest.arg)));
    rewrites.push({ kind: 'boolean-test', detail: `${before} → ${deparse(after)}: the same truth table in a form postgres_fdw ships` });
    return after;
  });
}
