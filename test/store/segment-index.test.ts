import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import t, { type Test } from 'tap'
import { asNodeId, compareVersions, formatVersion, type Version } from '../../lib/clock/version.js'
import { KvStore } from '../../lib/store/kv-store.js'
import { decodeSegmentVersion, encodeSegmentVersion, type SegmentIndexOptions, type SegmentOf } from '../../lib/store/segment-index.js'
import { hlcAt, NODE_A, NODE_B, put, TEST_MAP_SIZE_BYTES, tombstone, WALL_MS } from './fixture.js'
import { scriptCommand } from '../helpers/node-command.js'

const MAX_SEGMENT = 2 ** 32 - 1

/** Test keys name their segment: "17/name" lies in segment 17. */
const bySegmentPrefix: SegmentOf = (key) => Number(key.slice(0, key.indexOf('/')))
const PREFIX_SCHEME: SegmentIndexOptions = { segmentOf: bySegmentPrefix, scheme: 'prefix' }

/** `segments` null: a store without the index. */
async function openIndexed(t: Test, dataDir: string = t.testdir(), segments: SegmentIndexOptions | null = PREFIX_SCHEME, nowMs?: () => number): Promise<KvStore> {
  const store = await KvStore.open({ dataDir, mapSizeBytes: TEST_MAP_SIZE_BYTES, ...(segments === null ? {} : { segments }), ...(nowMs === undefined ? {} : { nowMs }) })
  t.teardown(() => store.close())
  return store
}

/** The store's checkpoint interval (kv-store.ts SEGMENT_CHECKPOINT_INTERVAL_MS). */
const CHECKPOINT_INTERVAL_MS = 2000

/** A clock the test moves. */
function manualClock(): { nowMs: () => number; advance: (ms: number) => void } {
  let now = WALL_MS
  return { nowMs: () => now, advance: (ms) => { now += ms } }
}

/** Counts the index database's puts (their keys, in order) and removes. */
function countWrites(store: KvStore): { readonly puts: Buffer[]; removes: number } {
  const db = (index(store) as unknown as { db: { put: (...args: unknown[]) => unknown; remove: (...args: unknown[]) => unknown } }).db
  const counts = { puts: [] as Buffer[], removes: 0 }
  const put0 = db.put.bind(db)
  const remove0 = db.remove.bind(db)
  db.put = (...args) => { counts.puts.push(Buffer.from(args[0] as Uint8Array)); return put0(...args) }
  db.remove = (...args) => { counts.removes++; return remove0(...args) }
  return counts
}

/**
 * What kill -9 leaves: every commit is on disk, the deferred index entries held in memory are
 * not (close() is kept from writing them).
 */
async function crash(store: KvStore): Promise<void> {
  (store as unknown as { flushSegments: () => Promise<void> }).flushSegments = async () => undefined
  await store.close()
}

function index(store: KvStore): NonNullable<KvStore['segments']> {
  if (store.segments === undefined) throw new Error('the store was opened without a segment index')
  return store.segments
}

/** (key, version string) pairs of a segment, for comparisons. */
function listed(store: KvStore, segment: number): [string, string][] {
  return index(store).entries(segment).map(({ key, version }) => [key, formatVersion(version)])
}

t.test('applyMany adds a new key, replaces with a newer version and ignores an older one', async t => {
  const store = await openIndexed(t)
  await store.applyMany([{ key: '5/a', record: put('v1', hlcAt(WALL_MS, 1)) }])
  t.same(listed(store, 5), [['5/a', formatVersion({ hlc: hlcAt(WALL_MS, 1), node: NODE_A })]], 'a new key')

  await store.applyMany([{ key: '5/a', record: put('v2', hlcAt(WALL_MS, 2), NODE_B) }])
  t.same(listed(store, 5), [['5/a', formatVersion({ hlc: hlcAt(WALL_MS, 2), node: NODE_B })]], 'a newer version replaces the entry')

  await store.applyMany([{ key: '5/a', record: put('v0', hlcAt(WALL_MS, 0)) }, { key: '5/a', record: put('same', hlcAt(WALL_MS, 2), NODE_B) }])
  t.same(listed(store, 5), [['5/a', formatVersion({ hlc: hlcAt(WALL_MS, 2), node: NODE_B })]], 'an older or equal version changes nothing')

  await store.applyMany([{ key: '5/a', record: tombstone(hlcAt(WALL_MS, 3)) }, { key: '5/b', record: put('b', hlcAt(WALL_MS, 1)) }, { key: '5/b', record: put('b2', hlcAt(WALL_MS, 4)) }])
  t.same(listed(store, 5), [
    ['5/a', formatVersion({ hlc: hlcAt(WALL_MS, 3), node: NODE_A })],
    ['5/b', formatVersion({ hlc: hlcAt(WALL_MS, 4), node: NODE_A })],
  ], 'a tombstone is an entry like a value; the later of two writes in one call wins')
  t.equal(index(store).count(), 2)
})

t.test('deleteIfVersion removes the entry of a key it removes, and only that', async t => {
  const store = await openIndexed(t)
  const version = { hlc: hlcAt(WALL_MS), node: NODE_A }
  await store.applyMany([{ key: '1/x', record: tombstone(version.hlc) }, { key: '1/y', record: put('y', version.hlc) }])
  const removed = await store.deleteIfVersion([{ key: '1/x', version }, { key: '1/y', version: { hlc: version.hlc + 1, node: NODE_A } }])
  t.same(removed, [true, false])
  t.same(listed(store, 1).map(([key]) => key), ['1/y'], 'a version mismatch leaves the entry')
  t.equal(index(store).count(), 1)
})

t.test('entries(segment) lists exactly that segment\'s keys with their versions, in key byte order', async t => {
  const store = await openIndexed(t)
  const written = new Map<string, Version>()
  const records = []
  for (const segment of [0, 1, 2, 255, 256, 65_536, MAX_SEGMENT - 1, MAX_SEGMENT]) {
    for (const name of ['b', 'a', 'é', 'a/b', 'zz']) {
      const key = `${segment}/${name}`
      const version = { hlc: hlcAt(WALL_MS, written.size), node: written.size % 2 === 0 ? NODE_A : NODE_B }
      written.set(key, version)
      records.push({ key, record: put(key, version.hlc, version.node) })
    }
  }
  await store.applyMany(records)
  for (const segment of [0, 1, 2, 255, 256, 65_536, MAX_SEGMENT - 1, MAX_SEGMENT]) {
    const expected = [...written].filter(([key]) => bySegmentPrefix(key) === segment)
      .sort(([a], [b]) => Buffer.compare(Buffer.from(a), Buffer.from(b)))
      .map(([key, version]): [string, string] => [key, formatVersion(version)])
    t.same(listed(store, segment), expected, `segment ${segment}`)
  }
  t.same(listed(store, 3), [], 'an empty segment between used ones')
  t.same(listed(store, 65_535), [], 'the segment just before a used one')
  for (const bad of [-1, 1.5, 2 ** 32]) t.throws(() => index(store).entries(bad), RangeError, `segment ${bad} is refused`)
})

t.test('all() yields every entry with its segment, in segment order', async t => {
  const store = await openIndexed(t)
  const keys = ['9/k', '0/k', '300/a', '300/b', `${MAX_SEGMENT}/last`]
  await store.applyMany(keys.map((key, i) => ({ key, record: put('v', hlcAt(WALL_MS, i)) })))
  const all = [...index(store).all()]
  t.same(all.map(({ segment, key }) => [segment, key]), [[0, '0/k'], [9, '9/k'], [300, '300/a'], [300, '300/b'], [MAX_SEGMENT, `${MAX_SEGMENT}/last`]])
  t.same(all.map(({ key, version }) => [key, version.hlc]), all.map(({ key }) => [key, hlcAt(WALL_MS, keys.indexOf(key))]), 'with each key\'s version')
  t.equal(index(store).count(), store.stats().keys, 'one entry per stored record')
})

t.test('a store that had no index gets one built from its records when reopened with `segments`', async t => {
  const dataDir = t.testdir()
  const plain = await openIndexed(t, dataDir, null)
  t.equal(plain.segments, undefined)
  await plain.applyMany([{ key: '4/a', record: put('a', hlcAt(WALL_MS, 1)) }, { key: '4/b', record: tombstone(hlcAt(WALL_MS, 2)) }, { key: '7/c', record: put('c', hlcAt(WALL_MS, 3)) }])
  await plain.close()

  const indexed = await openIndexed(t, dataDir)
  t.same(listed(indexed, 4), [['4/a', formatVersion({ hlc: hlcAt(WALL_MS, 1), node: NODE_A })], ['4/b', formatVersion({ hlc: hlcAt(WALL_MS, 2), node: NODE_A })]])
  t.same(listed(indexed, 7).map(([key]) => key), ['7/c'])
  t.equal(index(indexed).count(), 3)
})

t.test('writes made while the store was open without the index reach it at the next indexed open', async t => {
  const dataDir = t.testdir()
  const first = await openIndexed(t, dataDir)
  await first.applyMany([{ key: '4/a', record: put('a', hlcAt(WALL_MS, 1)) }])
  await first.close()
  const plain = await openIndexed(t, dataDir, null)
  await plain.applyMany([{ key: '4/b', record: put('b', hlcAt(WALL_MS, 2)) }])
  await plain.close()
  const again = await openIndexed(t, dataDir)
  t.same(listed(again, 4).map(([key]) => key), ['4/a', '4/b'], 'rebuilt, so the write made without the index is listed')
})

t.test('the index is rebuilt when the scheme changes, and kept when it does not', async t => {
  const dataDir = t.testdir()
  const first = await openIndexed(t, dataDir)
  await first.applyMany(['1/a', '1/b', '2/c'].map((key, i) => ({ key, record: put('v', hlcAt(WALL_MS, i)) })))
  await first.close()

  // Same scheme name, another mapping: the scheme is what says whether the index is current.
  const everythingIn9: SegmentOf = () => 9
  const sameScheme = await openIndexed(t, dataDir, { segmentOf: everythingIn9, scheme: 'prefix' })
  t.same(listed(sameScheme, 9), [], 'same scheme: the index is not rebuilt')
  t.same(listed(sameScheme, 1).map(([key]) => key), ['1/a', '1/b'])
  await sameScheme.close()

  const rebuilt = await openIndexed(t, dataDir, { segmentOf: everythingIn9, scheme: 'all in 9' })
  t.same(listed(rebuilt, 9).map(([key]) => key), ['1/a', '1/b', '2/c'], 'a new scheme: rebuilt with the new mapping')
  t.same(listed(rebuilt, 1), [], 'no entry is left from the old mapping')
  t.equal(index(rebuilt).count(), 3)
  await rebuilt.applyMany([{ key: '3/d', record: put('d', hlcAt(WALL_MS, 9)) }])
  t.same(listed(rebuilt, 9).map(([key]) => key), ['1/a', '1/b', '2/c', '3/d'], 'and kept with it afterwards')
})

t.test('segment versions round-trip and sort like versions', async t => {
  const versions: Version[] = [
    { hlc: 0, node: asNodeId('0000000000000000') },
    { hlc: 1, node: asNodeId('ffffffffffffffff') },
    { hlc: 2 ** 32 - 1, node: NODE_A },
    { hlc: 2 ** 32, node: NODE_A },
    { hlc: hlcAt(WALL_MS, 7), node: NODE_A },
    { hlc: hlcAt(WALL_MS, 7), node: NODE_B },
    { hlc: Number.MAX_SAFE_INTEGER, node: asNodeId('0123456789abcdef') },
  ]
  for (const version of versions) {
    const bytes = encodeSegmentVersion(version)
    t.equal(bytes.length, 16)
    t.same(decodeSegmentVersion(bytes), version, formatVersion(version))
    t.same(decodeSegmentVersion(Buffer.concat([Buffer.alloc(3), bytes]).subarray(3)), version, 'also from a view at an offset')
  }
  const misordered = versions.flatMap((a) => versions.filter((b) => Math.sign(Buffer.compare(encodeSegmentVersion(a), encodeSegmentVersion(b))) !== Math.sign(compareVersions(a, b)))
    .map((b) => `${formatVersion(a)} vs ${formatVersion(b)}`))
  t.same(misordered, [], 'the byte order of encodings is the version order')
  t.throws(() => decodeSegmentVersion(Buffer.alloc(15)), RangeError)
  t.throws(() => decodeSegmentVersion(Buffer.alloc(17)), RangeError)
})

t.test('a new version of a stored key writes no index entry; a new key and a removal do (issue 15)', async t => {
  const clock = manualClock()
  const store = await openIndexed(t, t.testdir(), PREFIX_SCHEME, clock.nowMs)
  const writes = countWrites(store)
  await store.applyMany([{ key: '5/a', record: put('v1', hlcAt(WALL_MS, 1)) }])
  t.equal(writes.puts.length, 0, 'the first version of a key defers its entry')
  t.equal(index(store).deferredCount, 1)
  await store.applyMany([{ key: '5/a', record: put('v2', hlcAt(WALL_MS, 2)) }, { key: '5/a', record: put('v3', hlcAt(WALL_MS, 3)) }])
  await store.apply('5/a', tombstone(hlcAt(WALL_MS, 4)))
  t.equal(index(store).deferredCount, 1, 'newer versions and a tombstone add nothing')
  t.same(listed(store, 5), [['5/a', formatVersion({ hlc: hlcAt(WALL_MS, 4), node: NODE_A })]], 'a deferred entry is listed with the stored version')
  await store.applyMany([{ key: '5/b', record: put('b', hlcAt(WALL_MS, 1)) }, { key: '5/b', record: put('b2', hlcAt(WALL_MS, 5)) }])
  t.equal(index(store).deferredCount, 2, 'a key new to the store gets one entry, even written twice in one call')
  t.same(await store.deleteIfVersion([{ key: '5/a', version: { hlc: hlcAt(WALL_MS, 4), node: NODE_A } }]), [true])
  t.equal(writes.removes, 1, 'a removal removes the entry')
  t.equal(index(store).deferredCount, 1, 'and forgets its deferred copy')
  t.same(listed(store, 5).map(([key]) => key), ['5/b'])
  t.equal(writes.puts.length, 0, 'nothing written before the checkpoint')

  clock.advance(CHECKPOINT_INTERVAL_MS)
  await store.apply('5/b', put('b3', hlcAt(WALL_MS, 6)))
  t.same(writes.puts.map(String), ['\0\0\0\x055/b'], 'the checkpoint writes the deferred entry once')
  t.equal(index(store).deferredCount, 0)
  t.same(listed(store, 5).map(([key]) => key), ['5/b'], 'and it is listed once')
  t.equal(index(store).count(), 1)
})

t.test('a checkpoint writes the deferred entries in segment order, in the transaction of a commit', async t => {
  const clock = manualClock()
  const store = await openIndexed(t, t.testdir(), PREFIX_SCHEME, clock.nowMs)
  const writes = countWrites(store)
  const keys = ['9/b', '3/z', '9/a', '12/a', '3/a']
  await store.applyMany(keys.map((key, i) => ({ key, record: put('v', hlcAt(WALL_MS, i)) })))
  t.same([...index(store).all()].map(({ key }) => key), ['3/a', '3/z', '9/a', '9/b', '12/a'], 'all() lists deferred entries in segment order')
  clock.advance(CHECKPOINT_INTERVAL_MS)
  await store.apply('100/new', put('v', hlcAt(WALL_MS, 9)))
  t.same(writes.puts.map((key) => key.readUInt32BE(0)), [3, 3, 9, 9, 12, 100], 'in segment order (the keys of one segment share their pages in any order)')
  t.same(writes.puts.map((key) => key.subarray(4).toString()).sort(), ['100/new', '12/a', '3/a', '3/z', '9/a', '9/b'])
  t.same([...index(store).all()].map(({ key }) => key), ['3/a', '3/z', '9/a', '9/b', '12/a', '100/new'])
})

t.test('a crash loses no index entry: the next open writes the deferred ones from the change log', async t => {
  const dataDir = t.testdir()
  const clock = manualClock()
  const first = await openIndexed(t, dataDir, PREFIX_SCHEME, clock.nowMs)
  await first.applyMany([{ key: '5/a', record: put('a', hlcAt(WALL_MS, 1)) }, { key: '6/b', record: put('b', hlcAt(WALL_MS, 2)) }])
  clock.advance(CHECKPOINT_INTERVAL_MS)
  await first.applyMany([{ key: '5/c', record: put('c', hlcAt(WALL_MS, 3)) }])
  await first.applyMany([{ key: '7/d', record: put('d', hlcAt(WALL_MS, 4)) }, { key: '5/a', record: put('a2', hlcAt(WALL_MS, 5)) }])
  t.equal(index(first).deferredCount, 1, '5/a and 6/b were checkpointed with 5/c; 7/d waits')
  await crash(first)

  const reopened = await openIndexed(t, dataDir, PREFIX_SCHEME, clock.nowMs)
  t.equal(index(reopened).deferredCount, 0)
  for (const [segment, key] of [[5, '5/a'], [5, '5/c'], [6, '6/b'], [7, '7/d']] as const) {
    t.ok(index(reopened).hasWritten(Buffer.from(key), segment), `${key} has its entry written`)
  }
  t.same(listed(reopened, 5).map(([key]) => key), ['5/a', '5/c'])
  t.same(listed(reopened, 7), [['7/d', formatVersion({ hlc: hlcAt(WALL_MS, 4), node: NODE_A })]])
  t.equal(index(reopened).count(), 4)
})

t.test('kill -9 after acknowledged applies loses no index entry', async t => {
  const dataDir = t.testdir()
  const count = 50
  const writer = scriptCommand([fileURLToPath(new URL('./crash-writer.ts', import.meta.url)), dataDir, String(count)])
  const child = spawn(writer.command, writer.args, { stdio: ['ignore', 'pipe', 'inherit'] })
  t.teardown(() => { child.kill('SIGKILL') })
  let said = ''
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => { said += chunk })
  const exited = once(child, 'exit')
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', () => { if (said.includes('\n')) resolve() })
    child.on('exit', (code) => reject(new Error(`the writer exited (${String(code)}) before applying: ${said}`)))
  })
  t.match(said, `applied ${count}, ${count} deferred`, 'every entry was still deferred')
  child.kill('SIGKILL')
  await exited

  const reopened = await openIndexed(t, dataDir)
  for (let i = 0; i < count; i++) {
    if (!index(reopened).hasWritten(Buffer.from(`${i % 7}/k${i}`), i % 7)) t.fail(`${i % 7}/k${i} has no index entry`)
  }
  t.equal(index(reopened).count(), count, 'every key has its entry, written at open')
  t.equal(index(reopened).deferredCount, 0)
})

t.test('a change log trimmed past the checkpoint (by another build) makes the next open rebuild the index', async t => {
  const dataDir = t.testdir()
  const first = await openIndexed(t, dataDir, PREFIX_SCHEME, manualClock().nowMs)
  await first.applyMany([{ key: '5/a', record: put('a', hlcAt(WALL_MS, 1)) }, { key: '6/b', record: put('b', hlcAt(WALL_MS, 2)) }])
  await crash(first)
  const { open } = await import('lmdb')
  const root = open({ path: dataDir, noSubdir: false, maxDbs: 8 })
  const changes = root.openDB<Uint8Array, Uint8Array>('changes', { keyEncoding: 'binary', encoding: 'binary' })
  const logged = [...changes.getKeys()].map((key) => Buffer.from(key))
  t.equal(logged.length, 2)
  await changes.remove(logged[0] as Buffer)
  await root.close()

  const reopened = await openIndexed(t, dataDir)
  t.same(listed(reopened, 5).map(([key]) => key), ['5/a'])
  t.same(listed(reopened, 6).map(([key]) => key), ['6/b'])
  t.ok(index(reopened).hasWritten(Buffer.from('5/a'), 5), 'rebuilt from the records')
})

t.test('an index from before deferred entries (complete at every commit) is taken over without a rebuild', async t => {
  const dataDir = t.testdir()
  const first = await openIndexed(t, dataDir)
  await first.applyMany([{ key: '5/a', record: put('a', hlcAt(WALL_MS, 2)) }])
  await first.close()
  const { open } = await import('lmdb')
  const root = open({ path: dataDir, noSubdir: false, maxDbs: 8 })
  const meta = root.openDB<unknown, string>('meta', {})
  const segments = root.openDB<Uint8Array, Uint8Array>('segments', { keyEncoding: 'binary', encoding: 'binary' })
  t.equal(meta.get('segmentScheme'), 'prefix keys-only deferred')
  await meta.put('segmentScheme', 'prefix keys-only')
  await meta.remove('segmentIndexThrough')
  // An entry a rebuild would drop (its key holds no record): proof that none ran.
  await segments.put(Buffer.concat([Buffer.from([0, 0, 0, 7]), Buffer.from('7/ghost')]), new Uint8Array(0))
  await root.close()

  const reopened = await openIndexed(t, dataDir)
  t.ok(index(reopened).hasWritten(Buffer.from('7/ghost'), 7), 'no rebuild')
  t.same(listed(reopened, 5).map(([key]) => key), ['5/a'])
  await reopened.close()
  const again = open({ path: dataDir, noSubdir: false, maxDbs: 8 })
  t.equal(again.openDB<unknown, string>('meta', {}).get('segmentScheme'), 'prefix keys-only deferred', 'the format is recorded as the current one')
  await again.close()
})

t.test('trimming the change log first brings the segment checkpoint up, then cuts as asked', async t => {
  const clock = manualClock()
  const dataDir = t.testdir()
  const store = await openIndexed(t, dataDir, PREFIX_SCHEME, clock.nowMs)
  const writes = countWrites(store)
  await store.applyMany([{ key: '5/a', record: put('a', hlcAt(WALL_MS, 1)) }])
  clock.advance(10)
  await store.applyMany([{ key: '5/b', record: put('b', hlcAt(WALL_MS, 2)) }])
  t.equal(index(store).deferredCount, 2)
  const cutMs = clock.nowMs() + 1000
  t.equal(await store.changeLog.trim(cutMs, 100), 2, 'every entry before the cut goes')
  t.equal(index(store).deferredCount, 0, 'after their index entries were written')
  t.same(writes.puts.map((key) => key.subarray(4).toString()).sort(), ['5/a', '5/b'])
  t.equal(store.changeLog.horizonMs, WALL_MS + 11, 'the horizon: the ms after the last entry kept back (nothing arrived since)')
  await crash(store)
  const reopened = await openIndexed(t, dataDir, PREFIX_SCHEME, clock.nowMs)
  t.same(listed(reopened, 5).map(([key]) => key), ['5/a', '5/b'], 'a crash after the trim loses nothing: the checkpoint covers them')
})

t.test('an index in the format that kept versions in its values is rebuilt at open (issue 15)', async t => {
  const dataDir = t.testdir()
  const first = await openIndexed(t, dataDir)
  await first.applyMany([{ key: '5/a', record: put('a', hlcAt(WALL_MS, 2)) }, { key: '6/b', record: put('b', hlcAt(WALL_MS, 3)) }])
  await first.close()
  // What a data dir of the earlier format holds: the bare scheme, a 16-byte version per entry,
  // and (to prove the rebuild) an entry for a key the store does not hold.
  const { open } = await import('lmdb')
  const root = open({ path: dataDir, noSubdir: false, maxDbs: 8 })
  const meta = root.openDB<unknown, string>('meta', {})
  const segments = root.openDB<Uint8Array, Uint8Array>('segments', { keyEncoding: 'binary', encoding: 'binary' })
  await meta.put('segmentScheme', 'prefix')
  await segments.put(Buffer.concat([Buffer.from([0, 0, 0, 7]), Buffer.from('7/ghost')]), encodeSegmentVersion({ hlc: 1, node: NODE_B }))
  await root.close()

  const reopened = await openIndexed(t, dataDir)
  t.same(listed(reopened, 7), [], 'the stale entry is gone')
  t.same(listed(reopened, 5), [['5/a', formatVersion({ hlc: hlcAt(WALL_MS, 2), node: NODE_A })]])
  t.same(listed(reopened, 6).map(([key]) => key), ['6/b'])
  t.equal(index(reopened).count(), 2)
})

t.test('raw() yields every record once with its segment and packed version, for the tree rebuild', async t => {
  const store = await openIndexed(t)
  const keys = ['9/k', '0/k', '300/a', '300/b', `${MAX_SEGMENT}/last`]
  await store.applyMany(keys.map((key, i) => ({ key, record: put('v', hlcAt(WALL_MS, i), i % 2 === 0 ? NODE_A : NODE_B) })))
  const seen: unknown[][] = []
  // The bytes are valid for one step only: read them as they come.
  for (const { segment, keyBytes, versionBytes } of index(store).raw()) seen.push([segment, Buffer.from(keyBytes).toString(), formatVersion(decodeSegmentVersion(versionBytes))])
  const expected = keys.map((key, i) => [bySegmentPrefix(key), key, formatVersion({ hlc: hlcAt(WALL_MS, i), node: i % 2 === 0 ? NODE_A : NODE_B })])
  const order = (a: unknown[], b: unknown[]): number => String(a[1]).localeCompare(String(b[1]))
  t.same(seen.sort(order), expected.sort(order))
})
