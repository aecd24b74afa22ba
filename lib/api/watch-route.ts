import type { ServerResponse } from 'node:http'
import { formatVersion, parseVersion, type Version } from '../clock/version.js'
import { BadRequestError } from '../errors.js'
import type { WatchEvent } from '../watch/event.js'
import type { WatchRequest } from '../watch/service.js'
import type { CutReason, WatchSink } from '../watch/watcher.js'
import { COMMON_HEADERS } from './respond.js'
import type { RequestContext } from './routes.js'

/**
 * `GET /kv?prefix=P&watch=true[&since=V]` as Server-Sent Events (docs/consistency.md "Watches"):
 *
 *     id: <version>
 *     event: change
 *     data: {"key":"…","value":"<base64>"|null,"version":"<version>","deleted":false}
 *
 * a `: heartbeat` comment every watch.heartbeatMs, and `event: cut` with `{"reason"}` before
 * the server ends a watch. The event id is the version, so an EventSource that reconnects sends
 * it back as Last-Event-ID and resumes.
 */

/** What the route needs of the node's watches (lib/watch/service.ts). */
export interface WatchPort {
  open(request: WatchRequest, sink: WatchSink): { close(): void; resume(): void }
}

/** Events written to the response at once while it keeps up (node:http buffers at most one such batch past its high-water mark). */
const SSE_EVENTS_PER_WRITE = 64

/** Reconnection delay an EventSource is told to use, in ms. */
const SSE_RETRY_MS = 1000

export function parseSince(text: string, what: string): Version {
  try {
    return parseVersion(text)
  } catch {
    throw new BadRequestError(`${what} must be a version string as the API returns it (16 digits, a dash, 16 hex digits), got ${JSON.stringify(text.slice(0, 100))}`, { param: 'since' })
  }
}

export async function serveWatch(ctx: RequestContext, watches: WatchPort, prefix: string, sinceParam: string | undefined, heartbeatMs: number): Promise<void> {
  const lastEventId = ctx.req.headers['last-event-id']
  // A reconnecting EventSource repeats the URL's since and sends the last id it saw: that one is newer.
  const since = typeof lastEventId === 'string' && lastEventId !== ''
    ? parseSince(lastEventId, 'Last-Event-ID')
    : sinceParam === undefined || sinceParam === '' ? undefined : parseSince(sinceParam, 'since')
  const { res } = ctx
  const sink = new SseSink(res)
  const watcher = watches.open(since === undefined ? { prefix } : { prefix, since }, sink)
  res.writeHead(200, { ...COMMON_HEADERS, 'content-type': 'text/event-stream; charset=utf-8', 'x-accel-buffering': 'no' })
  res.write(`retry: ${SSE_RETRY_MS}\n: watching ${JSON.stringify(prefix)}\n\n`)
  // A watch lasts as long as the client wants: it does not count as a request in flight.
  ctx.detach()
  const heartbeat = setInterval(() => {
    // A cut watch ends the response before its socket closes: nothing may follow the end.
    if (!res.writableEnded && !res.writableNeedDrain) res.write(': heartbeat\n\n')
  }, heartbeatMs)
  heartbeat.unref()
  res.on('drain', () => watcher.resume())
  await new Promise<void>((resolve) => {
    res.once('close', () => {
      clearInterval(heartbeat)
      watcher.close()
      resolve()
    })
  })
}

/** A watcher's events written to an SSE response while its socket keeps up. */
export class SseSink implements WatchSink {
  readonly #res: ServerResponse

  constructor(res: ServerResponse) {
    this.#res = res
  }

  capacity(): number {
    const res = this.#res
    return res.headersSent && !res.writableNeedDrain && !res.writableEnded && !res.destroyed ? SSE_EVENTS_PER_WRITE : 0
  }

  write(events: readonly WatchEvent[]): void {
    let text = ''
    for (const event of events) text += formatChangeEvent(event)
    this.#res.write(text)
  }

  cut(reason: CutReason, detail: Readonly<Record<string, unknown>>): void {
    const res = this.#res
    if (res.destroyed || res.writableEnded) return
    if (!res.headersSent) {
      res.destroy()
      return
    }
    res.end(`event: cut\ndata: ${JSON.stringify({ ...detail, reason })}\n\n`)
  }
}

export function formatChangeEvent(event: WatchEvent): string {
  const version = formatVersion(event.version)
  const data = JSON.stringify({
    key: event.key,
    value: event.value === null ? null : Buffer.from(event.value.buffer, event.value.byteOffset, event.value.byteLength).toString('base64'),
    version,
    deleted: event.value === null,
  })
  return `id: ${version}\nevent: change\ndata: ${data}\n\n`
}
