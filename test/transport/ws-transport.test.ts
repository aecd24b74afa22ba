import t, { type Test } from 'tap'
import { once } from 'node:events'
import net from 'node:net'
import { WebSocket } from 'ws'
import { FrameCodec } from '../../lib/codec/codec.js'
import { NONCE_BYTES, PROTOCOL_VERSION, type WelcomeBody } from '../../lib/codec/transport-frames.js'
import { computeProof } from '../../lib/transport/handshake.js'
import { TransportError, type PeerMessage } from '../../lib/transport/transport.js'
import { identity, testRegistry, type TextBody } from './fixtures.js'
import { TEST_LIMITS, eventually, startNode, type TestNode } from './ws-harness.js'

const codec = new FrameCodec(testRegistry, { maxFrameBytes: 64 * 1024, maxFramesPerMessage: 256 })

function echo(text: string, n = 0): PeerMessage {
  return { type: 'test.echo', body: { text, n } }
}

function serveEcho(node: TestNode): void {
  node.transport.handle('test.echo', (_from, message) => ({ type: 'test.echoed', body: message.body }))
}

async function started(t: Test, index: number, options: Parameters<typeof startNode>[1] = {}): Promise<TestNode> {
  const node = await startNode(index, options)
  t.teardown(() => node.transport.close())
  return node
}

/** A WebSocket client that speaks whatever the test makes it speak. */
async function rawClient(port: number, autoPong = true): Promise<{ socket: WebSocket; closed: Promise<number>; frames: Buffer[] }> {
  const socket = new WebSocket(`ws://127.0.0.1:${port}/`, { perMessageDeflate: false, autoPong })
  const frames: Buffer[] = []
  socket.on('message', (data: Buffer) => frames.push(data))
  socket.on('error', () => { /* the server closing on us is what these tests expect */ })
  const closed = new Promise<number>(resolve => socket.on('close', code => resolve(code)))
  await once(socket, 'open')
  return { socket, closed, frames }
}

/** Raw handshake as a dialer without a secret; returns once the link is established. */
async function rawHandshake(client: { socket: WebSocket; frames: Buffer[] }, index: number, self = identity(index)): Promise<void> {
  const nonce = new Uint8Array(NONCE_BYTES).fill(index)
  client.socket.send(codec.encode('hello', 0, { protocol: PROTOCOL_VERSION, cluster: 'test', ...self, nonce }))
  if (!await eventually(() => client.frames.length > 0)) throw new Error('no welcome')
  const [welcome] = codec.decodeMessage(client.frames[0]!)
  const body = welcome!.body as WelcomeBody
  client.socket.send(codec.encode('proof', 0, { proof: computeProof('', 'dialer', nonce, body.nonce, self.id) }))
}

async function rejection(promise: Promise<unknown>): Promise<TransportError | undefined> {
  try {
    await promise
    return undefined
  } catch (error) {
    if (error instanceof TransportError) return error
    throw error
  }
}

t.test('two nodes complete the handshake and exchange one-way messages and requests', async t => {
  const a = await started(t, 1)
  const b = await started(t, 2)
  serveEcho(b)
  const notes: { from: string; body: unknown }[] = []
  b.transport.handle('test.note', (from, message) => { notes.push({ from: from.name, body: message.body }); return undefined })

  a.transport.send(b.identity.peer, { type: 'test.note', body: { text: 'first', n: 1 } })
  const answer = await a.transport.request(b.identity.peer, echo('ping', 2), 5000)
  t.same(answer, { type: 'test.echoed', body: { text: 'ping', n: 2 } })
  t.same(notes, [{ from: 'node-1', body: { text: 'first', n: 1 } }], 'the note arrived before the answer, from the proven identity')
  t.same(a.connected.map(peer => peer.id), [b.identity.id], 'A reports B connected')
  t.ok(await eventually(() => b.connected.length === 1), 'B reports A connected')
  t.same(b.connected[0], a.identity, 'B knows A by its hello')
  t.same(a.transport.links().map(link => [link.id, link.direction]), [[b.identity.id, 'outbound']])
  t.same(b.transport.links().map(link => [link.id, link.direction]), [[a.identity.id, 'inbound']])

  const reverse = await b.transport.request(a.identity.peer, echo('back'), 5000).catch((error: unknown) => error)
  t.match(reverse, { code: 'remote', message: /unhandled: no handler for test.echo/ }, 'B reuses the link; A has no echo handler')
  t.same(b.transport.links().length, 1, 'still one link')
  for (const type of ['test.note', 'test.echo', 'test.echoed']) {
    const sent = a.counters.bytes.get(`sent:${type}`) ?? b.counters.bytes.get(`sent:${type}`) ?? 0
    const received = b.counters.bytes.get(`received:${type}`) ?? a.counters.bytes.get(`received:${type}`) ?? 0
    t.ok(sent > 0, `${type}: bytes counted where it was sent`)
    t.equal(received, sent, `${type}: the receiver counts the same bytes as the sender`)
  }
})

t.test('many frames queued in one turn arrive in order', async t => {
  const a = await started(t, 1)
  const b = await started(t, 2)
  serveEcho(b)
  const seen: number[] = []
  b.transport.handle('test.note', (_from, message) => { seen.push((message.body as TextBody).n); return undefined })
  const count = 600
  for (let n = 0; n < count; n++) a.transport.send(b.identity.peer, { type: 'test.note', body: { text: 'x', n } })
  await a.transport.request(b.identity.peer, echo('after'), 5000)
  t.equal(seen.length, count)
  t.ok(seen.every((n, index) => n === index), 'in the order sent')
})

t.test('a wrong secret is refused on both sides, logged with the reason, and reaches no handler', async t => {
  const a = await started(t, 1, { secret: 'alpha-secret' })
  const b = await started(t, 2, { secret: 'bravo-secret' })
  let handled = 0
  b.transport.handle('test.note', () => { handled++; return undefined })
  serveEcho(b)
  a.transport.send(b.identity.peer, { type: 'test.note', body: { text: 'let me in', n: 0 } })
  const error = await rejection(a.transport.request(b.identity.peer, echo('let me in'), 5000))
  t.equal(error?.code, 'refused', 'the request fails as refused')
  t.match(error?.message, /wrong cluster secret/)
  t.ok(await eventually(() => b.counters.refusals.length > 0), 'B counted the refusal')
  t.same(a.counters.refusals.slice(0, 1), ['local:auth'], 'A (the dialer) refused: the acceptor\'s proof does not match')
  t.same(b.counters.refusals.slice(0, 1), ['remote:auth'])
  t.match(a.log.text(), /refused the peer link: the acceptor's proof does not match: wrong cluster secret/)
  t.match(b.log.text(), /the peer refused the link: the acceptor's proof does not match: wrong cluster secret/)
  t.equal(handled, 0, 'no handler ran')
  t.same(a.connected, [], 'no connection was reported')
  t.same(b.connected, [])
})

t.test('a node without a secret and one with a secret refuse each other', async t => {
  const a = await started(t, 1)
  const b = await started(t, 2, { secret: 'only-b' })
  serveEcho(b)
  const error = await rejection(a.transport.request(b.identity.peer, echo('x'), 5000))
  t.equal(error?.code, 'refused')
  t.match(error?.message, /cluster secret/)
  t.ok(await eventually(() => b.counters.refusals.includes('remote:auth')))
})

t.test('the same secret on both sides lets the link through', async t => {
  const a = await started(t, 1, { secret: 'shared' })
  const b = await started(t, 2, { secret: 'shared' })
  serveEcho(b)
  t.same(await a.transport.request(b.identity.peer, echo('ok'), 5000), { type: 'test.echoed', body: { text: 'ok', n: 0 } })
  t.same(a.counters.refusals, [])
})

t.test('a different cluster name is refused on both sides', async t => {
  const a = await started(t, 1, { clusterName: 'blue' })
  const b = await started(t, 2, { clusterName: 'green' })
  serveEcho(b)
  const error = await rejection(a.transport.request(b.identity.peer, echo('x'), 5000))
  t.equal(error?.code, 'refused')
  t.match(error?.message, /cluster "blue", this node to "green"/)
  t.ok(await eventually(() => a.counters.refusals.includes('remote:cluster')))
  t.same(b.counters.refusals, ['local:cluster'])
  t.match(b.log.text(), /refused the peer link: the dialer belongs to cluster "blue"/)
})

t.test('requests time out, and remote failures come back as remote errors', async t => {
  const a = await started(t, 1)
  const b = await started(t, 2)
  let release: () => void = () => {}
  b.transport.handle('test.slow', (_from, message) => new Promise<PeerMessage>(resolve => {
    release = () => resolve({ type: 'test.echoed', body: message.body })
  }))
  b.transport.handle('test.echo', () => { throw new Error('disk on fire') })
  const timedOut = await rejection(a.transport.request(b.identity.peer, { type: 'test.slow', body: { text: 'x', n: 0 } }, 300))
  t.equal(timedOut?.code, 'timeout')
  release()
  const failed = await rejection(a.transport.request(b.identity.peer, echo('x'), 5000))
  t.equal(failed?.code, 'remote')
  t.match(failed?.message, /handler: test.echo handler failed: disk on fire/)
  t.match(b.log.text(), /request handler failed/)
  t.same(a.transport.links().length, 1, 'the late answer was ignored and the link stays up')
})

t.test('a closed acceptor is redialed with backoff once it is back', async t => {
  const a = await started(t, 1)
  let b = await startNode(2)
  serveEcho(b)
  await a.transport.request(b.identity.peer, echo('one'), 5000)
  await b.transport.close()
  t.ok(await eventually(() => a.disconnected.length === 1), 'A reports the disconnection')
  const pending = a.transport.request(b.identity.peer, echo('two'), 10_000)
  b = await startNode(2, { port: b.port })
  t.teardown(() => b.transport.close())
  serveEcho(b)
  t.same(await pending, { type: 'test.echoed', body: { text: 'two', n: 0 } }, 'the queued request went through the new link')
  t.same(a.connected.length, 2)
})

t.test('a peer that is not there: requests time out and nothing crashes', async t => {
  const a = await started(t, 1)
  const nobody = `127.0.0.1:${await (await import('./ws-harness.js')).freePort()}`
  a.transport.connect(nobody)
  const error = await rejection(a.transport.request(nobody, echo('anyone?'), 500))
  t.equal(error?.code, 'timeout')
  a.transport.forget(nobody)
  t.same(a.transport.links(), [])
})

t.test('when both nodes dial each other at once, both keep the one link the lower id dialed', async t => {
  for (let round = 0; round < 4; round++) {
    const a = await startNode(1)
    const b = await startNode(2)
    a.transport.connect(b.identity.peer)
    b.transport.connect(a.identity.peer)
    const settled = await eventually(() => a.transport.links().length === 1 && b.transport.links().length === 1 &&
      a.transport.links()[0]!.direction === 'outbound' && b.transport.links()[0]!.direction === 'inbound')
    t.ok(settled, `round ${round}: one link each, dialed by node 1 (the lower id)`)
    // Traffic flows both ways over it.
    serveEcho(a)
    serveEcho(b)
    t.same(await b.transport.request(a.identity.peer, echo('b to a'), 5000), { type: 'test.echoed', body: { text: 'b to a', n: 0 } })
    t.same(await a.transport.request(b.identity.peer, echo('a to b'), 5000), { type: 'test.echoed', body: { text: 'a to b', n: 0 } })
    t.same(a.transport.links().length + b.transport.links().length, 2)
    await a.transport.close()
    await b.transport.close()
  }
})

t.test('garbage on the peer port closes that connection only', async t => {
  const b = await started(t, 2)
  const a = await started(t, 1)
  serveEcho(b)
  await a.transport.request(b.identity.peer, echo('before'), 5000)

  const undecodable = await rawClient(b.port)
  undecodable.socket.send(Buffer.from([0xd9, 0x10, 0x41]))
  t.equal(await undecodable.closed, 1002, 'undecodable bytes: closed as a protocol error')

  const text = await rawClient(b.port)
  text.socket.send('hello?')
  t.equal(await text.closed, 1002, 'a text message: closed')

  const early = await rawClient(b.port)
  early.socket.send(codec.encode('test.note', 0, { text: 'sneaky', n: 0 }))
  t.equal(await early.closed, 1002, 'a message before the handshake: closed')

  const big = await rawClient(b.port)
  big.socket.send(Buffer.alloc((TEST_LIMITS.maxHandshakeMessageBytes ?? 0) + 1, 0x90))
  t.equal(await big.closed, 1002, 'an oversized message before the handshake: closed')

  const huge = await rawClient(b.port)
  huge.socket.send(Buffer.alloc((TEST_LIMITS.maxFrameBytes ?? 0) + 1, 0x90))
  t.equal(await huge.closed, 1009, 'a message over maxPayload: closed by ws as too big')

  const tcp = net.connect(b.port, '127.0.0.1')
  tcp.on('error', () => { /* reset by the server */ })
  await once(tcp, 'connect')
  tcp.write('\x00\xffgarbage\r\n\r\n')
  await once(tcp, 'close')
  t.pass('raw TCP garbage: the server closed the socket')

  t.ok(await eventually(() => b.counters.malformedReasons.length === 6), 'six malformed connections counted')
  t.same([...b.counters.malformedReasons].sort(), ['bad-frame', 'oversized', 'oversized', 'undecodable', 'undecodable', 'undecodable'])
  t.match(b.log.text(), /malformed message from peer; closing the link/)
  t.same(await a.transport.request(b.identity.peer, echo('after'), 5000), { type: 'test.echoed', body: { text: 'after', n: 0 } }, 'other links keep working')
})

t.test('a malformed frame on an established link closes it before any handler sees it', async t => {
  const b = await started(t, 2)
  const received: unknown[] = []
  b.transport.handle('test.note', (_from, message) => { received.push(message.body); return undefined })
  const client = await rawClient(b.port)
  await rawHandshake(client, 9)
  client.socket.send(codec.joinMessage([codec.encode('test.note', 0, { text: 'good', n: 1 }), Buffer.from(codecBadNote())]))
  t.equal(await client.closed, 1002)
  t.same(received, [], 'a message is validated whole: not even its good first frame was handled')
  t.same(b.counters.malformedReasons, ['bad-body'])
  t.match(b.log.text(), /bad test.note body: test.note.n is not a non-negative integer/)
})

function codecBadNote(): Uint8Array {
  // A test.note whose n is a string: valid MessagePack, invalid body.
  return Buffer.from([0x93, 0x72, 0x00, 0x82, 0xa4, ...Buffer.from('text'), 0xa0, 0xa1, 0x6e, 0xa1, 0x78])
}

t.test('a handshake that does not finish in time is closed', async t => {
  const b = await started(t, 2, { limits: { handshakeTimeoutMs: 200 } })
  const silent = await rawClient(b.port)
  t.equal(await silent.closed, 4001)
  t.ok(await eventually(() => b.counters.closed.includes('handshake_timeout')))
})

t.test('a hello in another protocol version is refused with the reason', async t => {
  const b = await started(t, 2)
  const client = await rawClient(b.port)
  const other = PROTOCOL_VERSION + 1
  client.socket.send(codec.encode('hello', 0, { protocol: other, anything: 'goes' }))
  t.equal(await client.closed, 1008)
  const [refuse] = codec.decodeMessage(client.frames[0]!)
  t.same(refuse?.body, { code: 'protocol', reason: `the dialer speaks protocol ${other}, this node speaks ${PROTOCOL_VERSION}` })
  t.same(b.counters.refusals, ['local:protocol'])
})

t.test('a link whose peer stops answering pings is closed', async t => {
  const b = await started(t, 2, { limits: { keepaliveIntervalMs: 100 } })
  const client = await rawClient(b.port, false)
  await rawHandshake(client, 9)
  t.equal(await client.closed, 4002)
  t.ok(b.counters.closed.includes('keepalive'))
})

t.test('a peer dialed by another name shares one link with its advertised address', async t => {
  const a = await started(t, 1)
  const b = await started(t, 2)
  serveEcho(b)
  t.same(await a.transport.request(`localhost:${b.port}`, echo('by name'), 5000), { type: 'test.echoed', body: { text: 'by name', n: 0 } })
  t.same(await a.transport.request(b.identity.peer, echo('by address'), 5000), { type: 'test.echoed', body: { text: 'by address', n: 0 } })
  t.same(await a.transport.request(`localhost:${b.port}`, echo('by name again'), 5000), { type: 'test.echoed', body: { text: 'by name again', n: 0 } })
  t.same(a.transport.links().map(link => link.peer), [b.identity.peer])
  t.same(a.counters.opened, ['outbound'], 'one link was ever opened')
})

t.test('a node that reaches itself under another name refuses the link', async t => {
  const a = await started(t, 1)
  serveEcho(a)
  const error = await rejection(a.transport.request(`localhost:${a.port}`, echo('me?'), 5000))
  t.equal(error?.code, 'refused')
  t.match(error?.message, /this node's own id/)
})

t.test('a peer that dials again replaces its older link', async t => {
  const b = await started(t, 2)
  const first = await rawClient(b.port)
  await rawHandshake(first, 9)
  t.ok(await eventually(() => b.transport.links().length === 1), 'the first link is established')
  const second = await rawClient(b.port)
  await rawHandshake(second, 9)
  t.equal(await first.closed, 4000, 'the older link is closed as replaced')
  t.ok(await eventually(() => b.counters.opened.length === 2))
  t.same(b.transport.links().map(link => link.id), [identity(9).id], 'one link to the peer remains')
  t.same(b.connected.length, 1, 'the peer never looked disconnected')
  second.socket.close()
})

t.test('a peer claiming this node\'s own address is refused', async t => {
  const b = await started(t, 2)
  const client = await rawClient(b.port)
  await rawHandshake(client, 9, identity(9, b.port)).catch(() => undefined)
  t.equal(await client.closed, 1008)
  t.same(b.counters.refusals, ['local:identity'])
})

t.test('inbound handshakes in progress are bounded', async t => {
  const b = await started(t, 2, { limits: { maxPendingHandshakes: 1 } })
  const silent = await rawClient(b.port)
  const turnedAway = await new Promise<number>(resolve => {
    const socket = new WebSocket(`ws://127.0.0.1:${b.port}/`)
    socket.on('unexpected-response', (_request, response) => {
      resolve(response.statusCode ?? 0)
      socket.terminate()
    })
    socket.on('error', () => resolve(-1))
  })
  t.equal(turnedAway, 503)
  t.same(b.counters.refusals, ['local:busy'])
  silent.socket.close()
})

t.test('one address cannot hold every pending handshake slot (issue 17)', async t => {
  const b = await started(t, 2, { limits: { maxPendingHandshakes: 4, maxPendingHandshakesPerAddress: 2 } })
  const silent = [await rawClient(b.port), await rawClient(b.port)]
  const attempt = (localAddress: string): Promise<number | 'open'> => new Promise(resolve => {
    const socket = new WebSocket(`ws://127.0.0.1:${b.port}/`, { localAddress })
    socket.on('unexpected-response', (_request, response) => {
      resolve(response.statusCode ?? 0)
      socket.terminate()
    })
    socket.on('open', () => {
      resolve('open')
      socket.terminate()
    })
    socket.on('error', () => resolve(-1))
  })
  t.equal(await attempt('127.0.0.1'), 503, 'a third handshake from the same address is turned away')
  t.equal(await attempt('127.0.0.2'), 'open', 'another address still finds a slot')
  t.same(b.counters.refusals, ['local:busy'])
  for (const client of silent) client.socket.close()
})

t.test('in-flight requests per link are bounded', async t => {
  const a = await started(t, 1, { limits: { maxInFlightRequestsPerLink: 2 } })
  const b = await started(t, 2)
  const releases: (() => void)[] = []
  b.transport.handle('test.slow', (_from, message) => new Promise<PeerMessage>(resolve => {
    releases.push(() => resolve({ type: 'test.echoed', body: message.body }))
  }))
  const first = a.transport.request(b.identity.peer, { type: 'test.slow', body: { text: '1', n: 1 } }, 5000)
  const second = a.transport.request(b.identity.peer, { type: 'test.slow', body: { text: '2', n: 2 } }, 5000)
  const third = await rejection(a.transport.request(b.identity.peer, { type: 'test.slow', body: { text: '3', n: 3 } }, 5000))
  t.equal(third?.code, 'limit', 'the third request is rejected at once')
  t.ok(await eventually(() => releases.length === 2))
  for (const release of releases) release()
  t.same((await Promise.all([first, second])).map(answer => (answer.body as TextBody).n), [1, 2])
})

t.test('the send queue is bounded: one-way messages drop and requests fail with limit', async t => {
  const a = await started(t, 1, { limits: { maxSendQueueBytes: 4096 } })
  const nowhere = `127.0.0.1:${await (await import('./ws-harness.js')).freePort()}`
  for (let n = 0; n < 100; n++) a.transport.send(nowhere, { type: 'test.note', body: { text: 'x'.repeat(100), n } })
  t.ok(a.counters.drops.filter(reason => reason === 'queue_full').length > 50, 'most notes were dropped as queue_full')
  const error = await rejection(a.transport.request(nowhere, echo('y'.repeat(5000)), 1000))
  t.equal(error?.code, 'limit')
})

t.test('handlers that throw and callbacks that throw do not take the node down', async t => {
  const a = await started(t, 1, { onPeerConnected: () => { throw new Error('callback bug') } })
  const b = await started(t, 2)
  serveEcho(b)
  b.transport.handle('test.note', () => { throw new Error('handler bug') })
  a.transport.send(b.identity.peer, { type: 'test.note', body: { text: 'boom', n: 0 } })
  t.same(await a.transport.request(b.identity.peer, echo('still here'), 5000), { type: 'test.echoed', body: { text: 'still here', n: 0 } })
  t.match(a.log.text(), /peer connection callback failed/)
  t.ok(await eventually(() => /message handler failed/.test(b.log.text())))
})

t.test('close() fails pending requests and later sends are dropped', async t => {
  const a = await startNode(1)
  const b = await started(t, 2)
  b.transport.handle('test.slow', () => new Promise<PeerMessage>(() => { /* never answers */ }))
  const pending = a.transport.request(b.identity.peer, { type: 'test.slow', body: { text: 'x', n: 0 } }, 10_000)
  const failure = rejection(pending)
  await eventually(() => a.transport.links().length === 1)
  await a.transport.close()
  t.equal((await failure)?.code, 'closed')
  a.transport.send(b.identity.peer, { type: 'test.note', body: { text: 'late', n: 0 } })
  t.same(a.counters.drops, ['closed'])
  t.equal((await rejection(a.transport.request(b.identity.peer, echo('late'), 1000)))?.code, 'closed')
})

t.test('programming errors throw at once', async t => {
  const a = await started(t, 1)
  t.throws(() => a.transport.send(a.identity.peer, echo('x')), TypeError, 'send() takes one-way types')
  t.throws(() => a.transport.request(a.identity.peer, { type: 'test.note', body: {} }, 100), TypeError, 'request() takes request types')
  t.throws(() => a.transport.handle('test.echoed', () => undefined), TypeError, 'replies have no handlers')
  t.throws(() => a.transport.send('not an address', { type: 'test.note', body: { text: '', n: 0 } }), TypeError)
  a.transport.handle('test.note', () => undefined)
  t.throws(() => a.transport.handle('test.note', () => undefined), /already registered/)
  a.transport.send(a.identity.peer, { type: 'test.note', body: { text: 'self', n: 0 } })
  t.same(a.counters.drops, ['unreachable'], 'a message to itself is dropped')
})

/**
 * Counts WebSocket messages written by every socket of this process (both test nodes), so a test
 * can tell a frame written at once from one left for the end-of-turn flush.
 */
function countSends(t: Test): { readonly count: number } {
  const counter = { count: 0 }
  const original = WebSocket.prototype.send
  WebSocket.prototype.send = function (this: WebSocket, ...args: Parameters<WebSocket['send']>) {
    counter.count++
    return original.apply(this, args)
  } as WebSocket['send']
  t.teardown(() => { WebSocket.prototype.send = original })
  return counter
}

/**
 * Two linked nodes (the link is up) where b holds each `test.slow` request until the test calls
 * its entry in `releases`, in arrival order; b echoes `test.echo` at once.
 */
async function heldPeers(t: Test): Promise<{ a: TestNode; b: TestNode; releases: (() => void)[] }> {
  const a = await started(t, 1)
  const b = await started(t, 2)
  const releases: (() => void)[] = []
  b.transport.handle('test.slow', (_from, message) => new Promise<PeerMessage>(resolve => {
    releases.push(() => resolve({ type: 'test.echoed', body: message.body }))
  }))
  serveEcho(b)
  await a.transport.request(b.identity.peer, echo('link up'), 5000)
  return { a, b, releases }
}

t.test('on a quiet link a request and its answer are written at once, not at the end of the turn', async t => {
  const { a, b, releases } = await heldPeers(t)
  const sends = countSends(t)
  const answer = a.transport.request(b.identity.peer, { type: 'test.slow', body: { text: 'lone', n: 1 } }, 5000)
  t.equal(sends.count, 1, 'the request was written within request()')
  t.ok(await eventually(() => releases.length === 1), 'the peer is handling it')
  // A flush left for the end of the turn would run after this marker, which was scheduled first.
  const sentByTurnEnd = new Promise<number>(resolve => setImmediate(() => resolve(sends.count)))
  releases[0]!()
  t.equal(await sentByTurnEnd, 2, 'the answer was written as soon as the handler answered')
  t.same(await answer, { type: 'test.echoed', body: { text: 'lone', n: 1 } })
})

t.test('while requests are in flight, frames of one turn still leave together in one message', async t => {
  const { a, b, releases } = await heldPeers(t)
  const first = a.transport.request(b.identity.peer, { type: 'test.slow', body: { text: 'first', n: 1 } }, 5000)
  t.ok(await eventually(() => releases.length === 1), 'the first request is being handled')
  const sends = countSends(t)
  const more = [2, 3, 4].map(n => a.transport.request(b.identity.peer, { type: 'test.slow', body: { text: 'more', n } }, 5000))
  t.equal(sends.count, 0, 'nothing is written within the turn while a request is in flight')
  t.ok(await eventually(() => releases.length === 4), 'the peer got all three')
  t.equal(sends.count, 1, 'the three requests went out as one message')
  for (const release of releases.splice(0)) release()
  t.same((await Promise.all([first, ...more])).map(answer => (answer.body as TextBody).n), [1, 2, 3, 4])
  t.equal(sends.count, 2, 'the four answers released in one turn went back as one message')
})
