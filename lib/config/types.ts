import type { LevelWithSilent } from 'pino'
import type { ConsistencyLevel } from '../replication/consistency.js'
import type { MembershipConfig } from '../membership/config.js'

export type TlsPeerMode = 'off' | 'on'
export type TlsApiMode = 'off' | 'on' | 'mutual'
/** Names as Node's tls.SecureContextOptions#minVersion takes them; nothing older than 1.2. */
export type TlsMinVersion = 'TLSv1.2' | 'TLSv1.3'

/**
 * The daemon's settings as the schema (schema.ts) declares them; each setting's meaning and unit
 * is its `doc` there and in docs/configuration.md.
 */
export interface HearsaySettings {
  readonly node: {
    readonly name: string
    readonly dataDir: string
  }
  readonly api: {
    readonly host: string
    readonly port: number
    readonly advertise: string
    readonly token: string
    /** File holding api.token (read by the loader into api.token); empty: not used. */
    readonly tokenFile: string
    readonly maxKeyBytes: number
    readonly maxValueBytes: number
    readonly maxBatchOps: number
    readonly maxBatchBodyBytes: number
    readonly maxScanLimit: number
    readonly defaultScanLimit: number
    readonly requestTimeoutMs: number
    readonly maxHeaderBytes: number
    readonly maxConnectionsPerAddress: number
    readonly idleTimeoutMs: number
    readonly streamIdleTimeoutMs: number
    readonly maxScanPageBytes: number
    readonly maxStreamConnectionBytes: number
    readonly maxStreamTotalBytes: number
    readonly streamMessageTimeoutMs: number
  }
  readonly peer: {
    readonly host: string
    readonly port: number
    readonly advertise: string
    readonly maxConnectionsPerAddress: number
  }
  readonly cluster: {
    readonly name: string
    readonly seeds: readonly string[]
    readonly secret: string
    /** File holding cluster.secret (read by the loader into cluster.secret); empty: not used. */
    readonly secretFile: string
  }
  /** Absolute PEM paths after loading ('' = unset); modes as docs/configuration.md says. */
  readonly tls: {
    readonly ca: string
    readonly cert: string
    readonly key: string
    readonly peer: TlsPeerMode
    readonly api: TlsApiMode
    readonly minVersion: TlsMinVersion
  }
  readonly replication: {
    readonly factor: number
    readonly writeQuorum: ConsistencyLevel
    readonly readQuorum: ConsistencyLevel
    readonly timeoutMs: number
    readonly waitForReplicasMs: number
    readonly hints: boolean
    readonly hintWindowMs: number
    readonly maxHintBytes: number
    readonly testDelayMinMs: number
    readonly testDelayMaxMs: number
  }
  readonly partitions: number
  /** SWIM/Lifeguard timings; the interface lives with the protocol that uses them. */
  readonly membership: MembershipConfig
  readonly antiEntropy: {
    readonly enabled: boolean
    readonly schedule: string
    readonly maxBytesPerSecond: number
    readonly batchBytes: number
    readonly partitionConcurrency: number
    readonly requestTimeoutMs: number
  }
  readonly store: {
    /** As written: a duration string or a number of milliseconds; use tombstoneGraceMs. */
    readonly tombstoneGrace: string | number
    readonly gcIntervalMs: number
    readonly gcBatchSize: number
    readonly mapSizeBytes: number
  }
  readonly watch: {
    /** As written: a duration string or a number of milliseconds; use retentionMs. */
    readonly retention: string | number
    readonly maxWatchers: number
    readonly maxBufferedBytes: number
    readonly heartbeatMs: number
    readonly resumeMarginMs: number
  }
  readonly clock: {
    readonly maxSkewMs: number
    readonly offsetMs: number
  }
  readonly log: {
    readonly level: LevelWithSilent
  }
  readonly shutdown: {
    readonly timeoutMs: number
  }
}

/** The loaded configuration: the settings plus values parsed from them. Deeply frozen. */
export interface HearsayConfig extends HearsaySettings {
  readonly store: HearsaySettings['store'] & {
    /** store.tombstoneGrace in milliseconds. */
    readonly tombstoneGraceMs: number
  }
  readonly watch: HearsaySettings['watch'] & {
    /** watch.retention in milliseconds. */
    readonly retentionMs: number
  }
}

/** One setting in the convict schema. Extra fields (min, max, defaultDoc) reach format checks. */
export interface SettingSpec<T> {
  readonly doc: string
  /** Name of a format registered in formats.ts. */
  readonly format: string
  readonly default: T
  /** Environment variable that overrides the setting: HEARSAY_ + the path in SCREAMING_SNAKE_CASE. */
  readonly env: string
  /** Never printed: masked in --print-config and left out of error messages. */
  readonly sensitive?: boolean
  /** The accepted words of the `choice` format. */
  readonly values?: readonly string[]
  /** Inclusive bounds for numeric formats; item limit for lists. */
  readonly min?: number
  readonly max?: number
  /** Shown in the docs instead of a default computed on this machine (e.g. the host name). */
  readonly defaultDoc?: string
}

type Leaf = string | number | boolean | readonly unknown[]

/** A schema shaped exactly like T: the compiler checks that schema and interface agree. */
export type SchemaFor<T> = {
  readonly [P in keyof T]-?: T[P] extends Leaf ? SettingSpec<T[P]> : SchemaFor<T[P]>
}
