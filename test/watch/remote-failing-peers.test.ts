import t from 'tap'
import { asNodeId, type NodeId } from '../../lib/clock/version.js'
import { FakeClock } from '../../lib/runtime/clock.js'
import type { PeerMessage } from '../../lib/transport/transport.js'
import { RemoteWatchFeeds } from '../../lib/watch/remote.js'
import { Watcher } from '../../lib/watch/watcher.js'
import pino from 'pino'

/**
 * A node whose peers are listed alive but whose every poll to them fails at once (links down
 * before membership notices). Found by the simulator's watch scenario (seed 3): the feed fell
 * back to a replica it had just avoided and polled it again in the same microtask chain, so the
 * event loop never turned again — a frozen daemon. A retry of an avoided replica now waits for
 * the periodic check.
 */

const LOCAL = asNodeId('00000000000000aa')
const PEERS: readonly NodeId[] = [asNodeId('00000000000000b1'), asNodeId('00000000000000b2')]
const PARTITIONS = 4

t.test('polls that fail at once are retried on the periodic check, not in a loop that starves the event loop', async t => {
  const clock = new FakeClock(1_000_000)
  let requests = 0
  const feeds = new RemoteWatchFeeds({
    localId: LOCAL,
    partitionCount: PARTITIONS,
    replicas: () => PEERS,
    holdsEverything: () => false,
    membershipEpoch: () => 1,
    alivePeer: (member) => `127.0.0.1:${member.endsWith('1') ? 1 : 2}`,
    request: async (_peer: string, _message: PeerMessage) => {
      requests++
      throw new Error('no link to the peer')
    },
    clock,
    bounds: { resumeMarginMs: 30_000, maxSkewMs: 500 },
    pollWaitMs: 5000,
    requestTimeoutMs: 1000,
    log: pino({ level: 'silent' }),
  })
  const watcher = new Watcher('', { maxBufferedBytes: 1 << 20, defer: (task) => { setImmediate(task) }, onClose: () => undefined })
  const detach = feeds.attach(watcher, clock.nowMs())
  t.teardown(detach)
  // Before the fix this await never returned: the microtask chain of polls never ended.
  await new Promise((resolve) => setImmediate(resolve))
  t.ok(requests >= 1 && requests <= PEERS.length, `each replica polled at most once before the next check (${requests} polls)`)
  const afterFirstTurn = requests
  await new Promise((resolve) => setImmediate(resolve))
  t.equal(requests, afterFirstTurn, 'nothing more until the periodic check')
  await clock.advance(1000)
  await new Promise((resolve) => setImmediate(resolve))
  t.ok(requests > afterFirstTurn, `the periodic check tries a replica again (${requests - afterFirstTurn} more polls)`)
  t.ok(requests <= afterFirstTurn + PEERS.length, 'once per replica at most')
})
