import type { ServerResponse } from 'node:http'
import { UnavailableError } from '../errors.js'
import { DASHBOARD_CSS } from './dashboard/page-style.js'
import { DASHBOARD_HTML } from './dashboard/page-html.js'
import { DASHBOARD_JS } from './dashboard/page-script.js'
import type { ApiLimits } from './limits.js'
import { checkKey, parseQuery } from './params.js'
import { sendBytes, sendJson } from './respond.js'
import type { RouteHandlers } from './routes.js'

/**
 * The dashboard at `/`: a static shell, its script and stylesheet (no data, so they are served
 * without the token: the page asks for it), the event stream it renders from, and the
 * per-replica versions of a key for its key browser.
 */

/** What the node offers the dashboard; absent = the stream and the replica view answer 503. */
export interface DashboardPort {
  /** Calls `listener` with each new cluster state; undefined when too many pages watch already. */
  subscribe(listener: (state: unknown) => void): (() => void) | undefined
  /** Which replica of `key` holds which version. */
  replicaVersions(key: string): Promise<unknown>
}

/**
 * A page that stops reading (a frozen tab) would make node:http buffer events without end: past
 * this many unwritten bytes its stream is closed, and the page reconnects when it wakes.
 */
const MAX_STREAM_BUFFERED_BYTES = 4 * 1024 * 1024

/** Nothing may load from elsewhere, and nothing inline may run: an injected tag does nothing. */
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
const STATIC_HEADERS = { 'content-security-policy': CSP, 'x-content-type-options': 'nosniff', 'referrer-policy': 'no-referrer' }

/** Routes that carry no data and so need no token. */
export const DASHBOARD_PUBLIC_ROUTES: ReadonlySet<string> = new Set(['/', '/dashboard.js', '/dashboard.css'])

export interface DashboardRoutes {
  readonly routes: {
    '/': RouteHandlers; '/dashboard.js': RouteHandlers; '/dashboard.css': RouteHandlers
    '/dashboard/events': RouteHandlers; '/admin/replicas': RouteHandlers
  }
  /** Ends every open event stream (the server is closing: they would hold it open). */
  endStreams(): void
}

export function dashboardRoutes(deps: { readonly dashboard?: DashboardPort; readonly limits: ApiLimits }): DashboardRoutes {
  const streams = new Set<ServerResponse>()
  const staticRoute = (body: string, contentType: string): RouteHandlers => ({
    GET: async ctx => {
      parseQuery(ctx.rawQuery, [])
      sendBytes(ctx.res, 200, body, { 'content-type': contentType, ...STATIC_HEADERS })
    },
  })
  const port = (): DashboardPort => {
    if (deps.dashboard === undefined) throw new UnavailableError('this node has no dashboard data yet; retry shortly')
    return deps.dashboard
  }
  return {
    routes: {
      '/': staticRoute(DASHBOARD_HTML, 'text/html; charset=utf-8'),
      '/dashboard.js': staticRoute(DASHBOARD_JS, 'text/javascript; charset=utf-8'),
      '/dashboard.css': staticRoute(DASHBOARD_CSS, 'text/css; charset=utf-8'),
      '/dashboard/events': {
        GET: async ctx => {
          parseQuery(ctx.rawQuery, [])
          const { res } = ctx
          let opened = false
          let first: unknown
          const send = (state: unknown): void => {
            if (!opened) { first = state; return }
            if (res.destroyed) return
            if (res.writableLength > MAX_STREAM_BUFFERED_BYTES) { res.destroy(); return }
            res.write(`event: cluster\ndata: ${JSON.stringify(state)}\n\n`)
          }
          const unsubscribe = port().subscribe(send)
          if (unsubscribe === undefined) throw new UnavailableError('too many dashboards are watching this node; close one or retry later')
          const closed = new Promise<void>(resolve => res.once('close', resolve))
          streams.add(res)
          res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', 'x-accel-buffering': 'no' })
          res.write(': hearsay cluster events\n\n')
          opened = true
          if (first !== undefined) send(first)
          try {
            await closed
          } finally {
            unsubscribe()
            streams.delete(res)
          }
        },
      },
      '/admin/replicas': {
        GET: async ctx => {
          const key = parseQuery(ctx.rawQuery, ['key']).get('key') ?? ''
          checkKey(key, deps.limits.maxKeyBytes, 'uri', 'key')
          sendJson(ctx.res, 200, await port().replicaVersions(key))
        },
      },
    },
    endStreams() {
      for (const res of streams) res.end()
    },
  }
}
