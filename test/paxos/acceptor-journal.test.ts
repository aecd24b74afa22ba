import t from 'tap'
import { AcceptorJournal, AcceptorJournalFailedError, encodeJournalRecord, readJournalRecords, type JournalMedium, type JournalSegment } from '../../lib/paxos/acceptor-journal.js'
import { loadXxh64, XXH64_SEED } from '../../lib/hash/xxh64.js'

const { h64Raw } = await loadXxh64()
const checksum = (bytes: Uint8Array): bigint => h64Raw(bytes, XXH64_SEED)
const record = (key: string, state: string): Buffer => encodeJournalRecord(key, Buffer.from(state), checksum)
const text = (bytes: Uint8Array): string => Buffer.from(bytes).toString()

/** A medium that counts writes and syncs, and whose syncs complete when the test says. */
class Recording implements JournalMedium {
  readonly writes: { segment: number; chunks: number }[] = []
  readonly pendingSyncs: { resolve: () => void; reject: (error: Error) => void }[] = []
  readonly removed: number[] = []
  failWrite = false
  async list(): Promise<{ id: number; bytes: Uint8Array }[]> { return [] }
  create(id: number): JournalSegment {
    return {
      id,
      write: (chunks) => {
        if (this.failWrite) throw new Error('ENOSPC')
        this.writes.push({ segment: id, chunks: chunks.length })
      },
      sync: () => new Promise((resolve, reject) => this.pendingSyncs.push({ resolve, reject })),
      close: async () => undefined,
    }
  }
  async remove(id: number): Promise<void> { this.removed.push(id) }
}

const microtasks = (): Promise<void> => new Promise((resolve) => setImmediate(resolve))

t.test('records read back in order; every cut of the last one is a torn tail, never a wrong record', async t => {
  const records = [record('a', 'one'), record('key/with/ünicode', 'two'), record('c', '')]
  const all = Buffer.concat(records)
  const whole = readJournalRecords(all, checksum)
  t.same(whole.records.map((r) => [r.key, text(r.state)]), [['a', 'one'], ['key/with/ünicode', 'two'], ['c', '']])
  t.equal(whole.validBytes, all.byteLength)
  t.equal(whole.torn, false)
  const start = all.byteLength - (records[2] as Buffer).byteLength
  for (let cut = start + 1; cut < all.byteLength; cut++) {
    const read = readJournalRecords(all.subarray(0, cut), checksum)
    t.equal(read.records.length, 2, `cut at ${cut}: the two whole records`)
    t.equal(read.validBytes, start)
  }
  t.equal(readJournalRecords(Buffer.concat([all, Buffer.alloc(4096)]), checksum).torn, false, 'zeros after the last record are free space')
})

t.test('a changed byte anywhere in a record stops the replay at that record', async t => {
  const all = Buffer.concat([record('a', 'one'), record('b', 'two')])
  const first = record('a', 'one').byteLength
  for (let at = first; at < all.byteLength; at++) {
    const bad = Buffer.from(all)
    bad[at] = (bad[at] as number) ^ 0x10
    const read = readJournalRecords(bad, checksum)
    t.same(read.records.map((r) => r.key), ['a'], `byte ${at} changed`)
    t.equal(read.torn, true)
  }
})

t.test('the records of one synchronous run share one write and one sync; later ones wait for the sync in flight and go together', async t => {
  const medium = new Recording()
  const journal = new AcceptorJournal(medium, medium.create(1))
  journal.append(record('a', '1'))
  journal.append(record('b', '2'))
  const first = journal.durable()
  let firstDone = false
  void first.then(() => { firstDone = true })
  await microtasks()
  t.same(medium.writes, [{ segment: 1, chunks: 2 }], 'one write of both records')
  t.equal(medium.pendingSyncs.length, 1, 'one sync')
  journal.append(record('c', '3'))
  await microtasks()
  journal.append(record('d', '4'))
  const second = journal.durable()
  await microtasks()
  t.equal(medium.writes.length, 1, 'nothing more is written while the sync is in flight')
  t.equal(firstDone, false, 'not durable before its sync completes')
  medium.pendingSyncs.shift()!.resolve()
  await first
  await microtasks()
  t.same(medium.writes.at(-1), { segment: 1, chunks: 2 }, 'the two appended meanwhile go in one write')
  medium.pendingSyncs.shift()!.resolve()
  await second
  t.equal(medium.pendingSyncs.length, 0)
  await t.resolves(journal.durable(), 'nothing pending: durable at once')
})

t.test('a failed write fails what waits and everything after it', async t => {
  const medium = new Recording()
  const journal = new AcceptorJournal(medium, medium.create(1))
  medium.failWrite = true
  journal.append(record('a', '1'))
  await t.rejects(journal.durable(), AcceptorJournalFailedError)
  t.throws(() => journal.append(record('b', '2')), AcceptorJournalFailedError)
  await t.rejects(journal.durable(), /ENOSPC/)
  t.throws(() => journal.rotate(), AcceptorJournalFailedError)
})

t.test('a failed sync fails its group and the one waiting behind it', async t => {
  const medium = new Recording()
  const journal = new AcceptorJournal(medium, medium.create(1))
  journal.append(record('a', '1'))
  const first = journal.durable()
  await microtasks()
  journal.append(record('b', '2'))
  const second = journal.durable()
  medium.pendingSyncs.shift()!.reject(new Error('EIO'))
  await t.rejects(first, /EIO/)
  await t.rejects(second, AcceptorJournalFailedError)
})

t.test('rotation: later records go to the next segment; released segments are removed', async t => {
  const medium = new Recording()
  const journal = new AcceptorJournal(medium, medium.create(4))
  journal.append(record('a', '1'))
  t.ok(journal.segmentBytes > 0)
  journal.rotate()
  t.equal(journal.segmentBytes, 0)
  await microtasks()
  t.same(medium.writes, [{ segment: 5, chunks: 1 }], 'a record appended before the rotation but not yet written goes to the new segment')
  medium.pendingSyncs.shift()!.resolve()
  await journal.releaseRetired()
  t.same(medium.removed, [4])
})
