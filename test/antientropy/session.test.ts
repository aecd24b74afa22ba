import t, { type Test } from 'tap'
import { setTimeout } from 'node:timers/promises'
import { formatVersion } from '../../lib/clock/version.js'
import { MalformedBodyError } from '../../lib/codec/validate.js'
import { runSession } from '../../lib/antientropy/session.js'
import { entryBytes } from '../../lib/antientropy/local-replica.js'
import { ByteRateLimiter } from '../../lib/antientropy/rate-limit.js'
import { toWire, type WireEntry } from '../../lib/replication/messages.js'
import { FANOUT } from '../../lib/merkle/tree.js'
import { fromSyncRecord, toSyncRecord, type SyncNodesBody, type SyncPushBody } from '../../lib/antientropy/messages.js'
import type { StoredRecord } from '../../lib/store/record.js'
import { TransportError, type PeerMessage } from '../../lib/transport/transport.js'
import { createRandom, type Random } from '../../lib/runtime/random.js'
import { hlcAt, NODE_A, NODE_B, put, tombstone, WALL_MS } from '../store/fixture.js'
import { systemClock } from '../../lib/runtime/clock.js'
import {
  LoopbackPeer, newer, NOW_MS, openNode, PARTITION_COUNT, partitionOfKey, rebuiltForest, RejectedFrameError, sameVersion, segmentOfKey,
  serve, sessionWith, snapshot, TOMBSTONE_GRACE_MS, type FailurePoint, type TestNode,
} from './fixture.js'

const SEEDS = [1, 42, 20240601]
const BASE_KEYS = 200
const OPS = 160
const BATCH_BYTES = 4096

/** What both nodes held before a session, for "only versions that existed before" checks. */
interface Before { readonly a: Map<string, StoredRecord>; readonly b: Map<string, StoredRecord> }

/**
 * Two nodes from a common base of BASE_KEYS records, then OPS random writes split between them:
 * new keys, overwrites and deletes, each with a fresh hlc (so every op wins on its own side), and
 * now and then the same write on both (equal versions that must not move).
 */
async function divergedPair(t: Test, random: Random): Promise<{ a: TestNode; b: TestNode; before: Before }> {
  const [a, b] = [await openNode(t), await openNode(t)]
  const base = Array.from({ length: BASE_KEYS }, (_, i) => ({ key: `key-${i}`, record: put(`base-${i}`, hlcAt(WALL_MS, i)) }))
  await a.store.applyMany(base)
  await b.store.applyMany(base)
  const ops = { a: [] as { key: string; record: StoredRecord }[], b: [] as { key: string; record: StoredRecord }[] }
  for (let step = 0; step < OPS; step++) {
    const key = random.chance(0.7) ? `key-${random.int(BASE_KEYS)}` : `new-${random.int(OPS)}`
    const side = random.chance(0.5) ? 'a' : 'b'
    const hlc = hlcAt(WALL_MS + 1000 + step)
    const node = side === 'a' ? NODE_A : NODE_B
    const record = random.chance(0.25) ? tombstone(hlc, node) : put(`${side}-${step}-${'x'.repeat(random.int(300))}`, hlc, node)
    if (random.chance(0.05)) {
      ops.a.push({ key, record })
      ops.b.push({ key, record })
    } else {
      ops[side].push({ key, record })
    }
  }
  await a.store.applyMany(ops.a)
  await b.store.applyMany(ops.b)
  return { a, b, before: { a: snapshot(a.store), b: snapshot(b.store) } }
}

function bytesOf(record: StoredRecord | undefined): string | null | undefined {
  if (record === undefined) return undefined
  return record.value === null ? null : Buffer.from(record.value).toString('hex')
}

/** A record's identity for comparisons: version and bytes. */
function shape(record: StoredRecord | undefined): { version: string; value: string | null } | undefined {
  return record === undefined ? undefined : { version: formatVersion(record.version), value: bytesOf(record) as string | null }
}

function assertTreesMatchStore(t: Test, node: TestNode, name: string): void {
  const rebuilt = rebuiltForest(node.store)
  t.equal(node.forest.digest(), rebuilt.digest(), `${name}'s store digest equals a rebuild from its records`)
  for (let partition = 0; partition < PARTITION_COUNT; partition++) {
    t.equal(node.replica.tree(partition).root(), rebuilt.tree(partition)?.root() ?? 0n, `${name}'s root of partition ${partition} equals a rebuild`)
  }
}

/** Charges nothing to wait for; adds up what it was charged. */
class CountingLimiter extends ByteRateLimiter {
  bytes = 0
  constructor() {
    super(0, systemClock)
  }

  override async take(bytes: number): Promise<void> {
    this.bytes += bytes
  }
}

function pushBatches(messages: readonly PeerMessage[]): WireEntry[][] {
  return messages.flatMap((m) => m.type === 'syncPush' ? [(m.body as SyncPushBody).entries.map(fromSyncRecord)] : [])
}

const batchBytes = (entries: readonly WireEntry[]): number => entries.reduce((sum, entry) => sum + entryBytes(entry), 0)

t.test('a session moves exactly the records where one side is newer, and both sides end equal', async t => {
  for (const seed of SEEDS) {
    await t.test(`seed ${seed}`, async t => {
      const { a, b, before } = await divergedPair(t, createRandom(seed))
      let aNewer = 0
      const bNewerKeys: string[] = []
      const differingSegments = new Set<number>()
      const differingPartitions = new Set<number>()
      const keys = new Set([...before.a.keys(), ...before.b.keys()])
      for (const key of keys) {
        const [mine, theirs] = [before.a.get(key), before.b.get(key)]
        if (sameVersion(mine?.version, theirs?.version)) continue
        if (newer(mine, theirs) === mine) aNewer++
        else bNewerKeys.push(key)
        differingSegments.add(segmentOfKey(key))
        differingPartitions.add(partitionOfKey(key))
      }
      const bNewer = bNewerKeys.length
      t.ok(aNewer > 10 && bNewer > 10, `the scenario differs both ways (A newer ${aNewer}, B newer ${bNewer})`)

      const peer = serve(b)
      const limiter = new CountingLimiter()
      const summary = await runSession(sessionWith(a, peer, 'normal', { limiter, batchBytes: BATCH_BYTES }))

      t.equal(summary.pushed, aNewer, 'pushed = keys where A was newer')
      t.equal(summary.pulled, bNewer, 'pulled = keys where B was newer')
      t.equal(summary.dropped, 0, 'nothing is dropped in normal mode when every record travels')
      t.equal(summary.partitionsCompared, PARTITION_COUNT)
      t.equal(summary.partitionsDiffering, differingPartitions.size, 'partitions differing = partitions holding a differing key')
      t.equal(summary.leavesDiffering, differingSegments.size, 'leaves differing = leaves holding a differing key')
      t.equal(pushBatches(peer.log).flat().length, aNewer, 'pushes carry only the records A holds newer')
      t.same(pushBatches(peer.log).filter((entries) => entries.length > 1 && batchBytes(entries) > BATCH_BYTES), [], 'every push batch of several records fits batchBytes')
      const pulled = bNewerKeys.map((key) => toWire(key, b.store.get(key) as StoredRecord))
      t.equal(limiter.bytes, batchBytes([...pushBatches(peer.log).flat(), ...pulled]), 'the rate limiter is charged for every record moved, both ways')

      t.equal(a.forest.digest(), b.forest.digest(), 'both store digests are equal')
      const mismatches = [...keys].filter((key) => {
        const expected = shape(newer(before.a.get(key), before.b.get(key)))
        return JSON.stringify(shape(a.store.get(key))) !== JSON.stringify(expected) || JSON.stringify(shape(b.store.get(key))) !== JSON.stringify(expected)
      })
      t.same(mismatches, [], 'every key holds the newer version, value included, on both sides')
      assertTreesMatchStore(t, a, 'A')
      assertTreesMatchStore(t, b, 'B')
    })
  }
})

t.test('equal stores exchange roots only and move nothing', async t => {
  const [a, b] = [await openNode(t), await openNode(t)]
  const records = Array.from({ length: 100 }, (_, i) => ({ key: `same-${i}`, record: i % 7 === 0 ? tombstone(hlcAt(WALL_MS, i)) : put(`v${i}`, hlcAt(WALL_MS, i)) }))
  await a.store.applyMany(records)
  await b.store.applyMany(records)
  const peer = serve(b)
  const summary = await runSession(sessionWith(a, peer))
  t.equal(peer.requests('syncRoots'), 1)
  t.equal(peer.requests(), 1, 'no request other than syncRoots')
  t.equal(peer.bytes(), peer.bytes('syncRoots') + peer.bytes('syncRootsReply'))
  t.ok(peer.bytes() < 8 * PARTITION_COUNT + 64, `${peer.bytes()} bytes: the roots and a few bytes of framing`)
  t.match(summary, { partitionsCompared: PARTITION_COUNT, partitionsDiffering: 0, passes: 0, leavesDiffering: 0, pushed: 0, pulled: 0, dropped: 0 })

  const empty = [await openNode(t), await openNode(t)] as const
  const emptyPeer = serve(empty[1])
  t.match(await runSession(sessionWith(empty[0], emptyPeer)), { partitionsDiffering: 0, pushed: 0, pulled: 0 }, 'two empty nodes: nothing to do')
  t.equal(emptyPeer.requests(), 1)
})

t.test('repair mode drops what only this node holds, pulls what the peer holds newer, pushes what it holds newer', async t => {
  const [a, b] = [await openNode(t), await openNode(t)]
  const at = (i: number): number => hlcAt(WALL_MS, i)
  await a.store.applyMany([
    ...['only-a-1', 'only-a-2', 'only-a-3'].map((key, i) => ({ key, record: put('resurrection?', at(i)) })),
    ...['a-newer-1', 'a-newer-2'].map((key) => ({ key, record: put('from A', at(20)) })),
    ...['b-newer-1', 'b-newer-2'].map((key) => ({ key, record: put('old on A', at(5)) })),
    { key: 'same', record: put('same', at(1)) },
  ])
  await b.store.applyMany([
    ...['a-newer-1', 'a-newer-2'].map((key) => ({ key, record: put('old on B', at(5)) })),
    { key: 'b-newer-1', record: put('from B', at(20), NODE_B) },
    { key: 'b-newer-2', record: tombstone(at(20), NODE_B) },
    { key: 'only-b', record: put('from B', at(3), NODE_B) },
    { key: 'same', record: put('same', at(1)) },
  ])
  const summary = await runSession(sessionWith(a, serve(b), 'repair'))
  t.match(summary, { mode: 'repair', dropped: 3, pushed: 2, pulled: 3 })
  for (const key of ['only-a-1', 'only-a-2', 'only-a-3']) {
    t.equal(a.store.get(key), undefined, `${key} is dropped on A`)
    t.equal(b.store.get(key), undefined, `${key} is not pushed to B`)
  }
  for (const key of ['a-newer-1', 'a-newer-2']) t.equal(bytesOf(b.store.get(key)), Buffer.from('from A').toString('hex'), `${key}: B took A's newer version`)
  t.equal(bytesOf(a.store.get('b-newer-1')), Buffer.from('from B').toString('hex'), 'A pulled B\'s newer value')
  t.equal(bytesOf(a.store.get('b-newer-2')), null, 'A pulled B\'s newer tombstone')
  t.equal(bytesOf(a.store.get('only-b')), Buffer.from('from B').toString('hex'), 'A pulled what only B holds')
  t.equal(a.forest.digest(), b.forest.digest(), 'both end with the same records')
  assertTreesMatchStore(t, a, 'A')
})

t.test('repair mode keeps what only this node holds when it was written after the node\'s last contact (a replica write taken during the repair)', async t => {
  const [a, b] = [await openNode(t), await openNode(t)]
  const lastContactMs = WALL_MS + 1000
  await a.store.applyMany([
    { key: 'from-before-the-absence', record: put('resurrection?', hlcAt(lastContactMs - 1)) },
    { key: 'acked-during-the-repair', record: put('keep me', hlcAt(lastContactMs + 60_000)) },
  ])
  const summary = await runSession(sessionWith(a, serve(b), 'repair', { repairCutoffMs: lastContactMs }))
  t.match(summary, { mode: 'repair', dropped: 1, pushed: 0 })
  t.equal(a.store.get('from-before-the-absence'), undefined, 'an old record no one else holds is dropped')
  t.equal(bytesOf(a.store.get('acked-during-the-repair')), Buffer.from('keep me').toString('hex'), 'a record newer than the last contact is kept')
})

t.test('two repairing replicas repair from each other: neither passes on an old record only it holds, both keep what is newer than their last contact', async t => {
  // Found by the simulator (random seeds 270 and 5): when every replica of a partition was away
  // past the grace, each declined the others' sessions and none ever finished its repair — and
  // repair being node-wide, they then declined sessions for every other partition too.
  const [a, b] = [await openNode(t), await openNode(t)]
  const lastContactA = WALL_MS + 1000
  const lastContactB = WALL_MS + 2000
  await a.store.applyMany([
    { key: 'only-a-old', record: put('resurrection?', hlcAt(lastContactA - 1)) },
    { key: 'shared', record: put('newer on A', hlcAt(lastContactA - 10)) },
  ])
  await b.store.applyMany([
    { key: 'only-b-old', record: put('resurrection?', hlcAt(lastContactB - 1), NODE_B) },
    { key: 'only-b-new', record: put('acked during the repair', hlcAt(lastContactB + 60_000), NODE_B) },
    { key: 'shared', record: put('older on B', hlcAt(lastContactA - 20), NODE_B) },
  ])
  const peer = serve(b, { refusal: () => 'this node is repairing', repairCutoffMs: () => lastContactB })
  await t.rejects(runSession(sessionWith(a, peer)), { message: /declined: this node is repairing/ }, 'a normal session is still declined')
  const summary = await runSession(sessionWith(a, peer, 'repair', { repairCutoffMs: lastContactA }))
  t.match(summary, { mode: 'repair', dropped: 1, pulled: 1, pushed: 1 })
  t.equal(a.store.get('only-a-old'), undefined, 'A drops its old record B lacks')
  t.equal(b.store.get('only-a-old'), undefined, 'and does not push it')
  t.equal(a.store.get('only-b-old'), undefined, 'B withholds its old record A lacks (B drops it in its own session)')
  t.equal(bytesOf(a.store.get('only-b-new')), Buffer.from('acked during the repair').toString('hex'), 'A pulls what B took after its last contact')
  t.equal(bytesOf(b.store.get('shared')), Buffer.from('newer on A').toString('hex'), 'B takes A\'s newer version of a key both hold')

  const back = serve(a, { refusal: () => 'this node is repairing', repairCutoffMs: () => lastContactA })
  t.match(await runSession(sessionWith(b, back, 'repair', { repairCutoffMs: lastContactB })), { mode: 'repair', dropped: 1 })
  t.equal(b.store.get('only-b-old'), undefined, 'B, repairing from A, drops it')
  t.equal(a.forest.digest(), b.forest.digest(), 'both end with the same records')
})

t.test('a hand-off drops, not pushes, a record the replica lacks that is older than the hand-off cutoff (it may be a delete the replicas already forgot)', async t => {
  // Found by the simulator (random seed 95): a node that had stopped replicating a partition
  // still held an old value, the replicas deleted the key and collected the tombstone, and the
  // hand-off brought the value back.
  const [a, b] = [await openNode(t), await openNode(t)]
  const cutoffMs = WALL_MS + 1000
  const stale = 'deleted-and-forgotten?'
  const fresh = 'written-since'
  const partitions = [...new Set([partitionOfKey(stale), partitionOfKey(fresh)])]
  await a.store.applyMany([
    { key: stale, record: put('resurrection?', hlcAt(cutoffMs - 1)) },
    { key: fresh, record: put('hand me over', hlcAt(cutoffMs + 1)) },
  ])
  const summary = await runSession(sessionWith(a, serve(b), 'normal', { handOff: { partitions: new Set(partitions), cutoffMs } }))
  t.match(summary, { dropped: 1, pushed: 1 })
  t.equal(b.store.get(stale), undefined, 'the old record does not reach the replica')
  t.equal(a.store.get(stale), undefined, 'and is dropped here')
  t.equal(bytesOf(b.store.get(fresh)), Buffer.from('hand me over').toString('hex'), 'a record newer than the cutoff is handed over')

  // The same records in a partition this node replicates travel as before.
  const [c, d] = [await openNode(t), await openNode(t)]
  await c.store.applyMany([{ key: stale, record: put('replicated', hlcAt(cutoffMs - 1)) }])
  const owned = await runSession(sessionWith(c, serve(d), 'normal', { handOff: { partitions: new Set(), cutoffMs } }))
  t.match(owned, { dropped: 0, pushed: 1 })
  t.equal(bytesOf(d.store.get(stale)), Buffer.from('replicated').toString('hex'), 'between replicas an old record is pushed')
})

t.test('a tombstone past the grace on the peer removes the older value here and never brings it back', async t => {
  const pastGraceMs = NOW_MS - 2 * TOMBSTONE_GRACE_MS
  const build = async (): Promise<{ a: TestNode; b: TestNode }> => {
    const [a, b] = [await openNode(t), await openNode(t)]
    await a.store.applyMany([
      { key: 'collected-delete', record: put('deleted long ago', hlcAt(pastGraceMs - 1000)) },
      { key: 'collected-expiry', record: put('expired long ago', hlcAt(pastGraceMs - 1000)) },
      { key: 'recent-delete', record: put('deleted just now', hlcAt(WALL_MS)) },
    ])
    await b.store.applyMany([
      { key: 'collected-delete', record: tombstone(hlcAt(pastGraceMs), NODE_B) },
      { key: 'collected-expiry', record: put('gone', hlcAt(pastGraceMs), NODE_B, pastGraceMs + 1) },
      { key: 'recent-delete', record: tombstone(hlcAt(WALL_MS + 1), NODE_B) },
    ])
    return { a, b }
  }

  await t.test('started by the node holding the older value', async t => {
    const { a, b } = await build()
    const peer = serve(b)
    const summary = await runSession(sessionWith(a, peer))
    t.match(summary, { dropped: 2, pulled: 1, pushed: 0 })
    t.equal(a.store.get('collected-delete'), undefined, 'A no longer holds the deleted key')
    t.equal(a.store.get('collected-expiry'), undefined, 'A no longer holds the expired key')
    t.equal(bytesOf(a.store.get('recent-delete')), null, 'a tombstone within the grace travels like a value')
    t.equal(bytesOf(b.store.get('collected-delete')), null, 'B still holds its tombstone, not A\'s value')
    t.equal(bytesOf(b.store.get('collected-expiry')), Buffer.from('gone').toString('hex'), 'B still holds its expired record')
    t.equal(peer.requests('syncPush'), 0, 'A pushed nothing')
    assertTreesMatchStore(t, a, 'A')
  })

  await t.test('started by the node holding the tombstone', async t => {
    const { a, b } = await build()
    await runSession(sessionWith(b, serve(a)))
    t.equal(bytesOf(b.store.get('collected-delete')), null, 'B did not receive A\'s value')
    t.equal(bytesOf(b.store.get('collected-expiry')), Buffer.from('gone').toString('hex'), 'B did not receive A\'s value')
    t.equal(bytesOf(a.store.get('recent-delete')), null, 'the recent tombstone was pushed')
    t.equal(bytesOf(a.store.get('collected-delete')), null, 'A, holding an older value, got even the tombstone past the grace: the value cannot outlive it')
    t.equal(bytesOf(a.store.get('collected-expiry')), Buffer.from('gone').toString('hex'), 'and the expired record that supersedes its value')
  })
})

t.test('partitions agree once the peer holds everything or lacks only records past their grace, which are not sent', async t => {
  const pastGraceMs = NOW_MS - 2 * TOMBSTONE_GRACE_MS
  const [a, b] = [await openNode(t), await openNode(t)]
  await a.store.applyMany([
    { key: 'only-a-collectible', record: tombstone(hlcAt(pastGraceMs)) },
    { key: 'both', record: put('same', hlcAt(WALL_MS)) },
    { key: 'b-older', record: tombstone(hlcAt(pastGraceMs)) },
  ])
  await b.store.applyMany([
    { key: 'only-b-collectible', record: tombstone(hlcAt(pastGraceMs), NODE_B) },
    { key: 'both', record: put('same', hlcAt(WALL_MS)) },
    { key: 'b-older', record: put('the deleted value', hlcAt(pastGraceMs - 1000), NODE_B) },
  ])
  const summary = await runSession(sessionWith(a, serve(b)))
  t.same([...summary.agreedPartitions].sort((x, y) => x - y), Array.from({ length: PARTITION_COUNT }, (_, i) => i), 'every partition agreed')
  t.equal(b.store.get('only-a-collectible'), undefined, 'a record past its grace does not travel to a peer lacking the key')
  t.equal(a.store.get('only-b-collectible'), undefined, 'nor the other way')
  t.equal(bytesOf(b.store.get('b-older')), null, 'a peer holding the older value gets the tombstone: only then does the partition agree')
  t.not(a.forest.digest(), b.forest.digest(), 'the store digests still differ by the held-back records')
})

t.test('a session that fails half way leaves both stores consistent, and the next one converges', async t => {
  const seed = 7
  const probe = await divergedPair(t, createRandom(seed))
  const probePeer = serve(probe.b)
  await runSession(sessionWith(probe.a, probePeer))
  const total = probePeer.requests()
  t.ok(total >= 10, `a full session takes ${total} requests`)

  const points: [number, FailurePoint][] = [[1, 'reply'], [Math.floor(total / 3), 'request'], [Math.floor(total / 2), 'reply'], [total - 1, 'reply']]
  for (const [after, where] of points) {
    await t.test(`failing after ${after} of ${total} requests, at the ${where}`, async t => {
      const { a, b, before } = await divergedPair(t, createRandom(seed))
      const peer = serve(b)
      peer.failAfter(after, where)
      await t.rejects(runSession(sessionWith(a, peer)), TransportError)
      for (const [name, node, held] of [['A', a, before.a], ['B', b, before.b]] as const) {
        const now = snapshot(node.store)
        const foreign = [...now].filter(([key, record]) => {
          const existed = [before.a.get(key), before.b.get(key)].map(shape).map((s) => JSON.stringify(s))
          return !existed.includes(JSON.stringify(shape(record)))
        })
        t.same(foreign, [], `every record on ${name} is a version that existed before`)
        const lost = [...held.keys()].filter((key) => !now.has(key))
        t.same(lost, [], `${name} lost no key`)
        const older = [...held].filter(([key, record]) => newer(record, now.get(key)) !== now.get(key) && !sameVersion(record.version, now.get(key)?.version))
        t.same(older, [], `no key on ${name} went back to an older version`)
        assertTreesMatchStore(t, node, name)
      }
      peer.heal()
      await runSession(sessionWith(a, peer))
      t.equal(a.forest.digest(), b.forest.digest(), 'a second session converges')
      t.equal(a.forest.digest(), probe.a.forest.digest(), 'to the same records as an uninterrupted session')
    })
  }
})

t.test('a failed session has stopped touching both stores by the time it rejects', async t => {
  const { a, b } = await divergedPair(t, createRandom(3))
  const peer = serve(b)
  let settled = false
  const late: string[] = []
  a.store.onChange(({ key }) => { if (settled) late.push(`A changed ${key}`) })
  b.store.onChange(({ key }) => { if (settled) late.push(`B changed ${key}`) })
  let releaseHeld!: () => void
  const gate = new Promise<void>((resolve) => { releaseHeld = resolve })
  let held: Promise<unknown> | undefined
  let failed = false
  // One partition's first push waits at the gate while the next request of another partition fails.
  const request = async (message: PeerMessage): Promise<PeerMessage> => {
    if (settled) late.push(`asked ${message.type}`)
    if (message.type === 'syncPush' && held === undefined) {
      const answer = gate.then(() => peer.request(message))
      held = answer.catch(() => undefined)
      return answer
    }
    if (held !== undefined && !failed) {
      failed = true
      throw new TransportError('injected failure', 'closed')
    }
    return peer.request(message)
  }
  const outcome = runSession({ ...sessionWith(a, peer), request }).then(() => undefined, (error: unknown) => error).finally(() => { settled = true })
  for (let i = 0; i < 200 && !failed; i++) await setTimeout(5)
  t.ok(failed, 'a request failed while a push was held')
  releaseHeld()
  t.type(await outcome, TransportError, 'the session rejects with the failure')
  await held
  t.same(late, [], 'no request and no write after the session rejected')
})

t.test('a peer that refuses (repairing) answers syncRoots with an error and the session rejects', async t => {
  const [a, b] = [await openNode(t), await openNode(t)]
  await a.store.apply('k', put('from A', hlcAt(WALL_MS)))
  await b.store.apply('j', put('from B', hlcAt(WALL_MS), NODE_B))
  const peer = serve(b, { refusal: () => 'this node is repairing' })
  await t.rejects(runSession(sessionWith(a, peer)), { name: 'TransportError', code: 'remote', message: /declined: this node is repairing/ })
  t.equal(peer.requests(), 1, 'the session stopped at its first request')
  t.equal(b.store.get('k'), undefined, 'nothing moved to B')
  t.equal(a.store.get('j'), undefined, 'nothing moved to A')

  const pushed = await peer.request({ type: 'syncPush', body: { entries: [toSyncRecord({ key: 'k', value: Buffer.from('from A'), hlc: hlcAt(WALL_MS), node: NODE_A })] } })
  t.same(pushed.body, { applied: [true] }, 'a repairing node still takes pushes: they only help it catch up')
})

t.test('malformed or out-of-range requests are refused by validation or by the handler, never crash', async t => {
  const tooNew = hlcAt(NOW_MS + 60_000)
  const b = await openNode(t, { observeHlc: (hlc) => { if (hlc >= tooNew) throw new RangeError('beyond the skew bound') } })
  await b.store.apply('k', put('v', hlcAt(WALL_MS)))
  const peer = serve(b)
  const nodes = { partition: 0, depth: 1, parents: [0], salt: 7, width: 4 }
  const leaves = { partition: 0, buckets: [0], keys: ['a'], versions: Buffer.alloc(16) }
  const nodeBytes = Buffer.from(NODE_A, 'hex')
  t.equal((await peer.request({ type: 'syncNodes', body: nodes })).type, 'syncNodesReply', 'the valid request the bad ones are made from')
  const rejected: [string, PeerMessage][] = [
    ['a negative partition', { type: 'syncRoots', body: { partitions: [-1] } }],
    ['a body that is not a map', { type: 'syncRoots', body: [0] }],
    ['too many partitions', { type: 'syncRoots', body: { partitions: Array.from({ length: 4097 }, () => 0) } }],
    ['depth 0', { type: 'syncNodes', body: { ...nodes, depth: 0 } }],
    ['a depth below the leaves', { type: 'syncNodes', body: { ...nodes, depth: 4 } }],
    ['a parent outside its level', { type: 'syncNodes', body: { ...nodes, depth: 1, parents: [1] } }],
    ['a parent outside the level above the leaves', { type: 'syncNodes', body: { ...nodes, depth: 3, parents: [256] } }],
    ['a digest width that is not 2, 4 or 8', { type: 'syncNodes', body: { ...nodes, width: 3 } }],
    ['a salt beyond 32 bits', { type: 'syncNodes', body: { ...nodes, salt: 2 ** 32 } }],
    ['no salt', { type: 'syncNodes', body: { partition: 0, depth: 1, parents: [0], width: 4 } }],
    ['too many buckets', { type: 'syncLeaves', body: { ...leaves, buckets: Array.from({ length: 257 }, (_, i) => i) } }],
    ['a bucket beyond the leaves', { type: 'syncLeaves', body: { ...leaves, buckets: [4096] } }],
    ['an empty key', { type: 'syncLeaves', body: { ...leaves, keys: [''], versions: Buffer.alloc(16) } }],
    ['keys and versions that do not pair up', { type: 'syncLeaves', body: { ...leaves, keys: ['a', 'b'], versions: Buffer.alloc(16) } }],
    ['too many keys', { type: 'syncLeaves', body: { ...leaves, keys: Array.from({ length: 65_537 }, (_, i) => `k${i}`), versions: Buffer.alloc(65_537 * 16) } }],
    ['a record as a map', { type: 'syncPush', body: { entries: [{ key: 'k', value: null, hlc: 1, node: NODE_A }] } }],
    ['a node id of 7 bytes', { type: 'syncPush', body: { entries: [['k', null, 1, Buffer.alloc(7)]] } }],
    ['a fractional hlc', { type: 'syncPush', body: { entries: [['k', null, 1.5, nodeBytes]] } }],
    ['an empty key in a record', { type: 'syncPush', body: { entries: [['', null, 1, nodeBytes]] } }],
  ]
  for (const [what, message] of rejected) await t.rejects(peer.request(message), RejectedFrameError, `${what} fails validation`)

  const declinedByHandler: [string, PeerMessage][] = [
    ['a partition beyond the partition count (roots)', { type: 'syncRoots', body: { partitions: [0, PARTITION_COUNT] } }],
    ['a partition beyond the partition count (nodes)', { type: 'syncNodes', body: { ...nodes, partition: PARTITION_COUNT } }],
    ['a partition beyond the partition count (leaves)', { type: 'syncLeaves', body: { ...leaves, partition: PARTITION_COUNT } }],
  ]
  for (const [what, message] of declinedByHandler) {
    await t.rejects(peer.request(message), { name: 'TransportError', code: 'remote', message: /handler/ }, `${what} is an error answer`)
  }

  const pushed = await peer.request({ type: 'syncPush', body: { entries: [
    toSyncRecord({ key: 'skewed', value: Buffer.from('x'), hlc: tooNew, node: NODE_A }),
    toSyncRecord({ key: 'fine', value: Buffer.from('y'), hlc: hlcAt(WALL_MS), node: NODE_A }),
  ] } })
  t.same(pushed.body, { applied: [false, true] }, 'a version beyond the skew bound is refused, the rest applies')
  t.equal(b.store.get('skewed'), undefined)
  t.equal((await peer.request({ type: 'syncRoots', body: { partitions: [partitionOfKey('k')] } })).type, 'syncRootsReply', 'the node still answers')
})

t.test('a misbehaving peer\'s answers make the session reject, never loop or apply garbage', async t => {
  const a = await openNode(t)
  await a.store.apply('k', put('v', hlcAt(WALL_MS)))
  const answers: [string, (message: PeerMessage) => PeerMessage, RegExp | (new (...args: never[]) => Error)][] = [
    ['the wrong reply type', () => ({ type: 'syncNodesReply', body: { digests: Buffer.alloc(0) } }), /expected syncRootsReply/],
    ['too few roots', () => ({ type: 'syncRootsReply', body: { roots: Buffer.alloc(3) } }), MalformedBodyError],
    ['a leaves answer that handles no leaf', (message) => message.type === 'syncRoots'
      ? { type: 'syncRootsReply', body: { roots: Buffer.alloc(8, 0xff) } }
      : message.type === 'syncNodes'
        ? { type: 'syncNodesReply', body: { digests: Buffer.alloc((message.body as SyncNodesBody).width * FANOUT * (message.body as SyncNodesBody).parents.length, 0xff) } }
        : { type: 'syncLeavesReply', body: { records: [], older: [], missing: [], superseded: [], done: 0 } }, /with done 0/],
    ['an index outside the asked list', (message) => message.type === 'syncRoots'
      ? { type: 'syncRootsReply', body: { roots: Buffer.alloc(8, 0xff) } }
      : message.type === 'syncNodes'
        ? { type: 'syncNodesReply', body: { digests: Buffer.alloc((message.body as SyncNodesBody).width * FANOUT * (message.body as SyncNodesBody).parents.length, 0xff) } }
        : { type: 'syncLeavesReply', body: { records: [], older: [7], missing: [], superseded: [], done: 1 } }, /index 7 of a/],
  ]
  for (const [what, answer, expected] of answers) {
    let requests = 0
    const request = async (message: PeerMessage): Promise<PeerMessage> => {
      if (++requests > 100) throw new Error('the session keeps asking')
      return answer(message)
    }
    const error = await runSession({ ...sessionWith(a, new LoopbackPeer()), partitions: [0], request }).then(() => undefined, (e: unknown) => e)
    if (typeof expected === 'function') t.type(error, expected, `${what}: rejects`)
    else t.match((error as Error | undefined)?.message, expected, `${what}: rejects`)
  }
  t.equal(a.store.get('remote-only'), undefined)
})

t.test('records pulled from a peer whose clock ran ahead are refused while beyond the skew bound', async t => {
  const tooNew = hlcAt(NOW_MS + 60_000)
  const a = await openNode(t, { observeHlc: (hlc) => { if (hlc >= tooNew) throw new RangeError('beyond the skew bound') } })
  const b = await openNode(t)
  await a.store.apply('contested', put('acknowledged here', hlcAt(WALL_MS)))
  await b.store.applyMany([
    { key: 'contested', record: put('from the future', tooNew, NODE_B) },
    { key: 'future-only', record: put('from the future', tooNew + 1, NODE_B) },
    { key: 'present', record: put('fine', hlcAt(WALL_MS, 1), NODE_B) },
  ])
  const summary = await runSession(sessionWith(a, serve(b)))
  t.equal(bytesOf(a.store.get('contested')), Buffer.from('acknowledged here').toString('hex'), 'the present version is kept: the pulled future one is refused')
  t.equal(a.store.get('future-only'), undefined, 'a key only the skewed peer holds, with a future version, is not pulled')
  t.equal(bytesOf(a.store.get('present')), Buffer.from('fine').toString('hex'), 'records within the bound from the same peer still arrive')
  t.equal(summary.pulled, 1, 'only that one counts as pulled')
})
