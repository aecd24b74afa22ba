import t from 'tap'
import { Packr } from 'msgpackr'
import { CorruptRecordError, decodeRecord, encodeRecord, writeRecordVersion } from '../../lib/store/record-codec.js'
import { encodeSegmentVersion } from '../../lib/store/segment-index.js'
import { hlcAt, NODE_B, put, tombstone, WALL_MS } from './fixture.js'

t.test('records round-trip through their plain MessagePack form', async t => {
  for (const record of [put('v', hlcAt(WALL_MS, 3)), put(Uint8Array.from([0, 1, 255]), hlcAt(WALL_MS), NODE_B, WALL_MS + 5), tombstone(hlcAt(WALL_MS))]) {
    t.same(decodeRecord(encodeRecord(record), 'k'), record)
  }
  const plain = new Packr({ useRecords: false }).unpack(encodeRecord(put('v', hlcAt(WALL_MS))))
  t.same(plain, [1, hlcAt(WALL_MS), 'aaaaaaaaaaaaaaaa', Buffer.from('v'), null], 'any MessagePack reader sees a plain array')
})

t.test('bytes that are not a record are reported as corrupt, naming the key', async t => {
  const packr = new Packr({ useRecords: false })
  const cases = [
    Buffer.from([0xc1]),
    packr.pack({ value: 'x' }),
    packr.pack([2, 1, 'aaaaaaaaaaaaaaaa', null, null]),
    packr.pack([1, -1, 'aaaaaaaaaaaaaaaa', null, null]),
    packr.pack([1, 1, 'not-a-node-id', null, null]),
    packr.pack([1, 1, 'aaaaaaaaaaaaaaaa', 'text', null]),
    packr.pack([1, 1, 'aaaaaaaaaaaaaaaa', null, 'soon']),
  ]
  for (const bytes of cases) t.throws(() => decodeRecord(bytes, 'the/key'), { name: 'CorruptRecordError', message: /"the\/key"/ })
  t.throws(() => decodeRecord(Buffer.from([0xc1]), 'k'), CorruptRecordError)
})

t.test('records no caller should build are refused when encoding', async t => {
  t.throws(() => encodeRecord({ value: null, version: { hlc: Number.MAX_SAFE_INTEGER + 1, node: NODE_B } }), TypeError)
  t.throws(() => encodeRecord({ value: 'text' as unknown as Uint8Array, version: { hlc: 1, node: NODE_B } }), TypeError)
  t.throws(() => encodeRecord({ value: null, version: { hlc: 1, node: NODE_B }, expiresAtMs: 1.5 }), TypeError)
})

t.test('the version bytes read straight from a record equal those of its decoded version, for every width msgpackr gives an hlc', async t => {
  const into = new Uint8Array(16)
  for (const hlc of [0, 5, 127, 200, 65_535, 70_000, 2 ** 32 - 1, 2 ** 32 + 5, hlcAt(WALL_MS, 7), Number.MAX_SAFE_INTEGER]) {
    for (const record of [put('v', hlc, NODE_B), tombstone(hlc), { ...put('v', hlc), strong: true as const }, put('v', hlc, NODE_B, WALL_MS + 5)]) {
      const bytes = encodeRecord(record)
      into.fill(0)
      t.ok(writeRecordVersion(bytes, into), `hlc ${hlc} read`)
      t.same(Buffer.from(into), encodeSegmentVersion(decodeRecord(bytes, 'k').version), `hlc ${hlc}: the same 16 bytes`)
    }
  }
})

t.test('bytes outside the layout encodeRecord writes are left to the full decoder', async t => {
  const packr = new Packr({ useRecords: false })
  const into = new Uint8Array(16)
  for (const bytes of [
    Buffer.from([0xc1]),
    Buffer.from([0x95, 0x01]),
    packr.pack({ value: 'x' }),
    packr.pack([2, 1, 'aaaaaaaaaaaaaaaa', null, null]),
    packr.pack([1, -1, 'aaaaaaaaaaaaaaaa', null, null]),
    packr.pack([1, 1.5, 'aaaaaaaaaaaaaaaa', null, null]),
    packr.pack([1, 1, 'not-a-node-id', null, null]),
    packr.pack([1, 1, 'AAAAAAAAAAAAAAAA', null, null]),
    encodeRecord(put('v', hlcAt(WALL_MS))).subarray(0, 20),
  ]) t.notOk(writeRecordVersion(bytes, into), `refused: ${bytes.toString('hex')}`)
})
