import t from 'tap'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { KvStore } from '../../lib/store/kv-store.js'
import type { NodeId } from '../../lib/clock/version.js'
import { decideAccept, decidePrepare } from '../../lib/paxos/acceptor-state.js'
import { AcceptorStore, MAX_CACHED_STATES } from '../../lib/paxos/acceptor-store.js'
import { MemoryDatabase } from '../../lib/sim/memory-database.js'
import type { StoredRecord } from '../../lib/store/record.js'

const p = 'aaaaaaaaaaaaaaaa' as NodeId
const rec = (hlc: number, text: string): StoredRecord => ({ value: Buffer.from(text), version: { hlc, node: p }, strong: true })

/** A database whose next commits fail after their transaction ran (a full disk, say). */
class FailingCommits extends MemoryDatabase<Uint8Array, Uint8Array> {
  failNext = false
  override async transaction<T>(action: () => T): Promise<T> {
    if (!this.failNext) return super.transaction(action)
    this.failNext = false
    // The writes are thrown away with the transaction.
    const saved = [...this.getRange()].map(({ key, value }) => ({ key, value }))
    action()
    for (const key of [...this.getKeys()]) this.removeNow(key)
    for (const { key, value } of saved) this.putNow(key, value)
    throw new Error('MDB_MAP_FULL')
  }
}

t.test('a state read back after a write is the one written, also once the cache let it go', async t => {
  const db = new MemoryDatabase<Uint8Array, Uint8Array>()
  const store = new AcceptorStore(db)
  await store.update('k', (state) => decidePrepare(state, { counter: 5, node: p }))
  await store.update('k', (state) => decideAccept(state, { counter: 5, node: p }, rec(50, 'v'), [{ hlc: 50, node: p }]))
  t.same(store.get('k')?.accepted?.ballot, { counter: 5, node: p })
  // Push 'k' out of the cache with other keys; it is then read (and decoded) from the database.
  for (let i = 0; i <= MAX_CACHED_STATES; i++) await store.update(`other-${i}`, (state) => decidePrepare(state, { counter: 1, node: p }))
  t.same(store.get('k'), new AcceptorStore(db).get('k'), 'what is cached is what is stored')
  t.equal(Buffer.from(store.get('k')!.accepted!.record.value!).toString(), 'v')
})

t.test('a transaction that fails leaves no state in the cache that never reached the disk', async t => {
  const db = new FailingCommits()
  const store = new AcceptorStore(db)
  await store.update('k', (state) => decidePrepare(state, { counter: 5, node: p }))
  db.failNext = true
  await t.rejects(store.update('k', (state) => decidePrepare(state, { counter: 9, node: p })), /MDB_MAP_FULL/)
  t.same(store.get('k')?.promised, { counter: 5, node: p }, 'the promise of 9 was not kept: the durable promise of 5 is what counts')
  t.same((await store.update('k', (state) => decidePrepare(state, { counter: 7, node: p }))), { ok: true, accepted: undefined }, 'so a prepare at 7 is promised')
})

t.test('on the real LMDB store, a state read back from disk (no cache: a restarted node) decodes', async t => {
  const dataDir = mkdtempSync(join(tmpdir(), 'hearsay-acceptor-store-'))
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }))
  const kv = await KvStore.open({ dataDir, mapSizeBytes: 64 * 1024 * 1024 })
  t.teardown(() => kv.close())
  const store = new AcceptorStore(kv.paxos)
  await store.update('k', (state) => decidePrepare(state, { counter: 5, node: p }))
  await store.update('k', (state) => decideAccept(state, { counter: 5, node: p }, rec(50, '17'), [{ hlc: 50, node: p }]))
  // lmdb-js reads into a shared buffer much longer than this value: before the fix the decoder
  // saw its whole length and refused the state as corrupt ("trailing bytes").
  const fresh = new AcceptorStore(kv.paxos)
  t.same(fresh.get('k'), store.get('k'), 'the state read from disk is the one written')
  t.equal(Buffer.from(fresh.get('k')!.accepted!.record.value!).toString(), '17')
})
