import { healEverything } from './faults.js'
import type { RunContext, Scenario } from './run.js'

/**
 * The five failures issue 11 found on real daemons, as simulator scenarios. Each drives the
 * cluster into the situation, then the common oracles run (acknowledged writes kept, deletes not
 * resurrected, no version beyond the skew bound, replicas agree, members alive), plus the
 * scenario's own check where the issue named one.
 */

const keys = (count: number): string[] => Array.from({ length: count }, (_, i) => `key-${i}`)

/** Writes `count` keys through nodes `via` (round robin), W as given, one every `gapMs`. */
async function writeAll(context: RunContext, kind: 'put' | 'delete', names: readonly string[], via: readonly number[], level: 'all' | 'quorum', gapMs = 10): Promise<void> {
  for (const [i, key] of names.entries()) {
    context.history.invoke(context.cluster, via[i % via.length]!, kind, key, level)
    await context.cluster.runFor(gapMs)
  }
}

/** Issue 11 (1): a node runs 10 s ahead; its writes must not win over acknowledged ones later. */
export const skewedClock: Scenario = {
  name: 'skewed-clock',
  about: 'one of 3 nodes runs 10 s ahead; W=all writes by the others must not lose to its versions',
  async run(context) {
    // A grace longer than the jump: a clock 10 s ahead must not read as an absence past it.
    await context.setUp(3, (base) => ({ ...base, store: { ...base.store, tombstoneGrace: 60_000, tombstoneGraceMs: 60_000 } }))
    const { cluster } = context
    await cluster.runFor(3000)
    context.event('n2 runs 10 s ahead')
    cluster.setSkew(2, 10_000)
    // Past the detection window: from here on the oracle holds n2 to the bound.
    await cluster.runFor(3000)
    const shared = keys(20)
    await writeAll(context, 'put', shared, [2], 'all')
    await cluster.runFor(2000)
    await writeAll(context, 'put', shared, [0, 1], 'all')
    // Long enough for real time to reach any future version n2 may have kept.
    await context.runWorkload(12_000, { keys: shared, levels: ['all', 'quorum'] })
    await context.healAndCheck()
  },
}

/** Issue 11 (2): deletes acknowledged while a node (or two) sat apart past the tombstone grace. */
function isolationPastGrace(name: string, isolated: readonly number[]): Scenario {
  return {
    name,
    about: `n${isolated.join(', n')} cut off past the tombstone grace while 100 keys are deleted with W=quorum; none may come back`,
    async run(context) {
      await context.setUp(5)
      const { cluster } = context
      await cluster.runFor(2000)
      const names = keys(100)
      await writeAll(context, 'put', names, [0, 1, 2, 3, 4], 'all')
      await cluster.runFor(5000)
      context.event(`isolate n${isolated.join(', n')}`)
      cluster.split(isolated)
      const majority = [0, 1, 2, 3, 4].filter((i) => !isolated.includes(i))
      await writeAll(context, 'delete', names, majority, 'quorum')
      // 22 s apart with a grace of 8 s: the majority collects the tombstones meanwhile (or must not).
      await cluster.runFor(22_000)
      await context.healAndCheck()
    },
  }
}

/**
 * The whole cluster is off for longer than the tombstone grace (a lab powered down over a
 * holiday): every node restarts into repair mode, and every replica of every partition with it.
 * They must repair from one another and serve again, with nothing acknowledged lost and no
 * delete back. Until the repairing replicas answered each other's repair sessions, none ever
 * finished (random seeds 270 and 5 found the partial case).
 */
export const everyoneAway: Scenario = {
  name: 'everyone-away',
  about: 'all 3 nodes stopped for 20 s (grace 8 s) after writes and deletes; all repair from each other and serve again',
  async run(context) {
    await context.setUp(3)
    const { cluster } = context
    await cluster.runFor(2000)
    const names = keys(30)
    await writeAll(context, 'put', names, [0, 1, 2], 'all')
    await writeAll(context, 'delete', names.slice(0, 10), [0, 1, 2], 'all')
    await cluster.runFor(2000)
    context.event('stop every node for 20 s')
    for (const index of [0, 1, 2]) cluster.crash(index)
    await cluster.runFor(20_000)
    for (const index of [0, 1, 2]) await cluster.start(index)
    await context.healAndCheck()
    await context.runWorkload(3000, { keys: names, levels: ['quorum'] })
    await context.healAndCheck()
  },
}

/** Issue 11 (3): after a long isolation, every member is alive again within 3 s of the heal. */
export const slowHeal: Scenario = {
  name: 'slow-heal',
  about: 'n4 isolated for 90 s (both sides hold the other dead); all alive within 3 s of the heal',
  async run(context) {
    await context.setUp(5)
    const { cluster } = context
    await cluster.runFor(3000)
    context.event('isolate n4 for 90 s')
    cluster.split([4])
    await cluster.runFor(90_000)
    await context.healAndCheck({ aliveWithinMs: 3000 })
  },
}

/** Issue 11 (4): stale "dead" rumours from a healed minority must not fail writes on the majority. */
export const staleDeadRumours: Scenario = {
  name: 'stale-dead-rumours',
  about: '{n3,n4} apart for 60 s; from the heal on, W=quorum writes on the majority every 50 ms must all succeed',
  async run(context) {
    await context.setUp(5)
    const { cluster, history } = context
    await cluster.runFor(3000)
    context.event('split {n3,n4} from the rest for 60 s')
    cluster.split([3, 4])
    await cluster.runFor(60_000)
    await healEverything(cluster)
    context.event('healed; writing W=quorum on n0..n2 every 50 ms for 5 s')
    const first = history.ops.length
    for (let i = 0; i < 100; i++) {
      history.invoke(cluster, i % 3, 'put', `key-${i % 10}`, 'quorum')
      await cluster.runFor(50)
    }
    await cluster.runFor(2 * cluster.config.replication.timeoutMs)
    for (const op of history.ops.slice(first)) {
      if (op.outcome !== 'ok') context.violate('a write failed at the heal', history.describe(op))
    }
    await context.healAndCheck()
  },
}

/** Issue 11 (5): a write answered 503 says its outcome is unknown, and may indeed still land. */
export const outcomeUnknown: Scenario = {
  name: 'outcome-unknown',
  about: 'a W=all write through a cut-off node answers 503 with outcome unknown and its version; after the heal it lands',
  async run(context) {
    await context.setUp(3)
    const { cluster, history } = context
    await cluster.runFor(3000)
    context.event('cut n0 off; write through it with W=all')
    cluster.split([0])
    const op = history.invoke(cluster, 0, 'put', 'contested', 'all')
    await cluster.runFor(2 * cluster.config.replication.timeoutMs)
    if (op.outcome !== 'unknown' || op.version === undefined) {
      context.violate('503 outcome', `expected outcome unknown with a version, got ${history.describe(op)}`)
    }
    await context.healAndCheck()
    const settled = cluster.upNodes()[0]?.store?.get('contested')
    const value = settled?.value === null || settled === undefined ? undefined : Buffer.from(settled.value).toString()
    if (value !== op.value) context.violate('503 outcome', `the unacknowledged write did not land after the heal: the key holds ${value ?? 'nothing'}`)
  },
}

export const SCENARIOS: readonly Scenario[] = [
  skewedClock,
  isolationPastGrace('isolation-past-grace', [4]),
  isolationPastGrace('minority-past-grace', [3, 4]),
  slowHeal,
  everyoneAway,
  staleDeadRumours,
  outcomeUnknown,
]
