import type { X509Certificate } from 'node:crypto'
import type { ConnectionOptions, TLSSocket } from 'node:tls'
import { parseHostPort } from '../config/address.js'
import { certificateCoversHost, certificateNames, namesNode } from '../tls/names.js'
import type { CertificateNames } from '../tls/material.js'

/**
 * TLS for peer links (`tls.peer on`, docs/protocol.md "TLS"): both ends present a certificate
 * that chains to tls.ca, and the certificate must name the node the hearsay handshake then
 * claims to be (name binding), so knowing the cluster secret is no longer enough to speak for
 * another member. Host names are not checked against the address dialed: the node name is the
 * identity, and seeds given by a host name or an IP alike then work with the same certificate.
 */

/** What the peer transport needs of this node's certificate material (lib/tls TlsMaterialHolder). */
export interface PeerTlsMaterial {
  readonly ca: Buffer
  readonly cert: Buffer
  readonly key: Buffer
  readonly serial: string
}

export interface PeerTlsSource {
  /** The material new handshakes use. */
  current(): PeerTlsMaterial
  /** Called after a reload replaced the material; returns the unsubscribe function. */
  onChange(listener: (material: PeerTlsMaterial) => void): () => void
}

export interface PeerTlsOptions {
  readonly source: PeerTlsSource
  /** tls.minVersion: nothing older is negotiated, by either side. */
  readonly minVersion: 'TLSv1.2' | 'TLSv1.3'
}

/** The peer's verified certificate as a link keeps it. */
export interface PeerCertificate {
  readonly names: CertificateNames
  /** Upper-case hex, as X509Certificate#serialNumber. */
  readonly serial: string
  /** Whether the certificate names `host` (IP or DNS SAN, as a TLS client would check it). */
  readonly coversHost: (host: string) => boolean
}

/** Options for tls.createSecureContext / server.setSecureContext. */
export function secureContextOptions(material: PeerTlsMaterial, minVersion: PeerTlsOptions['minVersion']): {
  ca: Buffer; cert: Buffer; key: Buffer; minVersion: PeerTlsOptions['minVersion']
} {
  return { ca: material.ca, cert: material.cert, key: material.key, minVersion }
}

/** TLS options of an outgoing peer connection (ws passes them on to tls.connect). */
export function dialOptions(material: PeerTlsMaterial, minVersion: PeerTlsOptions['minVersion']): ConnectionOptions {
  return {
    ...secureContextOptions(material, minVersion),
    rejectUnauthorized: true,
    // Identity is the node name, checked against the hello (see above), not the host dialed.
    checkServerIdentity: () => undefined,
  }
}

/** The certificate a TLS socket's peer presented; undefined on a plaintext socket or without one. */
export function peerCertificateOf(socket: unknown): PeerCertificate | undefined {
  const tlsSocket = socket as Partial<TLSSocket> | undefined
  if (typeof tlsSocket?.getPeerX509Certificate !== 'function') return undefined
  const cert: X509Certificate | undefined = tlsSocket.getPeerX509Certificate()
  if (cert === undefined) return undefined
  return { names: certificateNames(cert), serial: cert.serialNumber.toUpperCase(), coversHost: host => certificateCoversHost(cert, host) }
}

/**
 * Why `cert` may not speak as the node `claimed` (its name, and the host of the peer address it
 * advertises: a node's certificate covers its advertised hosts, which `hearsayd` checks at
 * start, so another node's address cannot be claimed from elsewhere); undefined when it may.
 */
export function nameBindingRefusal(cert: PeerCertificate | undefined, claimed: { readonly name: string; readonly peer: string }, role: 'dialer' | 'acceptor'): string | undefined {
  if (cert === undefined) return `the ${role} presented no certificate on a TLS link`
  if (!namesNode(cert.names, claimed.name)) {
    const named = [cert.names.commonName, ...cert.names.dns].filter((name, i, all) => name !== '' && all.indexOf(name) === i)
    return `the ${role}'s certificate (serial ${cert.serial}) names ${named.length === 0 ? 'no node' : named.map(n => JSON.stringify(n)).join(', ')}, not the node ${JSON.stringify(claimed.name)} its handshake claims`
  }
  const host = parseHostPort(claimed.peer)?.host ?? claimed.peer
  if (!cert.coversHost(host)) {
    return `the ${role}'s certificate (serial ${cert.serial}) does not cover ${host}, the host of the peer address ${claimed.peer} its handshake advertises`
  }
  return undefined
}
