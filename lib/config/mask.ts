import { settings } from './schema.js'
import type { HearsayConfig } from './types.js'

export const MASK = '[masked]'

/**
 * A copy of `config` safe to print (`hearsayd --print-config`): every sensitive setting that is
 * set reads "[masked]"; an empty one stays empty, so the reader can still tell it is unset.
 */
export function maskSecrets(config: HearsayConfig): HearsayConfig {
  const copy = structuredClone(config) as unknown as Record<string, Record<string, unknown>>
  for (const [key, spec] of settings) {
    if (spec.sensitive !== true) continue
    const [section, name] = key.split('.')
    const holder = section === undefined ? undefined : copy[section]
    if (holder !== undefined && name !== undefined && holder[name] !== '') holder[name] = MASK
  }
  return copy as unknown as HearsayConfig
}
