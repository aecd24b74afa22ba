import type { Logger } from '../log/logger.js'
import type { Metrics } from '../metrics/metrics.js'
import type { TlsMaterialHolder } from '../tls/material.js'
import { settings } from './schema.js'
import type { HearsaySettings } from './types.js'

/**
 * Settings SIGHUP applies to the running daemon. Everything else (ports, membership timings,
 * data dir…) is wired into long-lived state at start and needs a restart.
 */
export const reloadableKeys: readonly string[] = ['log.level']

export interface ReloadDiff {
  /** Changed settings the daemon applies now. */
  readonly reloadable: readonly string[]
  /** Changed settings that take effect only after a restart: log "restart needed for …". */
  readonly restartNeeded: readonly string[]
}

function valueAt(config: HearsaySettings, key: string): unknown {
  let node: unknown = config
  for (const part of key.split('.')) node = (node as Record<string, unknown> | undefined)?.[part]
  return node
}

/** Compares two loaded configurations setting by setting (JSON values: arrays compare by content). */
export function diffReloadable(old: HearsaySettings, next: HearsaySettings): ReloadDiff {
  const reloadable: string[] = []
  const restartNeeded: string[] = []
  for (const key of settings.keys()) {
    if (JSON.stringify(valueAt(old, key)) === JSON.stringify(valueAt(next, key))) continue
    if (reloadableKeys.includes(key)) reloadable.push(key)
    else restartNeeded.push(key)
  }
  return { reloadable, restartNeeded }
}

/** What a TLS reload needs from the daemon: the holder, the log and the metrics. */
export interface TlsReloadTarget {
  readonly holder: TlsMaterialHolder
  readonly log: Logger
  readonly metrics: Pick<Metrics, 'tlsReloads'>
}

/**
 * SIGHUP's TLS half: re-read tls.ca/cert/key. New material reaches new handshakes through the
 * holder's listeners (peer transport, API server); links and connections already open keep the
 * session they have. Refused material leaves the old in use, and the log says why.
 */
export function reloadTlsMaterial({ holder, log, metrics }: TlsReloadTarget): void {
  const previous = holder.current().serial
  let result: ReturnType<TlsMaterialHolder['reload']>
  try {
    result = holder.reload()
  } catch (error) {
    // A listener (a server's setSecureContext) threw after the material was swapped in.
    metrics.tlsReloads.inc({ result: 'refused' })
    log.error({ err: error }, `TLS certificate reload could not be applied everywhere: ${(error as Error).message}`)
    return
  }
  if (result.ok) {
    metrics.tlsReloads.inc({ result: 'ok' })
    log.info({ serial: result.material.serial, previousSerial: previous, notAfter: new Date(result.material.notAfterMs).toISOString() },
      `TLS certificate reloaded: serial ${result.material.serial} for new handshakes`)
  } else {
    metrics.tlsReloads.inc({ result: 'refused' })
    log.error({ reason: result.reason, serial: previous }, `TLS certificate reload refused, keeping serial ${previous}: ${result.reason}`)
  }
}
