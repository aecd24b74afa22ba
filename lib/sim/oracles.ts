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
 * Replicas agree: for every partition, every up replica (in node 0's placement... every up node's
 * own view must agree on the replicas too) holds the same Merkle root.
 */
export function divergentPartitions(cluster: SimCluster): string[] {
  const up = cluster.upNodes()
  const reference = up[0]?.parts
  if (reference === undefined) return []
  const differing: string[] = []
  for (let partition = 0; partition < cluster.config.partitions; partition++) {
    const replicas = new Set(reference.placement.replicas(partition))
    const roots = up.filter((node) => replicas.has(node.parts!.id)).map((node) => `${node.name}:${(node.parts!.forest.tree(partition)?.root() ?? 0n).toString(16)}`)
    if (new Set(roots.map((root) => root.split(':')[1])).size > 1) differing.push(`partition ${partition}: ${roots.join(' ')}${describeDifference(cluster, partition, replicas)}`)
  }
  return differing
}

/** The (key, version)s of a partition that not every up replica holds the same. */
function describeDifference(cluster: SimCluster, partition: number, replicas: ReadonlySet<string>): string {
  const holders = cluster.upNodes().filter((node) => replicas.has(node.parts!.id))
  const byKey = new Map<string, string[]>()
  for (const node of holders) {
    for (const { key, record } of node.store!.rawRange()) {
      if (node.parts!.placement.partitionOf(key) !== partition) continue
      const list = byKey.get(key) ?? []
      list.push(`${node.name}=${record.value === null ? 'tombstone' : Buffer.from(record.value).toString()}@${formatVersion(record.version)}`)
      byKey.set(key, list)
    }
  }
  const lines = [...byKey].filter(([, held]) => held.length !== holders.length || new Set(held.map((h) => h.split('=')[1])).size > 1).map(([key, held]) => `${key}: ${held.join(' ')}`)
  return lines.length === 0 ? '' : ` (${lines.slice(0, 5).join('; ')})`
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
function settledRecord(cluster: SimCluster, key: string): StoredRecord | undefined {
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
      if (!newerDelete) violations.push({ oracle: 'acknowledged write lost', detail: `${key}: ${describe(acked)} acknowledged, the key settled absent` })
      continue
    }
    const writer = settled.value === null ? writes.find((op) => op.version !== undefined && compareVersions(op.version, settled.version) === 0) : history.writerOf(Buffer.from(settled.value).toString())
    if (writer === undefined) {
      violations.push({ oracle: 'record from nowhere', detail: `${key} settled on ${formatVersion(settled.version)}, which no client of this run wrote` })
      continue
    }
    if (acked === undefined || compareVersions(settled.version, acked.version!) >= 0) continue
    const oracle = acked.kind === 'delete' && settled.value !== null ? 'acknowledged delete resurrected' : 'acknowledged write lost'
    violations.push({ oracle, detail: `${key}: ${describe(acked)} acknowledged, settled on older ${describe(writer)}` })
  }
  return violations
}

/**
 * No version from beyond the skew bound: every version a client was told of (or that a key
 * settled on) reads at most maxSkewMs (plus the one ms HLC ticks may step) ahead of the true time
 * the write was sent.
 */
export function futureVersions(history: History, maxSkewMs: number): Violation[] {
  const violations: Violation[] = []
  for (const op of history.ops) {
    if (op.version === undefined) continue
    const aheadMs = hlcWallMs(op.version.hlc) - op.invokedAtMs
    if (aheadMs > maxSkewMs + 1) violations.push({ oracle: 'version from beyond the skew bound', detail: `${describe(op)} is ${aheadMs} ms ahead of the time it was written (bound ${maxSkewMs} ms)` })
  }
  return violations
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

function describe(op: OpRecord): string {
  const version: Version | undefined = op.version
  return `#${op.id} ${op.kind}${op.value === undefined ? '' : ` ${op.value}`} via ${op.node}${version === undefined ? '' : ` @${formatVersion(version)}`} (${op.outcome})`
}
