import { isNodeId, type NodeId } from '../clock/version.js'
import { parseHostPort } from '../config/address.js'
import type { PeerAddress } from '../transport/transport.js'
import { MalformedBodyError, expectBytes, expectObject, expectOneOf, expectString, expectUint, field } from './validate.js'

/**
 * Bodies of the frames the transport itself speaks: the handshake (hello, welcome, proof,
 * refuse) and the error answer. docs/protocol.md describes the sequence and the HMAC proof.
 */

/** Bumped on any incompatible change of the frame layout or of these bodies. */
export const PROTOCOL_VERSION = 3
/** Random bytes each side contributes to a handshake; fixed so the proof input is unambiguous. */
export const NONCE_BYTES = 32
/** HMAC-SHA256 output. */
export const PROOF_BYTES = 32
export const MAX_CLUSTER_NAME_CHARS = 64
/** Longest node name (`node.name`), in characters: the one declaration config and the wire share. */
export const MAX_NODE_NAME_CHARS = 255
/** `[IPv6]:port` is at most 47 characters and a DNS name 253, plus `:65535`. */
export const MAX_ADDRESS_CHARS = 260
export const MAX_REASON_CHARS = 512
export const MAX_ERROR_MESSAGE_CHARS = 1024

/** Who a node says it is: the fields hello and welcome share. */
interface Introduction {
  readonly cluster: string
  readonly id: NodeId
  readonly name: string
  /** The sender's advertised peer address: the acceptor files the link under it. */
  readonly peer: PeerAddress
  readonly api: string
  readonly nonce: Uint8Array
}

export interface HelloBody extends Introduction {
  readonly protocol: typeof PROTOCOL_VERSION
}

/**
 * A hello from a different protocol version: only its version is read, because the rest of a
 * foreign hello may have any shape. The acceptor answers it with a `protocol` refusal.
 */
export interface ForeignHelloBody {
  readonly protocol: number
  readonly foreign: true
}

/** The acceptor introduces itself with the same fields as a hello, plus its proof. */
export interface WelcomeBody extends HelloBody {
  /** HMAC proof of the cluster secret, or empty when the acceptor has no secret. */
  readonly proof: Uint8Array
}

export interface ProofBody {
  /** HMAC proof of the cluster secret, or empty when the dialer has no secret. */
  readonly proof: Uint8Array
}

export const REFUSE_CODES = ['protocol', 'cluster', 'auth', 'identity', 'duplicate', 'busy'] as const
/**
 * Why a handshake was refused: protocol version, cluster name, secret (auth), a node id that
 * is our own or malformed identity (identity), a second link to a peer already linked
 * (duplicate, see docs/protocol.md "One link per pair"), too many handshakes at once (busy).
 */
export type RefuseCode = (typeof REFUSE_CODES)[number]

export interface RefuseBody {
  readonly code: RefuseCode
  readonly reason: string
}

export const ERROR_CODES = ['unhandled', 'handler', 'no-answer', 'bad-answer', 'declined'] as const
/**
 * Why a request got an error instead of an answer: no handler for its type on the peer
 * (unhandled), the handler failed (handler), it answered nothing (no-answer) or something that
 * is not a reply type (bad-answer), or the peer declines on purpose for now (declined, e.g. it is
 * repairing; not a fault, so not logged as one).
 */
export type ErrorCode = (typeof ERROR_CODES)[number]

export interface ErrorBody {
  readonly code: ErrorCode
  readonly message: string
}

function expectNodeId(value: unknown, what: string): NodeId {
  if (!isNodeId(value)) throw new MalformedBodyError(`${what} is not a node id (16 lowercase hex characters)`)
  return value
}

function expectAddress(value: unknown, what: string): string {
  const text = expectString(value, what, MAX_ADDRESS_CHARS)
  if (parseHostPort(text) === undefined) throw new MalformedBodyError(`${what} is not a host:port address`)
  return text
}

function expectProof(value: unknown, what: string): Uint8Array {
  const proof = expectBytes(value, what, PROOF_BYTES)
  if (proof.byteLength !== 0 && proof.byteLength !== PROOF_BYTES) {
    throw new MalformedBodyError(`${what} has ${proof.byteLength} bytes, expected 0 or ${PROOF_BYTES}`)
  }
  return proof
}

function introduction(body: Readonly<Record<string, unknown>>, what: string): Introduction {
  return {
    cluster: expectString(field(body, 'cluster'), `${what}.cluster`, MAX_CLUSTER_NAME_CHARS, 1),
    id: expectNodeId(field(body, 'id'), `${what}.id`),
    name: expectString(field(body, 'name'), `${what}.name`, MAX_NODE_NAME_CHARS, 1),
    peer: expectAddress(field(body, 'peer'), `${what}.peer`),
    api: expectAddress(field(body, 'api'), `${what}.api`),
    nonce: expectBytes(field(body, 'nonce'), `${what}.nonce`, NONCE_BYTES, NONCE_BYTES),
  }
}

export function validateHello(value: unknown): HelloBody | ForeignHelloBody {
  const body = expectObject(value, 'hello')
  const protocol = expectUint(field(body, 'protocol'), 'hello.protocol')
  if (protocol !== PROTOCOL_VERSION) return { protocol, foreign: true }
  return { protocol, ...introduction(body, 'hello') }
}

export function validateWelcome(value: unknown): WelcomeBody {
  const body = expectObject(value, 'welcome')
  const protocol = expectUint(field(body, 'protocol'), 'welcome.protocol')
  if (protocol !== PROTOCOL_VERSION) throw new MalformedBodyError(`welcome.protocol is ${protocol}, expected ${PROTOCOL_VERSION}`)
  return { protocol, ...introduction(body, 'welcome'), proof: expectProof(field(body, 'proof'), 'welcome.proof') }
}

export function validateProof(value: unknown): ProofBody {
  const body = expectObject(value, 'proof')
  return { proof: expectProof(field(body, 'proof'), 'proof.proof') }
}

export function validateRefuse(value: unknown): RefuseBody {
  const body = expectObject(value, 'refuse')
  return {
    code: expectOneOf(field(body, 'code'), 'refuse.code', REFUSE_CODES),
    reason: expectString(field(body, 'reason'), 'refuse.reason', MAX_REASON_CHARS),
  }
}

export function validateError(value: unknown): ErrorBody {
  const body = expectObject(value, 'error')
  return {
    code: expectOneOf(field(body, 'code'), 'error.code', ERROR_CODES),
    message: expectString(field(body, 'message'), 'error.message', MAX_ERROR_MESSAGE_CHARS),
  }
}
