import { downloadSnapshot } from './snapshot-download.js'
import type { SnapshotHeader } from '../store/snapshot.js'
import type { ConsistencyLevel } from '../replication/consistency.js'
import { NodeStreams } from './binary/node-streams.js'
import {
  batchFrame, casFrame, deleteFrame, getFrame, incrFrame, linearizableGetFrame, parseBatchAnswer, parseCasAnswer, parseGetAnswer, parseIncrAnswer,
  parseWriteAnswer, putFrame, type StreamBatchOp,
} from './binary/operations.js'
import { StreamNotUsableError } from './binary/stream-connection.js'
import { ClientOptionsError, HearsayClientError, InvalidReplyError, NoNodeAnsweredError, type ErrorBody } from './errors.js'
import { Agents, exchange, NodeUnreachableError, type ExchangeLimits, type HttpAnswer, type HttpRequest } from './http-exchange.js'
import { parseNodeUrls, type NodeUrl } from './node-urls.js'
import {
  parseBatchReply, parseCasReply, parseHealth, parseIncrReply, parseJson, parseMembers, parseObject, parseScanPage, parseWriteReply,
  type BatchResult, type CasReply, type HealthReply, type IncrReply, type MemberReply, type ScanItem, type ScanPage, type WriteReply,
} from './replies.js'

import { watchChanges, type WatchEvent, type WatchOptions } from './watch.js'

export type { BatchResult, CasReply, HealthReply, IncrReply, MemberReply, MemberState, ScanItem, ScanPage, WatchEvent, WriteReply } from './replies.js'
export { WatchCutError, WatchHistoryGoneError, type WatchOptions, type WatchReconnect } from './watch.js'
export { ClientOptionsError, HearsayClientError, InvalidReplyError, NoNodeAnsweredError } from './errors.js'
export type { ErrorBody } from './errors.js'

/** Above replication.timeoutMs (2000 by default) so a quorum miss arrives as a 503, not a timeout. */
export const DEFAULT_TIMEOUT_MS = 10_000
/** An anti-entropy round compares whole trees and may move data; give it longer than a request. */
export const DEFAULT_SYNC_TIMEOUT_MS = 120_000
export const DEFAULT_MAX_SOCKETS = 64
/** Values and scan pages are bounded by the server; this only stops a runaway answer. */
export const DEFAULT_MAX_RESPONSE_BYTES = 256 * 1024 * 1024
/** scanAll stops (with an error) after this many pages unless told otherwise. */
export const DEFAULT_SCAN_MAX_PAGES = 100_000
const MAX_TIMEOUT_MS = 24 * 60 * 60 * 1000
const MAX_ERROR_TEXT_CHARS = 200

/**
 * How put, get, delete and batch travel. 'binary' (the default): over the node's pipelined
 * stream protocol (docs/client-protocol.md) once the node's first HTTP answer says it offers
 * it, HTTP until then and wherever it does not. 'http': always HTTP. Every other method is HTTP.
 */
export type ClientTransport = 'binary' | 'http'

/**
 * TLS for https:// nodes (PEM text or bytes). `ca` replaces the system's trusted CAs: pass the
 * cluster's CA certificate (the one `hearsay tls ca create` made). `cert` and `key` are this
 * client's certificate for nodes with tls.api mutual.
 */
export interface ClientTlsOptions {
  readonly ca?: string | Buffer
  readonly cert?: string | Buffer
  readonly key?: string | Buffer
}

export interface HearsayClientOptions {
  /** Base URLs such as http://127.0.0.1:7070 or https://node-1:7070, tried in order when one does not answer. */
  readonly nodes: readonly string[]
  /** Deadline per attempt on one node, for connect, send and the whole answer. */
  readonly timeoutMs?: number
  /** Bearer token for nodes that set api.token. */
  readonly token?: string
  /** Keep-alive sockets per node. */
  readonly maxSockets?: number
  readonly maxResponseBytes?: number
  readonly transport?: ClientTransport
  readonly tls?: ClientTlsOptions
}

export interface PutOptions {
  readonly w?: ConsistencyLevel
  readonly ttlSeconds?: number
}

export interface DeleteOptions {
  readonly w?: ConsistencyLevel
}

export interface GetOptions {
  readonly r?: ConsistencyLevel
  /** 'linearizable': a read that sees every change completed before it (CASPaxos); not with `r`. */
  readonly consistency?: 'linearizable'
}

export interface CasOptions {
  /** The version the key must be at (a version string as hearsay prints them), or 'absent'. */
  readonly ifVersion: string
}

export interface IncrOptions {
  /** Added to the counter; a safe integer, default 1. */
  readonly by?: number
}

export interface GetReply {
  readonly value: Buffer
  readonly version: string
}

export interface ScanOptions {
  readonly prefix?: string
  /** Paging cursor: only keys after this one. */
  readonly after?: string
  /** Page size; the server clamps or refuses values above its maximum. */
  readonly limit?: number
}

export interface ScanAllOptions {
  readonly prefix?: string
  readonly pageSize?: number
  readonly maxPages?: number
}

export type BatchOp =
  | { readonly op: 'put'; readonly key: string; readonly value: Uint8Array | string; readonly ttlSeconds?: number }
  | { readonly op: 'delete'; readonly key: string }

export interface BatchOptions {
  readonly w?: ConsistencyLevel
}

export interface SyncOptions {
  readonly timeoutMs?: number
}

/**
 * Typed client for the hearsay API. Each request goes to the node that last answered; when a
 * node does not answer at all it moves on to the next listed node. Non-2xx answers are thrown as
 * HearsayClientError and are never retried elsewhere: they are the cluster's answer. Both
 * transports give the same results and errors.
 */
export class HearsayClient {
  readonly nodes: readonly NodeUrl[]
  readonly #timeoutMs: number
  readonly #maxResponseBytes: number
  readonly #authorization: string | undefined
  readonly #agents: Agents
  /** CA and client certificate for https:// nodes; watches open their own sockets with it. */
  readonly #tls: ClientTlsOptions
  /** Stream connections for put/get/delete/batch; undefined with transport 'http'. */
  readonly #streams: NodeStreams | undefined
  /** Index of the node that answered last; requests start there. */
  #preferred = 0

  constructor(options: HearsayClientOptions) {
    this.nodes = parseNodeUrls(options.nodes)
    this.#timeoutMs = checkTimeout(options.timeoutMs ?? DEFAULT_TIMEOUT_MS, 'timeoutMs')
    this.#maxResponseBytes = checkPositiveInteger(options.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES, 'maxResponseBytes')
    const maxSockets = checkPositiveInteger(options.maxSockets ?? DEFAULT_MAX_SOCKETS, 'maxSockets')
    if (options.token !== undefined && !/^[\x21-\x7e]+$/.test(options.token)) {
      throw new ClientOptionsError('token must be non-empty printable ASCII without spaces')
    }
    this.#authorization = options.token === undefined ? undefined : `Bearer ${options.token}`
    const tls = checkTls(options.tls)
    this.#tls = tls
    this.#agents = new Agents(maxSockets, tls)
    const transport = options.transport ?? 'binary'
    if (transport !== 'binary' && transport !== 'http') throw new ClientOptionsError(`transport must be "binary" or "http", got ${JSON.stringify(transport)}`)
    this.#streams = transport === 'http'
      ? undefined
      : new NodeStreams({ authorization: this.#authorization, timeoutMs: this.#timeoutMs, maxResponseBytes: this.#maxResponseBytes, tls })
  }

  /**
   * Writes `value` (null deletes) only if the key is at `options.ifVersion` ('absent': does not
   * exist). 409 (HearsayClientError, body.current.version) when it is not; 503 with
   * body.outcome 'unknown' when the change may or may not have been applied.
   */
  async cas(key: string, value: Uint8Array | string | null, options: CasOptions): Promise<CasReply> {
    checkKey(key)
    if (typeof options?.ifVersion !== 'string' || options.ifVersion === '') throw new ClientOptionsError('cas needs ifVersion: a version string or "absent"')
    const ifVersion = options.ifVersion
    const bytes = value === null ? null : toBytes(value)
    // Built only when the request goes over HTTP (the stream carries the frame).
    const request = (): HttpRequest => {
      const query = new URLSearchParams({ ifVersion })
      return bytes === null
        ? { method: 'DELETE', path: keyPath(key, query) }
        : { method: 'PUT', path: keyPath(key, query), headers: { 'content-type': 'application/octet-stream' }, body: bytes }
    }
    return this.#change(casFrame(key, bytes, ifVersion), (node, frame) => parseCasAnswer(node, key, frame), request,
      answer => parseCasReply(answer.node, parseJson(answer.node, answer.body)))
  }

  /** Adds `options.by` (default 1) to the key's decimal integer value (absent = 0); answers the new value. */
  async incr(key: string, options: IncrOptions = {}): Promise<IncrReply> {
    checkKey(key)
    const by = options.by ?? 1
    if (!Number.isSafeInteger(by)) throw new ClientOptionsError(`by must be a safe integer, got ${String(by)}`)
    const path = `/kv/${encodeURIComponent(key)}/incr${by === 1 ? '' : `?by=${by}`}`
    return this.#change(incrFrame(key, by), (node, frame) => parseIncrAnswer(node, key, frame), () => ({ method: 'POST', path }),
      answer => parseIncrReply(answer.node, parseJson(answer.node, answer.body)))
  }

  async put(key: string, value: Uint8Array | string, options: PutOptions = {}): Promise<WriteReply> {
    checkKey(key)
    const bytes = toBytes(value)
    return this.#kv(
      putFrame(key, bytes, options.w, options.ttlSeconds),
      (node, frame) => parseWriteAnswer(node, key, frame),
      () => {
        const query = new URLSearchParams()
        if (options.w !== undefined) query.set('w', String(options.w))
        if (options.ttlSeconds !== undefined) query.set('ttl', String(options.ttlSeconds))
        return { method: 'PUT', path: keyPath(key, query), headers: { 'content-type': 'application/octet-stream' }, body: bytes }
      },
      answer => {
        throwUnlessOk(answer)
        return parseWriteReply(answer.node, parseJson(answer.node, answer.body))
      },
    )
  }

  /** Undefined when the key is absent, deleted or expired (404). */
  async get(key: string, options: GetOptions = {}): Promise<GetReply | undefined> {
    checkKey(key)
    if (options.consistency !== undefined) {
      if (options.consistency !== 'linearizable') throw new ClientOptionsError(`consistency must be "linearizable", got ${JSON.stringify(options.consistency)}`)
      if (options.r !== undefined) throw new ClientOptionsError('give either r or consistency, not both')
      return this.#kv(linearizableGetFrame(key), parseGetAnswer, () => ({ method: 'GET', path: keyPath(key, new URLSearchParams({ consistency: 'linearizable' })) }), getReplyOf)
    }
    return this.#kv(
      getFrame(key, options.r),
      parseGetAnswer,
      () => {
        const query = new URLSearchParams()
        if (options.r !== undefined) query.set('r', String(options.r))
        return { method: 'GET', path: keyPath(key, query) }
      },
      getReplyOf,
    )
  }

  /** Writes a tombstone; succeeds for an absent key too. */
  async delete(key: string, options: DeleteOptions = {}): Promise<WriteReply> {
    checkKey(key)
    return this.#kv(
      deleteFrame(key, options.w),
      (node, frame) => parseWriteAnswer(node, key, frame),
      () => {
        const query = new URLSearchParams()
        if (options.w !== undefined) query.set('w', String(options.w))
        return { method: 'DELETE', path: keyPath(key, query) }
      },
      answer => {
        throwUnlessOk(answer)
        return parseWriteReply(answer.node, parseJson(answer.node, answer.body))
      },
    )
  }

  async scan(options: ScanOptions = {}): Promise<ScanPage> {
    const query = new URLSearchParams()
    if (options.prefix !== undefined) query.set('prefix', options.prefix)
    if (options.after !== undefined) query.set('after', options.after)
    if (options.limit !== undefined) query.set('limit', String(options.limit))
    const answer = await this.#call({ method: 'GET', path: withQuery('/kv', query) })
    return parseScanPage(answer.node, parseJson(answer.node, answer.body))
  }

  /** Every item under `prefix`, page after page, bounded by `maxPages`. */
  async *scanAll(options: ScanAllOptions = {}): AsyncIterable<ScanItem> {
    const maxPages = checkPositiveInteger(options.maxPages ?? DEFAULT_SCAN_MAX_PAGES, 'maxPages')
    let after: string | undefined
    for (let pages = 0; pages < maxPages; pages++) {
      const page = await this.scan({ prefix: options.prefix, after, limit: options.pageSize })
      yield* page.items
      if (page.next === null) return
      // A cursor that repeats would page forever; the server must move forward.
      if (page.next === after) throw new InvalidReplyError('the cluster', `a scan cursor that does not advance (${JSON.stringify(after)})`)
      after = page.next
    }
    throw new RangeError(`scan did not finish within ${maxPages} pages; raise maxPages or narrow the prefix`)
  }

  async batch(ops: readonly BatchOp[], options: BatchOptions = {}): Promise<BatchResult[]> {
    // Empty or overlong keys are the node's to refuse (400), as over HTTP; text that has no UTF-8 form is ours.
    for (const op of ops) if (typeof op.key === 'string') checkUnicode(op.key)
    const byteOps: StreamBatchOp[] = ops.map(op => op.op === 'delete' ? op : { ...op, value: toBytes(op.value) })
    return this.#kv(
      batchFrame(byteOps, options.w),
      (node, frame) => parseBatchAnswer(node, byteOps, frame),
      () => {
        const wireOps = byteOps.map(op => op.op === 'delete'
          ? { op: 'delete', key: op.key }
          : { op: 'put', key: op.key, value: Buffer.from(op.value).toString('base64'), ...(op.ttlSeconds === undefined ? {} : { ttl: op.ttlSeconds }) })
        const body = Buffer.from(JSON.stringify(options.w === undefined ? { ops: wireOps } : { ops: wireOps, w: options.w }))
        return { method: 'POST', path: '/batch', headers: { 'content-type': 'application/json' }, body }
      },
      answer => {
        throwUnlessOk(answer)
        return parseBatchReply(answer.node, parseJson(answer.node, answer.body))
      },
    )
  }

  /** 200 while serving; a node that is starting or leaving answers 503 (HearsayClientError). */
  async health(): Promise<HealthReply> {
    const answer = await this.#call({ method: 'GET', path: '/health' })
    return parseHealth(answer.node, parseJson(answer.node, answer.body))
  }

  async status(): Promise<Record<string, unknown>> {
    const answer = await this.#call({ method: 'GET', path: '/status' })
    return parseObject(answer.node, 'a status reply', parseJson(answer.node, answer.body))
  }

  async members(): Promise<MemberReply[]> {
    const answer = await this.#call({ method: 'GET', path: '/members' })
    return parseMembers(answer.node, parseJson(answer.node, answer.body))
  }

  /** Runs an anti-entropy round on the node now and returns its summary. */
  async sync(options: SyncOptions = {}): Promise<Record<string, unknown>> {
    const timeoutMs = checkTimeout(options.timeoutMs ?? Math.max(DEFAULT_SYNC_TIMEOUT_MS, this.#timeoutMs), 'timeoutMs')
    const answer = await this.#call({ method: 'POST', path: '/admin/sync' }, timeoutMs)
    return parseObject(answer.node, 'a sync summary', parseJson(answer.node, answer.body))
  }

  /**
   * Streams a snapshot of the first listed node's store into `file` (never another node's: a
   * snapshot is of one node). Resolves with its header once the file is complete and checked.
   */
  async saveSnapshot(file: string): Promise<SnapshotHeader> {
    return downloadSnapshot({ node: this.nodes[0] as NodeUrl, file, authorization: this.#authorization, idleTimeoutMs: this.#timeoutMs })
  }

  /**
   * Removes a dead member for good (`hearsay members remove`): `node` is its id or name. 409 when
   * it is alive or suspect (decommission it instead), 404 when no node knows it.
   */
  async removeMember(node: string): Promise<Record<string, unknown>> {
    if (typeof node !== 'string' || node === '') throw new ClientOptionsError('removeMember needs a member id or name')
    const answer = await this.#call({ method: 'POST', path: withQuery('/admin/members/remove', new URLSearchParams({ node })) })
    return parseObject(answer.node, 'a removal reply', parseJson(answer.node, answer.body))
  }

  /**
   * Starts the decommission of the first listed node (never another: it is that node that
   * leaves) and answers its progress. 409 when the cluster would fall below N live members.
   */
  async decommission(): Promise<Record<string, unknown>> {
    const answer = await this.#callFirst({ method: 'POST', path: '/admin/decommission' })
    return parseObject(answer.node, 'a decommission reply', parseJson(answer.node, answer.body))
  }

  /**
   * Removed and leaving members with the cluster's progress (GET /admin/lifecycle); `firstNode`
   * asks the first listed node only (a decommission's progress is that node's).
   */
  async lifecycle(options: { readonly firstNode?: boolean } = {}): Promise<Record<string, unknown>> {
    const request: HttpRequest = { method: 'GET', path: '/admin/lifecycle' }
    const answer = options.firstNode === true ? await this.#callFirst(request) : await this.#call(request)
    return parseObject(answer.node, 'a lifecycle reply', parseJson(answer.node, answer.body))
  }

  async metricsText(): Promise<string> {
    const answer = await this.#call({ method: 'GET', path: '/metrics' })
    return answer.body.toString('utf8')
  }

  /**
   * Every change under `prefix` as it happens (after `since` when given), as an async iterator:
   * `for await (const change of client.watch('config/'))`. It fails over to the next node and
   * resumes without gaps (see lib/client/watch.ts); breaking out of the loop or aborting
   * `options.signal` closes it. A `since` the nodes no longer keep throws WatchHistoryGoneError.
   */
  watch(prefix: string, options: WatchOptions = {}): AsyncGenerator<WatchEvent, void, undefined> {
    return watchChanges({
      nodes: this.nodes,
      firstNode: this.#preferred,
      authorization: this.#authorization,
      connectTimeoutMs: this.#timeoutMs,
      maxEventBytes: this.#maxResponseBytes,
      tls: this.#tls,
    }, prefix, options)
  }

  /** Closes the kept-alive sockets and stream connections; the client must not be used afterwards. */
  close(): void {
    this.#streams?.close()
    this.#agents.destroy()
  }

  /** A request to the first listed node only, without failover. */
  async #callFirst(request: HttpRequest): Promise<HttpAnswer> {
    const answer = await retryStale(() => this.#http(this.nodes[0] as NodeUrl, request, this.#timeoutMs))
    throwUnlessOk(answer)
    return answer
  }

  async #call(request: HttpRequest, timeoutMs = this.#timeoutMs): Promise<HttpAnswer> {
    const answer = await this.#send(request, timeoutMs)
    throwUnlessOk(answer)
    return answer
  }

  /**
   * A linearizable change, over the stream connection or HTTP like #kv. It moves on to the next
   * node only when the last one was never reached: after a timeout or a lost connection the
   * change may be applied already, so it answers as the node would have (503, outcome unknown)
   * instead of sending it twice.
   */
  async #change<T>(frame: unknown[], parseFrame: (node: NodeUrl, frame: unknown[]) => T, httpRequest: () => HttpRequest, parseHttp: (answer: HttpAnswer) => T): Promise<T> {
    return this.#failover(async node => {
      try {
        return await this.#streamOrHttp(node, frame, parseFrame, httpRequest, answer => {
          throwUnlessOk(answer)
          return parseHttp(answer)
        })
      } catch (err) {
        if (err instanceof NodeUnreachableError && err.mayHaveArrived && !err.staleSocket) {
          throw new HearsayClientError(String(node), 503, { error: `${err.message}; the change may or may not have been applied`, outcome: 'unknown' })
        }
        throw err
      }
    })
  }

  async #send(request: HttpRequest, timeoutMs = this.#timeoutMs): Promise<HttpAnswer> {
    return this.#failover(node => this.#http(node, request, timeoutMs))
  }

  /**
   * A data request: over the node's stream connection when there is one, over HTTP otherwise or
   * when the stream cannot carry it (refused upgrade, oversized frame). `frame` is built once;
   * each attempt gives it a fresh requestId.
   */
  async #kv<T>(frame: unknown[], parseFrame: (node: NodeUrl, frame: unknown[]) => T, httpRequest: () => HttpRequest, parseHttp: (answer: HttpAnswer) => T): Promise<T> {
    return this.#failover(node => this.#streamOrHttp(node, frame, parseFrame, httpRequest, parseHttp))
  }

  /** One attempt on one node: its stream connection, or HTTP when there is none or it cannot carry the frame. */
  async #streamOrHttp<T>(node: NodeUrl, frame: unknown[], parseFrame: (node: NodeUrl, frame: unknown[]) => T, httpRequest: () => HttpRequest, parseHttp: (answer: HttpAnswer) => T): Promise<T> {
    const connection = this.#streams?.connectionFor(node)
    if (connection !== undefined) {
      try {
        return parseFrame(node, await connection.request(frame))
      } catch (err) {
        if (!(err instanceof StreamNotUsableError)) throw err
      }
    }
    return parseHttp(await this.#http(node, httpRequest(), this.#timeoutMs))
  }

  async #http(node: NodeUrl, request: HttpRequest, timeoutMs: number): Promise<HttpAnswer> {
    const withAuth = this.#authorization === undefined
      ? request
      : { ...request, headers: { ...request.headers, authorization: this.#authorization } }
    const limits: ExchangeLimits = { timeoutMs, maxResponseBytes: this.#maxResponseBytes }
    const answer = await exchange(this.#agents, node, withAuth, limits)
    this.#streams?.noteAnswer(node, answer.headers)
    return answer
  }

  /**
   * Runs `attempt` on the node that answered last, then on the next ones while a node does not
   * answer at all. A failure on a reused socket or connection is retried once on the same node.
   */
  async #failover<T>(attempt: (node: NodeUrl) => Promise<T>): Promise<T> {
    const tried: NodeUrl[] = []
    let lastReason = ''
    let refusedByState: HearsayClientError | undefined
    for (let offset = 0; offset < this.nodes.length; offset++) {
      const index = (this.#preferred + offset) % this.nodes.length
      const node = this.nodes[index] as NodeUrl
      tried.push(node)
      try {
        const result = await retryStale(() => attempt(node))
        this.#preferred = index
        return result
      } catch (err) {
        // A node that is starting, repairing, leaving or skewed refused before doing anything
        // (its 503 names its nodeState): another node can serve the request.
        if (err instanceof HearsayClientError && isNodeStateRefusal(err)) {
          refusedByState = err
          lastReason = err.message
          continue
        }
        if (!(err instanceof NodeUnreachableError)) {
          // An error answer is still an answer: this node is up.
          if (err instanceof HearsayClientError || err instanceof InvalidReplyError) this.#preferred = index
          throw err
        }
        lastReason = err.message
      }
    }
    if (refusedByState !== undefined) throw refusedByState
    throw new NoNodeAnsweredError(tried, lastReason)
  }
}

/** States in which a node refuses requests that another node may serve (lib/api/views.ts). */
const REFUSING_NODE_STATES: ReadonlySet<unknown> = new Set(['starting', 'repairing', 'leaving', 'skewed'])

function isNodeStateRefusal(err: HearsayClientError): boolean {
  return err.status === 503 && REFUSING_NODE_STATES.has((err.body as { nodeState?: unknown }).nodeState)
}

async function retryStale<T>(attempt: () => Promise<T>): Promise<T> {
  try {
    return await attempt()
  } catch (err) {
    if (err instanceof NodeUnreachableError && err.staleSocket) return attempt()
    throw err
  }
}

function getReplyOf(answer: HttpAnswer): GetReply | undefined {
  if (answer.status === 404) return undefined
  throwUnlessOk(answer)
  const version = answer.headers['hearsay-version']
  if (typeof version !== 'string') throw new InvalidReplyError(answer.node, 'a value without a Hearsay-Version header')
  return { value: answer.body, version }
}

function throwUnlessOk(answer: HttpAnswer): void {
  if (answer.status >= 200 && answer.status < 300) return
  throw new HearsayClientError(answer.node, answer.status, errorBody(answer))
}

/** The server's JSON error body, or a stand-in when something else (a proxy) answered. */
function errorBody(answer: HttpAnswer): ErrorBody {
  try {
    const json: unknown = JSON.parse(answer.body.toString('utf8'))
    if (typeof json === 'object' && json !== null && typeof (json as { error?: unknown }).error === 'string') return json as ErrorBody
  } catch {
    // not JSON: fall through to the stand-in below
  }
  const text = answer.body.toString('utf8').trim().slice(0, MAX_ERROR_TEXT_CHARS)
  return { error: `HTTP ${answer.status} from ${answer.node}${text === '' ? '' : `: ${text}`}` }
}

/** A lone surrogate has no UTF-8 form: URL-encoding refuses it, MessagePack would silently replace it. */
const LONE_SURROGATE = /\p{Cs}/u

function checkKey(key: string): void {
  if (typeof key !== 'string' || key === '') throw new TypeError('key must be a non-empty string')
  checkUnicode(key)
}

function checkUnicode(key: string): void {
  if (LONE_SURROGATE.test(key)) throw new TypeError(`key ${JSON.stringify(key)} is not valid Unicode text (lone surrogate)`)
}

function keyPath(key: string, query: URLSearchParams): string {
  return withQuery(`/kv/${encodeURIComponent(key)}`, query)
}

function withQuery(path: string, query: URLSearchParams): string {
  const text = query.toString()
  return text === '' ? path : `${path}?${text}`
}

function toBytes(value: Uint8Array | string): Uint8Array {
  return typeof value === 'string' ? Buffer.from(value, 'utf8') : value
}

function checkTls(tls: ClientTlsOptions | undefined): ClientTlsOptions {
  if (tls === undefined) return {}
  if ((tls.cert === undefined) !== (tls.key === undefined)) {
    throw new ClientOptionsError('tls.cert and tls.key go together: a client certificate needs its private key')
  }
  const pem = (value: string | Buffer | undefined, name: string, label: RegExp): void => {
    if (value === undefined) return
    if (!label.test(value.toString())) throw new ClientOptionsError(`tls.${name} is not PEM text (no "-----BEGIN ${name === 'key' ? 'PRIVATE KEY' : 'CERTIFICATE'}-----" line)`)
  }
  pem(tls.ca, 'ca', /-----BEGIN CERTIFICATE-----/)
  pem(tls.cert, 'cert', /-----BEGIN CERTIFICATE-----/)
  pem(tls.key, 'key', /-----BEGIN [A-Z ]*PRIVATE KEY-----/)
  return { ...tls }
}

function checkPositiveInteger(value: number, name: string): number {
  if (!Number.isSafeInteger(value) || value <= 0) throw new ClientOptionsError(`${name} must be a positive integer, got ${value}`)
  return value
}

function checkTimeout(value: number, name: string): number {
  checkPositiveInteger(value, name)
  if (value > MAX_TIMEOUT_MS) throw new ClientOptionsError(`${name} must be at most ${MAX_TIMEOUT_MS} ms, got ${value}`)
  return value
}
