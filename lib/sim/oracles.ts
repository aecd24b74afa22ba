import { compareVersions, formatVersion, hlcWallMs, type Version } from '../clock/version.js'
import type { StoredRecord } from '../store/record.js'
import type { SimCluster } from './cluster.js'
import { newest, type History, type OpRecord } from './workload.js'

/**
 * What must hold after a simulated run, once the faults stopped and the cluster had time to
 * settle. Each check returns human-readable violations (empty: it holds).
 */

export interface Violation {
  readonly oracle: string
  readonly detail: string
}

/**
 * Replicas agree on every record, except that a tombstone (or expired record) past the grace may
 * already be collected on some of them: each replica collects at its own pace, once it knows every
 * other replica holds the record (lib/antientropy/certificates.ts). Replicas are those of node
 * 0's placement (every up node's view agrees once membership has settled).
 */
export function disagreements(cluster: SimCluster): string[] {
  return compareReplicas(cluster, (record, nowMs) => isCollectable(record, nowMs, cluster.config.store.tombstoneGraceMs))
}

/** Replicas hold exactly the same records (their Merkle roots agree): collection has caught up too. */
export function divergentPartitions(cluster: SimCluster): string[] {
  return compareReplicas(cluster, () => false)
}

/**
 * Up nodes still repairing after an absence past the grace. Once the faults stopped, every node
 * finishes — from a replica that stayed, or, where every replica of a partition was away, from
 * one another (docs/consistency.md "Deletes stay deleted").
 */
export function repairingNodes(cluster: SimCluster): string[] {
  return cluster.upNodes().filter((node) => node.parts!.absence.repairRequired).map((node) => node.name)
}

/** Per partition, the keys whose records differ between the up replicas (`mayBeMissing` records may lack on some). */
function compareReplicas(cluster: SimCluster, mayBeMissing: (record: StoredRecord, nowMs: number) => boolean): string[] {
  const up = cluster.upNodes()
  const reference = up[0]?.parts
  if (reference === undefined) return []
  const nowMs = cluster.clock.nowMs()
  const differing: string[] = []
  for (let partition = 0; partition < cluster.config.partitions; partition++) {
    const replicas = new Set(reference.placement.replicas(partition))
    const holders = up.filter((node) => replicas.has(node.parts!.id))
    const roots = new Set(holders.map((node) => node.parts!.forest.tree(partition)?.root() ?? 0n))
    if (roots.size <= 1) continue
    const byKey = new Map<string, { node: string; record: StoredRecord }[]>()
    for (const node of holders) {
      for (const { key, record } of node.store!.rawRange()) {
        if (node.parts!.placement.partitionOf(key) !== partition) continue
        const held = byKey.get(key) ?? []
        held.push({ node: node.name, record })
        byKey.set(key, held)
      }
    }
    const keys = [...byKey].filter(([, held]) => {
      const versions = new Set(held.map(({ record }) => formatVersion(record.version)))
      if (versions.size > 1) return true
      return held.length !== holders.length && !held.every(({ record }) => mayBeMissing(record, nowMs))
    })
    if (keys.length === 0) continue
    const described = keys.slice(0, 4).map(([key, held]) => `${key}: ${held.map(({ node, record }) => `${node}=${record.value === null ? 'tombstone' : Buffer.from(record.value).toString()}@${formatVersion(record.version)}`).join(' ')}`)
    differing.push(`partition ${partition} on ${holders.map((node) => node.name).join(',')}: ${described.join('; ')}`)
  }
  return differing
}

/** A tombstone, or a record expired, for longer than the grace. */
function isCollectable(record: StoredRecord, nowMs: number, graceMs: number): boolean {
  const deadSinceMs = record.value === null ? hlcWallMs(record.version.hlc) : record.expiresAtMs
  return deadSinceMs !== undefined && deadSinceMs + graceMs < nowMs
}

/** Every up node holds every other up node alive. */
export function membersNotAlive(cluster: SimCluster): string[] {
  const up = cluster.upNodes()
  const upIds = new Set(up.map((node) => node.parts!.id))
  const wrong: string[] = []
  for (const node of up) {
    for (const member of node.parts!.swim.members()) {
      if (upIds.has(member.id) && member.state !== 'alive') wrong.push(`${node.name} holds ${member.name} ${member.state}`)
    }
    const known = new Set(node.parts!.swim.members().map((member) => member.id))
    for (const other of up) if (!known.has(other.parts!.id)) wrong.push(`${node.name} does not know ${other.name}`)
  }
  return wrong
}

/** The record a key settled on: the one its replicas hold (they agree once converged). */
export function settledRecord(cluster: SimCluster, key: string): StoredRecord | undefined {
  const up = cluster.upNodes()
  const reference = up[0]?.parts
  if (reference === undefined) return undefined
  const replicas = new Set(reference.placement.replicasFor(key).replicas)
  const holder = up.find((node) => replicas.has(node.parts!.id))
  return holder?.store?.get(key)
}

/**
 * Acknowledged writes stay: the record each key settled on is at least as new as the newest
 * acknowledged write of it (an acknowledged delete may have been collected, which is fine), and
 * a settled record newer than every acknowledged write was written by some client of this run
 * (an unacknowledged write may win: a 503 says "outcome unknown"). An acknowledged delete whose
 * key settled on an older live value is reported as a resurrection.
 */
export function lostWrites(cluster: SimCluster, history: History): Violation[] {
  const violations: Violation[] = []
  for (const [key, writes] of history.writesByKey()) {
    const acked = newest(writes.filter((op) => op.outcome === 'ok'))
    const settled = settledRecord(cluster, key)
    if (settled === undefined) {
      if (acked === undefined || acked.kind === 'delete') continue
      // A newer delete (acknowledged or not) whose tombstone was collected explains it.
      const newerDelete = writes.some((op) => op.kind === 'delete' && op.version !== undefined && compareVersions(op.version, acked.version!) > 0)
      if (!newerDelete && !droppedByRepair(cluster, acked)) violations.push({ oracle: 'acknowledged write lost', detail: `${key}: ${describe(acked)} acknowledged, the key settled absent` })
      continue
    }
    // A delete is named by its version; one never answered (its coordinator crashed, or the run
    // ended first) has none, and may be the one.
    const writer = settled.value === null
      ? writes.find((op) => op.kind === 'delete' && op.version !== undefined && compareVersions(op.version, settled.version) === 0)
        ?? writes.find((op) => op.kind === 'delete' && op.version === undefined && (op.outcome === 'pending' || op.outcome === 'unknown'))
      : history.writerOf(Buffer.from(settled.value).toString())
    if (writer === undefined) {
      violations.push({ oracle: 'record from nowhere', detail: `${key} settled on ${formatVersion(settled.version)}, which no client of this run wrote` })
      continue
    }
    if (acked === undefined || compareVersions(settled.version, acked.version!) >= 0) continue
    if (droppedByRepair(cluster, acked)) continue
    const oracle = acked.kind === 'delete' && settled.value !== null ? 'acknowledged delete resurrected' : 'acknowledged write lost'
    violations.push({ oracle, detail: `${key}: ${describe(acked)} acknowledged, settled on older ${describe(writer)}` })
  }
  return violations
}

/**
 * No version from beyond the skew bound: every version a client was told of reads at most
 * maxSkewMs (plus the one ms HLC ticks may step) ahead of the true time the write was sent —
 * except writes a node coordinated within `detectionWindowMs` of its clock jumping (or of its
 * start), the window docs/consistency.md owns up to: a node learns of its own skew by probing.
 * Those are returned apart, as `inWindow`.
 */
export function futureVersions(cluster: SimCluster, history: History, detectionWindowMs: number): { violations: Violation[]; inWindow: number } {
  const maxSkewMs = cluster.config.clock.maxSkewMs
  const violations: Violation[] = []
  let inWindow = 0
  for (const op of history.ops) {
    if (op.version === undefined) continue
    const aheadMs = hlcWallMs(op.version.hlc) - op.invokedAtMs
    if (aheadMs <= maxSkewMs + 1) continue
    const node = cluster.nodes.find((candidate) => candidate.name === op.node)
    if (node !== undefined && node.skewChangesAtMs.some((atMs) => atMs <= op.invokedAtMs && op.invokedAtMs - atMs <= detectionWindowMs)) {
      inWindow++
      continue
    }
    violations.push({ oracle: 'version from beyond the skew bound', detail: `${describe(op)} is ${aheadMs} ms ahead of the time it was written (bound ${maxSkewMs} ms)` })
  }
  return { violations, inWindow }
}

/** Hints are within their byte bound, and none waits for an owner that has been alive all along. */
export function hintTrouble(cluster: SimCluster, drained: boolean): string[] {
  const trouble: string[] = []
  for (const node of cluster.upNodes()) {
    const pending = node.parts!.hints.pending()
    if (pending.bytes > cluster.config.replication.maxHintBytes) trouble.push(`${node.name} holds ${pending.bytes} bytes of hints, more than ${cluster.config.replication.maxHintBytes}`)
    if (drained && pending.count > 0) trouble.push(`${node.name} still holds ${pending.count} hints for owners alive since the heal`)
  }
  return trouble
}

/**
 * The documented cost of the repair after an absence (docs/consistency.md): a W=one write that
 * only its coordinator held is dropped when that node later repairs. Not a violation.
 */
export function droppedByRepair(cluster: SimCluster, op: OpRecord): boolean {
  if (op.level !== 'one') return false
  const node = cluster.nodes.find((candidate) => candidate.name === op.node)
  return node !== undefined && node.repairingAtMs.some((atMs) => atMs >= op.invokedAtMs)
}

function describe(op: OpRecord): string {
  const version: Version | undefined = op.version
  return `#${op.id} ${op.kind}${op.value === undefined ? '' : ` ${op.value}`} via ${op.node}${version === undefined ? '' : ` @${formatVersion(version)}`} (${op.outcome})`
}
