/** Connections for benchmark scripts. */
import pg from 'pg';

/**
 * A client for a dev cluster node. The cluster may be stopped under an open connection (Ctrl-C),
 * which must not crash the process with an unhandled 'error' event: the next query reports it.
 */
export async function connect(url: string, applicationName = 'hypershard-bench'): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url, application_name: applicationName });
  client.on('error', () => undefined);
  await client.connect();
  return client;
}

export async function closeQuietly(clients: readonly pg.Client[]): Promise<void> {
  await Promise.all(clients.map((c) => c.end().catch(() => undefined)));
}
