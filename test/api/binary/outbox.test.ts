import t from 'tap'
import { Outbox } from '../../../lib/api/binary/outbox.js'

/** The end-of-turn coalescing of stream frames, and the lone frame that skips it. */

const frame = (byte: number, length = 3): Uint8Array => new Uint8Array(length).fill(byte)
const endOfTurn = (): Promise<void> => new Promise(resolve => setImmediate(resolve))

t.test('frames pushed in one turn leave together at the end of the turn', async t => {
  const written: Uint8Array[] = []
  const outbox = new Outbox(message => written.push(message), 1024)
  outbox.push(frame(1))
  outbox.push(frame(2))
  t.equal(written.length, 0, 'nothing is written within the turn')
  await endOfTurn()
  t.same(written.map(message => [...message]), [[1, 1, 1, 2, 2, 2]], 'one message, in order')
})

t.test('a frame pushed alone with nothing queued is written at once', async t => {
  const written: Uint8Array[] = []
  const outbox = new Outbox(message => written.push(message), 1024)
  outbox.push(frame(7), true)
  t.same(written.map(message => [...message]), [[7, 7, 7]], 'written within the call')
  await endOfTurn()
  t.equal(written.length, 1, 'and not again at the end of the turn')
})

t.test('a frame pushed alone behind queued frames waits for them and keeps the order', async t => {
  const written: Uint8Array[] = []
  const outbox = new Outbox(message => written.push(message), 1024)
  outbox.push(frame(1))
  outbox.push(frame(2), true)
  t.equal(written.length, 0, 'it joins the queue instead of overtaking it')
  await endOfTurn()
  t.same(written.map(message => [...message]), [[1, 1, 1, 2, 2, 2]])
})

t.test('a closed outbox writes nothing, alone or not', async t => {
  const written: Uint8Array[] = []
  const outbox = new Outbox(message => written.push(message), 1024)
  outbox.close()
  outbox.push(frame(1), true)
  outbox.push(frame(2))
  await endOfTurn()
  t.equal(written.length, 0)
})

t.test('a turn\'s frames beyond maxMessageBytes leave in several messages', async t => {
  const written: Uint8Array[] = []
  const outbox = new Outbox(message => written.push(message), 5)
  outbox.push(frame(1))
  outbox.push(frame(2))
  outbox.push(frame(3, 8))
  await endOfTurn()
  t.same(written.map(message => message.byteLength), [3, 3, 8], 'each within the bound, or alone when larger')
})
