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

/** The request conflicts with the key's current state (409). */
export class ConflictError extends HearsayError {
  constructor(message: string, details: Record<string, unknown> = {}) { super(409, message, details) }
}

/**
 * A plain (last-write-wins) write to a key that was changed through a linearizable operation:
 * refused so that the key's linearizable history stays whole (docs/consistency.md).
 */
export class StrongKeyError extends ConflictError {
  constructor(key: string) {
    super(`key ${JSON.stringify(key)} is strong (changed through a linearizable operation): plain writes to it are refused; write it with ?ifVersion=`, { key })
  }
}

/**
 * A conditional write whose condition did not hold; `current` is the key's version at the
 * linearization point, null when the key does not exist. The write was not applied.
 */
export class ConditionFailedError extends ConflictError {
  constructor(message: string, current: { readonly version: unknown } & Record<string, unknown>) {
    super(message, { current })
  }
}

/**
 * A linearizable change whose accept may have reached some acceptors but not a majority in time:
 * it may or may not take effect. Never reported as a plain failure, so a client can tell "not
 * applied" (409, plain 503) from "maybe" (this).
 */
export class OutcomeUnknownError extends UnavailableError {
  constructor(message: string, details: Record<string, unknown> = {}) {
    super(message, { ...details, outcome: 'unknown' })
  }
}
