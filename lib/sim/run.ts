import { CLOCK_PROBE_INTERVAL_MS, CLOCK_PROBE_TIMEOUT_MS } from '../clock/offset-monitor.js'
import type { HearsayConfig } from '../config/types.js'
import type { ConsistencyLevel } from '../replication/consistency.js'
import { createRandom, type Random } from '../runtime/random.js'
import type { DeliveryEvent } from '../transport/memory-network.js'
import { SimCluster } from './cluster.js'
import { drawFaultPlan, healEverything, type FaultStep } from './faults.js'
import { disagreements, divergentPartitions, futureVersions, hintTrouble, lostWrites, membersNotAlive, repairingNodes, type Violation } from './oracles.js'
import { History } from './workload.js'

/**
 * One simulated run: a cluster, a fault plan and a client workload drawn from one seed, then the
 * heal, the settling and the oracles. A run is a pure function of its seed (and scenario): the
 * trace hash (every message's fate, every client answer, the final digests) says so, and
 * `npm run sim -- --seed S` replays it.
 */

export interface RunOptions {
  /** Told every fault, client answer and check as one line (for --verbose). */
  readonly onEvent?: (line: string) => void
}

export interface RunResult {
  readonly seed: number
  readonly scenario: string
  readonly violations: readonly Violation[]
  /** Hash of the run's trace: equal for equal seeds. */
  readonly traceHash: string
  readonly nodeCount: number
  readonly simulatedMs: number
  readonly ops: number
  readonly acknowledged: number
}

/** A named scenario: how to build and drive the run; the oracles are the same for all. */
export interface Scenario {
  readonly name: string
  readonly about: string
  run(context: RunContext): Promise<void>
}

/** What a scenario drives: the cluster, its history, and helpers that keep the trace. */
export interface RunContext {
  readonly seed: number
  readonly random: Random
  readonly history: History
  /** Built by setUp(); undefined before. */
  cluster: SimCluster
  setUp(nodeCount: number, config?: (base: HearsayConfig) => HearsayConfig): Promise<void>
  event(line: string): void
  violate(oracle: string, detail: string): void
  /** Client operations at random times over `durationMs`, each to a random node, while time runs. */
  runWorkload(durationMs: number, workload?: Partial<Workload>): Promise<void>
  /** Applies `steps` at their times while a workload runs for `durationMs`. */
  runFaults(steps: readonly FaultStep[], durationMs: number, workload?: Partial<Workload>): Promise<void>
  /** Heal, then the common oracles (membership, convergence, hints, lost writes, future versions). */
  healAndCheck(options?: { readonly aliveWithinMs?: number }): Promise<void>
}

export interface Workload {
  /** Mean gap between two client operations, in simulated ms. */
  readonly meanGapMs: number
  readonly keys: readonly string[]
  /** Odds of put / delete / get. */
  readonly mix: { readonly put: number; readonly delete: number; readonly get: number }
  readonly levels: readonly ConsistencyLevel[]
  /** Nodes clients talk to (default: all). */
  readonly nodes?: readonly number[]
}

const DEFAULT_WORKLOAD: Workload = {
  meanGapMs: 80,
  keys: Array.from({ length: 12 }, (_, i) => `k${i}`),
  mix: { put: 6, delete: 2, get: 2 },
  levels: ['quorum', 'quorum', 'quorum', 'one', 'all'],
}

/** How long after the heal replicas may take to agree (anti-entropy runs every 5 s in the simulator). */
export const SETTLE_MAX_MS = 60_000
/**
 * How long after agreeing replicas may still differ in collectable tombstones: each needs a sync
 * with every other replica after the record arrived, and a round picks one random peer per
 * partition every 5 s (a coupon collector: with 5 nodes about a minute, now and then more).
 */
export const COLLECT_MAX_MS = 180_000

/** What a scenario built on random faults adds: its config, and what runs around the faults and checks. */
export interface RandomFaultsExtras {
  readonly config?: (base: HearsayConfig) => HearsayConfig
  /** Runs `run` (load, faults, heal and the common checks) with the scenario's own work around it. */
  readonly around?: (context: RunContext, run: () => Promise<void>) => Promise<void>
}

/** A random run: 3–5 nodes, faults and load for a drawn time in [minMs, maxMs), heal, settle, check. */
export function randomFaults(name: string, minMs: number, maxMs: number, extras: RandomFaultsExtras = {}): Scenario {
  return {
    name,
    about: `faults and load drawn from the seed for ${minMs / 1000}–${maxMs / 1000} s, then heal and check`,
    async run(context) {
      await context.setUp(3 + context.random.int(3), extras.config)
      const { cluster } = context
      const run = async (): Promise<void> => {
        await context.runWorkload(3000)
        const durationMs = minMs + context.random.int(maxMs - minMs)
        const plan = drawFaultPlan(context.random, {
          nodeCount: cluster.nodes.length, durationMs,
          tombstoneGraceMs: cluster.config.store.tombstoneGraceMs, maxSkewMs: cluster.config.clock.maxSkewMs,
        })
        await context.runFaults(plan, durationMs)
        await context.healAndCheck()
      }
      await (extras.around === undefined ? run() : extras.around(context, run))
    },
  }
}

/** What `npm run sim` runs by default: 20–40 s of faults. */
export const randomScenario = randomFaults('random', 20_000, 40_000)
/** Shorter, for `npm test`'s hundred seeds. */
export const quickRandomScenario = randomFaults('random-quick', 8000, 14_000)

export async function runSeed(seed: number, scenario: Scenario = randomScenario, options: RunOptions = {}): Promise<RunResult> {
  const master = createRandom(seed)
  const clusterSeed = master.int(2 ** 32)
  const random = createRandom(master.int(2 ** 32))
  const workloadRandom = createRandom(master.int(2 ** 32))
  const trace = new TraceHash()
  const violations: Violation[] = []
  const history = new History()
  const event = (line: string): void => {
    trace.add(line)
    options.onEvent?.(`${(cluster === undefined ? 0 : cluster.clock.nowMs() - startMs).toString().padStart(7)} ms  ${line}`)
  }
  let cluster: SimCluster | undefined
  let startMs = 0
  // A daemon dies of an unhandled rejection; in the simulator it is a violation of the run.
  const onUnhandled = (reason: unknown): void => {
    violations.push({ oracle: 'unhandled rejection', detail: reason instanceof Error ? reason.stack ?? reason.message : String(reason) })
  }
  process.on('unhandledRejection', onUnhandled)
  const context: RunContext = {
    seed, random, history,
    get cluster(): SimCluster {
      if (cluster === undefined) throw new Error('setUp() first')
      return cluster
    },
    async setUp(nodeCount, config) {
      cluster = await SimCluster.create({
        seed: clusterSeed, nodeCount,
        ...(config === undefined ? {} : { config }),
        onDelivery: (delivery: DeliveryEvent) => trace.addDelivery(delivery),
      })
      startMs = cluster.clock.nowMs()
      for (const node of cluster.nodes) await cluster.start(node.index)
      event(`${nodeCount} nodes started`)
    },
    event,
    violate(oracle, detail) {
      violations.push({ oracle, detail })
      event(`VIOLATION ${oracle}: ${detail}`)
    },
    async runWorkload(durationMs, workload = {}) {
      await drive(context, workloadRandom, durationMs, { ...DEFAULT_WORKLOAD, ...workload }, [])
    },
    async runFaults(steps, durationMs, workload = {}) {
      await drive(context, workloadRandom, durationMs, { ...DEFAULT_WORKLOAD, ...workload }, steps)
    },
    async healAndCheck(checks = {}) {
      await heal(context, checks.aliveWithinMs)
    },
  }
  try {
    await scenario.run(context)
  } finally {
    // Let rejections of this run surface before the listener goes.
    await new Promise((resolve) => setImmediate(resolve))
    process.off('unhandledRejection', onUnhandled)
  }
  for (const op of history.ops) {
    trace.add(`${op.id} ${op.outcome} ${op.version?.hlc ?? ''} ${op.read?.value ?? ''}`)
    options.onEvent?.(history.describe(op))
  }
  const finalCluster = cluster as SimCluster | undefined
  for (const node of finalCluster?.upNodes() ?? []) trace.add(`${node.name} ${node.parts!.forest.digest()}`)
  return {
    seed, scenario: scenario.name, violations, traceHash: trace.digest(),
    nodeCount: finalCluster?.nodes.length ?? 0,
    simulatedMs: finalCluster === undefined ? 0 : finalCluster.clock.nowMs() - startMs,
    ops: history.ops.length,
    acknowledged: history.ops.filter((op) => op.outcome === 'ok' && op.kind !== 'get').length,
  }
}

/** Runs time forward `durationMs`, applying fault steps and issuing client operations on the way. */
async function drive(context: RunContext, random: Random, durationMs: number, workload: Workload, steps: readonly FaultStep[]): Promise<void> {
  const { cluster, history } = context
  const startMs = cluster.clock.nowMs()
  const endMs = startMs + durationMs
  const mixTotal = workload.mix.put + workload.mix.delete + workload.mix.get
  let nextOpMs = startMs + 1 + random.int(2 * workload.meanGapMs)
  let stepIndex = 0
  for (;;) {
    const nextStep = steps[stepIndex]
    const nextStepMs = nextStep === undefined ? Infinity : startMs + nextStep.atMs
    const nextMs = Math.min(nextOpMs, nextStepMs, endMs)
    await cluster.runFor(nextMs - cluster.clock.nowMs())
    if (nextMs === endMs && nextStepMs > endMs && nextOpMs > endMs) break
    if (nextStepMs === nextMs && nextStep !== undefined) {
      context.event(nextStep.describe)
      await nextStep.apply(cluster)
      stepIndex++
      continue
    }
    if (nextOpMs === nextMs) {
      const nodes = workload.nodes ?? cluster.nodes.map((node) => node.index)
      const index = nodes[random.int(nodes.length)]!
      const draw = random.int(mixTotal)
      const kind = draw < workload.mix.put ? 'put' : draw < workload.mix.put + workload.mix.delete ? 'delete' : 'get'
      const key = workload.keys[random.int(workload.keys.length)]!
      const level = workload.levels[random.int(workload.levels.length)]!
      const op = history.invoke(cluster, index, kind, key, level)
      if (op.outcome === 'refused') context.event(history.describe(op))
      nextOpMs += 1 + random.int(2 * workload.meanGapMs)
    }
  }
}

/** Ends the faults and checks the oracles that hold once the cluster had time to settle. */
async function heal(context: RunContext, aliveWithinMs: number | undefined): Promise<void> {
  const { cluster, history } = context
  await healEverything(cluster)
  context.event('faults over: network healed and calm, clocks corrected, every node up')
  const membership = cluster.config.membership
  // The longest a suspicion of a reachable member may last (Lifeguard's maximum), plus a probe round.
  const suspicionMaxMs = membership.suspicionMaxTimeoutMult * membership.suspicionMult * Math.max(1, Math.log10(cluster.nodes.length)) * membership.probeIntervalMs
  const boundMs = aliveWithinMs ?? Math.ceil(suspicionMaxMs + 2 * membership.probeIntervalMs)
  const aliveAfterMs = await cluster.runUntil(() => membersNotAlive(cluster).length === 0, boundMs, 50)
  if (aliveAfterMs === undefined) context.violate('member not alive while reachable', `${boundMs} ms after the heal: ${membersNotAlive(cluster).join('; ')}`)
  else context.event(`every member alive everywhere ${aliveAfterMs} ms after the heal`)
  // Client operations in flight at the heal get their answers (or time out) first.
  await cluster.runFor(2 * cluster.config.replication.timeoutMs)
  const settledAfterMs = await cluster.runUntil(() => repairingNodes(cluster).length === 0 && disagreements(cluster).length === 0 && hintTrouble(cluster, true).length === 0, SETTLE_MAX_MS, 500)
  if (settledAfterMs === undefined) {
    for (const name of repairingNodes(cluster)) context.violate('still repairing after the faults stopped', `${name} still repairs after an absence past the grace ${SETTLE_MAX_MS} ms after the heal`)
    for (const partition of disagreements(cluster)) context.violate('replicas differ after the faults stopped', partition)
    for (const trouble of hintTrouble(cluster, true)) context.violate('hints', trouble)
  } else {
    context.event(`no node repairing, replicas agree and hints are drained ${settledAfterMs} ms after the heal`)
    // Collection catches up: every replica collects what every other one holds past the grace.
    const collectedAfterMs = await cluster.runUntil(() => divergentPartitions(cluster).length === 0, COLLECT_MAX_MS, 500)
    if (collectedAfterMs === undefined) {
      for (const partition of divergentPartitions(cluster)) context.violate('tombstones past the grace not collected everywhere', partition)
    } else {
      context.event(`replicas hold identical records ${settledAfterMs + collectedAfterMs} ms after the heal`)
    }
  }
  for (const violation of lostWrites(cluster, history)) context.violate(violation.oracle, violation.detail)
  const future = futureVersions(cluster, history, CLOCK_PROBE_INTERVAL_MS + CLOCK_PROBE_TIMEOUT_MS)
  if (future.inWindow > 0) context.event(`${future.inWindow} writes beyond the skew bound within the documented detection window after a clock jump`)
  for (const violation of future.violations) context.violate(violation.oracle, violation.detail)
}

/** FNV-1a (32-bit) over every line of the trace. */
class TraceHash {
  #hash = 0x811c9dc5

  add(line: string): void {
    let hash = this.#hash
    for (let i = 0; i < line.length; i++) {
      hash ^= line.charCodeAt(i)
      hash = Math.imul(hash, 0x01000193)
    }
    this.#hash = Math.imul(hash ^ 0x0a, 0x01000193)
  }

  addDelivery(event: DeliveryEvent): void {
    this.add(`${event.atMs}|${event.from}|${event.to}|${event.type}|${event.requestId}|${event.outcome}`)
  }

  digest(): string {
    return (this.#hash >>> 0).toString(16).padStart(8, '0')
  }
}
