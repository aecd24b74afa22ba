import { HearsayError } from '../errors.js'

/** The JSON error body every hearsay node answers with (`{"error": "...", ...details}`). */
export interface ErrorBody {
  readonly error: string
  readonly [field: string]: unknown
}

/**
 * A node answered with a non-2xx status. That answer is the result of the request (a 503
 * quorum miss, a 400, a 401), so it is never retried on another node.
 */
export class HearsayClientError extends HearsayError {
  /** Base URL of the node that answered. */
  readonly node: string
  /** The server's JSON body (`error`, `needed`, `acks`, …). */
  readonly body: ErrorBody

  constructor(node: string, status: number, body: ErrorBody) {
    super(status, body.error, body)
    this.node = node
    this.body = body
  }
}

/** No listed node answered: each one refused, reset or timed out. */
export class NoNodeAnsweredError extends Error {
  readonly tried: readonly string[]
  readonly lastReason: string

  constructor(tried: readonly string[], lastReason: string) {
    super(`no hearsay node answered (tried ${tried.join(', ')}): ${lastReason}`)
    this.name = 'NoNodeAnsweredError'
    this.tried = tried
    this.lastReason = lastReason
  }
}

/** A node answered 2xx with a body that breaks the API contract (wrong shape, not JSON). */
export class InvalidReplyError extends Error {
  readonly node: string

  constructor(node: string, message: string) {
    super(`${node} answered with ${message}`)
    this.name = 'InvalidReplyError'
    this.node = node
  }
}

/** The client was configured wrongly (a node URL without a scheme, a negative timeout). */
export class ClientOptionsError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'ClientOptionsError'
  }
}
