/**
 * Whether this node's TLS setup can work, as `hearsayd --check` reports it and as the daemon
 * checks it before it binds a port: the material itself (lib/tls/material.ts), plus what only the
 * configuration knows — the hosts peers and clients dial must be in the certificate, and with
 * tls.peer on the certificate must name this node (peers bind a link to the name it carries).
 */
import { X509Certificate } from 'node:crypto'
import type os from 'node:os'
import { parseHostPort } from '../config/address.js'
import { resolveAdvertiseAddress } from '../config/advertise.js'
import type { HearsaySettings } from '../config/types.js'
import { inspectTlsMaterial, TlsMaterialHolder, type TlsMaterial, type TlsPaths } from './material.js'
import { certificateCoversHost, namesNode } from './names.js'

/** The daemon will not start with this TLS setup; the message lists the problems. */
export class TlsSetupError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(problems.length === 1 ? problems[0]! : `${problems[0]!} (and ${problems.length - 1} more TLS problems; run hearsayd --check to list them)`)
    this.name = 'TlsSetupError'
  }
}

export function tlsEnabled(config: HearsaySettings): boolean {
  return config.tls.peer === 'on' || config.tls.api !== 'off'
}

export function tlsPaths(config: HearsaySettings): TlsPaths {
  return { caPath: config.tls.ca, certPath: config.tls.cert, keyPath: config.tls.key }
}

/** `host:port` strings as advertised to peers and clients (lib/config/advertise.ts). */
export interface AdvertisedAddresses { readonly api: string; readonly peer: string }

/** One line per problem, each naming the file or setting to fix; empty when TLS is off or sound. */
export function tlsSetupProblems(config: HearsaySettings, advertised: AdvertisedAddresses, nowMs: number): { material?: TlsMaterial; problems: string[] } {
  if (!tlsEnabled(config)) return { problems: [] }
  const inspected = inspectTlsMaterial(tlsPaths(config), nowMs)
  const problems = inspected.problems.map(problem => problem.message)
  const material = inspected.material
  if (material === undefined) return { problems }

  problems.push(...namingProblems(config, advertised, material))
  return problems.length === 0 ? { material, problems } : { problems }
}

/** What the material must name for this configuration: the advertised hosts, and the node itself with tls.peer on. */
export function namingProblems(config: HearsaySettings, advertised: AdvertisedAddresses, material: TlsMaterial): string[] {
  const problems: string[] = []
  const cert = new X509Certificate(material.cert)
  const uses: Array<[setting: string, address: string]> = []
  if (config.tls.peer === 'on') uses.push(['peer.advertise', advertised.peer])
  if (config.tls.api !== 'off') uses.push(['api.advertise', advertised.api])
  for (const [setting, address] of uses) {
    const host = hostOf(address)
    if (!certificateCoversHost(cert, host)) {
      problems.push(`tls.cert ${config.tls.cert} does not name ${host}, the host of ${setting} (${address}), so ${setting === 'peer.advertise' ? 'peers' : 'clients'} dialing it would refuse the certificate (it names ${describeNames(material)}); make one with \`hearsay tls cert create --ip\`/\`--dns\` ${host}`)
    }
  }
  if (config.tls.peer === 'on' && !namesNode(material.names, config.node.name)) {
    problems.push(`tls.cert ${config.tls.cert} does not name this node ${JSON.stringify(config.node.name)} (node.name) as its CN or a DNS name, so peers would refuse its links (it names ${describeNames(material)}); make one with \`hearsay tls cert create --name ${config.node.name}\``)
  }
  return problems
}

/**
 * The holder the servers and dialers take their material from, or undefined when TLS is off.
 * Throws TlsSetupError when the setup would not work, before any port is bound.
 */
export function openTlsMaterial(config: HearsaySettings, advertised: AdvertisedAddresses, nowMs: () => number): TlsMaterialHolder | undefined {
  if (!tlsEnabled(config)) return undefined
  const { material, problems } = tlsSetupProblems(config, advertised, nowMs())
  if (material === undefined) throw new TlsSetupError(problems)
  // A rotated certificate must pass the same naming checks, or a reload could cut every link.
  return new TlsMaterialHolder(tlsPaths(config), material, nowMs, next => namingProblems(config, advertised, next)[0])
}

/** The host of `host:port` (IPv6 in brackets); port 0 (bind any) counts too, as before binding. */
function hostOf(address: string): string {
  const parsed = parseHostPort(address)
  if (parsed !== undefined) return parsed.host
  const match = /^\[([^\]]+)\]:\d+$/.exec(address) ?? /^([^:]+):\d+$/.exec(address)
  return match?.[1] ?? address
}

function describeNames(material: TlsMaterial): string {
  const { commonName, dns, ips } = material.names
  const names = [`CN ${commonName}`, ...dns.map(name => `DNS ${name}`), ...ips.map(ip => `IP ${ip}`)]
  return names.join(', ')
}

/**
 * `hearsayd --check`: the TLS problems of a configuration before anything runs, with the
 * advertised addresses derived as the daemon would (the configured ports stand in for bound ones;
 * only the hosts matter here).
 */
export function checkTlsConfiguration(config: HearsaySettings, interfaces: NodeJS.Dict<os.NetworkInterfaceInfo[]>, nowMs: number): string[] {
  if (!tlsEnabled(config)) return []
  let advertised: AdvertisedAddresses
  try {
    advertised = {
      api: resolveAdvertiseAddress({ key: 'api.advertise', bindHost: config.api.host, boundPort: config.api.port, advertise: config.api.advertise, interfaces }),
      peer: resolveAdvertiseAddress({ key: 'peer.advertise', bindHost: config.peer.host, boundPort: config.peer.port, advertise: config.peer.advertise, interfaces }),
    }
  } catch (error) {
    return [(error as Error).message]
  }
  return tlsSetupProblems(config, advertised, nowMs).problems
}
