import { performance } from 'node:perf_hooks'
import type { Operation, RegisterInput, RegisterOutput, Version } from './linearizability.js'

/**
 * Sends linearizable operations to nodes over HTTP (issue 13's API) and records each one, with
 * its call and answer times on this process's monotonic clock, as an `Operation` for the checker.
 *
 * The classification is the part that matters: an answer that proves the operation took effect
 * (200) or did not (409 with the current version) is recorded as such; one that leaves it open
 * (503 "outcome unknown", a 500, a timeout, a connection lost after the request went out) is
 * recorded `unknown`; one that proves nothing happened and tells nothing about the key (a read's
 * 503, a change's 503 without "outcome unknown", a 400, a refused connection) is left out.
 */

export const DEFAULT_REQUEST_TIMEOUT_MS = 5_000

/** An answer as far as the classification needs it. */
export interface HttpAnswer {
  readonly status: number
  /** Parsed JSON body for change answers; the raw value for a read's 200. */
  readonly body: unknown
  readonly version: string | null
}

/** What `classify` makes of an answer: an output for the history, or `omit` with the reason. */
export type Classified = { readonly output: RegisterOutput } | { readonly omit: string }

/**
 * The history output for `input` answered with `answer`, or `omit`. `error` instead of an answer:
 * the request failed without one (`code` from Node's error, e.g. ECONNREFUSED, or TimeoutError).
 */
export function classify(input: RegisterInput, answer: HttpAnswer | { readonly error: string }): Classified {
  if ('error' in answer) {
    // Refused: the request never reached a server, so it cannot have taken effect.
    if (answer.error === 'ECONNREFUSED') return { omit: 'connection refused' }
    return input.kind === 'read' ? { omit: `read failed: ${answer.error}` } : { output: { kind: 'unknown' } }
  }
  const { status, body } = answer
  if (input.kind === 'read') {
    if (status === 200) {
      if (answer.version === null) throw new Error('a linearizable read answered 200 without a hearsay-version header')
      return { output: { kind: 'read', value: String(body), version: answer.version } }
    }
    // The key's own 404 names the key; any other 404 (a node without the route) proves nothing.
    if (status === 404 && typeof object(body).key === 'string') return { output: { kind: 'read', value: null, version: null } }
    return { omit: `read answered ${status}` }
  }
  if (status === 200) {
    const reply = object(body)
    const version = reply.version
    if (typeof version !== 'string') throw new Error(`a ${input.kind} answered 200 without a version: ${JSON.stringify(body)}`)
    if (input.kind !== 'incr') return { output: { kind: 'ok', version } }
    if (typeof reply.value !== 'string') throw new Error(`an incr answered 200 without a decimal string value: ${JSON.stringify(body)}`)
    return { output: { kind: 'ok', version, value: reply.value } }
  }
  if (status === 409) {
    const current = object(object(body).current)
    const currentVersion = current.version
    if (currentVersion === null || typeof currentVersion === 'string') return { output: { kind: 'fail', currentVersion } }
    return { output: { kind: 'fail' } }
  }
  if (status >= 400 && status < 500) return { omit: `${input.kind} answered ${status}: ${JSON.stringify(body)}` }
  // A 503 says "outcome":"unknown" when the change may have been applied; a 503 without it is a
  // refusal before anything was proposed (lib/errors.ts), which the checker holds the node to.
  // Other 5xx say nothing about what happened, so they are unknown (never a plain failure).
  if (status === 503 && object(body).outcome !== 'unknown') return { omit: `${input.kind} refused with 503: ${String(object(body).error)}` }
  return { output: { kind: 'unknown' } }
}

function object(value: unknown): Record<string, unknown> {
  return typeof value === 'object' && value !== null ? value as Record<string, unknown> : {}
}

/** Why the answer was left out of the history, counted by reason (for the test's comment). */
export type OmitCounts = Map<string, number>

/** A raw HTTP exchange; `error` (Node's error code, or TimeoutError) when no answer came. */
export type Transport = (request: { readonly method: 'GET' | 'PUT' | 'DELETE' | 'POST'; readonly url: string; readonly body?: string; readonly timeoutMs: number }) =>
  Promise<{ readonly status: number; readonly body: string; readonly version: string | null } | { readonly error: string }>

/** Straight from this process with fetch. */
export const fetchTransport: Transport = async ({ method, url, body, timeoutMs }) => {
  try {
    const res = await fetch(url, { method, ...(body !== undefined ? { body } : {}), signal: AbortSignal.timeout(timeoutMs) })
    return { status: res.status, body: await res.text(), version: res.headers.get('hearsay-version') }
  } catch (error) {
    return { error: errorCode(error) }
  }
}

export interface RecorderOptions {
  readonly requestTimeoutMs?: number
  /** How requests travel (default: fetch from this process; the fault suite goes through its agent). */
  readonly transport?: Transport
}

export class HistoryRecorder {
  readonly ops: Operation[] = []
  readonly omitted: OmitCounts = new Map()
  private readonly requestTimeoutMs: number
  private readonly transport: Transport

  constructor(options: RecorderOptions = {}) {
    this.requestTimeoutMs = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS
    this.transport = options.transport ?? fetchTransport
  }

  /** Milliseconds on the clock every operation's times use. */
  now(): number {
    return performance.now()
  }

  read(baseUrl: string, key: string, client: string | number): Promise<RegisterOutput | undefined> {
    return this.send(baseUrl, key, client, { kind: 'read' }, `/kv/${encodeURIComponent(key)}?consistency=linearizable`, 'GET')
  }

  cas(baseUrl: string, key: string, client: string | number, ifVersion: Version | null, value: string): Promise<RegisterOutput | undefined> {
    const condition = ifVersion === null ? 'absent' : encodeURIComponent(ifVersion)
    return this.send(baseUrl, key, client, { kind: 'cas', ifVersion, value }, `/kv/${encodeURIComponent(key)}?ifVersion=${condition}`, 'PUT', value)
  }

  delete(baseUrl: string, key: string, client: string | number, ifVersion: Version): Promise<RegisterOutput | undefined> {
    return this.send(baseUrl, key, client, { kind: 'delete', ifVersion }, `/kv/${encodeURIComponent(key)}?ifVersion=${encodeURIComponent(ifVersion)}`, 'DELETE')
  }

  incr(baseUrl: string, key: string, client: string | number, by: bigint): Promise<RegisterOutput | undefined> {
    return this.send(baseUrl, key, client, { kind: 'incr', by }, `/kv/${encodeURIComponent(key)}/incr?by=${by}`, 'POST')
  }

  /** Sends one operation and records it; the output, or undefined when it was left out. */
  private async send(baseUrl: string, key: string, client: string | number, input: RegisterInput, path: string, method: 'GET' | 'PUT' | 'DELETE' | 'POST', body?: string): Promise<RegisterOutput | undefined> {
    const invokedAtMs = this.now()
    const raw = await this.transport({ method, url: `${baseUrl}${path}`, ...(body !== undefined ? { body } : {}), timeoutMs: this.requestTimeoutMs })
    const completedAtMs = this.now()
    const answer: HttpAnswer | { error: string } = 'error' in raw ? raw
      : { status: raw.status, body: input.kind === 'read' && raw.status === 200 ? raw.body : parseJson(raw.body), version: raw.version }
    const classified = classify(input, answer)
    if ('omit' in classified) {
      this.omitted.set(classified.omit, (this.omitted.get(classified.omit) ?? 0) + 1)
      return undefined
    }
    this.ops.push({ key, client, node: baseUrl, input, output: classified.output, invokedAtMs, completedAtMs })
    return classified.output
  }
}

function parseJson(text: string): unknown {
  try { return JSON.parse(text) } catch { return text }
}

/** The most specific name of why fetch failed: the socket error's code, or the abort's name. */
export function errorCode(error: unknown): string {
  const cause = (error as { cause?: { code?: unknown; name?: unknown } }).cause
  if (typeof cause?.code === 'string') return cause.code
  const name = (error as { name?: unknown }).name
  if (name === 'TimeoutError' || name === 'AbortError') return 'TimeoutError'
  if (typeof cause?.name === 'string') return cause.name
  return typeof name === 'string' ? name : 'unknown error'
}

export { checkCounter } from './linearizability.js'
