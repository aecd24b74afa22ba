import t from 'tap'
import { closeSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { KvStore, PAXOS_JOURNAL_DIR } from '../../lib/store/kv-store.js'
import type { NodeId } from '../../lib/clock/version.js'
import { decideAccept, decidePrepare } from '../../lib/paxos/acceptor-state.js'
import { AcceptorJournalFailedError } from '../../lib/paxos/acceptor-journal.js'
import { AcceptorStore, decodeState, encodeState, MAX_CACHED_STATES } from '../../lib/paxos/acceptor-store.js'
import { MemoryDatabase } from '../../lib/sim/memory-database.js'
import { MemoryJournal } from '../../lib/sim/memory-journal.js'
import { SEGMENT_ALLOCATION_BYTES } from '../../lib/store/journal-files.js'
import { encodeKey } from '../../lib/store/keys.js'
import type { StoredRecord } from '../../lib/store/record.js'

const p = 'aaaaaaaaaaaaaaaa' as NodeId
const rec = (hlc: number, text: string): StoredRecord => ({ value: Buffer.from(text), version: { hlc, node: p }, strong: true })
const ballot = (counter: number): { counter: number; node: NodeId } => ({ counter, node: p })
const prepare = (counter: number) => (state: Parameters<typeof decidePrepare>[0]) => decidePrepare(state, ballot(counter))

function memory(): { db: MemoryDatabase<Uint8Array, Uint8Array>; journal: MemoryJournal } {
  return { db: new MemoryDatabase<Uint8Array, Uint8Array>(), journal: new MemoryJournal() }
}

t.test('a state read back after a write is the one written, also once checkpointed and out of the cache', async t => {
  const { db, journal } = memory()
  const store = await AcceptorStore.open({ db, journal })
  await store.update('k', prepare(5))
  await store.update('k', (state) => decideAccept(state, ballot(5), rec(50, 'v'), [{ hlc: 50, node: p }]))
  t.same(store.get('k')?.accepted?.ballot, ballot(5))
  t.equal(db.get(encodeKey('k')), undefined, 'answered from the journal: the database has it only after a checkpoint')
  await store.checkpoint()
  t.ok(db.get(encodeKey('k')) !== undefined, 'the checkpoint wrote it')
  // Push 'k' out of the cache with other keys; it is then read (and decoded) from the database.
  for (let i = 0; i <= MAX_CACHED_STATES; i++) await store.update(`other-${i}`, prepare(1))
  await store.checkpoint()
  const fresh = await AcceptorStore.open({ db, journal })
  t.same(store.get('k'), fresh.get('k'), 'what is cached is what is stored')
  t.equal(Buffer.from(store.get('k')!.accepted!.record.value!).toString(), 'v')
})

t.test('an answered change survives a crash; one whose sync never completed was never answered', async t => {
  const { db, journal } = memory()
  const store = await AcceptorStore.open({ db, journal })
  await store.update('k', prepare(5))
  let answered = false
  void store.update('k', prepare(9)).then(() => { answered = true }, () => undefined)
  // The process dies before the journal's sync (a microtask away) ran.
  journal.crash()
  await new Promise((resolve) => setImmediate(resolve))
  t.equal(answered, false, 'the promise of 9 was never answered')
  const restarted = await AcceptorStore.open({ db, journal })
  t.same(restarted.get('k')?.promised, ballot(5), 'the answered promise of 5 is kept, the unanswered 9 is gone')
  t.same(await restarted.update('k', prepare(7)), { ok: true, accepted: undefined }, 'so a prepare at 7 is promised')
  t.same(await restarted.update('k', prepare(6)), { ok: false, promised: ballot(7) })
})

t.test('a sync that fails fails the update and every later one: no answer rests on what may not be on disk', async t => {
  const { db, journal } = memory()
  const store = await AcceptorStore.open({ db, journal })
  await store.update('k', prepare(5))
  journal.failNextSync = new Error('EIO')
  await t.rejects(store.update('k', prepare(9)), AcceptorJournalFailedError)
  await t.rejects(store.update('k', prepare(10)), /linearizable operations fail on this node until it restarts/)
  await t.rejects(store.updateMany([{ key: 'j', chosen: ballot(1) }]), AcceptorJournalFailedError, 'lookups too: they may rest on states not durable')
  journal.crash()
  const restarted = await AcceptorStore.open({ db, journal })
  t.same(restarted.get('k')?.promised, ballot(5), 'after a restart the durable promise of 5 is what counts')
  t.same(await restarted.update('k', prepare(7)), { ok: true, accepted: undefined })
})

t.test('the journal is checkpointed by size: segments are retired, the database holds the states, a reopen sees them all', async t => {
  const { db, journal } = memory()
  const store = await AcceptorStore.open({ db, journal, maxSegmentBytes: 2048 })
  for (let i = 0; i < 200; i++) await store.update(`k${i % 20}`, prepare(i + 1))
  await store.checkpoint()
  t.ok(journal.bytes < 4096, `the journal keeps only its newest segment (${journal.bytes} bytes)`)
  t.equal(db.size, 20, 'every key is in the database')
  journal.crash()
  const reopened = await AcceptorStore.open({ db, journal })
  for (let k = 0; k < 20; k++) t.same(reopened.get(`k${k}`)?.promised, ballot(180 + k + 1), `k${k} at its last promise`)
})

t.test('the journal is checkpointed by the number of keys only it holds', async t => {
  const { db, journal } = memory()
  const store = await AcceptorStore.open({ db, journal, maxDirtyStates: 8 })
  for (let i = 0; i < 20; i++) await store.update(`k${i}`, prepare(3))
  await store.checkpoint()
  t.equal(db.size, 20)
})

t.test('replay never moves a state back: a database a checkpoint left ahead of an older segment keeps the newer state', async t => {
  const { db, journal } = memory()
  const store = await AcceptorStore.open({ db, journal })
  await store.update('k', prepare(5))
  // A crash right after a checkpoint wrote a newer state but before the segments were removed:
  // here, the database gets a promise of 8 the journal does not have.
  void db.put(encodeKey('k'), encodeState({ promised: ballot(8) }))
  journal.crash()
  const reopened = await AcceptorStore.open({ db, journal })
  t.same(reopened.get('k')?.promised, ballot(8))
  journal.crash()
  t.same((await AcceptorStore.open({ db, journal })).get('k')?.promised, ballot(8), 'and a second replay changes nothing')
})

t.test('a corrupt state in the database yields to the journal\'s at replay instead of keeping the node from starting', async t => {
  const { db, journal } = memory()
  const store = await AcceptorStore.open({ db, journal })
  await store.update('k', prepare(5))
  void db.put(encodeKey('k'), Buffer.from([2, 1, 2, 3]))
  journal.crash()
  const reopened = await AcceptorStore.open({ db, journal })
  t.same(reopened.get('k')?.promised, ballot(5), 'the journal\'s promise, now in the database too')
  t.same(decodeState(db.get(encodeKey('k'))!, 'k').promised, ballot(5))
})

t.test('on the real LMDB store and journal files: states survive a crash (replayed from the files), a torn tail is dropped and reported', async t => {
  const dataDir = mkdtempSync(join(tmpdir(), 'hearsay-acceptor-store-'))
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }))
  const kv = await KvStore.open({ dataDir, mapSizeBytes: 64 * 1024 * 1024 })
  t.teardown(() => kv.close())
  const store = await AcceptorStore.open({ db: kv.paxos, journal: kv.paxosJournal })
  await store.update('k', prepare(5))
  await store.update('k', (state) => decideAccept(state, ballot(5), rec(50, '17'), [{ hlc: 50, node: p }]))
  const directory = join(dataDir, PAXOS_JOURNAL_DIR)
  const [segment] = readdirSync(directory)
  t.ok(segment !== undefined, 'the journal has a segment file')
  // A crash in the middle of writing the next record, into the zeros the file allocated ahead.
  const file = join(directory, segment!)
  const held = readFileSync(file)
  t.ok(held.byteLength >= SEGMENT_ALLOCATION_BYTES, 'the segment file is allocated ahead')
  const end = held.byteLength - [...held].reverse().findIndex((byte) => byte !== 0)
  const fd = openSync(file, 'r+')
  writeSync(fd, Buffer.from([0, 0, 0, 40, 1, 2, 3]), 0, 7, end)
  closeSync(fd)
  const torn: number[] = []
  const fresh = await AcceptorStore.open({ db: kv.paxos, journal: kv.paxosJournal, onTornSegment: (_id, valid) => torn.push(valid) })
  t.same(torn, [end], 'the torn record was reported where it starts')
  t.same(fresh.get('k'), store.get('k'), 'the state replayed is the one written')
  t.equal(Buffer.from(fresh.get('k')!.accepted!.record.value!).toString(), '17')
  t.equal(readdirSync(directory).length, 1, 'the replayed segment was removed once checkpointed; the new one remains')
  // lmdb-js reads into a shared buffer much longer than this value: the state now comes from the database.
  const again = await AcceptorStore.open({ db: kv.paxos, journal: kv.paxosJournal })
  t.same(again.get('k'), store.get('k'), 'the state read from the database is the one written')
  await again.close()
  await fresh.close()
  await store.close()
})
