/**
 * What a certificate names: its CN and its SAN DNS names and IP addresses. Peer links (T2) bind a
 * link to the node its certificate names; `--check` compares the names with the addresses the node
 * advertises.
 */
import type { X509Certificate } from 'node:crypto'
import { isIP } from 'node:net'
import type { CertificateNames } from './material.js'
import { x509 } from './x509.js'

const COMMON_NAME_OID = '2.5.4.3'

export function certificateNames(cert: X509Certificate): CertificateNames {
  // Parsed with the X.509 library rather than from Node's display strings (`subject`,
  // `subjectAltName`), whose quoting of unusual characters is made for reading, not parsing.
  const library = x509()
  const parsed = new library.X509Certificate(cert.raw)
  const commonName = parsed.subjectName.getField(COMMON_NAME_OID)[0] ?? ''
  const dns: string[] = []
  const ips: string[] = []
  const san = parsed.getExtension(library.SubjectAlternativeNameExtension)
  for (const name of san?.names.items ?? []) {
    if (name.type === 'dns') dns.push(name.value)
    else if (name.type === 'ip') ips.push(canonicalIp(name.value))
  }
  return { commonName, dns, ips }
}

/**
 * True when the certificate names the node: a SAN DNS entry or the CN equals nodeName. Exact,
 * case-sensitive comparison: node names are identities, and "Node-1" must not pass for "node-1".
 */
export function namesNode(names: CertificateNames, nodeName: string): boolean {
  return names.commonName === nodeName || names.dns.includes(nodeName)
}

/** One spelling per address ("0:0:0:0:0:0:0:1" and "::1" compare equal); non-IPs come back as given. */
export function canonicalIp(ip: string): string {
  if (isIP(ip) !== 6) return ip
  return new URL(`http://[${ip}]/`).hostname.slice(1, -1)
}

/**
 * True when a client reaching the node by `host` (an IP address or a DNS name) would accept the
 * certificate: Node's own RFC 6125 matching (`checkIP`/`checkHost`), the same rules TLS clients
 * apply to the server's certificate.
 */
export function certificateCoversHost(cert: X509Certificate, host: string): boolean {
  if (isIP(host) !== 0) return cert.checkIP(host) !== undefined
  return cert.checkHost(host) !== undefined
}
