/**
 * Why a TLS handshake failed, as a small fixed set of metric labels
 * (`hearsay_tls_handshake_failures_total{side, reason}`) with one sentence for the log. Used by
 * the peer transport and the client API alike. Node reports these failures in three ways: the
 * verifying side's `authorizationError` (a certificate check failed; OpenSSL's X509 codes), an
 * `ERR_SSL_*` error (the handshake itself failed, or the other side sent an alert), and a plain
 * ECONNRESET (the other side hung up mid-handshake: Node closes without an alert when it
 * rejects a certificate, so this is how a rejection looks to the rejected side).
 */

export const TLS_FAILURE_REASONS = [
  'unknown_ca', 'expired', 'not_yet_valid', 'bad_name', 'plaintext', 'no_certificate', 'protocol_version', 'rejected_by_peer', 'other',
] as const
export type TlsFailureReason = (typeof TLS_FAILURE_REASONS)[number]

const BY_CODE: Readonly<Record<string, TlsFailureReason>> = {
  // The certificate does not chain to our tls.ca (or the peer's alert says so of ours).
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'unknown_ca',
  UNABLE_TO_GET_ISSUER_CERT: 'unknown_ca',
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: 'unknown_ca',
  SELF_SIGNED_CERT_IN_CHAIN: 'unknown_ca',
  DEPTH_ZERO_SELF_SIGNED_CERT: 'unknown_ca',
  CERT_SIGNATURE_FAILURE: 'unknown_ca',
  ERR_SSL_TLSV1_ALERT_UNKNOWN_CA: 'unknown_ca',
  CERT_HAS_EXPIRED: 'expired',
  ERR_SSL_SSLV3_ALERT_CERTIFICATE_EXPIRED: 'expired',
  CERT_NOT_YET_VALID: 'not_yet_valid',
  ERR_TLS_CERT_ALTNAME_INVALID: 'bad_name',
  // A plaintext HTTP request on a TLS port, or a TLS client on a plaintext one.
  ERR_SSL_HTTP_REQUEST: 'plaintext',
  ERR_SSL_WRONG_VERSION_NUMBER: 'plaintext',
  ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE: 'no_certificate',
  ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED: 'no_certificate',
  ERR_SSL_UNSUPPORTED_PROTOCOL: 'protocol_version',
  ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION: 'protocol_version',
  ERR_SSL_NO_PROTOCOLS_AVAILABLE: 'protocol_version',
  ECONNRESET: 'rejected_by_peer',
}

const DESCRIPTIONS: Readonly<Record<TlsFailureReason, string>> = {
  unknown_ca: 'the certificate does not chain to the trusted CA (tls.ca): the two nodes use certificates from different CAs',
  expired: 'a certificate has expired: make a new one with `hearsay tls cert create` and reload (SIGHUP)',
  not_yet_valid: 'a certificate is not valid yet: check the clocks, or the certificate\'s start date',
  bad_name: 'the certificate does not name the node it claims to be',
  plaintext: 'one side speaks TLS and the other plaintext: set tls.peer (or tls.api and the client URL) alike on both',
  no_certificate: 'the other side presented no certificate, and this port requires one from tls.ca',
  protocol_version: 'no TLS version both sides accept (tls.minVersion)',
  rejected_by_peer: 'the other side hung up during the TLS handshake: it probably does not trust this side\'s certificate (check its log)',
  other: 'the TLS handshake failed',
}

/**
 * The reason for a failed TLS handshake. `authorizationError` is the TLSSocket's (the X509
 * verification code when a certificate check failed); `error` what the socket or request raised.
 */
export function tlsFailureReason(error: { code?: unknown; message?: unknown } | undefined, authorizationError?: unknown): TlsFailureReason {
  if (typeof authorizationError === 'string') return BY_CODE[authorizationError] ?? 'other'
  const code = typeof error?.code === 'string' ? error.code : ''
  const known = BY_CODE[code]
  if (known !== undefined) return known
  // OpenSSL's message names the alert when Node's code is the generic EPROTO.
  const message = typeof error?.message === 'string' ? error.message : ''
  if (/wrong version number|http request/.test(message)) return 'plaintext'
  if (/alert unknown ca/.test(message)) return 'unknown_ca'
  if (/alert certificate expired/.test(message)) return 'expired'
  if (/alert certificate required|peer did not return a certificate/.test(message)) return 'no_certificate'
  if (/alert protocol version|unsupported protocol/.test(message)) return 'protocol_version'
  return 'other'
}

/**
 * Whether a dialer's error came from the TLS handshake (or the other side hanging up during it),
 * rather than from reaching the host at all: a refused or timed-out connection to a node that is
 * down is the failure detector's business, not a TLS failure.
 */
export function isTlsHandshakeError(error: { code?: unknown; message?: unknown }): boolean {
  const code = typeof error.code === 'string' ? error.code : ''
  return BY_CODE[code] !== undefined || code === 'EPROTO' || /^ERR_(SSL|TLS)_/.test(code)
}

/** One clause for a log line: what the reason means and what to do. */
export function describeTlsFailure(reason: TlsFailureReason): string {
  return DESCRIPTIONS[reason]
}
