import { createRequire } from 'node:module'
import type * as PromClient from 'prom-client'
import type { Counter, Gauge, Histogram, Registry } from 'prom-client'

/**
 * prom-client's parts, loaded one by one: its index also loads the default process metrics,
 * whose CPU collector pulls in @opentelemetry/api — the largest single cost of a daemon's
 * start-up (issue 15). Those are registered at the first scrape instead (scrape below).
 */
const require = createRequire(import.meta.url)
const CounterClass = require('prom-client/lib/counter') as typeof PromClient.Counter
const GaugeClass = require('prom-client/lib/gauge') as typeof PromClient.Gauge
const HistogramClass = require('prom-client/lib/histogram') as typeof PromClient.Histogram
const RegistryClass = require('prom-client/lib/registry') as typeof PromClient.Registry

/**
 * Every metric hearsay exports, declared in this one place (as gossipsub's metrics module does)
 * so names, labels and help texts stay consistent and label cardinality stays reviewable.
 * Label values must come from small fixed sets (route templates, op names, error codes) —
 * never from keys, raw paths or peer addresses (member names are fine: one series per member, removed
 * when it is forgotten).
 */

export const METRIC_PREFIX = 'hearsay_'

/**
 * Sampling interval of the event-loop delay histogram behind hearsay_nodejs_eventloop_lag_*
 * (prom-client's default is perf_hooks' 10 ms: a timer a hundred times a second, about 4 ms of
 * CPU per second on an otherwise idle node, for as long as the node runs after its first scrape).
 * At 100 ms it still takes ten samples a second, and a stall of 100 ms or more always shows in
 * the maximum; a shorter one shows with a chance of its length over 100 ms.
 */
export const EVENT_LOOP_SAMPLE_INTERVAL_MS = 100

/** Request latency buckets in seconds: 100 µs (a local read) up to 5 s (past any write deadline). */
const HTTP_DURATION_BUCKETS_SECONDS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5]

/** Probe round trips: sub-millisecond on a quiet LAN up to the probe interval (1 s by default). */
const PROBE_RTT_BUCKETS_SECONDS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1]

/** Anti-entropy rounds run from milliseconds (nothing differs) to minutes (a new node fills up). */
const ANTI_ENTROPY_DURATION_BUCKETS_SECONDS = [0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300]

export interface Metrics {
  /** The registry holding only hearsay's metrics (never prom-client's global one). */
  readonly registry: Registry
  /**
   * The Prometheus text of every metric, for `/metrics`. The process and Node.js metrics
   * (prom-client's defaults) join at the first scrape, so start-up does not load them.
   */
  scrape(): Promise<string>

  // Client HTTP API (lib/api).
  readonly httpRequests: Counter<'route' | 'method' | 'status'>
  readonly httpRequestDuration: Histogram<'route' | 'method'>
  /** Requests the HTTP parser refused before any route ran, by Node error code (HPE_*). */
  readonly httpClientErrors: Counter<'code'>
  /** Work a resource limit refused (issue 17): a request, a connection, a slow message; by limit. */
  readonly limitRefusals: Counter<'limit'>

  // Store (lib/store).
  /** Writes accepted by this node as coordinator: op = put | delete. */
  readonly kvWrites: Counter<'op'>
  readonly storeKeys: Gauge
  /** Records removed by garbage collection: kind = tombstone | expired. */
  readonly storeGcCollected: Counter<'kind'>
  /** Records past their grace that GC keeps because a replica may still lack them (last sweep). */
  readonly storeGcWaiting: Gauge

  // Replication (lib/replication).
  /** Requests answered 503 because too few replicas acknowledged: kind = write | read. */
  readonly quorumFailures: Counter<'kind'>
  readonly hintsPending: Gauge
  /** Writes kept as hints for a replica that did not get them. */
  readonly hintsStored: Counter
  /** Hints delivered to a member that came back, or dropped: result = delivered | dropped. */
  readonly hintsHandedOff: Counter<'result'>
  readonly readRepairs: Counter
  /** CASPaxos rounds this node ran as proposer: phase = prepare | accept | fast, outcome = ok | conflict | unavailable. */
  readonly paxosRounds: Counter<'phase' | 'outcome'>
  /** Partitions that caught up their acceptor state after an acceptor-set change, and those still catching up. */
  readonly paxosCatchUps: Counter
  readonly paxosPartitionsCatchingUp: Gauge

  // Membership and transport (lib/membership, lib/transport).
  /** Members in the local table by state: alive | suspect | dead | left. */
  readonly members: Gauge<'state'>
  /** Peer frames that failed validation; each one closes its link. */
  readonly peerMalformedFrames: Counter<'reason'>
  /** Peer messages dropped without delivery: reason = unreachable | queue_full | closed. */
  readonly peerMessagesDropped: Counter<'reason'>
  /** Bytes of frames on established peer links: direction = sent | received, type = message type. */
  readonly peerBytes: Counter<'direction' | 'type'>
  /** Peer links opened, by direction: inbound | outbound (reconnects count as new links). */
  readonly peerLinksOpened: Counter<'direction'>
  /** Peer links closed, by reason (remote, malformed, refused, handshake_timeout, keepalive, replaced, shutdown, internal). */
  readonly peerLinksClosed: Counter<'reason'>
  /** Handshakes refused: by = local | remote, code = protocol | cluster | auth | identity | duplicate | busy. */
  readonly peerHandshakesRefused: Counter<'by' | 'code'>
  /**
   * TLS handshakes that failed (issue 12), and peer links whose certificate names another node
   * (bad_name): side = peer | api, reason = one of TLS_FAILURE_REASONS (lib/transport/tls-failure.ts).
   */
  readonly tlsHandshakeFailures: Counter<'side' | 'reason'>
  /** Member state changes seen by this node, by the state entered. */
  readonly memberTransitions: Counter<'state'>
  /** This node refuted a rumour about itself by raising its incarnation. */
  readonly membershipRefutations: Counter
  /** Round trip of our acknowledged probes: path = direct | indirect. */
  readonly probeRoundTrip: Histogram<'path'>

  // Clock (lib/clock/offset-monitor.ts).
  /** Latest estimate of each alive peer's clock minus this node's, by peer member name (removed when the peer is forgotten). */
  readonly clockOffset: Gauge<'peer'>
  /** 1 while a majority of the measured peers put this node's clock beyond clock.maxSkewMs (it takes no writes). */
  readonly clockSkewed: Gauge

  // Anti-entropy (lib/antientropy).
  /** Sync rounds by outcome: result = ok | failed | skipped. */
  readonly antiEntropyRounds: Counter<'result'>
  readonly antiEntropyRoundDuration: Histogram
  /** Records stored by the other side of a sync session: direction = sent | received (either side may have started it). */
  readonly antiEntropyRecords: Counter<'direction'>
  /** Bytes of anti-entropy frames (sync*) sent and received, sessions this node started or answered. */
  readonly antiEntropyBytes: Counter<'direction'>
  /** Partitions compared by sync sessions this node started, by outcome (equal, differing). */
  readonly antiEntropyPartitions: Counter<'outcome'>
  /** Records this node removed because no replica held them while it repaired (away past the grace). */
  readonly antiEntropyDropped: Counter

  // Daemon (lib/config, bin).
  readonly configReloads: Counter
  /** Seconds until this node's TLS certificate expires, recomputed at each scrape; absent with TLS off. */
  readonly tlsCertificateExpirySeconds: Gauge
  /** TLS material reloads on SIGHUP: result = ok | refused (the old certificate stays in use). */
  readonly tlsReloads: Counter<'result'>
  /** Sets the expiry the gauge counts down to: at start and after each reload that took. */
  trackCertificateExpiry(notAfterMs: number): void

  // Watches (lib/watch).
  /** Watches this node serves now (HTTP and stream). */
  readonly watchers: Gauge
  /** Events handed to watchers. */
  readonly watchEvents: Counter
  /** Watches the node ended, by reason (slow_consumer, compacted, shutdown, remote_failed). */
  readonly watchCuts: Counter<'reason'>
  /** Entries in the change log. */
  readonly watchLogEntries: Gauge
  /** Change log entries removed past watch.retention. */
  readonly watchLogTrimmed: Counter
}

export function createMetrics(): Metrics {
  const registry = new RegistryClass()
  let defaultsRegistered = false
  const registers = [registry]
  let certificateNotAfterMs: number | undefined

  const tlsCertificateExpirySeconds = new GaugeClass({
    name: `${METRIC_PREFIX}tls_certificate_expiry_seconds`,
    help: 'Seconds until this node\'s TLS certificate (tls.cert) expires; alert well before 0. Only present with TLS on.',
    // Registered by the first trackCertificateExpiry: with TLS off a gauge reading 0 would page someone.
    registers: [],
    collect() {
      if (certificateNotAfterMs !== undefined) this.set((certificateNotAfterMs - Date.now()) / 1000)
    },
  })

  return {
    registry,
    scrape(): Promise<string> {
      if (!defaultsRegistered) {
        defaultsRegistered = true
        const collectDefaultMetrics = require('prom-client/lib/defaultMetrics') as typeof PromClient.collectDefaultMetrics
        collectDefaultMetrics({ register: registry, prefix: METRIC_PREFIX, eventLoopMonitoringPrecision: EVENT_LOOP_SAMPLE_INTERVAL_MS })
      }
      return registry.metrics()
    },
    tlsCertificateExpirySeconds,
    tlsReloads: new CounterClass({
      name: `${METRIC_PREFIX}tls_reloads_total`,
      help: 'TLS certificate reloads on SIGHUP, by result (ok, refused: the old certificate stays in use).',
      labelNames: ['result'] as const,
      registers,
    }),
    trackCertificateExpiry(notAfterMs: number): void {
      if (certificateNotAfterMs === undefined) registry.registerMetric(tlsCertificateExpirySeconds)
      certificateNotAfterMs = notAfterMs
      tlsCertificateExpirySeconds.set((notAfterMs - Date.now()) / 1000)
    },
    httpRequests: new CounterClass({
      name: `${METRIC_PREFIX}http_requests_total`,
      help: 'Client HTTP requests answered, by route template, method and status code.',
      labelNames: ['route', 'method', 'status'] as const,
      registers,
    }),
    httpRequestDuration: new HistogramClass({
      name: `${METRIC_PREFIX}http_request_duration_seconds`,
      help: 'Time from receiving a client HTTP request to finishing its answer.',
      labelNames: ['route', 'method'] as const,
      buckets: HTTP_DURATION_BUCKETS_SECONDS,
      registers,
    }),
    httpClientErrors: new CounterClass({
      name: `${METRIC_PREFIX}http_client_errors_total`,
      help: 'Client HTTP requests refused by the parser before routing (malformed, oversized headers, timeouts), by error code.',
      labelNames: ['code'] as const,
      registers,
    }),
    limitRefusals: new CounterClass({
      name: `${METRIC_PREFIX}limit_refusals_total`,
      help: 'Work refused because a resource limit was reached (memory budgets, connection caps, timeouts), by limit.',
      labelNames: ['limit'] as const,
      registers,
    }),
    kvWrites: new CounterClass({
      name: `${METRIC_PREFIX}kv_writes_total`,
      help: 'Writes coordinated by this node, by operation (put, delete).',
      labelNames: ['op'] as const,
      registers,
    }),
    storeKeys: new GaugeClass({
      name: `${METRIC_PREFIX}store_keys`,
      help: 'Records in the local store, tombstones included.',
      registers,
    }),
    storeGcCollected: new CounterClass({
      name: `${METRIC_PREFIX}store_gc_collected_total`,
      help: 'Records removed by garbage collection, by kind (tombstone, expired).',
      labelNames: ['kind'] as const,
      registers,
    }),
    storeGcWaiting: new GaugeClass({
      name: `${METRIC_PREFIX}store_gc_waiting_records`,
      help: 'Tombstones and expired records past store.tombstoneGrace that the last GC sweep kept because a replica of their partition is not yet known to hold them.',
      registers,
    }),
    quorumFailures: new CounterClass({
      name: `${METRIC_PREFIX}replication_quorum_failures_total`,
      help: 'Requests that did not get enough replica acknowledgements in time, by kind (write, read).',
      labelNames: ['kind'] as const,
      registers,
    }),
    hintsPending: new GaugeClass({
      name: `${METRIC_PREFIX}replication_hints_pending`,
      help: 'Writes held as hints for replicas that are down.',
      registers,
    }),
    hintsHandedOff: new CounterClass({
      name: `${METRIC_PREFIX}replication_hints_handed_off_total`,
      help: 'Hints handed to a replica that came back (delivered) or given up (dropped).',
      labelNames: ['result'] as const,
      registers,
    }),
    readRepairs: new CounterClass({
      name: `${METRIC_PREFIX}replication_read_repairs_total`,
      help: 'Stale replicas sent the newest version after a read.',
      registers,
    }),
    paxosRounds: new CounterClass({
      name: `${METRIC_PREFIX}paxos_rounds_total`,
      help: 'CASPaxos rounds this node ran as proposer, by phase (prepare, accept, fast: the one-round-trip accept) and outcome (ok, conflict: a higher ballot was promised, unavailable: no quorum in time).',
      labelNames: ['phase', 'outcome'] as const,
      registers,
    }),
    paxosCatchUps: new CounterClass({
      name: `${METRIC_PREFIX}paxos_catch_ups_total`,
      help: 'Partitions whose acceptor state this node caught up after their acceptor set changed (it refuses their linearizable operations until then).',
      registers,
    }),
    paxosPartitionsCatchingUp: new GaugeClass({
      name: `${METRIC_PREFIX}paxos_partitions_catching_up`,
      help: 'Partitions this node is an acceptor of that are still catching up their acceptor state after a set change.',
      registers,
    }),
    members: new GaugeClass({
      name: `${METRIC_PREFIX}members`,
      help: 'Members in the local member table, by state (alive, suspect, dead, left).',
      labelNames: ['state'] as const,
      registers,
    }),
    peerMalformedFrames: new CounterClass({
      name: `${METRIC_PREFIX}peer_malformed_frames_total`,
      help: 'Peer frames that failed validation (each closes its link), by reason.',
      labelNames: ['reason'] as const,
      registers,
    }),
    peerMessagesDropped: new CounterClass({
      name: `${METRIC_PREFIX}peer_messages_dropped_total`,
      help: 'Peer messages dropped without delivery, by reason (unreachable, queue_full, closed).',
      labelNames: ['reason'] as const,
      registers,
    }),
    peerBytes: new CounterClass({
      name: `${METRIC_PREFIX}peer_bytes_total`,
      help: 'Bytes of frames on established peer links, by direction (sent, received) and message type.',
      labelNames: ['direction', 'type'] as const,
      registers,
    }),
    peerLinksOpened: new CounterClass({
      name: `${METRIC_PREFIX}peer_links_opened_total`,
      help: 'Peer links opened, by direction (inbound, outbound); reconnects count as new links.',
      labelNames: ['direction'] as const,
      registers,
    }),
    peerLinksClosed: new CounterClass({
      name: `${METRIC_PREFIX}peer_links_closed_total`,
      help: 'Peer links closed, by reason.',
      labelNames: ['reason'] as const,
      registers,
    }),
    peerHandshakesRefused: new CounterClass({
      name: `${METRIC_PREFIX}peer_handshakes_refused_total`,
      help: 'Peer handshakes refused, by who refused (local, remote) and why (protocol, cluster, auth, identity, duplicate, busy).',
      labelNames: ['by', 'code'] as const,
      registers,
    }),
    tlsHandshakeFailures: new CounterClass({
      name: `${METRIC_PREFIX}tls_handshake_failures_total`,
      help: 'TLS handshakes that failed, by side (peer, api) and reason (unknown_ca, expired, not_yet_valid, bad_name, plaintext, no_certificate, protocol_version, rejected_by_peer, other).',
      labelNames: ['side', 'reason'] as const,
      registers,
    }),
    memberTransitions: new CounterClass({
      name: `${METRIC_PREFIX}member_transitions_total`,
      help: 'Member state changes seen by this node, by the state entered (alive, suspect, dead, left).',
      labelNames: ['state'] as const,
      registers,
    }),
    membershipRefutations: new CounterClass({
      name: `${METRIC_PREFIX}membership_refutations_total`,
      help: 'Times this node refuted suspicion or death rumours about itself by raising its incarnation.',
      registers,
    }),
    probeRoundTrip: new HistogramClass({
      name: `${METRIC_PREFIX}membership_probe_rtt_seconds`,
      help: 'Round-trip time of acknowledged SWIM probes, by path (direct, indirect).',
      labelNames: ['path'] as const,
      buckets: PROBE_RTT_BUCKETS_SECONDS,
      registers,
    }),
    clockOffset: new GaugeClass({
      name: `${METRIC_PREFIX}clock_offset_seconds`,
      help: 'Estimated offset of each alive peer\'s clock from this node\'s (peer minus this node: negative when this node is ahead), by peer member name.',
      labelNames: ['peer'] as const,
      registers,
    }),
    clockSkewed: new GaugeClass({
      name: `${METRIC_PREFIX}clock_skewed`,
      help: '1 while this node\'s clock is beyond clock.maxSkewMs from a majority of its measured peers (it coordinates no writes), else 0.',
      registers,
    }),
    hintsStored: new CounterClass({
      name: `${METRIC_PREFIX}replication_hints_stored_total`,
      help: 'Writes kept as hints for a replica that was down or did not answer.',
      registers,
    }),
    antiEntropyRounds: new CounterClass({
      name: `${METRIC_PREFIX}antientropy_rounds_total`,
      help: 'Anti-entropy sync rounds, by result (ok, failed, skipped).',
      labelNames: ['result'] as const,
      registers,
    }),
    antiEntropyRoundDuration: new HistogramClass({
      name: `${METRIC_PREFIX}antientropy_round_duration_seconds`,
      help: 'Duration of anti-entropy sync rounds.',
      buckets: ANTI_ENTROPY_DURATION_BUCKETS_SECONDS,
      registers,
    }),
    antiEntropyRecords: new CounterClass({
      name: `${METRIC_PREFIX}antientropy_records_total`,
      help: 'Records moved by anti-entropy and stored by the receiver, by direction (sent, received).',
      labelNames: ['direction'] as const,
      registers,
    }),
    antiEntropyBytes: new CounterClass({
      name: `${METRIC_PREFIX}antientropy_bytes_total`,
      help: 'Bytes of anti-entropy frames, by direction (sent, received), in sessions this node started or answered.',
      labelNames: ['direction'] as const,
      registers,
    }),
    antiEntropyPartitions: new CounterClass({
      name: `${METRIC_PREFIX}antientropy_partitions_total`,
      help: 'Partitions compared by anti-entropy sessions this node started, by outcome (equal, differing).',
      labelNames: ['outcome'] as const,
      registers,
    }),
    antiEntropyDropped: new CounterClass({
      name: `${METRIC_PREFIX}antientropy_dropped_total`,
      help: 'Records removed while repairing after an absence longer than the tombstone grace, because no other replica held them.',
      registers,
    }),
    configReloads: new CounterClass({
      name: `${METRIC_PREFIX}config_reloads_total`,
      help: 'Configuration reloads applied on SIGHUP.',
      registers,
    }),
    watchers: new GaugeClass({
      name: `${METRIC_PREFIX}watchers`,
      help: 'Watches this node serves now (HTTP and stream protocol).',
      registers,
    }),
    watchEvents: new CounterClass({
      name: `${METRIC_PREFIX}watch_events_total`,
      help: 'Change events handed to watchers.',
      registers,
    }),
    watchCuts: new CounterClass({
      name: `${METRIC_PREFIX}watch_cut_total`,
      help: 'Watches the node ended, by reason: slow_consumer (buffer over watch.maxBufferedBytes), compacted, shutdown, remote_failed.',
      labelNames: ['reason'],
      registers,
    }),
    watchLogEntries: new GaugeClass({
      name: `${METRIC_PREFIX}watch_log_entries`,
      help: 'Entries in the change log (applied changes within watch.retention).',
      registers,
    }),
    watchLogTrimmed: new CounterClass({
      name: `${METRIC_PREFIX}watch_log_trimmed_total`,
      help: 'Change log entries removed because they were older than watch.retention.',
      registers,
    }),
  }
}
