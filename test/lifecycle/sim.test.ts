import t from 'tap'
import { SimCluster, type SimNode } from '../../lib/sim/cluster.js'

/**
 * Decommission and removal in the whole-cluster simulator (lib/sim: the real wiring over the
 * memory network, one fake time base): copies of every acknowledged key are counted after every
 * 50 ms of simulated time while a node decommissions with writes going on — never fewer than N —
 * and after a removal's re-replication — exactly N. Seeded, so a failure replays.
 */

const N = 2
/** HEARSAY_LIFECYCLE_SEED replays one seed; HEARSAY_LIFECYCLE_SEEDS runs that many (6 by default). */
const SEEDS = process.env['HEARSAY_LIFECYCLE_SEED'] !== undefined
  ? [Number(process.env['HEARSAY_LIFECYCLE_SEED'])]
  : Array.from({ length: Number(process.env['HEARSAY_LIFECYCLE_SEEDS'] ?? 6) }, (_, i) => i + 1)

function copiesOf(nodes: readonly SimNode[], key: string): number {
  return nodes.filter((node) => node.store?.get(key) !== undefined).length
}

function allAlive(cluster: SimCluster, count: number): boolean {
  return cluster.upNodes().every((node) => node.parts!.swim.members().filter((m) => m.state === 'alive').length === count)
}

for (const seed of SEEDS) {
  t.test(`seed ${seed}: decommission keeps N copies at every step; removal brings back exactly N`, async (t) => {
    const cluster = await SimCluster.create({ seed, nodeCount: 4, config: (base) => ({
      ...base,
      replication: { ...base.replication, factor: N },
      // A slow stream, so the decommission lasts seconds of simulated time with writes arriving throughout.
      // A lost request fails its session after 2 s (not 10), so the lossy seeds retry sooner.
      antiEntropy: { ...base.antiEntropy, maxBytesPerSecond: 4_000, requestTimeoutMs: 2000 },
    }) })
    for (let i = 0; i < 4; i++) await cluster.start(i)
    t.ok(await cluster.runUntil(() => allAlive(cluster, 4), 30_000) !== undefined, 'four alive members everywhere')
    const [writerNode, , third, leaving] = cluster.nodes as [SimNode, SimNode, SimNode, SimNode]
    const acked: string[] = []
    const put = (key: string): void => {
      void writerNode.parts!.kv.put(key, Buffer.from(key), { w: 'all' }).then(() => { acked.push(key) }, () => undefined)
    }
    for (let i = 0; i < 400; i++) put(`before/${i}`)
    await cluster.runFor(2000)
    t.equal(acked.length, 400, 'the first writes are acknowledged')

    // Odd seeds lose and reorder messages while the decommission runs: extra writes and sessions fail and are retried.
    const lossy = seed % 2 === 1
    if (lossy) cluster.network.setConditions({ lossProbability: 0.01, reorderProbability: 0.05 })
    const progress = await leaving.parts!.lifecycle.decommission()
    t.equal(progress.phase, 'streaming')
    let steps = 0
    let fewest = Infinity
    for (let i = 0; steps < 2400 && !leaving.parts!.lifecycle.decommissioned; steps++) {
      if (i < 400) put(`during/${i++}`)
      await cluster.runFor(50)
      if (steps % 2 === 1) continue
      // Every 100 ms of simulated time: a node that has left holds copies of nothing it is a member for.
      const counted = cluster.upNodes().filter((node) => node !== leaving || !leaving.parts!.lifecycle.decommissioned)
      for (const key of acked) fewest = Math.min(fewest, copiesOf(counted, key))
    }
    t.equal(leaving.parts!.lifecycle.decommissionPhase, 'left', `decommissioned within ${steps * 50} ms of simulated time`)
    const final = leaving.parts!.lifecycle.status().decommission!
    // keysMoved may be 0: a pending replica's own anti-entropy round may have pulled the partition first.
    t.ok(final.confirmed === final.transfers && final.transfers > 0, `${final.confirmed} of ${final.transfers} partition copies confirmed (${final.keysMoved} keys streamed by the leaving node)`)
    t.equal(fewest, N, `never fewer than ${N} copies of any of ${acked.length} acknowledged keys at any step`)
    t.ok(acked.some((key) => key.startsWith('during/')), 'writes were acknowledged during the decommission')
    if (lossy) cluster.network.setConditions({ lossProbability: 0, reorderProbability: 0 })
    const remaining = cluster.nodes.filter((node) => node !== leaving)
    await cluster.runFor(1000)
    t.ok(acked.every((key) => copiesOf(remaining, key) >= N), 'the remaining members hold N copies')

    const thirdId = third.parts!.id
    cluster.crash(third.index)
    const others = [writerNode, cluster.nodes[1]!]
    t.ok(await cluster.runUntil(() => others.every((node) => node.parts!.swim.member(thirdId)?.state === 'dead'), 60_000) !== undefined, 'the crashed node is dead to the others')
    const removed = await writerNode.parts!.lifecycle.remove(third.name)
    t.equal(removed.alreadyRemoved, false)
    t.ok(await cluster.runUntil(() => others.every((node) => node.parts!.lifecycle.repairProgress().every((r) => r.pending === 0) && node.parts!.lifecycle.isRemoved(removed.removal.id)), 60_000) !== undefined, 'every gained partition synced')
    t.strictSame([...new Set(acked.map((key) => copiesOf(others, key)))], [N], 'exactly N copies of every acknowledged key')
  })
}
