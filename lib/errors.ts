/**
 * Errors that reach users. Each kind carries the HTTP status it maps to (lib/api turns them into
 * JSON answers in one place) and a message that is one sentence naming what is wrong.
 */
export class HearsayError extends Error {
  /** HTTP status code this error answers with. */
  readonly status: number
  /** Extra fields for the JSON error body, e.g. {needed, acks}. */
  readonly details: Readonly<Record<string, unknown>>

  constructor(status: number, message: string, details: Record<string, unknown> = {}) {
    super(message)
    this.name = new.target.name
    this.status = status
    this.details = details
  }
}

export class BadRequestError extends HearsayError {
  constructor(message: string, details: Record<string, unknown> = {}) { super(400, message, details) }
}

export class NotFoundError extends HearsayError {
  constructor(message: string, details: Record<string, unknown> = {}) { super(404, message, details) }
}

export class MethodNotAllowedError extends HearsayError {
  constructor(message: string, details: Record<string, unknown> = {}) { super(405, message, details) }
}

/** A resource no longer available here, e.g. a watch `since` older than the change log keeps. */
export class GoneError extends HearsayError {
  constructor(message: string, details: Record<string, unknown> = {}) { super(410, message, details) }
}

export class PayloadTooLargeError extends HearsayError {
  constructor(message: string, details: Record<string, unknown> = {}) { super(413, message, details) }
}

export class UriTooLongError extends HearsayError {
  constructor(message: string, details: Record<string, unknown> = {}) { super(414, message, details) }
}

export class UnavailableError extends HearsayError {
  constructor(message: string, details: Record<string, unknown> = {}) { super(503, message, details) }
}

/**
 * Fewer replicas acknowledged than the request's consistency level needed. For a write the
 * outcome is unknown, never "failed": the replicas that did take it keep it, the rest get it later
 * (hints, anti-entropy), and under last-write-wins it may still win over a write acknowledged
 * since. Clients that need a definite answer use the linearizable operations.
 */
export class QuorumNotMetError extends UnavailableError {
  constructor(kind: 'write' | 'read', needed: number, acks: number, details: Record<string, unknown> = {}) {
    super(`${kind} needed ${needed} replica acknowledgements but got ${acks} in time`,
      { needed, acks, ...(kind === 'write' ? { outcome: 'unknown' } : {}), ...details })
  }
}
