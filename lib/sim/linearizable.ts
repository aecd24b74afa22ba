import { formatVersion, parseVersion } from '../clock/version.js'
import { ConditionFailedError, HearsayError, OutcomeUnknownError, UnavailableError } from '../errors.js'
import { sleep } from '../runtime/clock.js'
import { createRandom, type Random } from '../runtime/random.js'
import { SimCluster, type SimClusterOptions } from './cluster.js'
import { drawFaultPlan, healEverything } from './faults.js'
import { checkCounter, checkLinearizable, type LinearizabilityResult, type Operation, type RegisterInput, type RegisterOutput, type Version } from './linearizability.js'

/**
 * Issue 13 in the simulator: clients do compare-and-set, increments and linearizable reads
 * through the nodes' LinearizableService (the proposer behind the API's guards) while members
 * join and leave, and the whole history must be linearizable (lib/sim/linearizability.ts), every
 * counter within [K, K+U]. Time and randomness come from the seed only, so a failing seed
 * replays (test/sim/linearizable.test.ts, `SIM_LIN_SEEDS=n`).
 */

export interface LinearizableRunOptions {
  /** Default: join-leave. */
  readonly scenario?: MembershipScenario
  /** Extra config over the simulator's defaults. */
  readonly config?: SimClusterOptions['config']
  readonly onEvent?: (line: string) => void
  /** Sees the cluster once it exists (a debugging hook: watch nodes' state during the run). */
  readonly onCluster?: (cluster: SimCluster) => void
}

export interface LinearizableRunResult {
  readonly seed: number
  readonly ops: readonly Operation[]
  readonly result: LinearizabilityResult
  readonly problems: readonly string[]
  readonly outcomes: Readonly<Record<string, number>>
  /** Why answers were left out of the history (refusals before anything was proposed), counted. */
  readonly omitted: ReadonlyMap<string, number>
}

const REGISTER_KEYS = ['lock', 'config']
const COUNTER_KEYS = ['hits', 'seq']
const CLIENTS = 4
/** Simulated pause between one client's operations, drawn below this. */
const MAX_PAUSE_MS = 40
/** Bound on the wait for operations in flight when the load stops (each gives up within its retries). */
const DRAIN_MAX_MS = 60_000
/** Length of the fault phase of 'faults-and-join'. */
const FAULTS_MS = 14_000
/** How often an operation in flight looks whether its node went down. */
const CRASH_POLL_MS = 200
/** Why answers were left out, counted (for a failing run's report); reset per run. */
const omittedReasons = new Map<string, number>()

class NodeGoneError extends Error {
  constructor() {
    super('the node went down with the operation in flight')
  }
}

/** A membership change during the load: at `atMs` after the load began. */
interface Step { readonly atMs: number; readonly describe: string; apply(cluster: SimCluster): Promise<void> | void }

/** What happens to the membership during the load (`SCENARIOS`). */
export type MembershipScenario = 'join-leave' | 'join-while-cut-off' | 'faults-and-join' | 'join-two-at-once' | 'skip-short-lived-set'

async function leave(cluster: SimCluster, index: number): Promise<void> {
  const parts = cluster.nodes[index]?.parts
  if (parts === undefined) return
  const leaving = parts.membership.leave(2000)
  await cluster.runFor(2000)
  await leaving
  cluster.crash(index)
}

export const SCENARIOS: Readonly<Record<MembershipScenario, { readonly about: string; steps(random: Random): Step[] }>> = {
  // Each change moves some partitions' acceptor sets; n1 coming back restores earlier sets.
  'join-leave': {
    about: 'n3 joins, n1 leaves, n4 joins, n1 comes back',
    steps: (random) => [
      { atMs: 2000 + random.int(1500), describe: 'n3 joins', apply: (cluster) => cluster.start(3) },
      { atMs: 6000 + random.int(1500), describe: 'n1 leaves', apply: (cluster) => leave(cluster, 1) },
      { atMs: 10_000 + random.int(1500), describe: 'n4 joins', apply: (cluster) => cluster.start(4) },
      { atMs: 14_000 + random.int(1500), describe: 'n1 comes back', apply: (cluster) => cluster.start(1) },
    ],
  },
  // n2 misses the accepts of a few seconds, then a new member takes a place beside it in some
  // partitions while an old member that did see them is down: only the previous set's state,
  // caught up, keeps those changes in every quorum of the new set.
  'join-while-cut-off': {
    about: 'n2 cut off; n3 joins; heal and crash n0 or n1 at once; restart it later',
    steps: (random) => {
      const victim = random.int(2)
      return [
        { atMs: 1000, describe: 'n2 cut off', apply: async (cluster) => { cluster.split([2]) } },
        { atMs: 2500 + random.int(500), describe: 'n3 joins', apply: (cluster) => cluster.start(3) },
        {
          atMs: 4000 + random.int(1000), describe: `heal; n${victim} crashes`, apply: async (cluster) => {
            cluster.network.heal()
            cluster.crash(victim)
          },
        },
        { atMs: 9000 + random.int(1000), describe: `n${victim} restarts`, apply: (cluster) => cluster.start(victim) },
      ]
    },
  },
  // Two nodes join together through n0 while n0 is cut off from n1 and n2, which go on choosing
  // values without it. Where both newcomers outrank n1 and n2, the newcomers' set is {n3, n4, n0}
  // while n1 and n2 still form a quorum of the old one: the newcomers must stop and copy the old
  // set (docs/consistency.md "Acceptor-set changes" rule 4), not take each other, which hold
  // nothing, for it. A member crashing and restarting after the heal exercises rule 3.
  'join-two-at-once': {
    about: 'n0 cut off from n1 and n2; n3 and n4 join at once through n0; heal; n1 or n2 crashes and restarts',
    steps: (random) => {
      const victim = 1 + random.int(2)
      const peers = (cluster: SimCluster, indexes: readonly number[]): string[] => indexes.map((i) => cluster.nodes[i]!.peer)
      return [
        { atMs: 1000, describe: 'cut {n0,n3,n4} from {n1,n2}', apply: (cluster) => { cluster.network.partition(peers(cluster, [0, 3, 4]), peers(cluster, [1, 2])) } },
        {
          atMs: 2500 + random.int(1000), describe: 'n3 and n4 join at once', apply: async (cluster) => {
            await Promise.all([cluster.start(3), cluster.start(4)])
          },
        },
        { atMs: 6000 + random.int(1000), describe: 'heal', apply: (cluster) => { cluster.network.heal() } },
        { atMs: 8000 + random.int(2000), describe: `n${victim} crashes`, apply: (cluster) => { cluster.crash(victim) } },
        { atMs: 11_000 + random.int(1000), describe: `n${victim} restarts`, apply: (cluster) => cluster.start(victim) },
      ]
    },
  },
  // The example: members that never see a short-lived set. One or two of n1, n2 are cut
  // off while n3 joins and leaves again; then a member that held that set crashes and restarts.
  // Where n3 took a place, the set {.., n3} must not choose anything the old set's quorums of
  // skippers would then miss.
  'skip-short-lived-set': {
    about: 'n2 (or n1 and n2) cut off while n3 joins and leaves; heal; n0 crashes and restarts',
    steps: (random) => {
      const cut = random.int(2) === 0 ? [2] : [1, 2]
      return [
        { atMs: 1000, describe: `n${cut.join(', n')} cut off`, apply: (cluster) => { cluster.split(cut) } },
        { atMs: 2000 + random.int(1000), describe: 'n3 joins', apply: (cluster) => cluster.start(3) },
        { atMs: 5000 + random.int(2000), describe: 'n3 leaves', apply: (cluster) => leave(cluster, 3) },
        { atMs: 9500 + random.int(1000), describe: 'heal', apply: (cluster) => { cluster.network.heal() } },
        { atMs: 11_000 + random.int(1000), describe: 'n0 crashes', apply: (cluster) => { cluster.crash(0) } },
        { atMs: 13_000 + random.int(1000), describe: 'n0 restarts', apply: (cluster) => cluster.start(0) },
      ]
    },
  },
  // The simulator's random faults (cuts, loss, crashes) on the first three nodes, n3 joining
  // amid them; then everything healed (n4 joins then too). Clock jumps are left out: a jump past
  // clock.maxSkewMs makes the other nodes refuse the ballots and versions it issued until real
  // time catches up (docs/consistency.md), longer than this run waits.
  'faults-and-join': {
    about: 'random faults (no clock jumps) on n0..n2 for 14 s, n3 joins amid them, then heal',
    steps: (random) => {
      const faults = drawFaultPlan(random, { nodeCount: 3, durationMs: FAULTS_MS, tombstoneGraceMs: 8000, maxSkewMs: 5000 })
        .filter((step) => !step.describe.startsWith('skew') && !step.describe.includes('clock'))
      const join: Step = { atMs: 2000 + random.int(8000), describe: 'n3 joins', apply: (cluster) => cluster.start(3) }
      const heal: Step = { atMs: FAULTS_MS, describe: 'heal everything', apply: (cluster) => healEverything(cluster) }
      return [...faults, join, heal].sort((a, b) => a.atMs - b.atMs)
    },
  },
}

export async function runLinearizableSeed(seed: number, options: LinearizableRunOptions = {}): Promise<LinearizableRunResult> {
  const master = createRandom(seed)
  omittedReasons.clear()
  const cluster = await SimCluster.create({ seed: master.int(2 ** 32), nodeCount: 5, ...(options.config !== undefined ? { config: options.config } : {}) })
  options.onCluster?.(cluster)
  const startMs = cluster.clock.nowMs()
  const event = (line: string): void => options.onEvent?.(`${(cluster.clock.nowMs() - startMs).toString().padStart(7)} ms  ${line}`)
  for (const index of [0, 1, 2]) await cluster.start(index)
  await cluster.runFor(3000)
  event('3 nodes up')

  const ops: Operation[] = []
  const outcomes: Record<string, number> = {}
  const nowMs = (): number => cluster.clock.nowMs() - startMs
  let stopped = false
  const steps = SCENARIOS[options.scenario ?? 'join-leave'].steps(createRandom(master.int(2 ** 32)))
  const clients = Array.from({ length: CLIENTS }, (_, i) => runClient(cluster, i + 1, createRandom(master.int(2 ** 32)), ops, outcomes, nowMs, () => stopped))
  const loadStartMs = cluster.clock.nowMs()
  for (const step of steps) {
    await cluster.runFor(Math.max(0, loadStartMs + step.atMs - cluster.clock.nowMs()))
    event(step.describe)
    await step.apply(cluster)
  }
  await cluster.runFor(4000)
  stopped = true
  let drained = false
  const problems: string[] = []
  void Promise.all(clients).then(() => { drained = true }, (error: unknown) => {
    problems.push(`a client operation failed with an error that is not an API answer: ${error instanceof Error ? error.stack ?? error.message : String(error)}`)
    drained = true
  })
  await cluster.runUntil(() => drained, DRAIN_MAX_MS)
  if (!drained) problems.push(`client operations still waiting ${DRAIN_MAX_MS} ms after the load stopped`)
  event(`load stopped: ${JSON.stringify(outcomes)}`)

  // Final linearizable reads through every node up, retried while partitions settle.
  const finals = new Map<string, string | null>()
  for (const key of [...REGISTER_KEYS, ...COUNTER_KEYS]) {
    for (const node of cluster.upNodes()) {
      let read: RegisterOutput | undefined
      for (let attempt = 0; attempt < 20 && read?.kind !== 'read'; attempt++) {
        // Simulated time only moves when it is run: run it until the read is answered.
        let answered = false
        const reading = record(cluster, node.index, key, 'final', { kind: 'read' }, ops, outcomes, nowMs).finally(() => { answered = true })
        await cluster.runUntil(() => answered, DRAIN_MAX_MS, 10)
        read = answered ? await reading : undefined
        if (read?.kind !== 'read') await cluster.runFor(500)
      }
      if (read?.kind === 'read') finals.set(key, read.value)
      else problems.push(`no linearizable read of ${key} through ${node.name} answered after the load`)
    }
  }
  const result = checkLinearizable(ops)
  if (result.verdict !== 'linearizable') problems.push(result.verdict === 'not-linearizable' ? result.explanation : `checker ${result.verdict}`)
  for (const key of COUNTER_KEYS) {
    if (!finals.has(key)) continue
    const problem = checkCounter(ops, key, finals.get(key) ?? null)
    if (problem !== undefined) problems.push(problem)
  }
  for (const problem of problems) event(`VIOLATION ${problem}`)
  return { seed, ops, result, problems, outcomes, omitted: new Map(omittedReasons) }
}

/** One client: read-modify-write on the register keys from the version it last saw, increments, reads. */
async function runClient(cluster: SimCluster, id: number, random: Random, ops: Operation[], outcomes: Record<string, number>, nowMs: () => number, stopped: () => boolean): Promise<void> {
  const seen = new Map<string, Version | null>()
  const pick = <T>(list: readonly T[]): T => list[random.int(list.length)]!
  for (let n = 0; !stopped(); n++) {
    const up = cluster.upNodes()
    if (up.length === 0) break
    const node = pick(up).index
    const roll = random.next()
    if (roll < 0.35) {
      await record(cluster, node, pick(COUNTER_KEYS), id, { kind: 'incr', by: BigInt(1 + random.int(3)) }, ops, outcomes, nowMs)
    } else if (roll < 0.6) {
      const key = pick([...REGISTER_KEYS, ...COUNTER_KEYS])
      const output = await record(cluster, node, key, id, { kind: 'read' }, ops, outcomes, nowMs)
      if (output?.kind === 'read' && REGISTER_KEYS.includes(key)) seen.set(key, output.version)
    } else {
      const key = pick(REGISTER_KEYS)
      const ifVersion = seen.has(key) ? seen.get(key)! : null
      const input: RegisterInput = ifVersion !== null && random.next() < 0.1
        ? { kind: 'delete', ifVersion }
        : { kind: 'cas', ifVersion, value: `c${id}-${n}` }
      const output = await record(cluster, node, key, id, input, ops, outcomes, nowMs)
      if (output?.kind === 'ok') seen.set(key, input.kind === 'delete' ? null : output.version)
      if (output?.kind === 'fail' && output.currentVersion !== undefined) seen.set(key, output.currentVersion)
      if (output?.kind === 'unknown') seen.delete(key)
    }
    await sleep(cluster.clock, 1 + random.int(MAX_PAUSE_MS))
  }
}

/**
 * Runs one operation through node `index` and records it. Classified as the cluster tests'
 * recorder does: a 409 and a 200 are definite; OutcomeUnknownError, any other error of a change,
 * and a coordinator that crashed before answering are unknown; a refusal before anything was
 * proposed (503 without outcome) and a read's error are left out.
 */
async function record(cluster: SimCluster, index: number, key: string, client: string | number, input: RegisterInput, ops: Operation[], outcomes: Record<string, number>, nowMs: () => number): Promise<RegisterOutput | undefined> {
  const node = cluster.nodes[index]!
  const service = node.parts?.linearizable
  if (service === undefined) return undefined
  const invokedAtMs = nowMs()
  const starts = node.starts
  let output: RegisterOutput | undefined
  // A node that crashes (or leaves) under the operation never answers: stop waiting then.
  let settled = false
  const crashed = new Promise<never>((_, reject) => {
    const poll = (): void => {
      if (settled) return
      if (node.starts !== starts || !node.up) reject(new NodeGoneError())
      else void sleep(cluster.clock, CRASH_POLL_MS).then(poll)
    }
    poll()
  })
  crashed.catch(() => undefined)
  const run = async <T>(operation: Promise<T>): Promise<T> => Promise.race([operation, crashed])
  try {
    switch (input.kind) {
      case 'read': {
        const found = await run(service.read(key))
        output = { kind: 'read', value: found === undefined ? null : Buffer.from(found.value).toString(), version: found === undefined ? null : formatVersion(found.version) }
        break
      }
      case 'incr': {
        const done = await run(service.increment(key, input.by))
        output = { kind: 'ok', version: formatVersion(done.version), value: done.value }
        break
      }
      case 'cas':
      case 'delete': {
        const ifVersion = input.ifVersion === null ? 'absent' : parseVersion(input.ifVersion)
        const done = await run(service.compareAndSet(key, input.kind === 'cas' ? Buffer.from(input.value) : null, ifVersion))
        output = { kind: 'ok', version: formatVersion(done.version) }
        break
      }
      default:
        throw new Error(`the simulator does not send ${input.kind}`)
    }
  } catch (error) {
    if (!(error instanceof HearsayError) && !(error instanceof NodeGoneError)) throw error
    if (error instanceof ConditionFailedError) {
      const version = (error.details.current as { version?: unknown } | undefined)?.version
      output = { kind: 'fail', ...(version === null || typeof version === 'string' ? { currentVersion: version } : {}) }
    } else if (input.kind === 'read' || (error instanceof UnavailableError && !(error instanceof OutcomeUnknownError))) {
      output = undefined
      const reason = `${node.name}: ${(error as Error).message.replace(/[0-9a-f]{16}/g, '…').replace(/[0-9]+/g, 'N').slice(0, 160)}`
      omittedReasons.set(reason, (omittedReasons.get(reason) ?? 0) + 1)
    } else {
      output = { kind: 'unknown' }
    }
  } finally {
    settled = true
  }
  const kind = output?.kind ?? 'omitted'
  outcomes[kind] = (outcomes[kind] ?? 0) + 1
  if (output !== undefined) ops.push({ key, client, node: node.name, input, output, invokedAtMs, completedAtMs: nowMs() })
  return output
}
