import { formatVersion } from '../clock/version.js'
import type { Version } from '../clock/version.js'
import { BadRequestError, MethodNotAllowedError, NotFoundError, UnavailableError } from '../errors.js'
import type { LinearizableService } from '../paxos/service.js'
import type { Metrics } from '../metrics/metrics.js'
import { parseConsistencyLevel } from '../replication/consistency.js'
import type { KvService, WriteOptions, WriteResult } from '../replication/service.js'
import { parseBatch } from './batch.js'
import type { ApiLimits } from './limits.js'
import { checkKeyBytes, decodePathKey, parseIfVersion, parseIncrement, parseQuery, parseScanLimit, parseTtlSeconds } from './params.js'
import { sendBytes, sendJson } from './respond.js'
import type { Handler, RequestContext, RouteHandlers } from './routes.js'
import { serveWatch, type WatchPort } from './watch-route.js'

/** Data routes: /kv/:key, /kv (scan) and /batch. They reach the data only through KvService. */

export interface KvRouteDeps {
  readonly kv: KvService
  /** Linearizable operations (CASPaxos); absent = those requests answer 503. */
  readonly linearizable?: LinearizableService | undefined
  readonly limits: ApiLimits
  readonly metrics: Metrics
  /** Watches (GET /kv?watch=true); absent = 503. */
  readonly watches?: WatchPort
  readonly watchHeartbeatMs?: number
}

export const VERSION_HEADER = 'hearsay-version'

const DEFAULT_HEARTBEAT_MS = 5000

/** The one value of `consistency` a GET takes (plain reads use `r`). */
export const LINEARIZABLE = 'linearizable'

/** POST /kv/{key}/incr: the path suffix that names the counter operation. */
export const INCR_SUFFIX = '/incr'

export function keyRoutes(deps: KvRouteDeps): RouteHandlers {
  const { kv, limits, metrics } = deps
  const strong = (): LinearizableService => {
    if (deps.linearizable === undefined) throw new UnavailableError('linearizable operations are not available on this node')
    return deps.linearizable
  }

  const get: Handler = async ctx => {
    const key = decodePathKey(ctx.rawKey, limits.maxKeyBytes)
    const query = parseQuery(ctx.rawQuery, ['r', 'consistency'])
    const r = query.get('r')
    const consistency = query.get('consistency')
    if (consistency !== undefined && consistency !== LINEARIZABLE) {
      throw new BadRequestError(`consistency must be "${LINEARIZABLE}" (for plain reads give r instead), got ${JSON.stringify(consistency)}`, { param: 'consistency' })
    }
    if (consistency !== undefined && r !== undefined) throw new BadRequestError('give either r or consistency=linearizable, not both', { param: 'r' })
    const found = consistency === LINEARIZABLE
      ? await strong().read(key)
      : await kv.get(key, r === undefined ? {} : { r: parseConsistencyLevel(r, 'r') })
    if (found === undefined) throw new NotFoundError(`key ${JSON.stringify(key)} not found`, { key })
    sendBytes(ctx.res, 200, found.value, { 'content-type': 'application/octet-stream', [VERSION_HEADER]: formatVersion(found.version) })
  }

  const put: Handler = async ctx => {
    const key = decodePathKey(ctx.rawKey, limits.maxKeyBytes)
    const ifVersion = conditionOf(ctx)
    const options = writeOptions(ctx, ifVersion === undefined ? ['w', 'ttl'] : ['ifVersion'])
    const value = await ctx.readBody(limits.maxValueBytes, 'value')
    if (ifVersion !== undefined) {
      const result = await strong().compareAndSet(key, value, ifVersion)
      metrics.kvWrites.inc({ op: 'cas' })
      sendJson(ctx.res, 200, { key: result.key, version: formatVersion(result.version) })
      return
    }
    const result = await kv.put(key, value, options)
    metrics.kvWrites.inc({ op: 'put' })
    sendJson(ctx.res, 200, writeView(result))
  }

  const remove: Handler = async ctx => {
    const key = decodePathKey(ctx.rawKey, limits.maxKeyBytes)
    const ifVersion = conditionOf(ctx)
    const options = writeOptions(ctx, ifVersion === undefined ? ['w'] : ['ifVersion'])
    if (ifVersion !== undefined) {
      const result = await strong().compareAndSet(key, null, ifVersion)
      metrics.kvWrites.inc({ op: 'cas' })
      sendJson(ctx.res, 200, { key: result.key, version: formatVersion(result.version) })
      return
    }
    const result = await kv.delete(key, options)
    metrics.kvWrites.inc({ op: 'delete' })
    sendJson(ctx.res, 200, writeView(result))
  }

  const incr: Handler = async ctx => {
    if (!ctx.rawKey.endsWith(INCR_SUFFIX) || ctx.rawKey.length === INCR_SUFFIX.length) {
      throw new MethodNotAllowedError('POST is not allowed on /kv/{key} except for counters: POST /kv/{key}/incr?by=N', { allow: ['GET', 'HEAD', 'PUT', 'DELETE', 'POST'] })
    }
    const key = decodePathKey(ctx.rawKey.slice(0, -INCR_SUFFIX.length), limits.maxKeyBytes)
    const by = parseIncrement(parseQuery(ctx.rawQuery, ['by']).get('by'))
    // The body is not used; reading it (bounded) keeps the connection usable for the next request.
    await ctx.readBody(limits.maxValueBytes, 'incr body')
    const result = await strong().increment(key, by)
    metrics.kvWrites.inc({ op: 'incr' })
    sendJson(ctx.res, 200, { key: result.key, value: result.value, version: formatVersion(result.version) })
  }

  return { GET: get, PUT: put, DELETE: remove, POST: incr }
}

/** `ifVersion` from the query, when given (the request is then a linearizable compare-and-set). */
function conditionOf(ctx: RequestContext): Version | 'absent' | undefined {
  const text = new URLSearchParams(ctx.rawQuery).get('ifVersion')
  return text === null ? undefined : parseIfVersion(text)
}

export function scanRoutes(deps: KvRouteDeps): RouteHandlers {
  const { kv, limits } = deps
  const scan: Handler = async ctx => {
    const query = parseQuery(ctx.rawQuery, ['prefix', 'after', 'limit', 'watch', 'since', 'start', 'end', 'local'])
    const prefix = query.get('prefix') ?? ''
    checkKeyBytes(prefix, limits.maxKeyBytes, 'uri', 'prefix')
    const watch = query.get('watch')
    if (watch !== undefined && watch !== 'true' && watch !== 'false') throw new BadRequestError(`watch must be true or false, got ${JSON.stringify(watch.slice(0, 100))}`, { param: 'watch' })
    if (watch === 'true') {
      for (const param of ['after', 'limit']) {
        if (query.has(param)) throw new BadRequestError(`${param} is for scans; a watch takes prefix and since`, { param })
      }
      // A HEAD answer has no body to stream events in.
      if (ctx.req.method === 'HEAD') throw new MethodNotAllowedError('HEAD is not allowed on a watch; use GET', { allow: ['GET'] })
      if (deps.watches === undefined) throw new UnavailableError('this node does not serve watches')
      return serveWatch(ctx, deps.watches, prefix, query.get('since'), deps.watchHeartbeatMs ?? DEFAULT_HEARTBEAT_MS)
    }
    if (query.has('since')) throw new BadRequestError('since is for watches; add watch=true', { param: 'since' })
    // An empty cursor means "from the start", so clients can pass `next` back unconditionally.
    const after = query.get('after') || undefined
    if (after !== undefined) checkKeyBytes(after, limits.maxKeyBytes, 'uri', 'after')
    const start = query.get('start') || undefined
    if (start !== undefined) checkKeyBytes(start, limits.maxKeyBytes, 'uri', 'start')
    const end = query.get('end')
    if (end !== undefined) checkKeyBytes(end, limits.maxKeyBytes, 'uri', 'end')
    if (start !== undefined && end !== undefined && Buffer.compare(Buffer.from(start), Buffer.from(end)) > 0) {
      throw new BadRequestError(`start ${JSON.stringify(start)} sorts after end ${JSON.stringify(end)}: the range is empty; swap them`, { param: 'start' })
    }
    const local = parseBooleanParam(query.get('local'), 'local')
    const limit = parseScanLimit(query.get('limit'), limits.defaultScanLimit, limits.maxScanLimit)
    const page = await kv.scan({
      prefix, limit,
      ...(after !== undefined ? { after } : {}), ...(start !== undefined ? { start } : {}), ...(end !== undefined ? { end } : {}), ...(local ? { local } : {}),
    })
    sendJson(ctx.res, 200, {
      items: page.items.map(item => ({ key: item.key, value: Buffer.from(item.value).toString('base64'), version: formatVersion(item.version) })),
      next: page.next,
    })
  }
  return { GET: scan }
}

export function batchRoutes(deps: KvRouteDeps): RouteHandlers {
  const { kv, limits, metrics } = deps
  const batch: Handler = async ctx => {
    const queryW = parseQuery(ctx.rawQuery, ['w']).get('w')
    const parsed = parseBatch(await ctx.readBody(limits.maxBatchBodyBytes, 'batch body'), limits)
    if (queryW !== undefined && parsed.w !== undefined) throw new BadRequestError('give w either in the query or in the batch body, not both', { param: 'w' })
    const w = queryW === undefined ? parsed.w : parseConsistencyLevel(queryW, 'w')
    const results = await kv.batch(parsed.operations, w === undefined ? {} : { w })
    for (const operation of parsed.operations) metrics.kvWrites.inc({ op: operation.op })
    sendJson(ctx.res, 200, { results: results.map(writeView) })
  }
  return { POST: batch }
}

function parseBooleanParam(text: string | undefined, name: string): boolean {
  if (text === undefined || text === 'false') return false
  if (text === 'true') return true
  throw new BadRequestError(`${name} must be true or false, got ${JSON.stringify(text)}`, { param: name })
}

function writeOptions(ctx: RequestContext, allowed: readonly ('w' | 'ttl' | 'ifVersion')[]): WriteOptions {
  const query = parseQuery(ctx.rawQuery, allowed)
  const w = query.get('w')
  const ttl = query.get('ttl')
  return {
    ...(w === undefined ? {} : { w: parseConsistencyLevel(w, 'w') }),
    ...(ttl === undefined ? {} : { ttlSeconds: parseTtlSeconds(ttl) }),
  }
}

function writeView(result: WriteResult): { key: string; version: string; acks: number; w: number } {
  return { key: result.key, version: formatVersion(result.version), acks: result.acks, w: result.needed }
}
