import t from 'tap'
import { formatVersion } from '../../lib/clock/version.js'
import { SimCluster } from '../../lib/sim/cluster.js'
import type { WatchEvent } from '../../lib/watch/event.js'
import type { CutReason, WatchSink } from '../../lib/watch/watcher.js'

/**
 * A watch on a node that replicates only part of the data (replication.factor 2 of 4 nodes)
 * sees the changes of every partition: the node follows a live replica's change log for each
 * partition it does not hold, and when that replica dies it follows another from a safe margin
 * before where it had read. Runs on the simulator: real node modules over the in-memory network.
 */

t.setTimeout(120_000)

class CollectingSink implements WatchSink {
  readonly events: WatchEvent[] = []
  cutReason: CutReason | undefined
  capacity(): number { return this.cutReason === undefined ? 1000 : 0 }
  write(events: readonly WatchEvent[]): void { this.events.push(...events) }
  cut(reason: CutReason): void { this.cutReason = reason }
  has(key: string, version: string): boolean {
    return this.events.some((event) => event.key === key && formatVersion(event.version) === version)
  }
}

/** Runs simulated time until `promise` settles (the network needs time to pass). */
async function settle<T>(cluster: SimCluster, promise: Promise<T>): Promise<T> {
  let done = false
  promise.then(() => { done = true }, () => { done = true })
  if (await cluster.runUntil(() => done, 10_000, 5) === undefined) throw new Error('an operation did not finish in 10 s of simulated time')
  return promise
}

async function converged(cluster: SimCluster, count: number): Promise<void> {
  const ok = await cluster.runUntil(() => cluster.upNodes().every((node) => node.parts!.placement.members.length === count), 30_000)
  if (ok === undefined) throw new Error('the cluster did not converge')
}

t.test('a watch on a node holding few partitions sees changes to all of them, across the death of the replica it follows', async t => {
  const cluster = await SimCluster.create({
    seed: 14,
    nodeCount: 4,
    config: (base) => ({ ...base, replication: { ...base.replication, factor: 2, writeQuorum: 'one' } }),
  })
  for (let i = 0; i < 4; i++) await cluster.start(i)
  await converged(cluster, 4)
  const watching = cluster.nodes[0]!.parts!
  const remotePartitions = Array.from({ length: cluster.config.partitions }, (_, p) => p).filter((p) => !watching.placement.replicas(p).includes(watching.id))
  t.ok(remotePartitions.length > 0, `node 0 does not replicate ${remotePartitions.length} of ${cluster.config.partitions} partitions`)

  const sink = new CollectingSink()
  watching.watches.open({ prefix: 'cfg/' }, sink)
  await cluster.runFor(200)

  // One key per partition, written through the nodes in turn (coordinators differ).
  const written = new Map<string, string>()
  const keyFor = (partition: number, round: number): string => {
    for (let i = 0; ; i++) {
      const key = `cfg/${round}/${i}`
      if (watching.placement.partitionOf(key) === partition) return key
    }
  }
  const writeRound = async (round: number, writers: readonly number[]): Promise<void> => {
    for (let p = 0; p < cluster.config.partitions; p++) {
      const key = keyFor(p, round)
      const writer = cluster.nodes[writers[p % writers.length]!]!.parts!
      const result = await settle(cluster, writer.kv.put(key, Buffer.from(`${round}`), {}))
      written.set(key, formatVersion(result.version))
    }
    await cluster.runFor(10)
  }
  await writeRound(1, [0, 1, 2, 3])
  await writeRound(1_000_000, [3])
  const allSeen = (): boolean => [...written].every(([key, version]) => sink.has(key, version))
  t.ok(await cluster.runUntil(allSeen, 20_000) !== undefined, `every change reached the watch (${sink.events.length} events for ${written.size} writes)`)
  t.ok(sink.events.some((event) => remotePartitions.includes(watching.placement.partitionOf(event.key))), 'some came from partitions node 0 does not hold')
  t.same(sink.events.filter((event) => !event.key.startsWith('cfg/')), [], 'only keys under the prefix')

  // Kill a replica node 0 follows; changes to its partitions keep arriving through the other replica.
  const followed = cluster.nodes.findIndex((node, i) => i !== 0 && remotePartitions.some((p) => watching.placement.replicas(p)[0] === node.parts?.id))
  t.ok(followed > 0, `node ${followed} is a replica node 0 follows`)
  cluster.crash(followed)
  const survivors = [1, 2, 3].filter((i) => i !== followed)
  await writeRound(2, survivors)
  t.ok(await cluster.runUntil(allSeen, 30_000) !== undefined, 'changes written after the replica died reached the watch too')
  t.equal(sink.cutReason, undefined, 'the watch was never cut')

  // When the last watcher goes, no peer is polled any more.
  const before = sink.events.length
  const second = new CollectingSink()
  const watcher = watching.watches.open({ prefix: 'other/' }, second)
  watcher.close()
  t.equal(watching.watches.watchers, 1, 'one watcher left')
  for (const node of cluster.upNodes()) node.parts!.watches.stop()
  t.equal(watching.watches.watchers, 0, 'no watcher left')
  t.equal(sink.cutReason, 'shutdown', 'stop cuts the watch with reason shutdown')
  t.ok(sink.events.length >= before, 'nothing lost')
})
