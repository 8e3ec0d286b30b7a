/**
 * How fast a connection notices that its peer is gone (host down, network cut): the access node's
 * FDW servers get these as libpq options, and hypershard's own sessions set the server side of them.
 * Without them, a query waiting on a data node behind a broken network waits for the kernel: two
 * hours of idle before the first keepalive, or about 15 minutes of retransmissions.
 * Measured under a real partition (network namespaces, a veth pair cut): see README "When a node
 * stops answering".
 */
export const DEAD_PEER = {
  /** Seconds to establish a connection (libpq connect_timeout). */
  connectTimeoutS: 10,
  /** Seconds of silence before the first keepalive probe. */
  keepalivesIdleS: 10,
  /** Seconds between keepalive probes. */
  keepalivesIntervalS: 5,
  /** Unanswered probes before the connection is dropped. */
  keepalivesCount: 3,
  /** Milliseconds sent data may stay unacknowledged before the connection is dropped (Linux). */
  tcpUserTimeoutMs: 30_000,
} as const;
