import net from 'node:net'

/** A `host:port` others dial: a host name, an IPv4 address or a bracketed IPv6 address. */
export interface HostPort {
  readonly host: string
  readonly port: number
}

const MAX_HOSTNAME_CHARS = 253
const HOSTNAME_LABEL = /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/
const MIN_DIALABLE_PORT = 1
const MAX_PORT = 65535

/**
 * net.isIPv6, asked only of text with a colon (every IPv6 literal has one): Node's first isIPv6
 * call compiles a large regular expression, 30–130 ms of a daemon's start on this project's
 * machine for a config that names only IPv4 addresses and host names (issue 15).
 */
function isIPv6Literal(text: string): boolean {
  return text.includes(':') && net.isIPv6(text)
}

/** RFC 1123 host name; an all-numeric dotted name must be a real IPv4 address instead. */
export function isHostname(text: string): boolean {
  if (text.length === 0 || text.length > MAX_HOSTNAME_CHARS) return false
  if (/^[0-9.]+$/.test(text)) return false
  return text.split('.').every(label => HOSTNAME_LABEL.test(label))
}

/** What a server may bind: an IP literal (IPv6 without brackets) or a host name. */
export function isBindHost(text: string): boolean {
  return net.isIPv4(text) || isIPv6Literal(text) || isHostname(text)
}

/** Parses `host:port` / `[v6]:port`; undefined when it is not one. Port 0 is refused: nobody can dial it. */
export function parseHostPort(text: string): HostPort | undefined {
  const match = /^(?:\[([^\]]+)\]|([^:[\]]+)):([0-9]{1,5})$/.exec(text)
  if (!match) return undefined
  const port = Number(match[3])
  if (port < MIN_DIALABLE_PORT || port > MAX_PORT) return undefined
  const v6 = match[1]
  if (v6 !== undefined) return isIPv6Literal(v6) ? { host: v6, port } : undefined
  const host = match[2] ?? ''
  return net.isIPv4(host) || isHostname(host) ? { host, port } : undefined
}

export function formatHostPort(host: string, port: number): string {
  return isIPv6Literal(host) ? `[${host}]:${port}` : `${host}:${port}`
}

/** 0.0.0.0 / :: mean "every interface" to a server and nothing at all to a peer dialing it. */
export function isUnspecifiedHost(host: string): boolean {
  return host === '0.0.0.0' || canonicalIPv6(host) === '::'
}

export function isLoopbackHost(host: string): boolean {
  const lower = host.toLowerCase()
  if (lower === 'localhost' || lower.endsWith('.localhost')) return true
  if (net.isIPv4(host)) return host.startsWith('127.')
  return canonicalIPv6(host) === '::1'
}

/** The WHATWG URL parser compresses IPv6 literals, so `0:0::1` and `::1` compare equal. */
function canonicalIPv6(host: string): string | undefined {
  if (!isIPv6Literal(host)) return undefined
  return new URL(`http://[${host}]/`).hostname.slice(1, -1)
}
