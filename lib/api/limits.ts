import { MAX_KEY_BYTES } from '../store/keys.js'

/**
 * Bounds on everything a client can send. The daemon fills these from config; DEFAULT_API_LIMITS
 * are the values for a LAN node with modest memory.
 */
export interface ApiLimits {
  /** Longest key in UTF-8 bytes (after percent-decoding); longer answers 414. */
  readonly maxKeyBytes: number
  /** Largest value in bytes; larger answers 413. */
  readonly maxValueBytes: number
  /** Most operations in one POST /batch; more answers 413. */
  readonly maxBatchOps: number
  /** Largest POST /batch body in bytes (JSON with base64 values); larger answers 413. */
  readonly maxBatchBodyBytes: number
  /** Largest page GET /kv accepts as `limit`; larger answers 400. */
  readonly maxScanLimit: number
  /** Page size of GET /kv without `limit`. */
  readonly defaultScanLimit: number
  /** Time a client gets to send a whole request (headers and body). */
  readonly requestTimeoutMs: number
  /**
   * Largest request line plus headers in bytes; larger answers 431. Must leave room for a
   * percent-encoded key of maxKeyBytes (up to 3 URL characters per byte).
   */
  readonly maxHeaderBytes: number
  /** Requests handled at once; more answer 503 so memory stays bounded under overload. */
  readonly maxInFlightRequests: number
  /** Open connections (HTTP and /v1/stream) from one client address; more are answered 503 and closed. */
  readonly maxConnectionsPerAddress: number
  /** Time a connection may stay open without sending a request's headers; then it is closed. */
  readonly idleTimeoutMs: number
}

export const DEFAULT_API_LIMITS: ApiLimits = {
  maxKeyBytes: MAX_KEY_BYTES,
  maxValueBytes: 1024 * 1024,
  maxBatchOps: 1000,
  maxBatchBodyBytes: 8 * 1024 * 1024,
  maxScanLimit: 1000,
  defaultScanLimit: 100,
  requestTimeoutMs: 30_000,
  maxHeaderBytes: 16 * 1024,
  maxInFlightRequests: 4096,
  maxConnectionsPerAddress: 256,
  idleTimeoutMs: 10_000,
}

/** Longest TTL accepted: ten years. Longer is a typo; omit ttl for a value that never expires. */
export const MAX_TTL_SECONDS = 10 * 365 * 24 * 60 * 60

/** Room the request line and ordinary headers need besides the encoded key. */
const HEADER_BYTES_BESIDES_KEY = 1024

/** Stops a misconfigured node at startup instead of answering nonsense later. */
export function assertApiLimits(limits: ApiLimits): void {
  for (const [name, value] of Object.entries(limits)) {
    if (!Number.isSafeInteger(value) || value <= 0) {
      throw new RangeError(`api limit ${name} must be a positive integer, got ${String(value)}`)
    }
  }
  if (limits.maxKeyBytes > MAX_KEY_BYTES) {
    throw new RangeError(`api limit maxKeyBytes (${limits.maxKeyBytes}) exceeds the store's key limit of ${MAX_KEY_BYTES} bytes`)
  }
  if (limits.defaultScanLimit > limits.maxScanLimit) {
    throw new RangeError(`api limit defaultScanLimit (${limits.defaultScanLimit}) exceeds maxScanLimit (${limits.maxScanLimit})`)
  }
  const neededHeaderBytes = 3 * limits.maxKeyBytes + HEADER_BYTES_BESIDES_KEY
  if (limits.maxHeaderBytes < neededHeaderBytes) {
    throw new RangeError(`api limit maxHeaderBytes (${limits.maxHeaderBytes}) is too small for a percent-encoded key of maxKeyBytes (${limits.maxKeyBytes}); use at least ${neededHeaderBytes}`)
  }
}
