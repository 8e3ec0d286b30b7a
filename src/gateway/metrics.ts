/**
 * What the gateway counts, readable as a snapshot (`gateway.metrics()`) or in Prometheus' text
 * format. Counters only grow; `sessions_active` is a gauge.
 */

export interface GatewayMetricsSnapshot {
  readonly sessionsActive: number;
  readonly sessionsTotal: number;
  readonly sessionsRejected: number;
  /** Query and Parse messages seen. */
  readonly statements: number;
  /** Statements that named a distributed hypertable and went through the rewriter. */
  readonly examined: number;
  readonly rewritten: number;
  /** Examined statements whose rewrite came from the cache. */
  readonly cacheHits: number;
  /** Rewritten statements the access node refused, then ran as written. */
  readonly retried: number;
  /** Statements sent as written although they name a hypertable, by reason. */
  readonly fallbacks: Readonly<Record<string, number>>;
  readonly bytesFromClients: number;
  readonly bytesToClients: number;
  /** Connections closed for breaking the protocol or the gateway's limits, by reason. */
  readonly protocolErrors: Readonly<Record<string, number>>;
  /** COPY statements routed to the data nodes, the rows they committed, and those that failed. */
  readonly routedCopies: number;
  /** INSERT statements routed to the data nodes (many rows, or an upsert). */
  readonly routedInserts: number;
  readonly routedRows: number;
  readonly routedFailed: number;
  /** Routed transactions by how their data-node parts ended (`left`: to recover). */
  readonly routedSettled: Readonly<Record<string, number>>;
  /** Routed writes whose shard locks were guessed from the relation's last write: `held`, or `missed` (then taken the long way). */
  readonly routedLockGuesses: Readonly<Record<string, number>>;
  /** SELECTs answered by one data node straight (router reads). */
  readonly routerReads: number;
  /** Router reads that reused the session's last rewrite of the same text (keys not read again: the check's guard reads them). */
  readonly routerRepeats: number;
  /** Router reads answered by the data node they were sent to with their check (RouterPredictions). */
  readonly routerSentAhead: number;
  /** Statements that could have been router reads and went through the access node, by reason. */
  readonly routerFallbacks: Readonly<Record<string, number>>;
}

export class GatewayMetrics {
  sessionsActive = 0;
  sessionsTotal = 0;
  sessionsRejected = 0;
  statements = 0;
  examined = 0;
  rewritten = 0;
  cacheHits = 0;
  retried = 0;
  bytesFromClients = 0;
  bytesToClients = 0;
  readonly fallbacks = new Map<string, number>();
  readonly protocolErrors = new Map<string, number>();
  routedCopies = 0;
  routedInserts = 0;
  routedRows = 0;
  routedFailed = 0;
  readonly #settled = new Map<string, number>();
  readonly #guesses = new Map<string, number>();

  lockGuess(outcome: 'held' | 'missed'): void {
    this.#guesses.set(outcome, (this.#guesses.get(outcome) ?? 0) + 1);
  }

  routerReads = 0;
  routerRepeats = 0;
  routerSentAhead = 0;
  readonly routerFallbacks = new Map<string, number>();

  routerFallback(reason: string): void {
    this.routerFallbacks.set(reason, (this.routerFallbacks.get(reason) ?? 0) + 1);
  }

  routedSettled(outcome: string): void {
    this.#settled.set(outcome, (this.#settled.get(outcome) ?? 0) + 1);
  }

  fallback(reason: string): void {
    this.fallbacks.set(reason, (this.fallbacks.get(reason) ?? 0) + 1);
  }

  protocolError(reason: string): void {
    this.protocolErrors.set(reason, (this.protocolErrors.get(reason) ?? 0) + 1);
  }

  snapshot(): GatewayMetricsSnapshot {
    return {
      sessionsActive: this.sessionsActive,
      sessionsTotal: this.sessionsTotal,
      sessionsRejected: this.sessionsRejected,
      statements: this.statements,
      examined: this.examined,
      rewritten: this.rewritten,
      cacheHits: this.cacheHits,
      retried: this.retried,
      fallbacks: Object.fromEntries(this.fallbacks),
      bytesFromClients: this.bytesFromClients,
      bytesToClients: this.bytesToClients,
      protocolErrors: Object.fromEntries(this.protocolErrors),
      routedCopies: this.routedCopies,
      routedInserts: this.routedInserts,
      routedRows: this.routedRows,
      routedFailed: this.routedFailed,
      routedSettled: Object.fromEntries(this.#settled),
      routedLockGuesses: Object.fromEntries(this.#guesses),
      routerReads: this.routerReads,
      routerRepeats: this.routerRepeats,
      routerSentAhead: this.routerSentAhead,
      routerFallbacks: Object.fromEntries(this.routerFallbacks),
    };
  }
}

/** The snapshot in Prometheus' text exposition format. */
export function prometheusText(m: GatewayMetricsSnapshot): string {
  const lines: string[] = [];
  const metric = (name: string, type: 'counter' | 'gauge', help: string, samples: readonly (readonly [string, number])[]): void => {
    lines.push(`# HELP hypershard_gateway_${name} ${help}`, `# TYPE hypershard_gateway_${name} ${type}`);
    for (const [labels, value] of samples) lines.push(`hypershard_gateway_${name}${labels} ${value}`);
  };
  const labelled = (label: string, values: Readonly<Record<string, number>>): (readonly [string, number])[] =>
    Object.entries(values).map(([k, v]) => [`{${label}="${k.replace(/["\\\n]/g, (c) => (c === '\n' ? '\\n' : `\\${c}`))}"}`, v] as const);
  metric('sessions_active', 'gauge', 'Client sessions open now.', [['', m.sessionsActive]]);
  metric('sessions_total', 'counter', 'Client sessions accepted.', [['', m.sessionsTotal]]);
  metric('sessions_rejected_total', 'counter', 'Client connections refused at the connection limit.', [['', m.sessionsRejected]]);
  metric('statements_total', 'counter', 'Query and Parse messages from clients.', [['', m.statements]]);
  metric('statements_examined_total', 'counter', 'Statements naming a distributed hypertable, given to the rewriter.', [['', m.examined]]);
  metric('statements_rewritten_total', 'counter', 'Statements sent rewritten.', [['', m.rewritten]]);
  metric('rewrite_cache_hits_total', 'counter', 'Examined statements whose rewrite came from the cache.', [['', m.cacheHits]]);
  metric('statements_retried_total', 'counter', 'Rewritten statements refused by the access node and run as written.', [['', m.retried]]);
  metric('fallbacks_total', 'counter', 'Statements naming a hypertable sent as written, by reason.', labelled('reason', m.fallbacks));
  metric('client_bytes_received_total', 'counter', 'Bytes received from clients.', [['', m.bytesFromClients]]);
  metric('client_bytes_sent_total', 'counter', 'Bytes sent to clients.', [['', m.bytesToClients]]);
  metric('protocol_errors_total', 'counter', 'Client connections closed for breaking the protocol or a limit, by reason.', labelled('reason', m.protocolErrors));
  metric('routed_copies_total', 'counter', 'COPY statements routed to the data nodes.', [['', m.routedCopies]]);
  metric('routed_inserts_total', 'counter', 'INSERT statements routed to the data nodes.', [['', m.routedInserts]]);
  metric('routed_rows_total', 'counter', 'Rows routed COPY and INSERT statements wrote.', [['', m.routedRows]]);
  metric('routed_failed_total', 'counter', 'Routed writes that failed (nothing of them committed).', [['', m.routedFailed]]);
  metric('routed_transactions_total', 'counter', 'Routed transactions by how their data-node parts ended.', labelled('outcome', m.routedSettled));
  metric('routed_lock_guesses_total', 'counter', "Routed writes whose shard locks were guessed from the relation's last write, by whether the guess held.", labelled('outcome', m.routedLockGuesses));
  metric('router_reads_total', 'counter', 'SELECTs answered by one data node straight.', [['', m.routerReads]]);
  metric('router_read_repeats_total', 'counter', "Router reads that reused the session's last rewrite of the same text.", [['', m.routerRepeats]]);
  metric('router_read_sent_ahead_total', 'counter', 'Router reads answered by the data node they were sent to at the same time as their check.', [['', m.routerSentAhead]]);
  metric('router_read_fallbacks_total', 'counter', 'Single-shard SELECTs sent through the access node instead, by reason.', labelled('reason', m.routerFallbacks));
  return `${lines.join('\n')}\n`;
}
