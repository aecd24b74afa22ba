import fc from 'fast-check'
import { pack } from 'msgpackr'
import t from 'tap'
import { FrameCodec, MalformedFrameError } from '../../lib/codec/codec.js'
import { FRAME_TYPES, frameRegistry } from '../../lib/codec/frames.js'
import { DEFAULT_TRANSPORT_LIMITS } from '../../lib/transport/limits.js'
import { FUZZ_RUNS, msgpackValue } from './arbitraries.js'

/**
 * Every peer frame decoder (lib/codec with each protocol's validators) on arbitrary input: a
 * decode either yields frames or throws MalformedFrameError, which closes the link 1002. Any
 * other exception would close it 1011 as an internal error (issue 17).
 */

const codec = new FrameCodec(frameRegistry, DEFAULT_TRANSPORT_LIMITS)
const codes = FRAME_TYPES.map(type => type.code)

function decodesOrRefuses(bytes: Uint8Array): void {
  try {
    codec.decodeMessage(bytes)
  } catch (error) {
    if (!(error instanceof MalformedFrameError)) throw error
  }
}

t.test('arbitrary bodies for every frame type are decoded or refused as malformed', async t => {
  fc.assert(fc.property(fc.constantFrom(...codes), fc.nat(2 ** 32), msgpackValue, (code, requestId, body) => {
    decodesOrRefuses(pack([code, requestId, body]))
  }), { numRuns: FUZZ_RUNS * 4 })
  t.pass()
})

t.test('responses carrying arbitrary reply codes and bodies are decoded or refused', async t => {
  const response = frameRegistry.named('response').code
  fc.assert(fc.property(fc.oneof(fc.constantFrom(...codes), msgpackValue), fc.nat(2 ** 32), msgpackValue, (replyCode, requestId, body) => {
    decodesOrRefuses(pack([response, requestId, [replyCode, body]]))
  }), { numRuns: FUZZ_RUNS * 2 })
  t.pass()
})

t.test('arbitrary frames and random bytes are decoded or refused', async t => {
  fc.assert(fc.property(fc.array(msgpackValue, { minLength: 1, maxLength: 4 }), frames => {
    decodesOrRefuses(Buffer.concat(frames.map(frame => pack(frame))))
  }), { numRuns: FUZZ_RUNS })
  fc.assert(fc.property(fc.uint8Array({ minLength: 0, maxLength: 256 }), bytes => decodesOrRefuses(bytes)), { numRuns: FUZZ_RUNS })
  t.pass()
})

t.test('valid frames with bytes flipped are decoded or refused', async t => {
  const samples = [
    codec.encode('replicaRead', 3, { key: 'k' }),
    codec.encode('replicaWrite', 6, { entries: [{ key: 'k', value: Buffer.from('v'), hlc: 1_795_601_425_041_000, node: '0123456789abcdef', expiresAtMs: 5, strong: true }] }),
    codec.encodeResponse(7, { type: 'replicaWriteReply', body: { applied: [true, false, true], strong: [1] } }),
    codec.encode('replicaScan', 4, { prefix: 'p', limit: 10, maxBytes: 1024 }),
    codec.encode('error', 5, { code: 'handler', message: 'x' }),
  ]
  fc.assert(fc.property(fc.constantFrom(...samples), fc.array(fc.tuple(fc.nat(), fc.nat(255)), { minLength: 1, maxLength: 4 }), (sample, flips) => {
    const bytes = Buffer.from(sample)
    for (const [at, value] of flips) bytes[at % bytes.length] = value
    decodesOrRefuses(bytes)
  }), { numRuns: FUZZ_RUNS })
  t.pass()
})
