import t, { type Test } from 'tap'
import { createWriteStream, promises as fs } from 'node:fs'
import { join } from 'node:path'
import { pipeline } from 'node:stream/promises'
import { Readable } from 'node:stream'
import { KvStore } from '../../lib/store/kv-store.js'
import { prepareSnapshot, restoreSnapshot, verifySnapshotFile, SnapshotError } from '../../lib/store/snapshot.js'
import { hlcAt, openTestStore, put, TEST_MAP_SIZE_BYTES, text, tombstone, WALL_MS } from './fixture.js'

/** A snapshot of a store holding 200 records and a tombstone, written to a file. */
async function snapshotFile(t: Test): Promise<{ file: string; dir: string; id: string }> {
  const dir = t.testdir()
  const store = await openTestStore(t, join(dir, 'source'))
  const { id } = await store.identity.load()
  await store.applyMany(Array.from({ length: 200 }, (_, i) => ({ key: `k${i}`, record: put(`value ${i}`, hlcAt(WALL_MS, i)) })))
  await store.apply('gone', tombstone(hlcAt(WALL_MS, 999)))
  const prepared = await prepareSnapshot({
    backup: (directory) => store.backup(directory), nodeId: id, nodeName: 'alpha', partitions: 256, hearsayVersion: '0.1.0', nowMs: () => WALL_MS,
  }, join(dir, 'source', 'snapshot.tmp'))
  const file = join(dir, 'alpha.hsnap')
  await pipeline(Readable.from(prepared.chunks()), createWriteStream(file))
  await prepared.discard()
  t.notOk(await fs.stat(join(dir, 'source', 'snapshot.tmp')).catch(() => undefined), 'the temporary copy is removed')
  await store.close()
  return { file, dir, id }
}

const restoreOptions = (dataDir: string) => ({ dataDir, partitions: 256, hearsayVersion: '0.1.0' })

t.test('a snapshot restores into an empty data dir: same records, same node id', async t => {
  const { file, dir, id } = await snapshotFile(t)
  const header = await verifySnapshotFile(file)
  t.match(header, { format: 1, nodeId: id, nodeName: 'alpha', partitions: 256, hearsayVersion: '0.1.0', createdAtMs: WALL_MS, records: { kv: 201 } })
  const target = join(dir, 'restored')
  await restoreSnapshot(file, restoreOptions(target))
  const store = await KvStore.open({ dataDir: target, mapSizeBytes: TEST_MAP_SIZE_BYTES })
  t.teardown(() => store.close())
  t.equal((await store.identity.load()).id, id, 'the node id comes with the snapshot')
  t.equal(text(store.get('k7')), 'value 7')
  t.equal(store.get('gone')?.value, null, 'tombstones come too')
  t.equal(store.stats().keys, 201)
})

t.test('a non-empty data dir, another partition count or a newer hearsay is refused', async t => {
  const { file, dir } = await snapshotFile(t)
  const occupied = join(dir, 'occupied')
  await fs.mkdir(occupied)
  await fs.writeFile(join(occupied, 'data.mdb'), 'x')
  await t.rejects(restoreSnapshot(file, restoreOptions(occupied)), new SnapshotError(`the data directory ${occupied} is not empty (data.mdb); restore only into an empty or missing directory — move the old one aside first`))
  await t.rejects(restoreSnapshot(file, { ...restoreOptions(join(dir, 'a')), partitions: 64 }), /cluster with 256 partitions, this node is configured with partitions = 64/)
  await t.rejects(restoreSnapshot(file, { ...restoreOptions(join(dir, 'b')), hearsayVersion: '0.0.9' }), /written by hearsay 0\.1\.0, which this hearsayd 0\.0\.9 cannot read/)
  await t.resolves(restoreSnapshot(file, { ...restoreOptions(join(dir, 'c')), hearsayVersion: '0.2.3' }), 'an older minor of the same major restores')
  t.same(await fs.readdir(join(dir, 'a')).catch(() => []), [], 'a refused restore writes nothing')
})

t.test('a truncated, damaged or foreign file is refused and nothing is written', async t => {
  const { file, dir } = await snapshotFile(t)
  const bytes = await fs.readFile(file)
  const cases: [string, Buffer, RegExp][] = [
    ['truncated', bytes.subarray(0, bytes.length - 1000), /truncated/],
    ['cut in the header', bytes.subarray(0, 30), /truncated/],
    ['one byte flipped', Buffer.from(bytes.map((b, i) => i === bytes.length - 5000 ? b ^ 1 : b)), /does not match its checksum/],
    ['foreign', Buffer.from('PK\u0003\u0004 not a snapshot at all'), /is not a hearsay snapshot/],
    ['another format', Buffer.concat([bytes.subarray(0, 21), Buffer.from(bytes.subarray(21).toString('latin1').replace('"format":1', '"format":9'), 'latin1')]), /snapshot format 9/],
  ]
  for (const [name, content, error] of cases) {
    const damaged = join(dir, `${name}.hsnap`)
    await fs.writeFile(damaged, content)
    const target = join(dir, `target-${name}`)
    await t.rejects(restoreSnapshot(damaged, restoreOptions(target)), error, name)
    t.same(await fs.readdir(target).catch(() => []), [], `${name}: the data dir stays empty`)
  }
})
