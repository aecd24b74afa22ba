import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto'
import type { NodeId } from '../clock/version.js'
import { NONCE_BYTES, PROOF_BYTES, PROTOCOL_VERSION, type ForeignHelloBody, type HelloBody, type RefuseBody, type WelcomeBody } from '../codec/transport-frames.js'

/**
 * The pure half of the link handshake (docs/protocol.md "Handshake"): nonces, HMAC proofs and
 * the checks each side makes. lib/transport/link.ts drives the frames.
 *
 * proof = HMAC-SHA256(secret, "hearsay-v1" ‖ role ‖ dialerNonce ‖ acceptorNonce ‖ proverId)
 *
 * Both nonces are fresh random values of a fixed length per connection, so a proof recorded
 * from an earlier handshake never matches a new one (replay); the role label stops a proof made
 * as acceptor being reflected back as a dialer's proof; the prover's id binds the proof to the
 * identity it claims. Without a secret both proofs are empty and links are not authenticated.
 */

export type HandshakeRole = 'dialer' | 'acceptor'

const PROOF_LABEL = 'hearsay-v1'
const EMPTY = new Uint8Array(0)

export function newNonce(): Uint8Array {
  return randomBytes(NONCE_BYTES)
}

export function computeProof(secret: string, role: HandshakeRole, dialerNonce: Uint8Array, acceptorNonce: Uint8Array, proverId: NodeId): Uint8Array {
  if (secret === '') return EMPTY
  return createHmac('sha256', secret)
    .update(PROOF_LABEL).update(role).update(dialerNonce).update(acceptorNonce).update(proverId)
    .digest()
}

/** Checks the peer's proof in `role`; a refusal says what is wrong in words for both logs. */
export function checkProof(
  secret: string, role: HandshakeRole, dialerNonce: Uint8Array, acceptorNonce: Uint8Array, proverId: NodeId, proof: Uint8Array,
): RefuseBody | undefined {
  if (secret === '') {
    return proof.byteLength === 0 ? undefined : { code: 'auth', reason: `the ${role} uses a cluster secret and this node has none (set cluster.secret on both)` }
  }
  if (proof.byteLength === 0) return { code: 'auth', reason: `the ${role} has no cluster secret and this node requires one (set cluster.secret on both)` }
  const expected = computeProof(secret, role, dialerNonce, acceptorNonce, proverId)
  if (proof.byteLength !== PROOF_BYTES || !timingSafeEqual(expected, proof)) {
    return { code: 'auth', reason: `the ${role}'s proof does not match: wrong cluster secret` }
  }
  return undefined
}

export interface LocalExpectations {
  readonly clusterName: string
  readonly localId: NodeId
}

export function foreignProtocolRefusal(hello: ForeignHelloBody): RefuseBody {
  return { code: 'protocol', reason: `the dialer speaks protocol ${hello.protocol}, this node speaks ${PROTOCOL_VERSION}` }
}

/** What an acceptor checks in a hello before answering (duplicates are the transport's call). */
export function checkHello(hello: HelloBody, local: LocalExpectations): RefuseBody | undefined {
  return checkIntroduction(hello, local, 'dialer')
}

/** What a dialer checks in a welcome, proof included. */
export function checkWelcome(welcome: WelcomeBody, dialerNonce: Uint8Array, secret: string, local: LocalExpectations): RefuseBody | undefined {
  return checkIntroduction(welcome, local, 'acceptor') ??
    checkProof(secret, 'acceptor', dialerNonce, welcome.nonce, welcome.id, welcome.proof)
}

function checkIntroduction(body: HelloBody | WelcomeBody, local: LocalExpectations, role: HandshakeRole): RefuseBody | undefined {
  if (body.cluster !== local.clusterName) {
    return { code: 'cluster', reason: `the ${role} belongs to cluster ${JSON.stringify(body.cluster)}, this node to ${JSON.stringify(local.clusterName)}` }
  }
  if (body.id === local.localId) return { code: 'identity', reason: `the ${role} has this node's own id ${body.id} (a link to itself, or a copied data directory)` }
  return undefined
}
