import t from 'tap'
import { Packr } from 'msgpackr'
import { CorruptRecordError, decodeRecord, encodeRecord, isStrongRecord, writeRecordVersion } from '../../lib/store/record-codec.js'
import { encodeSegmentVersion } from '../../lib/store/segment-index.js'
import { hlcAt, NODE_B, put, tombstone, WALL_MS } from './fixture.js'

t.test('records round-trip through their plain MessagePack form', async t => {
  for (const record of [put('v', hlcAt(WALL_MS, 3)), put(Uint8Array.from([0, 1, 255]), hlcAt(WALL_MS), NODE_B, WALL_MS + 5), tombstone(hlcAt(WALL_MS))]) {
    t.same(decodeRecord(encodeRecord(record), 'k'), record)
  }
  const plain = new Packr({ useRecords: false }).unpack(encodeRecord(put('v', hlcAt(WALL_MS))))
  t.same(plain, [1, hlcAt(WALL_MS), 'aaaaaaaaaaaaaaaa', Buffer.from('v'), null], 'any MessagePack reader sees a plain array')
})

t.test('encodeRecord writes exactly the bytes msgpackr writes for the record array', async t => {
  const packr = new Packr({ useRecords: false })
  const hlcs = [0, 1, 127, 128, 255, 256, 65535, 65536, 2 ** 32 - 1, 2 ** 32, hlcAt(WALL_MS), 2 ** 53 - 1]
  const values = [null, new Uint8Array(0), Buffer.from('v'), Buffer.alloc(255, 7), Buffer.alloc(256, 8), Buffer.alloc(65535, 9), Buffer.alloc(65536, 10)]
  const expiries = [undefined, 0, 200, 70_000, WALL_MS + 5]
  let cases = 0
  for (const hlc of hlcs) {
    for (const value of values) {
      for (const expiresAtMs of expiries) {
        for (const strong of [false, true]) {
          const record = { value, version: { hlc, node: NODE_B }, ...(expiresAtMs === undefined ? {} : { expiresAtMs }), ...(strong ? { strong: true as const } : {}) }
          const fields: unknown[] = [1, hlc, NODE_B, value, expiresAtMs ?? null]
          if (strong) fields.push(true)
          const expected = packr.pack(fields)
          const actual = encodeRecord(record)
          if (!expected.equals(actual)) t.fail(`${JSON.stringify({ hlc, valueBytes: value?.length, expiresAtMs, strong })}: ${actual.toString('hex').slice(0, 80)} != ${expected.toString('hex').slice(0, 80)}`)
          cases++
        }
      }
    }
  }
  t.equal(cases, hlcs.length * values.length * expiries.length * 2, 'every combination compared')
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

t.test('isStrongRecord reads the strong flag from the first byte, and decodes any other layout', async t => {
  t.equal(isStrongRecord(encodeRecord(put('v', hlcAt(WALL_MS))), 'k'), false)
  t.equal(isStrongRecord(encodeRecord({ ...put('v', hlcAt(WALL_MS)), strong: true }), 'k'), true)
  t.throws(() => isStrongRecord(Buffer.from([0xc1]), 'the/key'), CorruptRecordError, 'a byte no record starts with is decoded, and refused')
})
