import http from 'node:http'
import https from 'node:https'
import { setTimeout as sleep } from 'node:timers/promises'
import { HLC_TICKS_PER_MS } from '../clock/version.js'
import { ClientOptionsError, HearsayClientError, InvalidReplyError, NoNodeAnsweredError, type ErrorBody } from './errors.js'
import { describeNetworkError, NodeUnreachableError } from './http-exchange.js'
import type { NodeUrl } from './node-urls.js'
import { isVersionString, parseJson, parseWatchChange, type WatchEvent } from './replies.js'
import { SseParser, type SseEvent } from './sse.js'
import { DeliveredVersions } from './watch-dedupe.js'

export type { WatchEvent } from './replies.js'

/**
 * Nodes send a heartbeat comment every watch.heartbeatMs (5 s by default); a stream silent for
 * this long is taken for dead (a node cut off without a reset) and the watch moves on.
 */
export const DEFAULT_WATCH_IDLE_TIMEOUT_MS = 20_000
/** How long a watch keeps trying to reach a node before it gives up with NoNodeAnsweredError. */
export const DEFAULT_WATCH_MAX_RECONNECT_MS = 60_000
/**
 * How far back from the newest delivered version a key's delivery is remembered for dropping
 * re-sent changes. Must be at least the nodes' watch.resumeMarginMs, the margin they re-send
 * before a resume point; generous, because forgetting too soon only costs a duplicate.
 */
export const DEFAULT_WATCH_DEDUPE_WINDOW_MS = 60_000
/** Keys remembered for dropping re-sent changes, at most (about 100 B each). */
export const DEFAULT_WATCH_MAX_DEDUPE_KEYS = 100_000
/** First reconnect delay ceiling; it doubles per failure in a row up to MAX_BACKOFF_MS, with full jitter. */
export const BASE_BACKOFF_MS = 50
export const MAX_BACKOFF_MS = 2_000
/** Error bodies (410, 503) are small JSON; this only stops a runaway one. */
const MAX_ERROR_BODY_BYTES = 64 * 1024
/** Characters of an error text kept when the body is not the node's JSON. */
const MAX_ERROR_TEXT_CHARS = 200
/** Node id of a resume point made from the client's clock: sorts below every real node id of that tick. */
const NO_NODE_ID = '0000000000000000'

export interface WatchOptions {
  /** Deliver the changes after this version (a version string a watch or write gave you). */
  readonly since?: string
  /** Aborting ends the iteration (no error) and closes the stream. */
  readonly signal?: AbortSignal
  readonly idleTimeoutMs?: number
  /** Give up (NoNodeAnsweredError) after this long without reaching a node; Infinity retries for ever. */
  readonly maxReconnectMs?: number
  readonly dedupeWindowMs?: number
  readonly maxDedupeKeys?: number
  /** Told before each reconnect, e.g. to log it. */
  readonly onReconnect?: (reconnect: WatchReconnect) => void
}

export interface WatchReconnect {
  /** The node whose stream failed or that could not be reached. */
  readonly node: string
  /** The node tried next. */
  readonly next: string
  readonly reason: string
  readonly delayMs: number
  /** The resume point sent to the next node; undefined when there is none yet (live only). */
  readonly since: string | undefined
}

/**
 * The node no longer keeps changes that old (410 Gone): its change log starts after `since`.
 * List the prefix again (scan), then watch with `since: oldest` — the replay from there covers
 * every change from before the listing on (docs/consistency.md "Retention and 410"); the newest
 * version of the listing may itself be older than the log reaches.
 */
export class WatchHistoryGoneError extends HearsayClientError {
  /** The oldest version the node can still resume from. */
  readonly oldest: string

  constructor(node: string, since: string, body: ErrorBody, oldest: string) {
    super(node, 410, {
      ...body,
      error: `${node} no longer keeps the changes after version ${since} (the oldest it can resume from is ${oldest}): list the prefix again, then watch from ${oldest}`,
    })
    this.oldest = oldest
  }
}

/** The node ended the stream on purpose (`event: cut`), e.g. because this watcher read too slowly. */
export class WatchCutError extends Error {
  readonly node: string
  readonly reason: string

  constructor(node: string, reason: string) {
    super(`${node} cut the watch: ${reason}`)
    this.name = 'WatchCutError'
    this.node = node
    this.reason = reason
  }
}

/** What a watch needs from the client that runs it. */
export interface WatchTarget {
  readonly nodes: readonly NodeUrl[]
  /** Index in `nodes` to start with (the node that answered last). */
  readonly firstNode: number
  readonly authorization: string | undefined
  /** Deadline for a node to answer the watch request with its status line and headers. */
  readonly connectTimeoutMs: number
  /** Largest event (a change carries its value, base64) accepted. */
  readonly maxEventBytes: number
  /** CA and client certificate for https:// nodes (the client's `tls` option). */
  readonly tls?: { readonly ca?: string | Buffer; readonly cert?: string | Buffer; readonly key?: string | Buffer }
}

interface Settings {
  readonly idleTimeoutMs: number
  readonly maxReconnectMs: number
  readonly signal: AbortSignal | undefined
  readonly onReconnect: WatchOptions['onReconnect']
}

/**
 * Every change under `prefix`, as the nodes report them, over Server-Sent Events
 * (`GET /kv?prefix=P&watch=true&since=V`). When a stream fails — the node is killed, resets,
 * goes silent past idleTimeoutMs, answers 503, or cuts the watch — it moves to the next node
 * after a jittered backoff and resumes from the newest version delivered; the node re-sends from
 * a margin before it, and what was delivered already is dropped here. A 410 ends the iteration
 * with WatchHistoryGoneError; other error answers (400, 401) with HearsayClientError.
 */
export function watchChanges(target: WatchTarget, prefix: string, options: WatchOptions = {}): AsyncGenerator<WatchEvent, void, undefined> {
  // Checked here, so a wrong option throws at the call and not at the first iteration.
  if (typeof prefix !== 'string') throw new TypeError('prefix must be a string ("" watches every key)')
  if (options.since !== undefined && !isVersionString(options.since)) {
    throw new ClientOptionsError(`since must be a version string such as 0001733500000000000-0123456789abcdef, got ${JSON.stringify(options.since)}`)
  }
  const settings: Settings = {
    idleTimeoutMs: positive(options.idleTimeoutMs ?? DEFAULT_WATCH_IDLE_TIMEOUT_MS, 'idleTimeoutMs'),
    maxReconnectMs: positive(options.maxReconnectMs ?? DEFAULT_WATCH_MAX_RECONNECT_MS, 'maxReconnectMs', true),
    signal: options.signal,
    onReconnect: options.onReconnect,
  }
  const delivered = new DeliveredVersions(
    positive(options.dedupeWindowMs ?? DEFAULT_WATCH_DEDUPE_WINDOW_MS, 'dedupeWindowMs'),
    positive(options.maxDedupeKeys ?? DEFAULT_WATCH_MAX_DEDUPE_KEYS, 'maxDedupeKeys'),
  )
  if (options.since !== undefined) delivered.advanceTo(options.since)
  return follow(target, prefix, settings, delivered)
}

async function* follow(target: WatchTarget, prefix: string, settings: Settings, delivered: DeliveredVersions): AsyncGenerator<WatchEvent, void, undefined> {
  /**
   * A watch without `since` starts live. Should its first stream fail before anything was
   * delivered, the next one resumes from the moment the first was asked for, by the client's
   * clock: the node's margin covers a clock behind the nodes'; one ahead by more could miss.
   */
  let startedAt: string | undefined
  let index = target.firstNode % target.nodes.length
  let failuresInRow = 0
  let downSinceMs: number | undefined
  const tried = new Set<string>()

  for (;;) {
    if (isAborted(settings.signal)) return
    const node = target.nodes[index] as NodeUrl
    const since = delivered.newest ?? startedAt
    startedAt ??= versionAt(Date.now())
    let failure: Error
    try {
      for await (const item of streamFrom(target, node, prefix, since, settings)) {
        if (item === 'open') {
          failuresInRow = 0
          downSinceMs = undefined
          tried.clear()
          continue
        }
        const change = toChange(node, item, delivered)
        if (change !== undefined) yield change
      }
      failure = new NodeUnreachableError(`${node}: the watch stream ended`, false)
    } catch (err) {
      if (isAborted(settings.signal)) return
      if (!isRetryable(err)) throw err
      failure = err as Error
    }
    tried.add(node)
    const nowMs = Date.now()
    downSinceMs ??= nowMs
    if (nowMs - downSinceMs > settings.maxReconnectMs) throw new NoNodeAnsweredError([...tried], failure.message)
    failuresInRow++
    const delayMs = Math.round(Math.random() * Math.min(MAX_BACKOFF_MS, BASE_BACKOFF_MS * 2 ** (failuresInRow - 1)))
    index = (index + 1) % target.nodes.length
    settings.onReconnect?.({ node, next: target.nodes[index] as string, reason: failure.message, delayMs, since: delivered.newest ?? startedAt })
    try {
      await sleep(delayMs, undefined, settings.signal === undefined ? {} : { signal: settings.signal })
    } catch {
      return
    }
  }
}

/** A change to deliver, undefined for an event that is not one (or a change delivered already). */
function toChange(node: NodeUrl, event: SseEvent, delivered: DeliveredVersions): WatchEvent | undefined {
  if (event.event === 'cut') throw new WatchCutError(node, cutReason(event.data))
  if (event.data === undefined) {
    // An id-only block: the node names the version its stream has reached, a resume point.
    if (event.id !== undefined && isVersionString(event.id)) delivered.advanceTo(event.id)
    return undefined
  }
  if (event.event !== 'change') return undefined
  const change = parseWatchChange(node, parseJson(node, Buffer.from(event.data, 'utf8')))
  return delivered.admit(change.key, change.version) ? change : undefined
}

function cutReason(data: string | undefined): string {
  try {
    const json: unknown = JSON.parse(data ?? '')
    if (typeof json === 'object' && json !== null && typeof (json as { reason?: unknown }).reason === 'string') return (json as { reason: string }).reason
  } catch {
    // not JSON: use the text
  }
  return (data ?? 'no reason given').slice(0, MAX_ERROR_TEXT_CHARS)
}

function isRetryable(err: unknown): boolean {
  return err instanceof NodeUnreachableError || err instanceof WatchCutError ||
    (err instanceof HearsayClientError && err.status === 503)
}

/**
 * One stream from one node: yields 'open' once the node has accepted the watch, then its events.
 * Returning from the consumer's loop closes the connection.
 */
async function* streamFrom(target: WatchTarget, node: NodeUrl, prefix: string, since: string | undefined, settings: Settings): AsyncGenerator<'open' | SseEvent, void, undefined> {
  const query = new URLSearchParams({ prefix, watch: 'true' })
  if (since !== undefined) query.set('since', since)
  const headers: Record<string, string> = { accept: 'text/event-stream' }
  if (target.authorization !== undefined) headers['authorization'] = target.authorization
  const { request, response } = await openStream(node, `/kv?${query.toString()}`, headers, target, settings.signal)
  try {
    const status = response.statusCode ?? 0
    if (status !== 200) throw await errorAnswer(node, status, since, response)
    const type = response.headers['content-type'] ?? ''
    if (!type.startsWith('text/event-stream')) {
      throw new InvalidReplyError(node, `a watch answered as ${JSON.stringify(type)} instead of text/event-stream (is the node older than watches?)`)
    }
    yield 'open'
    const parser = new SseParser(target.maxEventBytes)
    let idle = setTimeout(() => stall(), settings.idleTimeoutMs)
    const stall = (): void => {
      response.destroy(new NodeUnreachableError(`${node}: the watch stream was silent for ${settings.idleTimeoutMs} ms (no heartbeat)`, false))
    }
    try {
      for await (const chunk of response as AsyncIterable<Buffer>) {
        clearTimeout(idle)
        for (const event of parser.push(chunk)) yield event
        idle = setTimeout(stall, settings.idleTimeoutMs)
      }
    } catch (err) {
      throw asNetworkError(node, err)
    } finally {
      clearTimeout(idle)
    }
  } finally {
    request.destroy()
    response.destroy()
  }
}

interface OpenStream {
  readonly request: http.ClientRequest
  readonly response: http.IncomingMessage
}

function openStream(node: NodeUrl, path: string, headers: Record<string, string>, target: WatchTarget, signal: AbortSignal | undefined): Promise<OpenStream> {
  const timeoutMs = target.connectTimeoutMs
  return new Promise((resolve, reject) => {
    const url = new URL(node + path)
    const send = url.protocol === 'https:' ? https.request : http.request
    // A watch holds its connection for as long as it runs: its own socket, never a pooled one.
    const request = send(url, { method: 'GET', headers, agent: false, ...target.tls, ...(signal === undefined ? {} : { signal }) })
    const timer = setTimeout(() => request.destroy(new NodeUnreachableError(`${node}: no answer to the watch within ${timeoutMs} ms`, false)), timeoutMs)
    request.on('response', response => {
      clearTimeout(timer)
      resolve({ request, response })
    })
    request.on('error', err => {
      clearTimeout(timer)
      reject(asNetworkError(node, err))
    })
    request.end()
  })
}

function asNetworkError(node: NodeUrl, err: unknown): Error {
  if (err instanceof NodeUnreachableError || err instanceof InvalidReplyError || err instanceof WatchCutError) return err
  if (err instanceof Error && err.name === 'AbortError') return err
  if (err instanceof Error && err.name === 'SseEventTooLargeError') return new InvalidReplyError(node, err.message)
  return new NodeUnreachableError(`${node}: ${describeNetworkError(err as NodeJS.ErrnoException)}`, false)
}

/** The error for a non-200 answer to a watch, its (small) body read. */
async function errorAnswer(node: NodeUrl, status: number, since: string | undefined, response: http.IncomingMessage): Promise<Error> {
  const chunks: Buffer[] = []
  let bytes = 0
  try {
    for await (const chunk of response as AsyncIterable<Buffer>) {
      bytes += chunk.byteLength
      if (bytes > MAX_ERROR_BODY_BYTES) break
      chunks.push(chunk)
    }
  } catch (err) {
    return asNetworkError(node, err)
  }
  const text = Buffer.concat(chunks).toString('utf8')
  let body: ErrorBody = { error: `HTTP ${status} from ${node}${text.trim() === '' ? '' : `: ${text.trim().slice(0, MAX_ERROR_TEXT_CHARS)}`}` }
  try {
    const json: unknown = JSON.parse(text)
    if (typeof json === 'object' && json !== null && typeof (json as { error?: unknown }).error === 'string') body = json as ErrorBody
  } catch {
    // not JSON: keep the stand-in
  }
  if (status === 410) {
    const oldest = body['oldest']
    if (typeof oldest !== 'string' || !isVersionString(oldest)) return new InvalidReplyError(node, 'a 410 to a watch without the "oldest" version it can resume from')
    return new WatchHistoryGoneError(node, since ?? '(none)', body, oldest)
  }
  return new HearsayClientError(node, status, body)
}

/** A resume point at wall-clock `ms`: below every version a node gives a write at or after that millisecond. */
export function versionAt(ms: number): string {
  return `${String(Math.floor(ms) * HLC_TICKS_PER_MS).padStart(16, '0')}-${NO_NODE_ID}`
}

function positive(value: number, name: string, infinityAllowed = false): number {
  if (infinityAllowed && value === Infinity) return value
  if (!Number.isSafeInteger(value) || value <= 0) throw new ClientOptionsError(`${name} must be a positive integer, got ${value}`)
  return value
}

function isAborted(signal: AbortSignal | undefined): boolean {
  return signal?.aborted === true
}
