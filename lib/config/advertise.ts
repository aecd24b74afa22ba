import type os from 'node:os'
import { formatHostPort, isUnspecifiedHost } from './address.js'
import { ConfigError } from './error.js'

export interface AdvertiseInput {
  /** The setting being resolved, for the error message: `api.advertise` or `peer.advertise`. */
  readonly key: string
  readonly bindHost: string
  /** The port actually bound (differs from the configured one when that was 0). */
  readonly boundPort: number
  /** The configured advertise address; empty means derive it. */
  readonly advertise: string
  /** os.networkInterfaces(), passed in so the choice can be tested. */
  readonly interfaces: NodeJS.Dict<os.NetworkInterfaceInfo[]>
}

/**
 * The `host:port` other nodes and clients are told to use. Design: binding every interface without
 * an advertised address advertises the first non-internal IPv4 address.
 */
export function resolveAdvertiseAddress(input: AdvertiseInput): string {
  if (input.advertise !== '') return input.advertise
  if (!isUnspecifiedHost(input.bindHost)) return formatHostPort(input.bindHost, input.boundPort)
  for (const addresses of Object.values(input.interfaces)) {
    const lan = addresses?.find(address => address.family === 'IPv4' && !address.internal)
    if (lan !== undefined) return formatHostPort(lan.address, input.boundPort)
  }
  throw new ConfigError(`cannot be derived: the bind address ${input.bindHost} covers every interface but none has a non-internal IPv4 address; set ${input.key} explicitly`, { key: input.key })
}
