import t, { type Test } from 'tap'
import { pino } from 'pino'
import { asNodeId, type NodeId } from '../../lib/clock/version.js'
import { HintedHandoff, type HintedHandoffOptions } from '../../lib/replication/handoff.js'
import { HintStore } from '../../lib/replication/hints.js'
import type { WireEntry } from '../../lib/replication/messages.js'
import { KvStore } from '../../lib/store/kv-store.js'
import { systemClock } from '../../lib/runtime/clock.js'
import type { Random } from '../../lib/runtime/random.js'

/** Always draws `value` (jitter at a known point of its range). */
function fixedRandom(value: number): Random {
  return { next: () => value, int: (n) => Math.floor(value * n), chance: (p) => value < p }
}

const MAP_SIZE_BYTES = 64 << 20
const OWNER_A = asNodeId('aaaaaaaaaaaaaaaa')
const OWNER_B = asNodeId('bbbbbbbbbbbbbbbb')
const WRITER = asNodeId('0123456789abcdef')
const START_MS = 1_717_000_000_000
/** Rounds run this often in tests; every wait below is bounded by WAIT_LIMIT_MS instead. */
const INTERVAL_MS = 5
const WAIT_LIMIT_MS = 10_000

interface Delivery { readonly owner: NodeId; readonly keys: string[] }

interface Harness {
  readonly hints: HintStore
  readonly alive: Set<NodeId>
  readonly deliveries: Delivery[]
  readonly logs: string[]
  readonly delivered: number[]
  readonly dropped: number[]
  /** Decides each delivery's outcome; default: acknowledged at once. */
  respond: (delivery: Delivery) => Promise<void>
  /** Wall clock of the hint store. */
  nowMs: number
  /** Calls of isAlive so far: proof that rounds ran. */
  aliveChecks: number
  readonly handoff: (options?: Partial<HintedHandoffOptions>) => HintedHandoff
}

async function harness(t: Test, windowMs = 60_000): Promise<Harness> {
  const store = await KvStore.open({ dataDir: t.testdir(), mapSizeBytes: MAP_SIZE_BYTES })
  const started: HintedHandoff[] = []
  t.teardown(async () => {
    // Handoffs first: a delivery in flight still removes hints from the store.
    await Promise.all(started.map((handoff) => handoff.stop()))
    await store.close()
  })
  const h: Harness = {
    hints: new HintStore(store.hints, { maxBytes: 1 << 20, windowMs, nowMs: () => h.nowMs }),
    alive: new Set(),
    deliveries: [],
    logs: [],
    delivered: [],
    dropped: [],
    respond: async () => undefined,
    nowMs: START_MS,
    aliveChecks: 0,
    handoff: (options = {}) => {
      const handoff = new HintedHandoff({
        hints: h.hints,
        deliver: (owner, entries) => {
          const delivery = { owner, keys: entries.map((e) => e.key) }
          h.deliveries.push(delivery)
          return h.respond(delivery)
        },
        isAlive: (owner) => {
          h.aliveChecks++
          return h.alive.has(owner)
        },
        intervalMs: INTERVAL_MS,
        batchSize: 2,
        retryBaseMs: 1,
        retryCapMs: 20,
        clock: systemClock,
        random: fixedRandom(0.5),
        log: pino({ level: 'debug' }, { write: (line: string) => { h.logs.push(line) } }),
        onDelivered: (n) => h.delivered.push(n),
        onDropped: (n) => h.dropped.push(n),
        ...options,
      })
      started.push(handoff)
      return handoff
    },
  }
  return h
}

/** A write versioned at `atMs` (its coordinator's clock when it was made). */
function entry(key: string, value: string | null = 'v', atMs = START_MS): WireEntry {
  return { key, value: value === null ? null : Buffer.from(value), hlc: atMs * 1000, node: WRITER }
}

async function addHints(h: Harness, owner: NodeId, ...keys: string[]): Promise<void> {
  for (const key of keys) await h.hints.add(owner, entry(key, 'v', h.nowMs))
}

/** Polls until `condition` holds; fails the test (instead of hanging) after WAIT_LIMIT_MS. */
async function waitFor(t: Test, condition: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + WAIT_LIMIT_MS
  while (!condition()) {
    if (Date.now() > deadline) {
      t.fail(`gave up waiting: ${what}`)
      return
    }
    await new Promise((resolve) => setTimeout(resolve, 2))
  }
}

function deliveredKeys(h: Harness, owner: NodeId): string[] {
  return h.deliveries.filter((d) => d.owner === owner).flatMap((d) => d.keys)
}

t.test('hints wait while their owner is down and are handed off once it is alive', async t => {
  const h = await harness(t)
  await addHints(h, OWNER_A, 'k1', 'k2', 'k3')
  const handoff = h.handoff()
  handoff.start()
  await waitFor(t, () => h.aliveChecks >= 5, 'several rounds')
  t.same(h.deliveries, [], 'nothing is sent to an owner that is not alive')
  t.equal(h.hints.pending(OWNER_A).count, 3)

  h.alive.add(OWNER_A)
  handoff.ownerAlive(OWNER_A)
  await waitFor(t, () => h.hints.pending(OWNER_A).count === 0, 'all hints delivered')
  t.same(deliveredKeys(h, OWNER_A), ['k1', 'k2', 'k3'], 'oldest first, each once')
  t.ok(h.deliveries.every((d) => d.keys.length <= 2), 'batches respect batchSize')
  t.equal(h.delivered.reduce((a, b) => a + b, 0), 3)
})

t.test('a round finds an owner that became alive without being told', async t => {
  const h = await harness(t)
  await addHints(h, OWNER_A, 'k1')
  await addHints(h, OWNER_B, 'k2')
  h.alive.add(OWNER_B)
  h.handoff().start()
  await waitFor(t, () => h.hints.pending(OWNER_B).count === 0, "B's hints delivered")
  t.equal(h.hints.pending(OWNER_A).count, 1, "A's hints stay while A is down")
  h.alive.add(OWNER_A)
  await waitFor(t, () => h.hints.pending().count === 0, "A's hints delivered")
  t.same(deliveredKeys(h, OWNER_A), ['k1'])
  t.same(deliveredKeys(h, OWNER_B), ['k2'])
})

t.test('a failed delivery keeps the hints and is retried', async t => {
  const h = await harness(t)
  await addHints(h, OWNER_A, 'k1', 'k2')
  h.alive.add(OWNER_A)
  let failuresLeft = 3
  h.respond = async () => {
    if (failuresLeft > 0) {
      failuresLeft--
      throw new Error('owner timed out')
    }
  }
  h.handoff().start()
  await waitFor(t, () => h.hints.pending().count === 0, 'delivery after the failures')
  t.equal(failuresLeft, 0)
  t.equal(h.deliveries.length, 4, 'three failures, then one acknowledged batch')
  t.same(h.deliveries.map((d) => d.keys), [['k1', 'k2'], ['k1', 'k2'], ['k1', 'k2'], ['k1', 'k2']], 'failed hints are sent again')
  t.equal(h.logs.filter((line) => line.includes('hint handoff failed')).length, 3, 'each failure is logged')
  t.same(h.delivered, [2])
})

t.test('only acknowledged hints are removed', async t => {
  const h = await harness(t)
  await addHints(h, OWNER_A, 'k1', 'k2', 'k3', 'k4', 'k5')
  h.alive.add(OWNER_A)
  h.respond = async (delivery) => {
    if (delivery.keys.includes('k3')) throw new Error('connection reset')
  }
  const handoff = h.handoff({ retryBaseMs: 60_000, retryCapMs: 60_000, random: fixedRandom(0.99) })
  handoff.start()
  await waitFor(t, () => h.deliveries.length >= 2, 'the failing second batch')
  await handoff.stop()
  t.same(h.deliveries.map((d) => d.keys), [['k1', 'k2'], ['k3', 'k4']])
  t.same(h.hints.take(OWNER_A, 10).entries.map((e) => e.key), ['k3', 'k4', 'k5'])
  t.same(h.delivered, [2])
})

t.test('one delivery at a time per owner, and stop() waits for the one in flight', async t => {
  const h = await harness(t)
  await addHints(h, OWNER_A, 'k1', 'k2', 'k3')
  h.alive.add(OWNER_A)
  let acknowledge: () => void = () => undefined
  h.respond = (delivery) => delivery.owner === OWNER_A ? new Promise<void>((resolve) => { acknowledge = resolve }) : Promise.resolve()
  const handoff = h.handoff()
  handoff.start()
  await waitFor(t, () => h.deliveries.length === 1, 'the first delivery')
  handoff.ownerAlive(OWNER_A)
  await addHints(h, OWNER_B, 'other')
  h.alive.add(OWNER_B)
  // B's hints were added after A's delivery started: rounds went on meanwhile.
  await waitFor(t, () => h.hints.pending(OWNER_B).count === 0, 'a delivery to another owner')
  t.same(deliveredKeys(h, OWNER_A), ['k1', 'k2'], 'no second delivery to A while the first is unanswered')

  let stopped = false
  const stopping = handoff.stop().then(() => { stopped = true })
  await new Promise((resolve) => setTimeout(resolve, 20))
  t.equal(stopped, false, 'stop waits for the acknowledgement')
  acknowledge()
  await stopping
  t.same(h.hints.take(OWNER_A, 10).entries.map((e) => e.key), ['k3'], 'the acknowledged batch was removed before stop resolved')
  t.same(deliveredKeys(h, OWNER_A), ['k1', 'k2'], 'no new delivery starts after stop')
})

t.test('expired hints are dropped, counted, and never delivered', async t => {
  const h = await harness(t, 10_000)
  await addHints(h, OWNER_A, 'old')
  h.nowMs += 10_000
  await addHints(h, OWNER_A, 'young')
  h.handoff().start()
  await waitFor(t, () => h.dropped.length > 0, 'the expiry')
  t.same(h.dropped, [1])
  h.alive.add(OWNER_A)
  await waitFor(t, () => h.hints.pending().count === 0, 'the delivery')
  t.same(deliveredKeys(h, OWNER_A), ['young'])
})

t.test('a throwing callback is logged and retried, never thrown out of a timer', async t => {
  const h = await harness(t)
  await addHints(h, OWNER_A, 'k1')
  let throwsLeft = 2
  const handoff = h.handoff({
    isAlive: () => {
      if (throwsLeft > 0) {
        throwsLeft--
        throw new Error('membership bug')
      }
      return true
    },
  })
  handoff.start()
  t.doesNotThrow(() => handoff.ownerAlive(OWNER_A))
  await waitFor(t, () => h.hints.pending().count === 0, 'the delivery')
  t.equal(throwsLeft, 0)
  t.ok(h.logs.some((line) => line.includes('membership bug')), 'the error is logged')
})

t.test('handoff refuses settings that cannot work', async t => {
  const h = await harness(t)
  t.throws(() => h.handoff({ intervalMs: 0 }), RangeError)
  t.throws(() => h.handoff({ batchSize: 1.5 }), RangeError)
  t.throws(() => h.handoff({ batchSize: 100_000 }), RangeError, 'more than one replica write carries')
  t.throws(() => h.handoff({ retryCapMs: -1 }), RangeError)
})
