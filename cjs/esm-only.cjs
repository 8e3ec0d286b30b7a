// hypershard is an ES module: it loads PostgreSQL's own parser (WebAssembly) with a top-level
// await, which require() cannot wait for. Said here, instead of Node's "No exports main defined".
throw Object.assign(
  new Error(
    "hypershard is ESM-only: use `import pg from 'hypershard/pg'` (or `import { loadSpec } from 'hypershard'`), " +
      "or from CommonJS `const { Pool } = await import('hypershard/pg')`.",
  ),
  { code: 'ERR_REQUIRE_ESM' },
);
