// Writes schema/hypershard.schema.json from the zod schema the validator uses (run after build).
import { writeFileSync } from 'node:fs';
import { clusterSpecJsonSchema } from '../dist/index.js';

writeFileSync(new URL('../schema/hypershard.schema.json', import.meta.url), `${JSON.stringify(clusterSpecJsonSchema(), null, 2)}\n`);
