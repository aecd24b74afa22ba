import t from 'tap'
import { NONCE_BYTES, PROTOCOL_VERSION, type HelloBody, type WelcomeBody } from '../../lib/codec/transport-frames.js'
import { checkHello, checkProof, checkWelcome, computeProof, foreignProtocolRefusal, newNonce } from '../../lib/transport/handshake.js'
import { identity } from './fixtures.js'

const dialer = identity(1)
const acceptor = identity(2)
const secret = 'correct horse'

t.test('nonces are fresh random bytes of the fixed length', async t => {
  const a = newNonce()
  const b = newNonce()
  t.equal(a.byteLength, NONCE_BYTES)
  t.notSame(a, b)
})

t.test('a proof verifies only for the same secret, role, nonces and prover', async t => {
  const dn = newNonce()
  const an = newNonce()
  const proof = computeProof(secret, 'dialer', dn, an, dialer.id)
  t.equal(checkProof(secret, 'dialer', dn, an, dialer.id, proof), undefined, 'the genuine proof passes')
  t.match(checkProof('other secret', 'dialer', dn, an, dialer.id, proof), { code: 'auth', reason: /wrong cluster secret/ })
  t.match(checkProof(secret, 'acceptor', dn, an, dialer.id, proof), { code: 'auth' }, 'reflected as the other role: refused')
  t.match(checkProof(secret, 'dialer', newNonce(), an, dialer.id, proof), { code: 'auth' }, 'replayed with a fresh dialer nonce: refused')
  t.match(checkProof(secret, 'dialer', dn, newNonce(), dialer.id, proof), { code: 'auth' }, 'replayed against a fresh acceptor nonce: refused')
  t.match(checkProof(secret, 'dialer', dn, an, acceptor.id, proof), { code: 'auth' }, 'claimed by another id: refused')
  t.match(checkProof(secret, 'dialer', dn, an, dialer.id, proof.subarray(0, 16)), { code: 'auth' }, 'a short proof: refused, not thrown')
})

t.test('secret on one side only is refused with a hint', async t => {
  const dn = newNonce()
  const an = newNonce()
  t.same(computeProof('', 'dialer', dn, an, dialer.id).byteLength, 0, 'no secret: empty proof')
  t.match(checkProof(secret, 'dialer', dn, an, dialer.id, new Uint8Array(0)), { code: 'auth', reason: /has no cluster secret and this node requires one/ })
  t.match(checkProof('', 'acceptor', dn, an, acceptor.id, computeProof(secret, 'acceptor', dn, an, acceptor.id)),
    { code: 'auth', reason: /uses a cluster secret and this node has none/ })
  t.equal(checkProof('', 'dialer', dn, an, dialer.id, new Uint8Array(0)), undefined, 'neither side has a secret: accepted')
})

t.test('hello and welcome checks: cluster, own id, protocol, proof', async t => {
  const hello: HelloBody = { protocol: PROTOCOL_VERSION, cluster: 'prod', ...dialer, nonce: newNonce() }
  const atAcceptor = { clusterName: 'prod', localId: acceptor.id }
  t.equal(checkHello(hello, atAcceptor), undefined)
  t.match(checkHello({ ...hello, cluster: 'staging' }, atAcceptor), { code: 'cluster', reason: 'the dialer belongs to cluster "staging", this node to "prod"' })
  t.match(checkHello({ ...hello, id: acceptor.id }, atAcceptor), { code: 'identity' })
  t.match(foreignProtocolRefusal({ protocol: 9, foreign: true }), { code: 'protocol', reason: /protocol 9/ })

  const an = newNonce()
  const welcome: WelcomeBody = {
    protocol: PROTOCOL_VERSION, cluster: 'prod', ...acceptor, nonce: an, proof: computeProof(secret, 'acceptor', hello.nonce, an, acceptor.id),
  }
  const atDialer = { clusterName: 'prod', localId: dialer.id }
  t.equal(checkWelcome(welcome, hello.nonce, secret, atDialer), undefined)
  t.match(checkWelcome(welcome, hello.nonce, 'nope', atDialer), { code: 'auth' })
  t.match(checkWelcome({ ...welcome, cluster: 'x' }, hello.nonce, secret, atDialer), { code: 'cluster' })
})
