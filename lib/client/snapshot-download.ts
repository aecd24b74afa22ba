import { createWriteStream, promises as fs } from 'node:fs'
import http from 'node:http'
import https from 'node:https'
import { pipeline } from 'node:stream/promises'
import { verifySnapshotFile, type SnapshotHeader } from '../store/snapshot.js'
import { HearsayClientError } from './errors.js'
import { describeNetworkError, NodeUnreachableError } from './http-exchange.js'
import type { NodeUrl } from './node-urls.js'

/**
 * `hearsay snapshot save FILE`: streams GET /snapshot of one node into FILE. The bytes go to
 * FILE.partial and take the name FILE only once the whole snapshot is in and its checksum
 * matches, so FILE is never a truncated snapshot.
 */

export interface SnapshotDownload {
  readonly node: NodeUrl
  readonly file: string
  readonly authorization: string | undefined
  /** Longest pause without a byte before the download is given up. */
  readonly idleTimeoutMs: number
}

export async function downloadSnapshot({ node, file, authorization, idleTimeoutMs }: SnapshotDownload): Promise<SnapshotHeader> {
  const partial = `${file}.partial`
  try {
    const response = await new Promise<http.IncomingMessage>((resolve, reject) => {
      const url = new URL(`${node}/snapshot`)
      const request = (url.protocol === 'https:' ? https.request : http.request)(url, { headers: authorization === undefined ? {} : { authorization } }, resolve)
      request.setTimeout(idleTimeoutMs, () => request.destroy(new NodeUnreachableError(`${node}: no data for ${idleTimeoutMs} ms`, false)))
      request.on('error', (error: NodeJS.ErrnoException) => reject(error instanceof NodeUnreachableError ? error : new NodeUnreachableError(`${node}: ${describeNetworkError(error)}`, false)))
      request.end()
    })
    if (response.statusCode !== 200) {
      const chunks: Buffer[] = []
      for await (const chunk of response) if (chunks.length < 64) chunks.push(chunk as Buffer)
      let body: Record<string, unknown> = {}
      try { body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown> } catch { /* not JSON: a proxy answered */ }
      throw new HearsayClientError(node, response.statusCode ?? 0, typeof body.error === 'string' ? body as { error: string } : { error: `HTTP ${response.statusCode}` })
    }
    await pipeline(response, createWriteStream(partial))
    if (!response.complete) throw new NodeUnreachableError(`${node}: the snapshot stream ended early`, false)
    const header = await verifySnapshotFile(partial)
    await fs.rename(partial, file)
    return header
  } catch (error) {
    await fs.rm(partial, { force: true })
    throw error
  }
}
