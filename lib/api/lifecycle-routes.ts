import { BadRequestError, UnavailableError } from '../errors.js'
import { parseQuery } from './params.js'
import { sendJson } from './respond.js'
import type { RouteHandlers } from './routes.js'

/**
 * Node lifecycle routes (lib/lifecycle): remove a dead member for good, decommission this node,
 * and the progress of both. Like every route but /health they need the bearer token when one is set.
 */

/** What the API needs of node lifecycle; lib/lifecycle LifecycleService satisfies it. */
export interface LifecyclePort {
  /** 409 (alive, suspect, this node, ambiguous name), 404 (unknown). */
  remove(target: string): Promise<Readonly<Record<string, unknown>>>
  /** 409 when the cluster would fall below N live members. */
  decommission(): Promise<Readonly<Record<string, unknown>>>
  /** Every removal's repair summed over the members, the leaving members, this node's decommission. */
  clusterStatus(): Promise<Readonly<Record<string, unknown>>>
}

/** Longest member id or name taken in `?node=` (ids are 16 characters, names are bounded shorter). */
const MAX_NODE_PARAM_CHARS = 256

export function lifecycleRoutes(lifecycle: LifecyclePort | undefined): {
  '/admin/members/remove': RouteHandlers; '/admin/decommission': RouteHandlers; '/admin/lifecycle': RouteHandlers
} {
  const need = (): LifecyclePort => {
    if (lifecycle === undefined) throw new UnavailableError('node lifecycle commands are not available on this node')
    return lifecycle
  }
  return {
    '/admin/members/remove': {
      POST: async ctx => {
        const node = parseQuery(ctx.rawQuery, ['node']).get('node')
        if (node === undefined || node === '') throw new BadRequestError('give the member to remove as ?node=ID or ?node=NAME (as GET /members lists it)', { param: 'node' })
        if (node.length > MAX_NODE_PARAM_CHARS) throw new BadRequestError(`node must be a member id or name of at most ${MAX_NODE_PARAM_CHARS} characters`, { param: 'node' })
        sendJson(ctx.res, 200, await need().remove(node))
      },
    },
    '/admin/decommission': {
      POST: async ctx => {
        parseQuery(ctx.rawQuery, [])
        sendJson(ctx.res, 200, await need().decommission())
      },
    },
    '/admin/lifecycle': {
      GET: async ctx => {
        parseQuery(ctx.rawQuery, [])
        sendJson(ctx.res, 200, await need().clusterStatus())
      },
    },
  }
}
