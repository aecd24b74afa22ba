import fc from 'fast-check'
import { Packr } from 'msgpackr'
import t from 'tap'
import { WebSocket } from 'ws'
import { StreamCodec, UndecodableMessageError } from '../../lib/api/binary/codec.js'
import { ProtocolViolationError, frameRequestId, parseRequest } from '../../lib/api/binary/requests.js'
import { HearsayError } from '../../lib/errors.js'
import { TEST_LIMITS, startApi } from '../api/fixtures/harness.js'
import { FUZZ_RUNS, leaf, msgpackValue } from './arbitraries.js'

/**
 * The client stream protocol on arbitrary input: the codec decodes or refuses a message, a frame
 * has a requestId or is a protocol violation, a request parses or is a typed error; a live
 * server answers every frame below 500 or closes with a protocol code, never 1011 (issue 17).
 */

const packr = new Packr({ useRecords: false })
const codec = new StreamCodec()

t.test('the stream codec and request parser return or refuse on any input', async t => {
  fc.assert(fc.property(fc.uint8Array({ maxLength: 256 }), bytes => {
    try {
      codec.decodeMessage(bytes, 16)
    } catch (error) {
      if (!(error instanceof UndecodableMessageError)) throw error
    }
  }), { numRuns: FUZZ_RUNS })
  fc.assert(fc.property(msgpackValue, frame => {
    try {
      frameRequestId(frame)
    } catch (error) {
      if (!(error instanceof ProtocolViolationError)) throw error
      return
    }
    try {
      parseRequest(frame as unknown[], TEST_LIMITS)
    } catch (error) {
      if (!(error instanceof HearsayError)) throw error
    }
  }), { numRuns: FUZZ_RUNS * 4 })
  t.pass()
})

/** Frames shaped like requests: a valid id and op with arbitrary arguments. */
const requestFrame = fc.tuple(fc.constantFrom(1, 2, 3, 4, 5, 0, -1, 'get'), fc.array(fc.oneof(leaf, msgpackValue), { maxLength: 5 }))

t.test('a live stream endpoint answers arbitrary frames below 500 or closes with a protocol code', async t => {
  const api = await startApi(t)
  let socket: WebSocket | undefined
  let closeCode: number | undefined
  const statuses: number[] = []
  const open = async (): Promise<WebSocket> => {
    if (socket !== undefined && socket.readyState === WebSocket.OPEN) return socket
    const next = new WebSocket(`${api.url.replace(/^http/, 'ws')}/v1/stream`)
    next.on('error', () => {})
    next.on('message', (data: Buffer) => packr.unpackMultiple(data, (frame: unknown) => { statuses.push((frame as unknown[])[1] as number) }))
    next.on('close', code => { closeCode = code })
    await new Promise<void>((resolve, reject) => { next.once('open', () => resolve()); next.once('error', reject) })
    socket = next
    return next
  }
  t.teardown(() => socket?.terminate())
  let nextId = 1
  await fc.assert(fc.asyncProperty(fc.array(requestFrame, { minLength: 1, maxLength: 4 }), fc.boolean(), async (frames, raw) => {
    const ws = await open()
    closeCode = undefined
    const message = raw
      ? Buffer.concat(frames.map(([, args]) => packr.pack(args)))
      : Buffer.concat(frames.map(([op, args]) => packr.pack([nextId++, op, ...args])))
    ws.send(message)
    await new Promise(resolve => setTimeout(resolve, 2))
    if (closeCode !== undefined && closeCode !== 1002 && closeCode !== 1007 && closeCode !== 1009) throw new Error(`closed with ${closeCode}`)
  }), { numRuns: FUZZ_RUNS })
  await new Promise(resolve => setTimeout(resolve, 50))
  t.ok(statuses.length > 0, `${statuses.length} answers`)
  t.same(statuses.filter(status => status >= 500 && status !== 503), [], 'no answer of 500 or above but 503')
  t.notOk(api.logLines.some(line => line.level === 50), 'nothing was logged as an error')
})
