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
