import type { SecureContextOptions, TLSSocket } from 'node:tls'
import type { Duplex } from 'node:stream'
import type { Logger } from 'pino'
import type { Metrics } from '../metrics/metrics.js'
import { describeTlsFailure, tlsFailureReason, type TlsFailureReason } from '../transport/tls-failure.js'

/**
 * HTTPS and WSS for the client API (issue 12, `tls.api`). The API reads the certificate through
 * a small source interface, which lib/tls's TlsMaterialHolder satisfies, so lib/api does not
 * depend on how the files are found, validated or reloaded.
 */

/** PEM bytes the API serves with; `ca` also verifies client certificates in mutual mode. */
export interface ApiTlsMaterial {
  readonly ca: Buffer
  readonly cert: Buffer
  readonly key: Buffer
}

export interface ApiTlsMaterialSource {
  current(): ApiTlsMaterial
  /** Called with the new material after a reload (SIGHUP); returns an unsubscribe function. */
  onChange(listener: (material: ApiTlsMaterial) => void): () => void
}

export interface ApiTlsSettings {
  /** on = HTTPS/WSS; mutual = also require a client certificate that chains to the CA. */
  readonly mode: 'on' | 'mutual'
  /** Lowest protocol version negotiated; nothing below TLS 1.2 is ever offered. */
  readonly minVersion: 'TLSv1.2' | 'TLSv1.3'
  readonly material: ApiTlsMaterialSource
}

/** What node:tls needs for one secure context: new handshakes use the latest of these. */
export function secureContextOptions(settings: ApiTlsSettings, material: ApiTlsMaterial): SecureContextOptions {
  return { key: material.key, cert: material.cert, ca: material.ca, minVersion: settings.minVersion }
}

/** Server options: a client certificate is requested, and required, only in mutual mode. */
export function tlsServerOptions(settings: ApiTlsSettings): SecureContextOptions & { requestCert: boolean; rejectUnauthorized: boolean } {
  const mutual = settings.mode === 'mutual'
  return { ...secureContextOptions(settings, settings.material.current()), requestCert: mutual, rejectUnauthorized: mutual }
}

/** One warning per reason per this interval: a scan of the port must not flood the log. */
const LOG_INTERVAL_MS = 1000

/** What the failure means for a client of the API; the peer side words it for peers. */
const API_ADVICE: Partial<Readonly<Record<TlsFailureReason, string>>> = {
  unknown_ca: 'the client certificate does not chain to tls.ca (or the client does not trust this node\'s certificate: it needs --ca with the cluster\'s CA)',
  expired: 'the client certificate has expired: make a new one with `hearsay tls cert create --client`',
  plaintext: 'the client spoke plain HTTP to the HTTPS port: it should use an https:// URL',
  no_certificate: 'tls.api is mutual and the client sent no certificate: it needs --cert and --key from `hearsay tls cert create --client`',
  rejected_by_peer: 'the client hung up during the handshake: it probably does not trust this node\'s certificate (it needs --ca with the cluster\'s CA)',
}

/**
 * Counts every failed API handshake in hearsay_tls_handshake_failures_total{side="api"} and logs
 * why (rate-limited per reason), then destroys the socket.
 */
export function handshakeFailureHandler(metrics: Metrics, log: Logger, nowMs: () => number = Date.now): (err: Error & { code?: string }, socket: Duplex) => void {
  const lastLogged = new Map<TlsFailureReason, { atMs: number; suppressed: number }>()
  return (err, socket) => {
    const tlsSocket = socket as Partial<TLSSocket>
    const authorizationError = tlsSocket.authorizationError === undefined || tlsSocket.authorizationError === null
      ? undefined
      : String(tlsSocket.authorizationError)
    const reason = tlsFailureReason(err, authorizationError)
    const client = tlsSocket.remoteAddress
    metrics.tlsHandshakeFailures.inc({ side: 'api', reason })
    socket.destroy()
    const now = nowMs()
    const last = lastLogged.get(reason)
    if (last !== undefined && now - last.atMs < LOG_INTERVAL_MS) {
      last.suppressed++
      return
    }
    lastLogged.set(reason, { atMs: now, suppressed: 0 })
    log.warn({
      reason,
      code: authorizationError ?? err.code,
      client,
      ...(last !== undefined && last.suppressed > 0 ? { alsoFailedSinceLastLine: last.suppressed } : {}),
    }, `a client's TLS handshake failed: ${API_ADVICE[reason] ?? describeTlsFailure(reason)}`)
  }
}
