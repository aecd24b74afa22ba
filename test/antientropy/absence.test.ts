import t, { type Test } from 'tap'
import { setTimeout as sleep } from 'node:timers/promises'
import { AbsenceTracker, contactStampIntervalMs } from '../../lib/antientropy/absence.js'
import type { KvStore } from '../../lib/store/kv-store.js'
import type { MetaKey } from '../../lib/store/meta.js'
import { openTestStore } from '../store/fixture.js'

const GRACE_MS = 10 * 60 * 1000
const START_MS = 1_717_000_000_000
/** Polls for a meta write the tracker made in the background (bounded). */
const META_POLLS = 200
const META_POLL_MS = 5

interface World {
  nowMs: number
  /** A peer sends this node messages now (its last contact follows the clock). */
  peerSpeaking: boolean
  /** When a peer last spoke to this node. */
  heardMs?: number
  readonly errors: unknown[]
}

function tracker(store: KvStore, world: World): AbsenceTracker {
  return new AbsenceTracker({
    meta: store.meta,
    tombstoneGraceMs: GRACE_MS,
    nowMs: () => world.nowMs,
    lastPeerContactMs: () => {
      if (world.peerSpeaking) world.heardMs = world.nowMs
      return world.heardMs
    },
    onError: (error) => world.errors.push(error),
  })
}

async function metaSettles(store: KvStore, key: MetaKey, expected: unknown): Promise<unknown> {
  for (let i = 0; i < META_POLLS && store.meta.read(key) !== expected; i++) await sleep(META_POLL_MS)
  return store.meta.read(key)
}

/** Closes the store and opens it again on the same data dir, as a node restart does. */
async function restart(t: Test, store: KvStore): Promise<KvStore> {
  await store.close()
  return openTestStore(t, store.dataDir)
}

t.test('a node that never had a peer never needs a repair, however long it runs alone', async t => {
  let store = await openTestStore(t)
  const world: World = { nowMs: START_MS, peerSpeaking: false, errors: [] }
  const absence = tracker(store, world)
  world.nowMs += 100 * GRACE_MS
  absence.observe()
  t.equal(absence.repairRequired, false)
  t.equal(absence.lastContactMs, undefined)
  store = await restart(t, store)
  t.equal(tracker(store, world).repairRequired, false, 'nor after a restart')
  t.same(world.errors, [])
})

t.test('the contact time is stamped, durably, while a peer speaks to the node', async t => {
  let store = await openTestStore(t)
  const world: World = { nowMs: START_MS, peerSpeaking: true, errors: [] }
  const absence = tracker(store, world)
  absence.observe()
  t.equal(absence.lastContactMs, START_MS)
  world.nowMs += 1000
  absence.observe()
  t.equal(absence.lastContactMs, START_MS + 1000, 'every observe() after a peer spoke moves it')
  world.peerSpeaking = false
  world.nowMs += 1000
  absence.observe()
  t.equal(absence.lastContactMs, START_MS + 1000, 'not without one')
  t.equal(await metaSettles(store, 'lastPeerContactMs', START_MS + 1000), START_MS + 1000)
  store = await restart(t, store)
  const restarted = tracker(store, world)
  t.equal(restarted.lastContactMs, START_MS + 1000, 'a restarted tracker reads it back')
  t.equal(restarted.repairRequired, false)
  t.same(world.errors, [])
})

t.test('a restart after more than the grace requires a repair, durably, until repaired()', async t => {
  let store = await openTestStore(t)
  const world: World = { nowMs: START_MS, peerSpeaking: true, errors: [] }
  tracker(store, world).observe()
  await metaSettles(store, 'lastPeerContactMs', START_MS)

  store = await restart(t, store)
  world.nowMs = START_MS + GRACE_MS
  t.equal(tracker(store, world).repairRequired, false, 'away exactly the grace: no repair')

  store = await restart(t, store)
  world.nowMs = START_MS + GRACE_MS + 1
  const away = tracker(store, world)
  t.equal(away.repairRequired, true, 'away a millisecond longer than the grace: repair')
  away.observe()
  t.equal(away.lastContactMs, START_MS, 'a peer speaking does not stamp contact while repair is pending')
  t.equal(await metaSettles(store, 'repairRequired', true), true)

  store = await restart(t, store)
  const stillAway = tracker(store, world)
  t.equal(stillAway.repairRequired, true, 'a restart half way through the repair still repairs')

  world.nowMs += 5000
  stillAway.repaired()
  t.equal(stillAway.repairRequired, false)
  t.equal(stillAway.lastContactMs, world.nowMs, 'contact counts from the repair')
  t.equal(await metaSettles(store, 'repairRequired', false), false)
  t.equal(await metaSettles(store, 'lastPeerContactMs', world.nowMs), world.nowMs)

  store = await restart(t, store)
  t.equal(tracker(store, world).repairRequired, false, 'repaired survives a restart')
  t.same(world.errors, [])
})

t.test('a long partition is detected when a peer speaks again, before contact is stamped', async t => {
  const store = await openTestStore(t)
  const world: World = { nowMs: START_MS, peerSpeaking: true, errors: [] }
  const absence = tracker(store, world)
  absence.observe()
  world.peerSpeaking = false
  world.nowMs += 2 * GRACE_MS
  absence.observe()
  t.equal(absence.repairRequired, false, 'alone, nothing is decided: there is no one to push to')
  world.peerSpeaking = true
  absence.observe()
  t.equal(absence.repairRequired, true, 'the peer heard again after the grace requires a repair')
  t.equal(absence.lastContactMs, START_MS, 'and the old contact time stays')
  t.equal(await metaSettles(store, 'repairRequired', true), true, 'durably')
})

t.test('a short partition needs no repair', async t => {
  const store = await openTestStore(t)
  const world: World = { nowMs: START_MS, peerSpeaking: true, errors: [] }
  const absence = tracker(store, world)
  absence.observe()
  world.peerSpeaking = false
  world.nowMs += GRACE_MS - 1
  absence.observe()
  world.peerSpeaking = true
  absence.observe()
  t.equal(absence.repairRequired, false)
  t.equal(absence.lastContactMs, world.nowMs)
})

t.test('start() observes at once and stop() ends the stamping', async t => {
  const store = await openTestStore(t)
  const world: World = { nowMs: START_MS, peerSpeaking: true, errors: [] }
  const absence = tracker(store, world)
  absence.start()
  t.teardown(() => absence.stop())
  t.equal(absence.lastContactMs, START_MS)
  absence.stop()
  absence.stop()
  t.equal(absence.lastContactMs, START_MS, 'stop() twice is harmless')
})

t.test('the contact stamp interval is a quarter of the grace, within [100 ms, 1 min]', async t => {
  t.equal(contactStampIntervalMs(GRACE_MS), 60_000, 'a 10 min grace: capped at a minute')
  t.equal(contactStampIntervalMs(60_000), 15_000)
  t.equal(contactStampIntervalMs(1000), 250)
  t.equal(contactStampIntervalMs(100), 100, 'a tiny grace: at least 100 ms')
  t.equal(contactStampIntervalMs(0), 100)
  t.equal(contactStampIntervalMs(7 * 24 * 3600 * 1000), 60_000)
})

t.test('contact is a peer speaking, not a peer listed alive: an isolated node whose member list is stale still repairs', async t => {
  // The tracker only sees when a peer last spoke; a member list that still shows peers alive
  // (Lifeguard slowed the isolated node's probes) cannot move that time.
  const store = await openTestStore(t)
  const world: World = { nowMs: START_MS, peerSpeaking: true, errors: [] }
  const absence = tracker(store, world)
  absence.observe()
  world.peerSpeaking = false
  for (let step = 1; step <= 8; step++) {
    world.nowMs = START_MS + step * (GRACE_MS / 4)
    absence.observe()
  }
  t.equal(absence.lastContactMs, START_MS, 'silence stamps nothing')
  world.peerSpeaking = true
  absence.observe()
  t.equal(absence.repairRequired, true, 'heard again two graces later: repair before serving')
})
