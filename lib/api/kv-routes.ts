import { formatVersion } from '../clock/version.js'
import { BadRequestError, NotFoundError } from '../errors.js'
import type { Metrics } from '../metrics/metrics.js'
import { parseConsistencyLevel } from '../replication/consistency.js'
import type { KvService, WriteOptions, WriteResult } from '../replication/service.js'
import { parseBatch } from './batch.js'
import type { ApiLimits } from './limits.js'
import { checkKeyBytes, decodePathKey, parseQuery, parseScanLimit, parseTtlSeconds } from './params.js'
import { sendBytes, sendJson } from './respond.js'
import type { Handler, RequestContext, RouteHandlers } from './routes.js'

/** Data routes: /kv/:key, /kv (scan) and /batch. They reach the data only through KvService. */

export interface KvRouteDeps {
  readonly kv: KvService
  readonly limits: ApiLimits
  readonly metrics: Metrics
}

export const VERSION_HEADER = 'hearsay-version'

export function keyRoutes(deps: KvRouteDeps): RouteHandlers {
  const { kv, limits, metrics } = deps

  const get: Handler = async ctx => {
    const key = decodePathKey(ctx.rawKey, limits.maxKeyBytes)
    const query = parseQuery(ctx.rawQuery, ['r'])
    const r = query.get('r')
    const found = await kv.get(key, r === undefined ? {} : { r: parseConsistencyLevel(r, 'r') })
    if (found === undefined) throw new NotFoundError(`key ${JSON.stringify(key)} not found`, { key })
    sendBytes(ctx.res, 200, found.value, { 'content-type': 'application/octet-stream', [VERSION_HEADER]: formatVersion(found.version) })
  }

  const put: Handler = async ctx => {
    const key = decodePathKey(ctx.rawKey, limits.maxKeyBytes)
    const options = writeOptions(ctx, ['w', 'ttl'])
    const value = await ctx.readBody(limits.maxValueBytes, 'value')
    const result = await kv.put(key, value, options)
    metrics.kvWrites.inc({ op: 'put' })
    sendJson(ctx.res, 200, writeView(result))
  }

  const remove: Handler = async ctx => {
    const key = decodePathKey(ctx.rawKey, limits.maxKeyBytes)
    const result = await kv.delete(key, writeOptions(ctx, ['w']))
    metrics.kvWrites.inc({ op: 'delete' })
    sendJson(ctx.res, 200, writeView(result))
  }

  return { GET: get, PUT: put, DELETE: remove }
}

export function scanRoutes(deps: KvRouteDeps): RouteHandlers {
  const { kv, limits } = deps
  const scan: Handler = async ctx => {
    const query = parseQuery(ctx.rawQuery, ['prefix', 'after', 'limit', 'start', 'end', 'local'])
    const prefix = query.get('prefix') ?? ''
    checkKeyBytes(prefix, limits.maxKeyBytes, 'uri', 'prefix')
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

function writeOptions(ctx: RequestContext, allowed: readonly ('w' | 'ttl')[]): WriteOptions {
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
