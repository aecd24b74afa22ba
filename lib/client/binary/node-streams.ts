import type { IncomingHttpHeaders } from 'node:http'
import { STREAM_ADVERT_HEADER } from '../../api/binary/protocol.js'
import type { ClientTlsOptions } from '../client.js'
import type { NodeUrl } from '../node-urls.js'
import { ClientStreamConnection } from './stream-connection.js'

/**
 * Which nodes speak the stream protocol, and the one connection kept to each. A node says so in
 * a header of every HTTP answer (STREAM_ADVERT_HEADER), so the first request to a node goes over
 * HTTP and later ones over the stream; a one-shot CLI command never pays for an upgrade, and a
 * node that does not advertise it (an older version, a stand-in, a proxy that strips headers)
 * is only ever spoken to over HTTP. A node that refuses the upgrade is left on HTTP for
 * REFUSED_RETRY_MS before it is tried again.
 */

export interface NodeStreamsOptions {
  readonly authorization: string | undefined
  readonly timeoutMs: number
  readonly maxResponseBytes: number
  readonly tls: ClientTlsOptions
}

/** After a refused upgrade, requests to that node go over HTTP for this long. */
const REFUSED_RETRY_MS = 30_000
/** An advertised path is short and plain; anything else is ignored rather than dialled. */
const ADVERTISED_PATH_PATTERN = /^\/[A-Za-z0-9._~/-]{0,200}$/

interface NodeStream {
  /** Path of the stream endpoint, as the node advertised it. */
  path: string
  connection: ClientStreamConnection | undefined
  /** Date.now() before which the node is not asked to upgrade again. */
  refusedUntilMs: number
}

export class NodeStreams {
  readonly #options: NodeStreamsOptions
  readonly #nodes = new Map<NodeUrl, NodeStream>()
  #closed = false

  constructor(options: NodeStreamsOptions) {
    this.#options = options
  }

  /** Notes from an HTTP answer of `node` whether it offers the stream protocol. */
  noteAnswer(node: NodeUrl, headers: IncomingHttpHeaders): void {
    const path = headers[STREAM_ADVERT_HEADER]
    if (typeof path !== 'string' || !ADVERTISED_PATH_PATTERN.test(path)) return
    const known = this.#nodes.get(node)
    if (known === undefined) this.#nodes.set(node, { path, connection: undefined, refusedUntilMs: 0 })
    else known.path = path
  }

  /** The connection to send `node` a request over (opening it if needed), or undefined for HTTP. */
  connectionFor(node: NodeUrl): ClientStreamConnection | undefined {
    const stream = this.#nodes.get(node)
    if (this.#closed || stream === undefined) return undefined
    if (stream.connection !== undefined && !stream.connection.closed) return stream.connection
    if (stream.refusedUntilMs > Date.now()) return undefined
    const connection = new ClientStreamConnection({
      node,
      url: streamUrl(node, stream.path),
      authorization: this.#options.authorization,
      timeoutMs: this.#options.timeoutMs,
      maxResponseBytes: this.#options.maxResponseBytes,
      tls: this.#options.tls,
      onRefused: () => {
        stream.refusedUntilMs = Date.now() + REFUSED_RETRY_MS
      },
      onClosed: closed => {
        if (stream.connection === closed) stream.connection = undefined
      },
    })
    stream.connection = connection
    return connection
  }

  close(): void {
    this.#closed = true
    for (const stream of this.#nodes.values()) stream.connection?.close()
  }
}

/** `http://host:port/base` + `/v1/stream` → `ws://host:port/base/v1/stream` (https → wss). */
function streamUrl(node: NodeUrl, path: string): string {
  return `${node.startsWith('https:') ? 'wss:' : 'ws:'}${node.slice(node.indexOf(':') + 1)}${path}`
}
