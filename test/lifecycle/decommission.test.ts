import t from 'tap'
import { pino } from 'pino'
import type { NodeId } from '../../lib/clock/version.js'
import { Decommission, type DecommissionPhase } from '../../lib/lifecycle/decommission.js'
import type { SyncOutcome, SyncRequest } from '../../lib/lifecycle/sync-plan.js'
import { FakeClock } from '../../lib/runtime/clock.js'

const A = '000000000000000a' as NodeId
const B = '000000000000000b' as NodeId
const log = pino({ level: 'silent' })
const RETRY_MS = 1000

interface Harness {
  readonly clock: FakeClock
  readonly decommission: Decommission
  readonly phases: DecommissionPhase[]
  readonly requests: SyncRequest[][]
  alive: Set<NodeId>
  hints: number
  left: number
  /** Decides each session's outcome. */
  answer: (request: SyncRequest) => SyncOutcome
}

/** Partitions 0-3 owned here; 0 and 1 go to A, 2 and 3 to B once this node is gone. */
function harness(): Harness {
  const clock = new FakeClock(1_000_000)
  const h: Harness = {
    clock, phases: [], requests: [], alive: new Set([A, B]), hints: 0, left: 0,
    answer: (request) => ({ id: request.id, ok: true, agreed: request.partitions, moved: request.partitions.length, bytesMoved: 100 * request.partitions.length }),
    decommission: undefined as unknown as Decommission,
  }
  ;(h as { decommission: Decommission }).decommission = new Decommission({
    clock,
    ownedPartitions: () => [0, 1, 2, 3],
    pendingReplicas: (partition) => [partition < 2 ? A : B],
    isAlive: (id) => h.alive.has(id),
    sync: async (requests) => {
      h.requests.push([...requests])
      return requests.map((request) => h.answer(request))
    },
    hintsPending: () => h.hints,
    leave: async () => { h.left++ },
    retryDelayMs: RETRY_MS,
    log,
    onPhase: (phase) => h.phases.push(phase),
  })
  return h
}

/** Advances the fake clock a second at a time until `done` holds (bounded). */
async function until(h: Harness, done: () => boolean): Promise<void> {
  for (let step = 0; step < 100 && !done(); step++) await h.clock.advance(RETRY_MS)
}

t.test('every new owner confirms every partition, roots are checked once more, then the node leaves', async t => {
  const h = harness()
  const run = h.decommission.run()
  await until(h, () => h.decommission.phase === 'left')
  await run
  t.strictSame(h.phases, ['draining', 'verifying', 'leaving', 'settling', 'left'])
  t.equal(h.left, 1, 'left exactly once')
  t.strictSame(h.requests[0], [{ id: A, partitions: [0, 1] }, { id: B, partitions: [2, 3] }], 'one session per new owner with its partitions')
  t.equal(h.requests.length, 3, 'one streaming round, one verifying round, one after announcing left')
  const progress = h.decommission.progress()
  t.match(progress, { phase: 'left', transfers: 4, confirmed: 4, partitionsPending: 0, keysMoved: 12, bytesMoved: 1200, rounds: 3, waitingFor: [] })
  t.ok(progress.finishedAtMs !== undefined)
})

t.test('a dead new owner holds the decommission in streaming; it goes on when the owner is back', async t => {
  const h = harness()
  h.alive.delete(B)
  const run = h.decommission.run()
  await until(h, () => h.requests.length >= 3)
  t.equal(h.decommission.phase, 'streaming')
  t.match(h.decommission.progress(), { confirmed: 2, partitionsPending: 2, waitingFor: [B] })
  t.equal(h.left, 0, 'never leaves while a partition is not confirmed')
  t.ok(h.requests.slice(1).every((round) => round.length === 0 || round.every((r) => r.id !== A)), 'confirmed partitions are not streamed again')
  h.alive.add(B)
  await until(h, () => h.decommission.phase === 'left')
  await run
  t.equal(h.left, 1)
})

t.test('sessions that fail or roots that differ are retried; a failed session says why', async t => {
  const h = harness()
  let failures = 2
  h.answer = (request) => request.id === B && failures-- > 0
    ? { id: B, ok: false, agreed: [], moved: 0, bytesMoved: 0, error: 'timed out' }
    : { id: request.id, ok: true, agreed: request.partitions.filter((p) => p !== 3 || failures < 0), moved: 0, bytesMoved: 0 }
  const run = h.decommission.run()
  await until(h, () => h.decommission.progress().lastError !== undefined)
  t.match(h.decommission.progress().lastError, /session with 000000000000000b failed: timed out/)
  await until(h, () => h.decommission.phase === 'left')
  await run
  t.equal(h.left, 1)
})

t.test('hints for alive members are handed off before the node leaves', async t => {
  const h = harness()
  h.hints = 5
  const run = h.decommission.run()
  await until(h, () => h.decommission.phase === 'draining')
  await h.clock.advance(5 * RETRY_MS)
  t.equal(h.decommission.phase, 'draining', 'waits while hints are pending')
  h.hints = 0
  await until(h, () => h.decommission.phase === 'left')
  await run
  t.equal(h.left, 1)
})

t.test('a partition whose roots differ again at the final check is streamed again', async t => {
  const h = harness()
  let verifyRounds = 0
  h.answer = (request) => {
    const verifying = h.decommission.phase === 'verifying'
    if (verifying && request.id === A) verifyRounds++
    const agreed = verifying && request.id === A && verifyRounds === 1 ? [0] : request.partitions
    return { id: request.id, ok: true, agreed, moved: 1, bytesMoved: 0 }
  }
  const run = h.decommission.run()
  await until(h, () => h.decommission.phase === 'left')
  await run
  t.ok(h.phases.includes('streaming'), 'went back to streaming')
  t.ok(h.requests.some((round) => round.length === 1 && round[0]?.id === A && round[0].partitions.length === 1 && round[0].partitions[0] === 1), 'only the partition that moved is streamed again')
  t.equal(h.left, 1)
})

t.test('after announcing left, a pair that differs is synced again until it agrees', async t => {
  const h = harness()
  let settlingRounds = 0
  h.answer = (request) => {
    if (h.decommission.phase === 'settling' && request.id === B) settlingRounds++
    const agreed = h.decommission.phase === 'settling' && request.id === B && settlingRounds < 3 ? [] : request.partitions
    return { id: request.id, ok: true, agreed, moved: 0, bytesMoved: 0 }
  }
  const run = h.decommission.run()
  await until(h, () => h.decommission.phase === 'left')
  await run
  t.equal(settlingRounds, 3, 'synced until B agreed')
  t.equal(h.left, 1)
})

t.test('stop() abandons the decommission: the node never leaves', async t => {
  const h = harness()
  h.alive.clear()
  const run = h.decommission.run()
  await h.clock.advance(3 * RETRY_MS)
  await h.decommission.stop()
  await run
  t.equal(h.decommission.phase, 'stopped')
  t.equal(h.left, 0)
  t.equal(h.clock.pendingTimers, 0, 'no timer left behind')
})
