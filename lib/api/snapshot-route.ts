import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { UnavailableError } from '../errors.js'
import { parseQuery } from './params.js'
import type { RouteHandlers } from './routes.js'

/** GET /snapshot: a consistent copy of this node's store, streamed (lib/store/snapshot.ts). */

export interface SnapshotPort {
  /** Makes the copy; throws UnavailableError while another snapshot is being taken. */
  prepare(): Promise<{
    readonly header: { readonly nodeName: string; readonly createdAtMs: number }
    readonly totalBytes: number
    chunks(): AsyncIterable<Buffer>
    discard(): Promise<void>
  }>
}

export function snapshotRoutes(snapshot: SnapshotPort | undefined): { '/snapshot': RouteHandlers } {
  return {
    '/snapshot': {
      GET: async ctx => {
        parseQuery(ctx.rawQuery, [])
        if (snapshot === undefined) throw new UnavailableError('this node cannot take snapshots')
        const prepared = await snapshot.prepare()
        try {
          const stamp = new Date(prepared.header.createdAtMs).toISOString().replace(/[:.]/g, '-')
          const name = `${prepared.header.nodeName.replace(/[^A-Za-z0-9._-]/g, '_')}-${stamp}.hsnap`
          ctx.res.writeHead(200, {
            'content-type': 'application/octet-stream',
            'content-length': String(prepared.totalBytes),
            'content-disposition': `attachment; filename="${name}"`,
            'cache-control': 'no-store',
          })
          if (ctx.req.method === 'HEAD') { ctx.res.end(); return }
          // A client that goes away mid-stream rejects the pipeline; the answer is cut off, which
          // its checksum makes plain to whoever kept the partial file.
          await pipeline(Readable.from(prepared.chunks()), ctx.res)
        } finally {
          await prepared.discard()
        }
      },
    },
  }
}
