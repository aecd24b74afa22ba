import t, { type Test } from 'tap'
import { asNodeId, type NodeId } from '../../lib/clock/version.js'
import { HINT_KEY_BYTES, HintStore, type HintStoreOptions } from '../../lib/replication/hints.js'
import type { WireEntry } from '../../lib/replication/messages.js'
import { KvStore } from '../../lib/store/kv-store.js'

const MAP_SIZE_BYTES = 64 << 20
const OWNER_A = asNodeId('aaaaaaaaaaaaaaaa')
const OWNER_B = asNodeId('bbbbbbbbbbbbbbbb')
const WRITER = asNodeId('0123456789abcdef')
const START_MS = 1_717_000_000_000

async function openStore(t: Test, dataDir: string = t.testdir()): Promise<KvStore> {
  const store = await KvStore.open({ dataDir, mapSizeBytes: MAP_SIZE_BYTES })
  t.teardown(() => store.close())
  return store
}

/** A hand-set wall clock. */
function clock(startMs = START_MS): { nowMs: () => number; advance: (ms: number) => void } {
  let nowMs = startMs
  return { nowMs: () => nowMs, advance: (ms) => { nowMs += ms } }
}

function hintStore(store: KvStore, options: Partial<HintStoreOptions> = {}): HintStore {
  return new HintStore(store.hints, { maxBytes: 1 << 20, windowMs: 60_000, nowMs: () => START_MS, ...options })
}

function entry(key: string, value: string | Uint8Array | null, logical = 0, extra: { expiresAtMs?: number } = {}): WireEntry {
  const bytes = typeof value === 'string' ? Buffer.from(value) : value
  return { key, value: bytes, hlc: START_MS * 1000 + logical, node: WRITER, ...extra }
}

function keys(entries: readonly WireEntry[]): string[] {
  return entries.map((e) => e.key)
}

t.test('a hint round-trips puts, tombstones, binary values and expiry, and is removed once acknowledged', async t => {
  const hints = hintStore(await openStore(t))
  const binary = Uint8Array.from([0, 255, 1, 128, 0])
  const stored = [
    entry('put', 'value', 1),
    entry('tombstone', null, 2),
    entry('binary', binary, 3, { expiresAtMs: START_MS + 5000 }),
    entry('empty', new Uint8Array(0), 4),
  ]
  for (const e of stored) t.equal(await hints.add(OWNER_A, e), 'stored')
  t.equal(hints.pending(OWNER_A).count, 4)
  t.same(hints.owners(), [OWNER_A])

  const batch = hints.take(OWNER_A, 10)
  t.equal(batch.ids.length, 4)
  t.same(keys(batch.entries), ['put', 'tombstone', 'binary', 'empty'], 'oldest first')
  t.same(batch.entries[1], entry('tombstone', null, 2), 'a tombstone stays a tombstone')
  t.same([...(batch.entries[2]?.value ?? [])], [...binary])
  t.equal(batch.entries[2]?.expiresAtMs, START_MS + 5000)
  t.equal(batch.entries[3]?.value?.length, 0, 'an empty value is not a tombstone')
  t.equal(hints.pending(OWNER_A).count, 4, 'take does not remove')

  await hints.remove(batch.ids.slice(0, 2))
  t.same(keys(hints.take(OWNER_A, 10).entries), ['binary', 'empty'])
  await hints.remove(batch.ids)
  t.same(hints.pending(), { count: 0, bytes: 0 })
  t.same(hints.owners(), [])
  t.equal(hints.take(OWNER_A, 10).entries.length, 0)
})

t.test('values taken earlier stay intact after later reads', async t => {
  const hints = hintStore(await openStore(t))
  await hints.add(OWNER_A, entry('a', Buffer.alloc(100_000, 1)))
  await hints.add(OWNER_A, entry('b', Buffer.alloc(100_000, 2)))
  const first = hints.take(OWNER_A, 1).entries[0]
  hints.take(OWNER_A, 2)
  hints.take(OWNER_A, 2)
  t.ok(first?.value && Buffer.from(first.value).equals(Buffer.alloc(100_000, 1)))
})

t.test('hints survive a reopen, counters are rebuilt, and new hints do not overwrite old ones', async t => {
  const dataDir = t.testdir()
  const first = await KvStore.open({ dataDir, mapSizeBytes: MAP_SIZE_BYTES })
  const before = hintStore(first)
  await before.add(OWNER_A, entry('k1', 'one'))
  await before.add(OWNER_B, entry('k2', 'two'))
  await before.add(OWNER_B, entry('k3', null))
  const pendingBefore = { all: before.pending(), a: before.pending(OWNER_A), b: before.pending(OWNER_B) }
  await first.close()

  const after = hintStore(await openStore(t, dataDir))
  t.same({ all: after.pending(), a: after.pending(OWNER_A), b: after.pending(OWNER_B) }, pendingBefore)
  t.same(after.owners().sort(), [OWNER_A, OWNER_B])
  t.same(after.take(OWNER_B, 10).entries, [entry('k2', 'two'), entry('k3', null)])
  // Same clock reading as before the restart: only the sequence keeps the keys apart.
  await after.add(OWNER_A, entry('k4', 'four'))
  t.same(keys(after.take(OWNER_A, 10).entries), ['k1', 'k4'])
})

t.test('each owner has its own queue, ordered by when hints were stored', async t => {
  const time = clock()
  const hints = hintStore(await openStore(t), { nowMs: time.nowMs })
  const lowest = asNodeId('0000000000000000')
  const highest = asNodeId('ffffffffffffffff')
  await hints.add(OWNER_B, entry('b1', 'x'))
  await hints.add(OWNER_A, entry('a1', 'x'))
  await hints.add(highest, entry('f1', 'x'))
  await hints.add(lowest, entry('01', 'x'))
  time.advance(1)
  await hints.add(OWNER_A, entry('a2', 'x'))
  await hints.add(OWNER_B, entry('b2', 'x'))
  await hints.add(OWNER_A, entry('a3', 'x'))
  time.advance(1000)
  await hints.add(highest, entry('f2', 'x'))
  await hints.add(OWNER_A, entry('a4', 'x'))

  t.same(keys(hints.take(OWNER_A, 10).entries), ['a1', 'a2', 'a3', 'a4'])
  t.same(keys(hints.take(OWNER_B, 10).entries), ['b1', 'b2'])
  t.same(keys(hints.take(lowest, 10).entries), ['01'])
  t.same(keys(hints.take(highest, 10).entries), ['f1', 'f2'], 'the greatest owner id has a range too')
  t.same(keys(hints.take(asNodeId('cccccccccccccccc'), 10).entries), [])
  t.same(keys(hints.take(OWNER_A, 2).entries), ['a1', 'a2'], 'maxEntries bounds the batch')
  t.equal(hints.pending(OWNER_A).count, 4)
  t.equal(hints.pending().count, 9)

  await hints.remove(hints.take(OWNER_A, 10).ids)
  t.same(keys(hints.take(OWNER_B, 10).entries), ['b1', 'b2'], "removing one owner's hints leaves the others")
  t.equal(hints.pending().count, 5)
})

t.test('a batch stops before maxBatchBytes but always holds at least one hint', async t => {
  const hints = hintStore(await openStore(t))
  await hints.add(OWNER_A, entry('big', Buffer.alloc(5000)))
  await hints.add(OWNER_A, entry('s1', Buffer.alloc(100)))
  await hints.add(OWNER_A, entry('s2', Buffer.alloc(100)))
  t.same(keys(hints.take(OWNER_A, 10, 1000).entries), ['big'], 'an oversized hint goes alone')
  await hints.remove(hints.take(OWNER_A, 1).ids)
  t.same(keys(hints.take(OWNER_A, 10, 1000).entries), ['s1', 's2'])
  t.same(keys(hints.take(OWNER_A, 10, 150).entries), ['s1'])
})

t.test('take refuses batch sizes a replica write cannot carry', async t => {
  const hints = hintStore(await openStore(t))
  t.throws(() => hints.take(OWNER_A, 0), RangeError)
  t.throws(() => hints.take(OWNER_A, 100_000), RangeError)
})

t.test('hints past maxBytes are dropped and not stored; room frees up once hints are removed', async t => {
  const store = await openStore(t)
  const probe = hintStore(store)
  await probe.add(OWNER_A, entry('k0', Buffer.alloc(1000)))
  const hintBytes = probe.pending().bytes
  t.ok(hintBytes > 1000 + HINT_KEY_BYTES - 1, 'bytes count the key and the encoded value')
  await probe.remove(probe.take(OWNER_A, 1).ids)

  const hints = hintStore(store, { maxBytes: hintBytes * 3 })
  const outcomes = await Promise.all([1, 2, 3, 4, 5].map((i) => hints.add(i % 2 === 0 ? OWNER_A : OWNER_B, entry(`k${i}`, Buffer.alloc(1000)))))
  t.same(outcomes.filter((o) => o === 'stored').length, 3, 'concurrent adds do not overshoot together')
  t.same(outcomes.filter((o) => o === 'dropped').length, 2)
  t.same(hints.pending(), { count: 3, bytes: hintBytes * 3 })
  t.equal(hints.take(OWNER_A, 10).entries.length + hints.take(OWNER_B, 10).entries.length, 3, 'dropped hints are not on disk')
  t.equal(await hints.add(OWNER_A, entry('k9', Buffer.alloc(1000))), 'dropped')

  await hints.remove(hints.take(OWNER_B, 1).ids)
  t.equal(await hints.add(OWNER_A, entry('k9', Buffer.alloc(1000))), 'stored')
})

t.test('hints older than the window are dropped by dropExpired, younger ones stay', async t => {
  const time = clock()
  const hints = hintStore(await openStore(t), { windowMs: 10_000, nowMs: time.nowMs })
  await hints.add(OWNER_A, entry('old-a', 'x'))
  await hints.add(OWNER_B, entry('old-b', 'x'))
  time.advance(5000)
  await hints.add(OWNER_A, entry('young-a', 'x', 5000 * 1000))
  t.equal(await hints.dropExpired(), 0, 'nothing is older than the window yet')

  time.advance(5000)
  t.equal(await hints.dropExpired(), 2)
  t.same(keys(hints.take(OWNER_A, 10).entries), ['young-a'])
  t.same(hints.owners(), [OWNER_A])
  t.equal(hints.pending().count, 1)
  t.equal(await hints.dropExpired(), 0, 'dropping again finds nothing')

  time.advance(5000)
  t.equal(await hints.dropExpired(), 1)
  t.same(hints.pending(), { count: 0, bytes: 0 })
})

t.test('a hint ages from its write\'s version when that is older than now: it never outlives the version by more than the window', async t => {
  const time = clock(START_MS + 8_500)
  // Stored 8.5 s after its write was versioned (the clock that stamps it ran ahead, say).
  const hints = hintStore(await openStore(t), { windowMs: 10_000, nowMs: time.nowMs })
  await hints.add(OWNER_A, entry('from-the-past', 'x'))
  time.advance(1_500)
  t.equal(await hints.dropExpired(), 1, 'expired 10 s after its version, not 10 s after it was stored')
})

t.test('dropExpired deletes more hints than one batch', async t => {
  const time = clock()
  const hints = hintStore(await openStore(t), { windowMs: 1000, nowMs: time.nowMs })
  const total = 2500
  for (let i = 0; i < total; i += 500) {
    await Promise.all(Array.from({ length: 500 }, (_, j) => hints.add(OWNER_A, entry(`k${i + j}`, 'x'))))
  }
  time.advance(1000)
  t.equal(await hints.dropExpired(), total)
  t.same(hints.pending(), { count: 0, bytes: 0 })
})

t.test('removing hints that are already gone changes nothing', async t => {
  const dataDir = t.testdir()
  const store = await KvStore.open({ dataDir, mapSizeBytes: MAP_SIZE_BYTES })
  const hints = hintStore(store)
  await hints.add(OWNER_A, entry('k1', 'one'))
  await hints.add(OWNER_A, entry('k2', 'two'))
  const { ids } = hints.take(OWNER_A, 1)
  await Promise.all([hints.remove([...ids, ...ids]), hints.remove(ids)])
  await hints.remove(ids)
  const counted = hints.pending()
  t.equal(counted.count, 1)
  await store.close()
  t.same(hintStore(await openStore(t, dataDir)).pending(), counted, 'the counters match what is on disk')
})

t.test('a corrupt hint is reported and deleted instead of delivered', async t => {
  const store = await openStore(t)
  const reports: string[] = []
  const hints = hintStore(store, { onCorrupt: (reason) => reports.push(reason) })
  await hints.add(OWNER_A, entry('before', 'x'))
  const { ids } = hints.take(OWNER_A, 1)
  const corruptId = Buffer.from(ids[0] ?? [])
  corruptId.writeUInt32BE(0xffffffff, HINT_KEY_BYTES - 4)
  await store.hints.put(corruptId, Buffer.from('not messagepack'))
  await store.hints.flushed

  const reopened = hintStore(store, { onCorrupt: (reason) => reports.push(reason) })
  t.equal(reopened.pending(OWNER_A).count, 2)
  t.same(keys(reopened.take(OWNER_A, 10).entries), ['before'])
  t.equal(reports.length, 1)
  t.match(reports[0], /does not decode/)
  for (let i = 0; i < 100 && reopened.pending(OWNER_A).count > 1; i++) await new Promise((resolve) => setTimeout(resolve, 10))
  t.equal(reopened.pending(OWNER_A).count, 1, 'the corrupt hint was deleted')
  t.equal(store.hints.get(corruptId), undefined)
})

t.test('a hint for something that is not a node id is refused', async t => {
  const hints = hintStore(await openStore(t))
  await t.rejects(hints.add('nope' as NodeId, entry('k', 'v')), TypeError)
  t.same(hints.pending(), { count: 0, bytes: 0 })
})
