import t, { type Test } from 'tap'
import { formatVersion, type Version } from '../../lib/clock/version.js'
import { GoneError, UnavailableError } from '../../lib/errors.js'
import { KvStore } from '../../lib/store/kv-store.js'
import type { WatchEvent } from '../../lib/watch/event.js'
import { WatchService, type WatchLimits } from '../../lib/watch/service.js'
import type { CutReason, WatchSink } from '../../lib/watch/watcher.js'
import { NODE_A, NODE_B, TEST_MAP_SIZE_BYTES, WALL_MS, hlcAt, put, tombstone } from '../store/fixture.js'

/**
 * Watches on one node over the real LMDB store (lib/watch/service.ts): live fan-out by prefix,
 * resume from the change log without a gap while writes race the subscription, 410 past the
 * log's horizon, a slow consumer cut at its buffer bound, the watcher limit.
 */

const LIMITS: WatchLimits = { maxWatchers: 8, maxBufferedBytes: 64 * 1024, resumeMarginMs: 1000, maxSkewMs: 500 }
const WAIT_MS = 5000

class TestSink implements WatchSink {
  readonly events: WatchEvent[] = []
  cutReason: CutReason | undefined
  room = 1_000_000
  capacity(): number { return this.cutReason === undefined ? this.room : 0 }
  write(events: readonly WatchEvent[]): void { this.events.push(...events) }
  cut(reason: CutReason): void { this.cutReason = reason }
  keys(): string[] { return this.events.map((event) => `${event.key}@${formatVersion(event.version)}`) }
}

async function until(predicate: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + WAIT_MS
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}

async function setup(t: Test, limits: Partial<WatchLimits> = {}, clock = { nowMs: WALL_MS }): Promise<{ store: KvStore; watches: WatchService; cuts: CutReason[] }> {
  const store = await KvStore.open({ dataDir: t.testdir(), mapSizeBytes: TEST_MAP_SIZE_BYTES, nowMs: () => clock.nowMs })
  const cuts: CutReason[] = []
  const watches = new WatchService({ store, limits: { ...LIMITS, ...limits }, nowMs: () => clock.nowMs, defer: (task) => { setImmediate(task) }, onCut: (reason) => cuts.push(reason) })
  t.teardown(async () => {
    watches.stop()
    await store.close()
  })
  return { store, watches, cuts }
}

t.test('a live watch gets the changes under its prefix, in order, deletes included', async t => {
  const { store, watches } = await setup(t)
  const sink = new TestSink()
  watches.open({ prefix: 'app/' }, sink)
  await store.apply('app/a', put('1', hlcAt(WALL_MS, 1)))
  await store.apply('other/a', put('x', hlcAt(WALL_MS, 2)))
  await store.applyMany([{ key: 'app/b', record: put('2', hlcAt(WALL_MS, 3)) }, { key: 'app/a', record: tombstone(hlcAt(WALL_MS, 4)) }])
  await until(() => sink.events.length === 3, 'three events')
  t.same(sink.events.map((event) => [event.key, event.value === null ? null : Buffer.from(event.value).toString()]), [['app/a', '1'], ['app/b', '2'], ['app/a', null]])
  t.equal(watches.watchers, 1)
})

t.test('a resume replays from the change log, then goes live without a gap or a duplicate while writes race it', async t => {
  const { store, watches } = await setup(t)
  const written: Version[] = []
  let hlc = hlcAt(WALL_MS)
  const write = async (i: number): Promise<void> => {
    const version = { hlc: ++hlc, node: i % 2 === 0 ? NODE_A : NODE_B }
    written.push(version)
    await store.apply(`r/${i % 7}`, put(`${i}`, version.hlc, version.node))
  }
  for (let i = 0; i < 50; i++) await write(i)
  const since = written[9]!
  // Writes in flight while the watch opens: some commit before the subscription, some after.
  const racing = Array.from({ length: 50 }, (_, i) => write(50 + i))
  const sink = new TestSink()
  watches.open({ prefix: 'r/', since }, sink)
  await Promise.all(racing)
  for (let i = 100; i < 120; i++) await write(i)
  const expected = written.filter((version) => version.hlc > since.hlc).map((version) => formatVersion(version))
  await until(() => expected.every((version) => sink.events.some((event) => formatVersion(event.version) === version)), 'every change after since')
  const seen = sink.events.map((event) => formatVersion(event.version))
  t.equal(new Set(seen).size, seen.length, 'no change delivered twice')
  // The margin reaches back before since: those are re-deliveries a client drops.
  t.ok(seen.length >= expected.length, `${seen.length} events for ${expected.length} changes after since`)
  const perKey = new Map<string, number>()
  for (const event of sink.events) {
    t.ok(event.version.hlc > (perKey.get(event.key) ?? 0), `${event.key} in version order`)
    perKey.set(event.key, event.version.hlc)
  }
})

t.test('a since older than the log reaches answers 410 with the oldest resumable version', async t => {
  const clock = { nowMs: WALL_MS }
  const { store, watches } = await setup(t, {}, clock)
  await store.apply('g/1', put('1', hlcAt(WALL_MS)))
  clock.nowMs = WALL_MS + 60_000
  await store.apply('g/2', put('2', hlcAt(clock.nowMs)))
  await store.changeLog.trim(WALL_MS + 30_000, 100)
  const old = { hlc: hlcAt(WALL_MS), node: NODE_A }
  let gone: GoneError | undefined
  try {
    watches.open({ prefix: 'g/', since: old }, new TestSink())
  } catch (error) {
    gone = error as GoneError
  }
  t.ok(gone instanceof GoneError, '410')
  const oldest = gone!.details['oldest'] as string
  t.equal(oldest, formatVersion({ hlc: hlcAt(WALL_MS + 30_000 + LIMITS.resumeMarginMs + 2 * LIMITS.maxSkewMs), node: '0000000000000000' as never }), 'oldest = horizon + margin + 2 × skew')
  t.equal(watches.watchers, 0, 'no watcher was left behind')
  const sink = new TestSink()
  watches.open({ prefix: 'g/', since: { hlc: Number(oldest.slice(0, 16)), node: NODE_A } }, sink)
  await until(() => sink.events.length === 1, 'the change after the horizon')
  t.equal(sink.events[0]!.key, 'g/2', 'resuming from oldest works and replays what the log holds')
})

t.test('a consumer that stops taking events is cut at its buffer bound; memory goes back', async t => {
  const { store, watches, cuts } = await setup(t, { maxBufferedBytes: 16 * 1024 })
  const stalled = new TestSink()
  stalled.room = 0
  const healthy = new TestSink()
  const watcher = watches.open({ prefix: 's/' }, stalled)
  watches.open({ prefix: 's/' }, healthy)
  const value = Buffer.alloc(1024, 1)
  for (let i = 0; i < 40; i++) await store.apply(`s/${i}`, put(value, hlcAt(WALL_MS, i + 1)))
  await until(() => stalled.cutReason !== undefined, 'the cut')
  t.equal(stalled.cutReason, 'slow_consumer')
  t.same(cuts, ['slow_consumer'], 'counted once with its reason')
  t.equal(watcher.bufferedBytes, 0, 'its buffer is released')
  t.equal(watches.watchers, 1, 'the healthy watcher stays')
  await until(() => healthy.events.length === 40, 'all 40 for the healthy one')
  t.pass('a slow watcher does not hold back the others')
})

t.test('watch.maxWatchers: one more is refused with 503; a closed watcher frees its place', async t => {
  const { watches } = await setup(t, { maxWatchers: 2 })
  const first = watches.open({ prefix: '' }, new TestSink())
  watches.open({ prefix: 'a' }, new TestSink())
  t.throws(() => watches.open({ prefix: 'b' }, new TestSink()), UnavailableError)
  first.close()
  t.doesNotThrow(() => watches.open({ prefix: 'b' }, new TestSink()))
  watches.stop()
  t.throws(() => watches.open({ prefix: 'c' }, new TestSink()), UnavailableError, 'none after stop')
})
