import { formatVersion, type Version } from '../clock/version.js'
import { HearsayError } from '../errors.js'

/**
 * The one place where errors become HTTP answers. HearsayError subclasses carry their status
 * and details; anything else is a bug and answers a bare 500 (the stack goes to the log only).
 */

/** A bearer token was required and missing or wrong. */
export class UnauthorizedError extends HearsayError {
  constructor(message: string) { super(401, message) }
}

/** The client went away before its request was complete; there is nobody to answer. */
export class ClientGoneError extends Error {
  constructor() {
    super('client closed the connection before the request was complete')
    this.name = 'ClientGoneError'
  }
}

export interface ErrorAnswer {
  readonly status: number
  readonly body: { readonly error: string } & Readonly<Record<string, unknown>>
  readonly headers: Readonly<Record<string, string>>
  /** True for bugs (not a HearsayError): log with the stack. */
  readonly unexpected: boolean
}

/** Seconds a client should wait before retrying an overloaded or closing node. */
const RETRY_AFTER_SECONDS = 1

export function errorAnswer(err: unknown): ErrorAnswer {
  if (!(err instanceof HearsayError)) {
    return { status: 500, body: { error: 'internal error' }, headers: {}, unexpected: true }
  }
  const details: Record<string, unknown> = {}
  for (const [name, value] of Object.entries(err.details)) details[name] = isVersion(value) ? formatVersion(value) : value
  const headers: Record<string, string> = {}
  if (err.status === 405 && Array.isArray(details.allow)) headers.allow = details.allow.join(', ')
  if (err.status === 401) headers['www-authenticate'] = 'Bearer realm="hearsay"'
  if (err.status === 503) headers['retry-after'] = String(RETRY_AFTER_SECONDS)
  // The error sentence wins over any detail that happens to be called "error".
  return { status: err.status, body: { ...details, error: err.message }, headers, unexpected: false }
}

function isVersion(value: unknown): value is Version {
  if (typeof value !== 'object' || value === null) return false
  const candidate = value as Partial<Version>
  return typeof candidate.hlc === 'number' && typeof candidate.node === 'string'
}
