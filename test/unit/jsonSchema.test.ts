import { readFileSync } from 'node:fs';
import { expect, it } from 'vitest';
import { clusterSpecJsonSchema } from '../../src/spec/schema.js';

it('the published JSON Schema is the one generated from the validator (npm run schema)', () => {
  const committed = JSON.parse(readFileSync(new URL('../../schema/hypershard.schema.json', import.meta.url), 'utf8')) as unknown;
  expect(committed).toEqual(clusterSpecJsonSchema());
});
