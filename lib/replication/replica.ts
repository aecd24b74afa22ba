import type { Logger } from '../log/logger.js'
import type { Store } from '../store/store.js'
import { declineIf, type Transport } from '../transport/transport.js'
import {
  MAX_SCAN_REPLY_BYTES, fromWire, scanPageOf, toWire,
  type ReplicaReadBody, type ReplicaScanBody, type ReplicaWriteBody,
} from './messages.js'

export interface ReplicaOptions {
  readonly store: Pick<Store, 'applyMany' | 'get' | 'rawRange'>
  /**
   * Merges a remote version into the local clock; throws ClockSkewError for one too far ahead.
   * Checked before anything is stored, so a node whose clock runs ahead cannot push versions
   * from the future into this replica (the coordinator gets an error answer instead of an ack).
   */
  readonly observeHlc: (hlc: number) => void
  /**
   * A reason to refuse reads (undefined = serve). While a node repairs after a long absence its
   * records may include deletes the cluster already forgot; a read answered from them would let
   * read repair spread them. Writes are still taken: they are newer than anything it holds.
   */
  readonly readRefusal?: () => string | undefined
  readonly log: Logger
}

/**
 * The replica side of replication: apply records pushed by a coordinator (with the same
 * apply-if-newer primitive as local writes), answer point reads and scan pages. Registered on
 * the transport by the composition root.
 */
export function registerReplicaHandlers(transport: Pick<Transport, 'handle'>, options: ReplicaOptions): void {
  transport.handle('replicaWrite', async (_from, message) => {
    const { entries } = message.body as ReplicaWriteBody
    for (const entry of entries) options.observeHlc(entry.hlc)
    const outcomes = await options.store.applyMany(entries.map((entry) => ({ key: entry.key, record: fromWire(entry) })))
    // Plain entries a strong record kept out: the coordinator refuses the client's write (409).
    const strong: number[] = []
    outcomes.forEach((o, i) => { if (!o.applied && o.previous?.strong === true && entries[i]?.strong !== true) strong.push(i) })
    return { type: 'replicaWriteReply', body: { applied: outcomes.map((o) => o.applied), ...(strong.length > 0 ? { strong } : {}) } }
  })

  const refuseReads = (): void => declineIf(options.readRefusal?.())

  transport.handle('replicaRead', (_from, message) => {
    refuseReads()
    const { key } = message.body as ReplicaReadBody
    const record = options.store.get(key)
    return { type: 'replicaReadReply', body: { entry: record === undefined ? null : toWire(key, record) } }
  })

  transport.handle('replicaScan', (_from, message) => {
    refuseReads()
    const { prefix, after, start, end, limit, maxBytes } = message.body as ReplicaScanBody
    // One extra record tells whether more follow, without a second request; the page stops at
    // maxBytes, so records of large values never overflow the reply frame.
    const records = options.store.rawRange({ prefix, ...(after !== undefined ? { after } : {}), ...(start !== undefined ? { start } : {}), ...(end !== undefined ? { end } : {}), limit: limit + 1 })
    return { type: 'replicaScanReply', body: scanPageOf(records, limit, maxBytes ?? MAX_SCAN_REPLY_BYTES) }
  })
}
