import os from 'node:os'
import { MAX_KEY_BYTES } from '../store/keys.js'
import { formatOf } from './formats.js'
import type { HearsaySettings, SchemaFor, SettingSpec } from './types.js'

const KIB = 1024
const MIB = 1024 * KIB
const GIB = 1024 * MIB
const TIB = 1024 * GIB
const SECOND_MS = 1000
const MINUTE_MS = 60 * SECOND_MS
const HOUR_MS = 60 * MINUTE_MS
const DAY_MS = 24 * HOUR_MS

/**
 * Every setting of the daemon, its default (what `npm start` runs: one node on loopback), its
 * bounds and its environment variable. The membership timings are memberlist's DefaultLANConfig.
 */
export const schema: SchemaFor<HearsaySettings> = {
  node: {
    name: {
      doc: 'Human name of this node, shown in the member list and in logs.',
      format: 'node-name', default: os.hostname(), defaultDoc: 'the host name', env: 'HEARSAY_NODE_NAME',
    },
    dataDir: {
      doc: 'Directory of the LMDB environment, the node id and the clock high-water mark. Keep it across restarts: it is the node\'s identity.',
      format: 'path', default: './data', env: 'HEARSAY_NODE_DATA_DIR',
    },
  },
  api: {
    host: {
      doc: 'Address the client HTTP API binds to; 0.0.0.0 or :: for every interface.',
      format: 'bind-host', default: '127.0.0.1', env: 'HEARSAY_API_HOST',
    },
    port: {
      doc: 'Port of the client HTTP API.',
      format: 'port-number', default: 7070, env: 'HEARSAY_API_PORT',
    },
    advertise: {
      doc: 'host:port that clients and other nodes use to reach this API. Empty: the bind address, or the first non-internal IPv4 address when binding every interface.',
      format: 'advertise-address', default: '', env: 'HEARSAY_API_ADVERTISE',
    },
    token: {
      doc: 'Bearer token every API request must carry (Authorization: Bearer …). Empty: no authentication.',
      format: 'secret', default: '', sensitive: true, env: 'HEARSAY_API_TOKEN',
    },
    tokenFile: {
      doc: 'File holding api.token (surrounding white space ignored), so the token need not sit in a config file or the environment. It must not be readable by group or other users (chmod 600; systemd LoadCredential= files are accepted). Not together with api.token.',
      format: 'file-path', default: '', env: 'HEARSAY_API_TOKEN_FILE',
    },
    maxKeyBytes: {
      // At most what the store accepts (one declaration, lib/store/keys.ts): a longer key would
      // pass the API and fail on every replica as 503 instead of 400 (issue 17).
      doc: 'Longest key accepted, in UTF-8 bytes; at most the store\'s limit.',
      format: 'bounded-int', default: MAX_KEY_BYTES, min: 1, max: MAX_KEY_BYTES, env: 'HEARSAY_API_MAX_KEY_BYTES',
    },
    maxValueBytes: {
      doc: 'Largest value accepted, in bytes.',
      format: 'bounded-int', default: MIB, min: 0, max: 64 * MIB, env: 'HEARSAY_API_MAX_VALUE_BYTES',
    },
    maxBatchOps: {
      doc: 'Most puts and deletes in one POST /batch.',
      format: 'bounded-int', default: 1000, min: 1, max: 100_000, env: 'HEARSAY_API_MAX_BATCH_OPS',
    },
    maxBatchBodyBytes: {
      doc: 'Largest POST /batch request body, in bytes.',
      format: 'bounded-int', default: 16 * MIB, min: KIB, max: 256 * MIB, env: 'HEARSAY_API_MAX_BATCH_BODY_BYTES',
    },
    maxScanLimit: {
      doc: 'Most items one GET /kv scan page may return (the limit= a client may ask for).',
      format: 'bounded-int', default: 1000, min: 1, max: 100_000, env: 'HEARSAY_API_MAX_SCAN_LIMIT',
    },
    defaultScanLimit: {
      doc: 'Items per scan page when the request gives no limit=; at most api.maxScanLimit.',
      format: 'bounded-int', default: 100, min: 1, max: 100_000, env: 'HEARSAY_API_DEFAULT_SCAN_LIMIT',
    },
    requestTimeoutMs: {
      doc: 'Deadline for receiving a whole client request, in milliseconds.',
      format: 'bounded-int', default: 30_000, min: 100, max: HOUR_MS, env: 'HEARSAY_API_REQUEST_TIMEOUT_MS',
    },
    maxHeaderBytes: {
      doc: 'Largest total size of a request\'s HTTP headers, in bytes.',
      format: 'bounded-int', default: 16 * KIB, min: KIB, max: MIB, env: 'HEARSAY_API_MAX_HEADER_BYTES',
    },
    maxConnectionsPerAddress: {
      doc: 'Open connections to the API port (HTTP and /v1/stream) from one client address; one more is answered 503 and closed.',
      format: 'bounded-int', default: 256, min: 1, max: 1_000_000, env: 'HEARSAY_API_MAX_CONNECTIONS_PER_ADDRESS',
    },
    idleTimeoutMs: {
      doc: 'Time an API connection may stay open without sending a request\'s headers, in milliseconds; then it is closed (at most api.requestTimeoutMs).',
      format: 'bounded-int', default: 10_000, min: 100, max: HOUR_MS, env: 'HEARSAY_API_IDLE_TIMEOUT_MS',
    },
    streamIdleTimeoutMs: {
      doc: 'Time a /v1/stream connection may stay open with nothing in flight and no message, in milliseconds; then it is closed (1000) and the client opens a new one when needed.',
      format: 'bounded-int', default: 300_000, min: 100, max: DAY_MS, env: 'HEARSAY_API_STREAM_IDLE_TIMEOUT_MS',
    },
    maxScanPageBytes: {
      doc: 'Most bytes of keys and values one GET /kv scan page carries; a page is cut there (at least one item) and its next cursor continues after it.',
      format: 'bounded-int', default: 8 * MIB, min: KIB, max: GIB, env: 'HEARSAY_API_MAX_SCAN_PAGE_BYTES',
    },
    maxStreamConnectionBytes: {
      doc: 'Memory one /v1/stream connection may hold, in bytes: messages read, the largest answer of each running request (reserved before it runs), answers not yet written. When full the node stops reading that connection.',
      format: 'bounded-int', default: 32 * MIB, min: 64 * KIB, max: 16 * GIB, env: 'HEARSAY_API_MAX_STREAM_CONNECTION_BYTES',
    },
    maxStreamTotalBytes: {
      doc: 'Memory all /v1/stream connections together may hold, in bytes; a request that does not fit is answered 503.',
      format: 'bounded-int', default: 256 * MIB, min: 64 * KIB, max: 64 * GIB, env: 'HEARSAY_API_MAX_STREAM_TOTAL_BYTES',
    },
    streamMessageTimeoutMs: {
      doc: 'Time a /v1/stream message may take to arrive once its first bytes are read; a slower one closes the connection (1008). Time the node does not read (back-pressure) does not count.',
      format: 'bounded-int', default: 10_000, min: 100, max: HOUR_MS, env: 'HEARSAY_API_STREAM_MESSAGE_TIMEOUT_MS',
    },
  },
  peer: {
    host: {
      doc: 'Address the peer WebSocket port binds to; 0.0.0.0 or :: for every interface.',
      format: 'bind-host', default: '127.0.0.1', env: 'HEARSAY_PEER_HOST',
    },
    port: {
      doc: 'Port for links between nodes (gossip, replication, anti-entropy).',
      format: 'port-number', default: 7946, env: 'HEARSAY_PEER_PORT',
    },
    advertise: {
      doc: 'host:port other nodes use to reach this node\'s peer port. Empty: the bind address, or the first non-internal IPv4 address when binding every interface.',
      format: 'advertise-address', default: '', env: 'HEARSAY_PEER_ADVERTISE',
    },
    maxConnectionsPerAddress: {
      doc: 'Open connections to the peer port from one address (links and connections still in their handshake); more are closed. A quarter of the 64 handshake slots is the most one address may hold.',
      format: 'bounded-int', default: 64, min: 1, max: 100_000, env: 'HEARSAY_PEER_MAX_CONNECTIONS_PER_ADDRESS',
    },
  },
  cluster: {
    name: {
      doc: 'Name of the cluster; nodes refuse links from a different cluster.',
      format: 'cluster-name', default: 'hearsay', env: 'HEARSAY_CLUSTER_NAME',
    },
    seeds: {
      doc: 'Peer addresses (host:port) to join the cluster through; any one alive is enough. Empty: start a new cluster.',
      format: 'address-list', default: [], env: 'HEARSAY_CLUSTER_SEEDS',
    },
    secret: {
      doc: 'Shared secret both ends of a peer link prove with an HMAC handshake. Empty: links are not authenticated.',
      format: 'secret', default: '', sensitive: true, env: 'HEARSAY_CLUSTER_SECRET',
    },
    secretFile: {
      doc: 'File holding cluster.secret (surrounding white space ignored), so the secret need not sit in a config file or the environment. It must not be readable by group or other users (chmod 600; systemd LoadCredential= files are accepted). Not together with cluster.secret.',
      format: 'file-path', default: '', env: 'HEARSAY_CLUSTER_SECRET_FILE',
    },
  },
  tls: {
    ca: {
      doc: 'PEM file of the CA every peer certificate (and with tls.api mutual every client certificate) must chain to; `hearsay tls ca create` makes one. Needed when tls.peer or tls.api is on. Reloaded on SIGHUP.',
      format: 'file-path', default: '', env: 'HEARSAY_TLS_CA',
    },
    cert: {
      doc: 'PEM file of this node\'s certificate, signed by tls.ca, naming the node (node.name as CN or DNS name) and the hosts of api.advertise and peer.advertise; `hearsay tls cert create` makes one. Reloaded on SIGHUP.',
      format: 'file-path', default: '', env: 'HEARSAY_TLS_CERT',
    },
    key: {
      doc: 'PEM file of the private key of tls.cert (unencrypted; keep it chmod 600). Reloaded on SIGHUP.',
      format: 'file-path', default: '', env: 'HEARSAY_TLS_KEY',
    },
    peer: {
      doc: 'on: links between nodes are wss:// with mutual TLS (both ends present a certificate from tls.ca naming their node), and no plain link is opened or accepted; the cluster.secret handshake still runs inside. Every node of a cluster needs the same setting.',
      format: 'choice', values: ['off', 'on'], default: 'off', env: 'HEARSAY_TLS_PEER',
    },
    api: {
      doc: 'on: the client API (HTTP and /v1/stream) is HTTPS and WSS only; mutual: clients must also present a certificate from tls.ca (`hearsay tls cert create --client`).',
      format: 'choice', values: ['off', 'on', 'mutual'], default: 'off', env: 'HEARSAY_TLS_API',
    },
    minVersion: {
      doc: 'Oldest TLS version this node negotiates, on peer links and the API; nothing older than TLSv1.2 is ever accepted.',
      format: 'choice', values: ['TLSv1.2', 'TLSv1.3'], default: 'TLSv1.2', env: 'HEARSAY_TLS_MIN_VERSION',
    },
  },
  replication: {
    factor: {
      doc: 'Replicas per partition (N). A cluster smaller than N keeps a copy on every node.',
      format: 'bounded-int', default: 3, min: 1, max: 64, env: 'HEARSAY_REPLICATION_FACTOR',
    },
    writeQuorum: {
      doc: 'Replicas that must make a write durable before it is acknowledged (W), unless the request says ?w=.',
      format: 'consistency-level', default: 'quorum', env: 'HEARSAY_REPLICATION_WRITE_QUORUM',
    },
    readQuorum: {
      doc: 'Replicas a read consults (R), unless the request says ?r=.',
      format: 'consistency-level', default: 1, env: 'HEARSAY_REPLICATION_READ_QUORUM',
    },
    timeoutMs: {
      doc: 'How long a coordinator waits for W (or R) replicas before answering 503, in milliseconds.',
      format: 'bounded-int', default: 2000, min: 10, max: 10 * MINUTE_MS, env: 'HEARSAY_REPLICATION_TIMEOUT_MS',
    },
    waitForReplicasMs: {
      doc: 'How long a write waits for W of its replicas to be alive before answering 503 (nothing written, outcome "refused"), in milliseconds. 0: no wait; the write goes out at once, hints stand in for replicas that are down, and it answers 503 only when W acknowledgements do not arrive within replication.timeoutMs.',
      format: 'bounded-int', default: 0, min: 0, max: 10 * MINUTE_MS, env: 'HEARSAY_REPLICATION_WAIT_FOR_REPLICAS_MS',
    },
    hints: {
      doc: 'Keep writes for unreachable replicas as hints and hand them off when the replica is back.',
      format: 'flag', default: true, env: 'HEARSAY_REPLICATION_HINTS',
    },
    hintWindowMs: {
      doc: 'Hints older than this are dropped instead of handed off (anti-entropy repairs what they carried), so a replica that is gone for good does not make hints pile up.',
      format: 'bounded-int', default: 3 * HOUR_MS, min: 1000, max: 30 * DAY_MS, env: 'HEARSAY_REPLICATION_HINT_WINDOW_MS',
    },
    maxHintBytes: {
      doc: 'Most bytes of hints this node keeps for all unreachable replicas together; further hints are dropped and counted.',
      format: 'bounded-int', default: 256 * MIB, min: MIB, max: 64 * GIB, env: 'HEARSAY_REPLICATION_MAX_HINT_BYTES',
    },
    testDelayMinMs: {
      doc: 'TESTING ONLY, NEVER IN PRODUCTION: delay each outgoing replica write by a uniform random time from testDelayMinMs to testDelayMaxMs, to show on one machine what W and R cost when replicas lag.',
      format: 'bounded-int', default: 0, min: 0, max: MINUTE_MS, env: 'HEARSAY_REPLICATION_TEST_DELAY_MIN_MS',
    },
    testDelayMaxMs: {
      doc: 'TESTING ONLY: upper bound of the injected replica-write delay (see replication.testDelayMinMs); 0 = no delay.',
      format: 'bounded-int', default: 0, min: 0, max: MINUTE_MS, env: 'HEARSAY_REPLICATION_TEST_DELAY_MAX_MS',
    },
  },
  partitions: {
    doc: 'Number of partitions Q the key space is cut into. Fixed when the cluster is created: every node must use the same value.',
    format: 'bounded-int', default: 256, min: 1, max: 65_536, env: 'HEARSAY_PARTITIONS',
  },
  membership: {
    probeIntervalMs: {
      doc: 'SWIM: time between failure-detection probes of one member, in milliseconds.',
      format: 'bounded-int', default: 1000, min: 10, max: 10 * MINUTE_MS, env: 'HEARSAY_MEMBERSHIP_PROBE_INTERVAL_MS',
    },
    probeTimeoutMs: {
      doc: 'SWIM: wait for a direct probe\'s ack before asking others to probe, in milliseconds; less than membership.probeIntervalMs.',
      format: 'bounded-int', default: 500, min: 1, max: 10 * MINUTE_MS, env: 'HEARSAY_MEMBERSHIP_PROBE_TIMEOUT_MS',
    },
    indirectChecks: {
      doc: 'SWIM: members asked to probe a member that missed a direct probe (k).',
      format: 'bounded-int', default: 3, min: 0, max: 16, env: 'HEARSAY_MEMBERSHIP_INDIRECT_CHECKS',
    },
    suspicionMult: {
      doc: 'Lifeguard: suspicion timeout = suspicionMult × log10(members) × probe interval before a suspect is declared dead.',
      format: 'bounded-int', default: 4, min: 1, max: 100, env: 'HEARSAY_MEMBERSHIP_SUSPICION_MULT',
    },
    suspicionMaxTimeoutMult: {
      doc: 'Lifeguard: the suspicion timeout starts at this multiple of its minimum and shrinks with independent confirmations.',
      format: 'bounded-int', default: 6, min: 1, max: 100, env: 'HEARSAY_MEMBERSHIP_SUSPICION_MAX_TIMEOUT_MULT',
    },
    retransmitMult: {
      doc: 'Gossip: each membership update is sent retransmitMult × log10(members + 1) times.',
      format: 'bounded-int', default: 4, min: 1, max: 100, env: 'HEARSAY_MEMBERSHIP_RETRANSMIT_MULT',
    },
    pushPullIntervalMs: {
      doc: 'Time between full member-table exchanges with one random member, in milliseconds.',
      format: 'bounded-int', default: 30_000, min: SECOND_MS, max: DAY_MS, env: 'HEARSAY_MEMBERSHIP_PUSH_PULL_INTERVAL_MS',
    },
    gossipIntervalMs: {
      doc: 'Time between gossip rounds that spread membership updates, in milliseconds.',
      format: 'bounded-int', default: 200, min: 10, max: MINUTE_MS, env: 'HEARSAY_MEMBERSHIP_GOSSIP_INTERVAL_MS',
    },
    gossipNodes: {
      doc: 'Members each gossip round sends updates to.',
      format: 'bounded-int', default: 3, min: 1, max: 64, env: 'HEARSAY_MEMBERSHIP_GOSSIP_NODES',
    },
    awarenessMaxMultiplier: {
      doc: 'Lifeguard: most a node slows its own probing when it seems unhealthy (probe interval and timeout multiplier).',
      format: 'bounded-int', default: 8, min: 1, max: 64, env: 'HEARSAY_MEMBERSHIP_AWARENESS_MAX_MULTIPLIER',
    },
    reapAfterMs: {
      doc: 'How long a dead or departed member stays in the member table before it is forgotten, in milliseconds.',
      format: 'bounded-int', default: DAY_MS, min: SECOND_MS, max: 30 * DAY_MS, env: 'HEARSAY_MEMBERSHIP_REAP_AFTER_MS',
    },
    joinRetryMaxMs: {
      doc: 'Longest wait between attempts to join through the seeds (backoff grows to this), in milliseconds.',
      format: 'bounded-int', default: 30_000, min: 100, max: HOUR_MS, env: 'HEARSAY_MEMBERSHIP_JOIN_RETRY_MAX_MS',
    },
  },
  antiEntropy: {
    enabled: {
      doc: 'Run anti-entropy rounds on this node\'s own initiative: on the schedule, when a member comes back or joins, and on rebalance. Off, only POST /admin/sync starts a round (peers still sync with this node).',
      format: 'flag', default: true, env: 'HEARSAY_ANTI_ENTROPY_ENABLED',
    },
    schedule: {
      doc: 'When to run an anti-entropy sync round with a peer (node-cron expression; 6 fields start with seconds).',
      format: 'cron', default: '*/30 * * * * *', env: 'HEARSAY_ANTI_ENTROPY_SCHEDULE',
    },
    maxBytesPerSecond: {
      doc: 'Rate limit of the records one node\'s sync sessions push and pull, in bytes per second (0 = unlimited), so catching up never crowds out client traffic.',
      format: 'bounded-int', default: 50 * MIB, min: 0, max: 64 * GIB, env: 'HEARSAY_ANTI_ENTROPY_MAX_BYTES_PER_SECOND',
    },
    batchBytes: {
      doc: 'Largest batch of records one sync push carries, in bytes (a single larger record still moves alone).',
      format: 'bounded-int', default: MIB, min: 1024, max: 64 * MIB, env: 'HEARSAY_ANTI_ENTROPY_BATCH_BYTES',
    },
    partitionConcurrency: {
      doc: 'Partitions one sync session compares at once (each descends its tree one round trip per level).',
      format: 'bounded-int', default: 8, min: 1, max: 256, env: 'HEARSAY_ANTI_ENTROPY_PARTITION_CONCURRENCY',
    },
    requestTimeoutMs: {
      doc: 'Deadline of each request within a sync session, in milliseconds; a session that misses one is abandoned and retried in a later round.',
      format: 'bounded-int', default: 10_000, min: 100, max: 10 * MINUTE_MS, env: 'HEARSAY_ANTI_ENTROPY_REQUEST_TIMEOUT_MS',
    },
  },
  store: {
    tombstoneGrace: {
      doc: 'How long a delete\'s tombstone is kept before it is collected. Must outlast any partition you expect to heal, or deleted keys can come back from a stale replica.',
      format: 'duration', default: '10d', env: 'HEARSAY_STORE_TOMBSTONE_GRACE',
    },
    gcIntervalMs: {
      doc: 'Time between sweeps that collect expired tombstones and TTL-expired keys, in milliseconds.',
      format: 'bounded-int', default: MINUTE_MS, min: 100, max: DAY_MS, env: 'HEARSAY_STORE_GC_INTERVAL_MS',
    },
    gcBatchSize: {
      doc: 'Most records one sweep step deletes, so a sweep never holds the store for long.',
      format: 'bounded-int', default: 1000, min: 1, max: 1_000_000, env: 'HEARSAY_STORE_GC_BATCH_SIZE',
    },
    mapSizeBytes: {
      doc: 'Initial LMDB map size in bytes (address space reserved, not disk used up front); lmdb-js grows the map when the data outgrows it.',
      format: 'bounded-int', default: 4 * GIB, min: MIB, max: 64 * TIB, env: 'HEARSAY_STORE_MAP_SIZE_BYTES',
    },
  },
  watch: {
    retention: {
      doc: 'How long the change log keeps each applied change, for watches that resume from a version (`since`, Last-Event-ID); an older since answers 410 Gone. A duration or milliseconds.',
      format: 'duration', default: '1h', env: 'HEARSAY_WATCH_RETENTION',
    },
    maxWatchers: {
      doc: 'Watches this node serves at once (HTTP and stream protocol together); more are refused with 503. Memory for watches is at most this times watch.maxBufferedBytes.',
      format: 'bounded-int', default: 1024, min: 1, max: 1_000_000, env: 'HEARSAY_WATCH_MAX_WATCHERS',
    },
    maxBufferedBytes: {
      doc: 'Bytes of events one watch may have waiting for its consumer; a consumer that falls further behind is cut (reason slow_consumer) and must resume.',
      format: 'bounded-int', default: MIB, min: 4 * KIB, max: GIB, env: 'HEARSAY_WATCH_MAX_BUFFERED_BYTES',
    },
    heartbeatMs: {
      doc: 'Time between heartbeat comments on an idle watch stream (SSE), in milliseconds.',
      format: 'bounded-int', default: 5000, min: 100, max: 10 * MINUTE_MS, env: 'HEARSAY_WATCH_HEARTBEAT_MS',
    },
    resumeMarginMs: {
      doc: 'A resumed watch replays from this many milliseconds (plus twice clock.maxSkewMs) before its since version, so changes that reached this node later than the node it resumes from are not missed (docs/consistency.md, Watches). Duplicates are the price.',
      format: 'bounded-int', default: 30_000, min: 0, max: DAY_MS, env: 'HEARSAY_WATCH_RESUME_MARGIN_MS',
    },
  },
  clock: {
    maxSkewMs: {
      doc: 'A remote version more than this many milliseconds ahead of the local wall clock is refused; a node whose clock is more than 80 % of this away from a majority of its peers\' (measured every second) coordinates no writes and reports skewed on /health.',
      format: 'bounded-int', default: 500, min: 100, max: DAY_MS, env: 'HEARSAY_CLOCK_MAX_SKEW_MS',
    },
    offsetMs: {
      doc: 'TESTING ONLY, NEVER IN PRODUCTION: shifts this node\'s wall clock by this many milliseconds, to demonstrate clock skew handling.',
      format: 'bounded-int', default: 0, min: -DAY_MS, max: DAY_MS, env: 'HEARSAY_CLOCK_OFFSET_MS',
    },
  },
  log: {
    level: {
      doc: 'Least severe log level written (JSON lines on stdout). Reloaded on SIGHUP.',
      format: 'log-level', default: 'info', env: 'HEARSAY_LOG_LEVEL',
    },
  },
  shutdown: {
    timeoutMs: {
      doc: 'Bound on a graceful shutdown (leave the cluster, finish requests, flush), in milliseconds; then the daemon exits anyway.',
      format: 'bounded-int', default: 10_000, min: 100, max: 10 * MINUTE_MS, env: 'HEARSAY_SHUTDOWN_TIMEOUT_MS',
    },
  },
}

function isSettingSpec(node: object): node is SettingSpec<unknown> {
  // convict's own rule: a schema node with a default is a setting, anything else a section.
  return 'default' in node
}

function collect(node: object, prefix: string, into: Map<string, SettingSpec<unknown>>): void {
  for (const [name, child] of Object.entries(node) as Array<[string, object]>) {
    const key = prefix === '' ? name : `${prefix}.${name}`
    if (isSettingSpec(child)) into.set(key, child)
    else collect(child, key, into)
  }
}

/** Every setting by dotted key, in schema order. */
export const settings: ReadonlyMap<string, SettingSpec<unknown>> = (() => {
  const all = new Map<string, SettingSpec<unknown>>()
  collect(schema, '', all)
  return all
})()

/** Dotted keys that hold settings rather than being one (`api`, `membership`, …). */
export const sections: ReadonlySet<string> = new Set(
  [...settings.keys()].flatMap(key => key.split('.').slice(0, -1).map((_, i, parts) => parts.slice(0, i + 1).join('.'))),
)

export interface SettingDoc {
  readonly key: string
  readonly doc: string
  /** The default value on this machine. */
  readonly default: unknown
  /** The default as the docs show it (machine-independent). */
  readonly defaultDoc: string
  /** Name of the format in formats.ts. */
  readonly format: string
  /** The accepted values, in words. */
  readonly accepts: string
  readonly sensitive: boolean
  readonly env: string
}

function showDefault(spec: SettingSpec<unknown>): string {
  if (spec.defaultDoc !== undefined) return spec.defaultDoc
  if (spec.default === '') return '(empty)'
  return typeof spec.default === 'string' ? spec.default : JSON.stringify(spec.default)
}

/** One entry per setting, in schema order: the source of docs/configuration.md. */
export function schemaDocs(): SettingDoc[] {
  return [...settings].map(([key, spec]) => ({
    key,
    doc: spec.doc,
    default: spec.default,
    defaultDoc: showDefault(spec),
    format: spec.format,
    accepts: formatOf(spec).describe(spec),
    sensitive: spec.sensitive === true,
    env: spec.env,
  }))
}
