import t, { type Test } from 'tap'
import { pino } from 'pino'
import { formatVersion } from '../../lib/clock/version.js'
import { LocalReplica } from '../../lib/antientropy/local-replica.js'
import { segmentIndexOptions } from '../../lib/antientropy/segments.js'
import { loadRecordDigester } from '../../lib/merkle/digest.js'
import { MerkleForest } from '../../lib/merkle/forest.js'
import { MerkleTree } from '../../lib/merkle/tree.js'
import { registerReplicaHandlers } from '../../lib/replication/replica.js'
import { toWire } from '../../lib/replication/messages.js'
import { KvStore } from '../../lib/store/kv-store.js'
import type { ChangeEntry } from '../../lib/store/change-log.js'
import type { MessageHandler, PeerIdentity } from '../../lib/transport/transport.js'
import { NODE_A, NODE_B, TEST_MAP_SIZE_BYTES, WALL_MS, hlcAt, put, tombstone } from '../store/fixture.js'

/**
 * The change log (lib/store/change-log.ts) in the real LMDB store: every path that applies a
 * change appends an entry in the same transaction, GC collection does not, entries survive a
 * restart in arrival order, and trimming moves the horizon.
 */

const PARTITIONS = 16

async function openStore(t: Test, dataDir: string, nowMs: () => number = () => WALL_MS): Promise<KvStore> {
  const digester = await loadRecordDigester()
  const store = await KvStore.open({ dataDir, mapSizeBytes: TEST_MAP_SIZE_BYTES, segments: segmentIndexOptions(digester, PARTITIONS), nowMs })
  t.teardown(() => store.close())
  return store
}

function entries(store: KvStore, fromMs = 0): ChangeEntry[] {
  return store.changeLog.read({ fromMs }, { prefix: '', limit: 10_000, maxScanned: 10_000 }).entries
}

function summary(list: readonly ChangeEntry[]): string[] {
  return list.map(({ key, record }) => `${key}@${record.version.hlc}${record.value === null ? ':deleted' : `=${Buffer.from(record.value).toString()}`}`)
}

t.test('every apply path appends to the change log; what is not applied and what GC collects do not', async t => {
  const store = await openStore(t, t.testdir())
  const digester = await loadRecordDigester()
  t.equal(store.changeLog.horizonMs, 0, 'a new store\'s log holds every change it ever applied')

  // 1. A coordinated write applied locally (Coordinator → store.apply), with a TTL.
  await store.apply('k/local', put('v1', hlcAt(WALL_MS, 1), NODE_A, WALL_MS + 60_000))
  // 2. Replica writes: a coordinator's push, a hint handed off and a read repair all arrive as replicaWrite.
  const handlers = new Map<string, MessageHandler>()
  registerReplicaHandlers({ handle: (type, handler) => { handlers.set(type, handler) } }, { store, observeHlc: () => {}, log: pino({ level: 'silent' }) })
  const from: PeerIdentity = { id: NODE_B, name: 'b', peer: 'b:1', api: 'b:2' }
  await handlers.get('replicaWrite')!(from, { type: 'replicaWrite', body: { entries: [toWire('k/replica', put('v2', hlcAt(WALL_MS, 2), NODE_B)), toWire('k/hint', tombstone(hlcAt(WALL_MS, 3), NODE_B))] } })
  // 3. Anti-entropy pulls (LocalReplica.apply).
  const forest = new MerkleForest(digester)
  const replica = new LocalReplica({ store, forest, partitionCount: PARTITIONS, tombstoneGraceMs: 1000, nowMs: () => WALL_MS, observeHlc: () => {} }, new MerkleTree(digester))
  await replica.apply([toWire('k/sync', put('v3', hlcAt(WALL_MS, 4), NODE_B))])
  // Not applied: an older version of a key.
  await store.apply('k/local', put('stale', hlcAt(WALL_MS, 0), NODE_B))
  // A newer version of a key (the delete of a TTL'd record).
  await store.apply('k/local', tombstone(hlcAt(WALL_MS, 5)))

  const logged = entries(store)
  t.same(summary(logged), ['k/local@' + hlcAt(WALL_MS, 1) + '=v1', 'k/replica@' + hlcAt(WALL_MS, 2) + '=v2', 'k/hint@' + hlcAt(WALL_MS, 3) + ':deleted', 'k/sync@' + hlcAt(WALL_MS, 4) + '=v3', 'k/local@' + hlcAt(WALL_MS, 5) + ':deleted'], 'one entry per applied change, in arrival order')
  t.equal(logged[0]!.record.expiresAtMs, WALL_MS + 60_000, 'a TTL travels with its entry')
  t.ok(logged.every((entry, i) => i === 0 || entry.position.seq > logged[i - 1]!.position.seq), 'positions grow')

  // GC collects a tombstone: not a change a reader sees, not logged.
  t.same(await store.deleteIfVersion([{ key: 'k/hint', version: { hlc: hlcAt(WALL_MS, 3), node: NODE_B } }]), [true])
  t.equal(entries(store).length, 5, 'collection is not logged')

  // The store tells listeners where each change was logged.
  const positions: number[] = []
  store.onChange((change) => { if (change.logged !== undefined) positions.push(change.logged.seq) })
  await store.applyMany([{ key: 'k/a', record: put('a', hlcAt(WALL_MS, 6)) }, { key: 'k/b', record: put('b', hlcAt(WALL_MS, 7)) }])
  t.same(positions, entries(store).slice(-2).map((entry) => entry.position.seq), 'change events carry their log positions')
})

t.test('the log survives a restart, keeps counting, and trims to the retention', async t => {
  const dir = t.testdir()
  let nowMs = WALL_MS
  {
    const store = await KvStore.open({ dataDir: dir, mapSizeBytes: TEST_MAP_SIZE_BYTES, nowMs: () => nowMs })
    for (let i = 0; i < 5; i++) {
      nowMs += 1000
      await store.apply(`k${i}`, put(`v${i}`, hlcAt(nowMs)))
    }
    await store.close()
  }
  const store = await openStore(t, dir, () => nowMs)
  const before = entries(store)
  t.equal(before.length, 5, 'five entries after a restart')
  t.same(store.changeLog.stats(), { entries: 5, horizonMs: 0 })
  nowMs += 1000
  await store.apply('k5', put('v5', hlcAt(nowMs)))
  const after = entries(store)
  t.equal(after[5]!.position.seq, before[4]!.position.seq + 1, 'the sequence goes on where it stopped')

  // Entries that arrived before WALL_MS + 3000 go; the horizon moves there.
  const removed = await store.changeLog.trim(WALL_MS + 3000, 100)
  t.equal(removed, 2, 'two entries older than the cut')
  t.equal(store.changeLog.horizonMs, WALL_MS + 3000)
  t.same(entries(store).map((entry) => entry.key), ['k2', 'k3', 'k4', 'k5'])
  t.ok(store.changeLog.trimmedAfter(before[0]!.position), 'a reader at the first entry lost the second')
  t.notOk(store.changeLog.trimmedAfter(before[1]!.position), 'a reader at the second entry lost nothing')
  t.equal(store.changeLog.stats().entries, 4)
  // Reading from an arrival time enters the log there.
  t.same(entries(store, WALL_MS + 4000).map((entry) => entry.key), ['k3', 'k4', 'k5'])
  // Trimming in small batches: a batch smaller than what is due says so by being full.
  t.equal(await store.changeLog.trim(nowMs + 1, 3), 3, 'a full batch')
  t.equal(await store.changeLog.trim(nowMs + 1, 3), 1, 'the rest')
  t.ok(store.changeLog.trimmedAfter(after[5]!.position) === false, 'nothing after the last entry was lost')
  t.equal(formatVersion(after[5]!.record.version), formatVersion({ hlc: hlcAt(nowMs), node: NODE_A }))
})

t.test('a store that held records before it had a log covers changes from its opening on', async t => {
  const dir = t.testdir()
  {
    const store = await KvStore.open({ dataDir: dir, mapSizeBytes: TEST_MAP_SIZE_BYTES, nowMs: () => WALL_MS })
    await store.apply('old', put('v', hlcAt(WALL_MS)))
    // What an upgrade from a version without the log looks like: no horizon recorded.
    await store.meta.update('changeLogHorizonMs', () => undefined)
    await store.close()
  }
  const store = await openStore(t, dir, () => WALL_MS + 5000)
  t.equal(store.changeLog.horizonMs, WALL_MS + 5000, 'the horizon is the opening time')
})

t.test('log positions round-trip through their 16-byte keys and sort like positions (issue 15: no BigInt per entry)', async t => {
  const { positionKey, decodePosition } = await import('../../lib/store/change-log.js')
  const positions = [
    { arrivedMs: 0, seq: 0 },
    { arrivedMs: 0, seq: 2 ** 32 - 1 },
    { arrivedMs: 0, seq: 2 ** 32 },
    { arrivedMs: 1, seq: 1 },
    { arrivedMs: 2 ** 32, seq: 3 },
    { arrivedMs: WALL_MS, seq: 7 },
    { arrivedMs: Number.MAX_SAFE_INTEGER, seq: Number.MAX_SAFE_INTEGER },
  ]
  for (const position of positions) {
    const key = positionKey(position)
    t.equal(key.byteLength, 16)
    t.same(decodePosition(key), position, `${position.arrivedMs}/${position.seq}`)
    t.equal(key.readBigUInt64BE(0), BigInt(position.arrivedMs), 'arrival time as uint64 big-endian')
    t.equal(key.readBigUInt64BE(8), BigInt(position.seq), 'sequence as uint64 big-endian')
  }
  const sorted = [...positions].sort((a, b) => Buffer.compare(positionKey(a), positionKey(b)))
  t.same(sorted, positions, 'byte order is (arrival, sequence) order')
})
