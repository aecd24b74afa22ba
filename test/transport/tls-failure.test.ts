import t from 'tap'
import { isTlsHandshakeError, tlsFailureReason, describeTlsFailure, TLS_FAILURE_REASONS } from '../../lib/transport/tls-failure.js'

t.test('TLS errors map to a small set of reasons', async t => {
  const cases: Array<[{ code?: string; message?: string }, string | undefined, string]> = [
    [{ code: 'ECONNRESET' }, 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'unknown_ca'],
    [{ code: 'SELF_SIGNED_CERT_IN_CHAIN' }, undefined, 'unknown_ca'],
    [{ code: 'ECONNRESET' }, 'CERT_HAS_EXPIRED', 'expired'],
    [{ code: 'CERT_NOT_YET_VALID' }, undefined, 'not_yet_valid'],
    [{ code: 'ERR_SSL_HTTP_REQUEST' }, undefined, 'plaintext'],
    [{ code: 'EPROTO', message: 'write EPROTO …:ssl3_get_record:wrong version number:…' }, undefined, 'plaintext'],
    [{ code: 'ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE' }, undefined, 'no_certificate'],
    [{ code: 'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED' }, undefined, 'no_certificate'],
    [{ code: 'EPROTO', message: 'write EPROTO …:tlsv1 alert protocol version:…' }, undefined, 'protocol_version'],
    [{ code: 'ECONNRESET', message: 'socket hang up' }, undefined, 'rejected_by_peer'],
    [{ code: 'ERR_SSL_SOMETHING_NEW' }, undefined, 'other'],
    [{ code: 'ECONNRESET' }, 'SOME_NEW_X509_CODE', 'other'],
  ]
  for (const [error, authorizationError, reason] of cases) {
    t.equal(tlsFailureReason(error, authorizationError), reason, `${error.code} ${authorizationError ?? ''} → ${reason}`)
  }
  for (const reason of TLS_FAILURE_REASONS) t.ok(describeTlsFailure(reason).length > 0, `${reason} has a description`)
})

t.test('only errors of the TLS handshake count as TLS failures for a dialer', async t => {
  t.ok(isTlsHandshakeError({ code: 'EPROTO' }))
  t.ok(isTlsHandshakeError({ code: 'ERR_SSL_WRONG_VERSION_NUMBER' }))
  t.ok(isTlsHandshakeError({ code: 'CERT_HAS_EXPIRED' }))
  t.notOk(isTlsHandshakeError({ code: 'ECONNREFUSED' }), 'a node that is down is not a TLS failure')
  t.notOk(isTlsHandshakeError({ message: 'Opening handshake has timed out' }), 'nor a connection that never came up')
})
