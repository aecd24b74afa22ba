import { isLoopbackHost, isUnspecifiedHost, parseHostPort } from './address.js'
import { ConfigError } from './error.js'
import type { HearsaySettings } from './types.js'

/** Where a setting's value came from; a higher rank was applied later. */
export interface Origin {
  readonly source: string
  readonly rank: number
}

const DEFAULTS: Origin = { source: 'defaults', rank: -1 }

/**
 * A rule between settings fails: blame the setting that was set last, since that is most likely
 * the edit that broke it, and say where it was set.
 */
function fail(origins: ReadonlyMap<string, Origin>, keys: readonly string[], problem: string): never {
  let blamed = keys[0] ?? ''
  for (const key of keys) {
    if ((origins.get(key) ?? DEFAULTS).rank > (origins.get(blamed) ?? DEFAULTS).rank) blamed = key
  }
  throw new ConfigError(problem, { key: blamed, source: (origins.get(blamed) ?? DEFAULTS).source })
}

/** The host others will see for a bind/advertise pair; undefined when it will be derived from interfaces. */
function advertisedHost(bindHost: string, advertise: string): string | undefined {
  if (advertise !== '') return parseHostPort(advertise)?.host
  return isUnspecifiedHost(bindHost) ? undefined : bindHost
}

function checkScanLimits(config: HearsaySettings, origins: ReadonlyMap<string, Origin>): void {
  const { defaultScanLimit, maxScanLimit } = config.api
  if (defaultScanLimit > maxScanLimit) {
    fail(origins, ['api.defaultScanLimit', 'api.maxScanLimit'],
      `api.defaultScanLimit (${defaultScanLimit}) must not exceed api.maxScanLimit (${maxScanLimit})`)
  }
}

function checkStreamBudgets(config: HearsaySettings, origins: ReadonlyMap<string, Origin>): void {
  const { maxStreamConnectionBytes, maxStreamTotalBytes } = config.api
  if (maxStreamConnectionBytes > maxStreamTotalBytes) {
    fail(origins, ['api.maxStreamConnectionBytes', 'api.maxStreamTotalBytes'],
      `api.maxStreamConnectionBytes (${maxStreamConnectionBytes}) must not exceed api.maxStreamTotalBytes (${maxStreamTotalBytes})`)
  }
}

function checkQuorums(config: HearsaySettings, origins: ReadonlyMap<string, Origin>): void {
  const { factor } = config.replication
  for (const key of ['writeQuorum', 'readQuorum'] as const) {
    const level = config.replication[key]
    // A count above N can never be met by any cluster; every request would fail.
    if (typeof level === 'number' && level > factor) {
      fail(origins, [`replication.${key}`, 'replication.factor'],
        `replication.${key} (${level}) must not exceed replication.factor (${factor})`)
    }
  }
}

function checkTestDelay(config: HearsaySettings, origins: ReadonlyMap<string, Origin>): void {
  const { testDelayMinMs, testDelayMaxMs } = config.replication
  if (testDelayMinMs > testDelayMaxMs) {
    fail(origins, ['replication.testDelayMinMs', 'replication.testDelayMaxMs'],
      `replication.testDelayMinMs (${testDelayMinMs}) must not exceed replication.testDelayMaxMs (${testDelayMaxMs})`)
  }
}

function checkProbeTimeout(config: HearsaySettings, origins: ReadonlyMap<string, Origin>): void {
  const { probeTimeoutMs, probeIntervalMs } = config.membership
  // SWIM: a probe must time out within its interval, or probes pile up behind each other.
  if (probeTimeoutMs >= probeIntervalMs) {
    fail(origins, ['membership.probeTimeoutMs', 'membership.probeIntervalMs'],
      `membership.probeTimeoutMs (${probeTimeoutMs}) must be less than membership.probeIntervalMs (${probeIntervalMs})`)
  }
}

function checkPortClash(config: HearsaySettings, origins: ReadonlyMap<string, Origin>): void {
  const { api, peer } = config
  const sharesAddress = api.host === peer.host || isUnspecifiedHost(api.host) || isUnspecifiedHost(peer.host)
  if (api.port !== 0 && api.port === peer.port && sharesAddress) {
    fail(origins, ['peer.port', 'api.port'], `api.port and peer.port are both ${api.port}; they need different ports`)
  }
}

/**
 * Design: advertising loopback to a cluster whose seeds are not loopback is a config error; the
 * other nodes would dial themselves. The API may stay on loopback: clients on this host only.
 */
function checkLoopbackAdvertise(config: HearsaySettings, origins: ReadonlyMap<string, Origin>): void {
  const remoteSeed = config.cluster.seeds.find(seed => {
    const host = parseHostPort(seed)?.host
    return host !== undefined && !isLoopbackHost(host)
  })
  if (remoteSeed === undefined) return
  const { host, advertise } = config.peer
  const shown = advertisedHost(host, advertise)
  if (shown !== undefined && isLoopbackHost(shown)) {
    fail(origins, [advertise === '' ? 'peer.host' : 'peer.advertise', 'cluster.seeds'],
      `this node would advertise loopback ${shown} to peers while cluster.seeds has ${remoteSeed}, which cannot reach it; set peer.advertise to this node's LAN address`)
  }
}

/** A secret comes from one place: with both set, which one the cluster uses would be a guess. */
function checkSecretSources(config: HearsaySettings, origins: ReadonlyMap<string, Origin>): void {
  if (config.cluster.secret !== '' && config.cluster.secretFile !== '') {
    fail(origins, ['cluster.secret', 'cluster.secretFile'], 'cluster.secret and cluster.secretFile are both set; keep one (the file keeps the secret out of config files and the environment)')
  }
  if (config.api.token !== '' && config.api.tokenFile !== '') {
    fail(origins, ['api.token', 'api.tokenFile'], 'api.token and api.tokenFile are both set; keep one (the file keeps the token out of config files and the environment)')
  }
}

/** TLS on either port needs the CA, the node's certificate and its key. */
function checkTlsFiles(config: HearsaySettings, origins: ReadonlyMap<string, Origin>): void {
  const { tls } = config
  const user = tls.peer === 'on' ? 'tls.peer' : tls.api !== 'off' ? 'tls.api' : undefined
  if (user === undefined) return
  for (const key of ['ca', 'cert', 'key'] as const) {
    if (tls[key] === '') {
      fail(origins, [user, `tls.${key}`], `${user} is ${user === 'tls.peer' ? tls.peer : tls.api} but tls.${key} is not set; make the files with \`hearsay tls ca create\` and \`hearsay tls cert create\` (docs/operations.md, TLS)`)
    }
  }
}

/** Rules that involve more than one setting; each setting alone has passed its format. */
export function checkRelations(config: HearsaySettings, origins: ReadonlyMap<string, Origin>): void {
  checkScanLimits(config, origins)
  checkStreamBudgets(config, origins)
  checkQuorums(config, origins)
  checkProbeTimeout(config, origins)
  checkTestDelay(config, origins)
  checkPortClash(config, origins)
  checkLoopbackAdvertise(config, origins)
  checkSecretSources(config, origins)
  checkTlsFiles(config, origins)
}
