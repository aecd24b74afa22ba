import type { IncomingMessage, ServerResponse } from 'node:http'

/**
 * The route table's shape and path matching. Route templates double as metric labels, so a
 * label never carries a raw path (unbounded cardinality).
 */

export type RouteTemplate = '/' | '/health' | '/members' | '/status' | '/metrics' | '/kv' | '/kv/:key' | '/batch' | '/admin/sync'
  | '/dashboard.js' | '/dashboard.css' | '/dashboard/events' | '/admin/replicas' | '/snapshot'
  | '/admin/members/remove' | '/admin/decommission' | '/admin/lifecycle'

/** Label for requests that matched no route. */
export const UNMATCHED_ROUTE = 'unmatched'

export type HttpMethod = 'GET' | 'HEAD' | 'PUT' | 'DELETE' | 'POST'

export interface RequestContext {
  readonly req: IncomingMessage
  readonly res: ServerResponse
  /** Query string without the '?', still encoded. */
  readonly rawQuery: string
  /** For /kv/:key: everything after `/kv/`, still percent-encoded. Empty for other routes. */
  readonly rawKey: string
  /** Reads the body up to `maxBytes`; answers a pending `Expect: 100-continue` first. */
  readBody(maxBytes: number, what: string): Promise<Buffer>
  /** A long-lived answer (a watch) stops counting as a request in flight (api.maxInFlightRequests). */
  detach(): void
}

export type Handler = (ctx: RequestContext) => Promise<void>

/** GET handlers also serve HEAD (node:http drops the body), so HEAD is never listed here. */
export type RouteHandlers = Partial<Record<Exclude<HttpMethod, 'HEAD'>, Handler>>

export type RouteTable = Readonly<Record<RouteTemplate, RouteHandlers>>

const FIXED_PATHS: ReadonlyMap<string, RouteTemplate> = new Map<string, RouteTemplate>([
  ['/', '/'], ['/health', '/health'], ['/members', '/members'], ['/status', '/status'],
  ['/metrics', '/metrics'], ['/kv', '/kv'], ['/batch', '/batch'], ['/admin/sync', '/admin/sync'],
  ['/dashboard.js', '/dashboard.js'], ['/dashboard.css', '/dashboard.css'], ['/dashboard/events', '/dashboard/events'], ['/admin/replicas', '/admin/replicas'],
  ['/snapshot', '/snapshot'],
  ['/admin/members/remove', '/admin/members/remove'], ['/admin/decommission', '/admin/decommission'], ['/admin/lifecycle', '/admin/lifecycle'],
])

const KEY_PATH_PREFIX = '/kv/'

export interface PathMatch {
  readonly template: RouteTemplate
  readonly rawKey: string
}

/**
 * Matches a raw request path (no query). Deliberately not `new URL(...)`: it would resolve
 * `.` and `..` segments and so change keys such as `/kv/a/../b`.
 */
export function matchPath(path: string): PathMatch | undefined {
  if (path.startsWith(KEY_PATH_PREFIX)) return { template: '/kv/:key', rawKey: path.slice(KEY_PATH_PREFIX.length) }
  const template = FIXED_PATHS.get(path)
  return template === undefined ? undefined : { template, rawKey: '' }
}

/** Splits a request target into path and query at the first '?'. */
export function splitTarget(target: string): { path: string; rawQuery: string } {
  const queryStart = target.indexOf('?')
  return queryStart === -1 ? { path: target, rawQuery: '' } : { path: target.slice(0, queryStart), rawQuery: target.slice(queryStart + 1) }
}

/** Methods to list in an `Allow` header. */
export function allowedMethods(handlers: RouteHandlers): string[] {
  const methods: string[] = Object.keys(handlers)
  if (handlers.GET !== undefined) methods.splice(methods.indexOf('GET') + 1, 0, 'HEAD')
  return methods
}
