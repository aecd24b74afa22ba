import { formatVersion, type NodeId } from '../clock/version.js'
import type { Member } from '../membership/member-table.js'
import type { ReplicaReadReplyBody } from '../replication/messages.js'
import { fromWire } from '../replication/messages.js'
import type { StoredRecord } from '../store/record.js'
import type { PeerMessage } from '../transport/transport.js'

/**
 * Which replica of a key holds which version (GET /admin/replicas?key=K): the local record,
 * and each other replica's answer to a replicaRead (the same request R>1 reads make), so an
 * operator sees a stale or missing copy before anti-entropy or read repair fixes it.
 */

export interface ReplicaVersion {
  readonly id: string
  readonly name: string
  /** The member's state as this node sees it; `unknown`: not in the member table. */
  readonly state: string
  readonly self: boolean
  /** held: a live value; tombstone: deleted; expired; absent: no record; error: no answer. */
  readonly holds: 'held' | 'tombstone' | 'expired' | 'absent' | 'error'
  readonly version: string | null
  readonly valueBytes: number | null
  readonly error?: string
}

export interface ReplicaVersions {
  readonly key: string
  readonly partition: number
  readonly replicas: readonly ReplicaVersion[]
  /** The greatest version any replica holds; null when none holds the key. */
  readonly newest: string | null
}

export interface ReplicaVersionDeps {
  readonly localId: NodeId
  readonly replicasFor: (key: string) => { readonly partition: number; readonly replicas: readonly NodeId[] }
  readonly member: (id: NodeId) => Member | undefined
  readonly localRecord: (key: string) => StoredRecord | undefined
  readonly request: (peer: string, message: PeerMessage, timeoutMs: number) => Promise<PeerMessage>
  readonly timeoutMs: number
  readonly nowMs: () => number
}

export async function replicaVersions(key: string, deps: ReplicaVersionDeps): Promise<ReplicaVersions> {
  const { partition, replicas } = deps.replicasFor(key)
  const answers = await Promise.all(replicas.map(async (id): Promise<ReplicaVersion> => {
    const member = deps.member(id)
    const base = { id, name: member?.name ?? id, state: member?.state ?? 'unknown', self: id === deps.localId }
    if (id === deps.localId) return { ...base, ...describe(deps.localRecord(key), deps.nowMs()) }
    if (member === undefined || member.state !== 'alive') return { ...base, holds: 'error', version: null, valueBytes: null, error: `not asked: the member is ${base.state}` }
    try {
      const reply = await deps.request(member.peer, { type: 'replicaRead', body: { key } }, deps.timeoutMs)
      const { entry } = reply.body as ReplicaReadReplyBody
      return { ...base, ...describe(entry === null ? undefined : fromWire(entry), deps.nowMs()) }
    } catch (error) {
      return { ...base, holds: 'error', version: null, valueBytes: null, error: error instanceof Error ? error.message : String(error) }
    }
  }))
  const versions = answers.map(a => a.version).filter((v): v is string => v !== null).sort()
  // Formatted versions sort like the versions themselves (zero-padded HLC, then node id).
  return { key, partition, replicas: answers, newest: versions.at(-1) ?? null }
}

function describe(record: StoredRecord | undefined, nowMs: number): Pick<ReplicaVersion, 'holds' | 'version' | 'valueBytes'> {
  if (record === undefined) return { holds: 'absent', version: null, valueBytes: null }
  const version = formatVersion(record.version)
  if (record.value === null) return { holds: 'tombstone', version, valueBytes: null }
  if (record.expiresAtMs !== undefined && record.expiresAtMs <= nowMs) return { holds: 'expired', version, valueBytes: record.value.byteLength }
  return { holds: 'held', version, valueBytes: record.value.byteLength }
}
