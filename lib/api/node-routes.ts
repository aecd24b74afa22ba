import { UnavailableError } from '../errors.js'
import type { Metrics } from '../metrics/metrics.js'
import { parseQuery } from './params.js'
import { sendBytes, sendJson } from './respond.js'
import type { RouteHandlers } from './routes.js'
import type { HealthView, MemberView } from './views.js'

/** Routes about the node rather than the data: health, members, status, metrics, sync. */

export interface NodeRouteDeps {
  status(): Promise<Record<string, unknown>> | Record<string, unknown>
  health(): HealthView
  members(): readonly MemberView[]
  readonly sync?: () => Promise<Record<string, unknown>>
  readonly metrics: Metrics
}

export function nodeRoutes(deps: NodeRouteDeps): {
  '/health': RouteHandlers; '/members': RouteHandlers; '/status': RouteHandlers; '/metrics': RouteHandlers; '/admin/sync': RouteHandlers
} {
  return {
    '/health': {
      GET: async ctx => {
        const health = deps.health()
        sendJson(ctx.res, health.status === 'ok' ? 200 : 503, {
          status: health.status, id: health.id, name: health.name,
          ...(health.reasons !== undefined ? { reasons: health.reasons } : {}),
          ...(health.clock !== undefined ? { clock: health.clock } : {}),
          ...(health.storage !== undefined ? { storage: health.storage } : {}),
        })
      },
    },
    '/members': {
      GET: async ctx => {
        parseQuery(ctx.rawQuery, [])
        sendJson(ctx.res, 200, deps.members())
      },
    },
    '/status': {
      GET: async ctx => {
        parseQuery(ctx.rawQuery, [])
        sendJson(ctx.res, 200, await deps.status())
      },
    },
    '/metrics': {
      GET: async ctx => {
        const text = await deps.metrics.scrape()
        sendBytes(ctx.res, 200, text, { 'content-type': deps.metrics.registry.contentType })
      },
    },
    '/admin/sync': {
      POST: async ctx => {
        parseQuery(ctx.rawQuery, [])
        if (deps.sync === undefined) throw new UnavailableError('anti-entropy is not running on this node')
        sendJson(ctx.res, 200, await deps.sync())
      },
    },
  }
}
