/** `gateway`: serves the access node to every PostgreSQL client, with the rewriter in between. */
import type { Command } from 'commander';
import { startGateway } from '../../gateway/gateway.js';
import type { GatewayOptions } from '../../gateway/options.js';
import type { GatewayRewriteEvent } from '../../gateway/session.js';
import { loadSpec } from '../../spec/load.js';
import { integerFlag } from '../flags.js';
import { command, EXIT, out } from '../run.js';

interface GatewayFlags {
  config: string;
  host?: string;
  port?: string;
  metricsPort?: string;
  rewrite: boolean;
  route: boolean;
  routerReads?: boolean;
  logRewrites?: boolean;
  json?: boolean;
}

export function registerGatewayCommand(program: Command): void {
  program
    .command('gateway')
    .description('a PostgreSQL wire-protocol gateway in front of the access node: point any client at it (psql, Grafana, Python, JDBC) and statements that read distributed hypertables are rewritten to run on the data nodes')
    .option('-c, --config <file>', 'spec file', 'hypershard.yaml')
    .option('--host <host>', 'address to listen on (default: the spec\'s gateway.host, else 127.0.0.1)')
    .option('--port <port>', 'port to listen on, 0 for any free one (default: the spec\'s gateway.port, else 6432)')
    .option('--metrics-port <port>', 'serve Prometheus metrics on http://HOST:PORT/metrics')
    .option('--no-rewrite', 'pass every statement through as written')
    .option('--no-route', 'send COPY into hypertables through the access node instead of straight to the data nodes')
    .option('--no-router-reads', 'send SELECTs that read one shard through the access node too, not straight to its data node (docs/gateway.md)')
    .option('--log-rewrites', 'log one line per statement the rewriter looked at (stderr)')
    .option('--json', 'print {"listening": "host:port"} once accepting connections, and log lines as JSON')
    .action(
      command(async (opts: GatewayFlags) => {
        const { spec, file } = await loadSpec(opts.config);
        const options: GatewayOptions = {
          ...(opts.host === undefined ? {} : { host: opts.host }),
          ...(opts.port === undefined ? {} : { port: integerFlag('--port', opts.port) }),
          ...(opts.metricsPort === undefined ? {} : { metricsPort: integerFlag('--metrics-port', opts.metricsPort) }),
          ...(opts.rewrite ? {} : { rewrite: false }),
          ...(opts.route ? {} : { route: false }),
          ...(opts.routerReads === false ? { routerReads: false } : {}),
        };
        const gateway = await startGateway(spec, file, options);
        const log = (line: string, fields: Record<string, unknown>): void => {
          process.stderr.write(opts.json === true ? `${JSON.stringify({ time: new Date().toISOString(), ...fields })}\n` : `${line}\n`);
        };
        gateway.on('warning', (message) => log(`hypershard gateway: ${message}`, { level: 'warning', message }));
        if (opts.logRewrites === true) gateway.on('rewrite', (event) => log(rewriteLine(event), { level: 'info', event: 'rewrite', ...event }));
        if (opts.json === true) out(JSON.stringify({ listening: gateway.address, ...(gateway.metricsAddress === undefined ? {} : { metrics: gateway.metricsAddress }) }));
        else {
          out(`hypershard gateway listening on ${gateway.address}, serving the access node ${spec.accessNode.name}`);
          if (gateway.metricsAddress !== undefined) out(`metrics at http://${gateway.metricsAddress}/metrics`);
        }
        await new Promise<void>((resolve) => {
          const stop = (signal: string): void => {
            log(`hypershard gateway: ${signal}: finishing open sessions (up to ${gateway.options.drainTimeoutMs} ms)`, { level: 'info', message: 'stopping', signal });
            void gateway.close().then(resolve);
          };
          process.once('SIGTERM', () => stop('SIGTERM'));
          process.once('SIGINT', () => stop('SIGINT'));
        });
        return EXIT.ok;
      }),
    );
}

function rewriteLine(e: GatewayRewriteEvent): string {
  const what = e.changed ? `rewritten (${e.rewrites.map((r) => r.kind).join(', ')})` : `as written (${e.fallback ?? e.unchanged.map((u) => u.reason).join('; ')})`;
  return `session ${e.session} ${e.user}: ${what}: ${e.original.replace(/\s+/g, ' ').slice(0, 200)}`;
}
