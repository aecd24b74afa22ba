import { writeFileSync } from 'node:fs'
import { loadavg } from 'node:os'
import { join } from 'node:path'
import { checkLastWriteWins, countProblemKeys, type FinalRead, type HistoryProblem, type ProblemKind } from '../cluster/history.js'
import { deepMerge } from '../helpers/daemon.js'
import { FaultCluster, sleep } from './cluster.js'
import { linearizableScenario } from './linearizable-scenario.js'
import { Load, sendWrite, type RecordedOp, type WriteLevel } from './load.js'

/**
 * The fault scenarios of issue 11, each on its own fresh cluster of real daemons: start, load,
 * fault, heal, settle, read every node, check. Each returns its numbers and its oracles' verdicts;
 * none of them throws for a failed oracle (only for a broken harness).
 */

export interface ScenarioContext {
  readonly daemonBin: string
  /** Where each scenario's configs and node logs go. */
  readonly runDir: string
  /** Namespace name prefix of this run; a scenario appends its own letter. */
  readonly namespacePrefix: string
  /** First two octets of the private subnets; a scenario picks the third. */
  readonly subnetBase: string
  readonly log: (line: string) => void
}

export interface Oracle {
  readonly name: string
  readonly pass: boolean
  readonly detail: string
}

export interface ScenarioResult {
  readonly name: string
  readonly title: string
  readonly nodes: number
  readonly durationMs: number
  readonly ops: number
  readonly acked: number
  readonly failed: number
  /** Latency of acknowledged writes (send to answer), 50th and 99th percentile, ms. */
  readonly ackedP50Ms: number
  readonly ackedP99Ms: number
  /** The machine's 1-minute load average when the scenario started (the suite shares its cores). */
  readonly loadAverage: number
  readonly problems: readonly HistoryProblem[]
  readonly problemKeys: Record<ProblemKind, number>
  /** Keys whose records still differ between nodes after the settle bound. */
  readonly diverged: number
  /** ms from the heal until every node listed every member alive; null: not within the bound; undefined: no heal. */
  readonly aliveAfterHealMs?: number | null
  /** Writes sent at or after the heal (within the scenario's heal window) that failed. */
  readonly healWriteFailures?: number
  /** Quorum 503 answers to writes whose body did not say "outcome":"unknown". */
  readonly missingOutcome: number
  readonly oracles: readonly Oracle[]
  readonly notes: readonly string[]
  readonly error?: string
}

export interface Scenario {
  readonly name: string
  readonly title: string
  readonly nodes: number
  /** Third octet of its subnet, unique per scenario so a leftover of one never meets another. */
  readonly subnetOctet: number
  readonly run: (cluster: FaultCluster, ctx: ScenarioContext, record: Recorder) => Promise<void>
  readonly config?: (index: number) => Record<string, unknown>
  /** Nodes that are expected not to report /health ok at start (the skewed clock). */
  readonly unhealthyAtStart?: readonly number[]
  /** Start the cluster with delay proxies on the peer links (cluster.setDelay). */
  readonly delayProxies?: boolean
}

/** Membership fast enough to declare a partitioned member dead in ~10 s; push-pull stays at its 30 s default. */
const MEMBERSHIP = { probeIntervalMs: 500, probeTimeoutMs: 200, gossipIntervalMs: 100, pushPullIntervalMs: 30_000 }
const ANTI_ENTROPY = { schedule: '*/5 * * * * *' }
/** clock.maxSkewMs's default, plus slack for the test's own timestamps under load. */
const SKEW_BOUND_MS = 500 + 1_000
const SETTLE_TIMEOUT_MS = 60_000
const DEAD_TIMEOUT_MS = 60_000
const ALIVE_TIMEOUT_MS = 45_000
/** Target of issue 11 item 3: all members alive again this soon after connectivity returns. */
const ALIVE_TARGET_MS = 3_000
/** Bound on waiting for a tombstone scenario's tombstones to be collected after the heal. */
const TOMBSTONE_WAIT_MS = 60_000
/** How long after a heal writes count as "during the heal". */
const HEAL_WINDOW_MS = 10_000

/** What a scenario hands back to the common checking code. */
export class Recorder {
  readonly ops: RecordedOp[] = []
  readonly oracles: Oracle[] = []
  readonly notes: string[] = []
  aliveAfterHealMs: number | null | undefined
  healWriteFailures: number | undefined
  /** Key prefix of everything this scenario writes (the final state is read under it). */
  constructor(readonly prefix: string) {}

  add(ops: readonly RecordedOp[]): void { this.ops.push(...ops) }
  oracle(name: string, pass: boolean, detail: string): void { this.oracles.push({ name, pass, detail }) }
  note(text: string): void { this.notes.push(text) }
}

export async function runScenario(scenario: Scenario, ctx: ScenarioContext): Promise<ScenarioResult> {
  const startedAtMs = Date.now()
  const loadAverage = loadavg()[0] ?? 0
  const record = new Recorder(`${scenario.name}/`)
  let cluster: FaultCluster | undefined
  let error: string | undefined
  let diverged = 0
  let problems: HistoryProblem[] = []
  try {
    cluster = await FaultCluster.start({
      prefix: `${ctx.namespacePrefix}${scenario.name}-`,
      subnetBase: `${ctx.subnetBase}.${scenario.subnetOctet}`,
      nodes: scenario.nodes,
      runDir: join(ctx.runDir, scenario.name),
      daemonBin: ctx.daemonBin,
      config: index => deepMerge({ membership: MEMBERSHIP, antiEntropy: ANTI_ENTROPY, replication: { factor: scenario.nodes } }, scenario.config?.(index) ?? {}),
      ...(scenario.unhealthyAtStart !== undefined ? { unhealthyAtStart: scenario.unhealthyAtStart } : {}),
      ...(scenario.delayProxies === true ? { delayProxies: true } : {}),
    })
    ctx.log(`${scenario.name}: cluster of ${scenario.nodes} up`)
    await scenario.run(cluster, ctx, record)
    ctx.log(`${scenario.name}: settling and reading every node`)
    const final = await settleAndRead(cluster, record.prefix, record)
    diverged = final.diverged
    const keys = new Set(record.ops.map(op => op.key))
    const seen = new Set<string>()
    for (const view of final.views) {
      const finals = new Map<string, FinalRead | null>([...keys].map(key => [key, view.get(key) ?? null]))
      for (const [key, read] of view) finals.set(key, read)
      for (const problem of checkLastWriteWins(record.ops, finals, { maxSkewMs: SKEW_BOUND_MS, readAtMs: final.readAtMs })) {
        const id = `${problem.key}\n${problem.kind}\n${problem.message}`
        if (!seen.has(id)) { seen.add(id); problems.push(problem) }
      }
    }
    if (final.views.length < scenario.nodes) record.note(`only ${final.views.length} of ${scenario.nodes} nodes answered the final read`)
  } catch (caught) {
    error = caught instanceof Error ? caught.message : String(caught)
    problems = []
  } finally {
    try {
      await cluster?.close()
    } catch (caught) {
      error = `${error ?? ''} (teardown: ${String(caught)})`
    }
  }
  // Every recorded operation and problem beside the node logs, for looking into a failure.
  try {
    writeFileSync(join(ctx.runDir, scenario.name, 'history.json'), JSON.stringify({ ops: record.ops, problems }))
  } catch { /* the run dir was never made: the cluster did not start */ }
  const problemKeys = countProblemKeys(problems)
  const ackedLatencies = record.ops.filter(op => op.outcome === 'ok').map(op => op.completedAtMs - op.invokedAtMs).sort((a, b) => a - b)
  const missingOutcome = record.ops.filter(op => op.quorum503 !== undefined && op.quorum503.outcome !== 'unknown').length
  const oracles: Oracle[] = [
    { name: 'no acknowledged write lost', pass: problemKeys.lost === 0, detail: `${problemKeys.lost} keys` },
    { name: 'no acknowledged delete resurrected', pass: problemKeys.resurrected === 0, detail: `${problemKeys.resurrected} keys` },
    { name: 'no version from the future kept', pass: problemKeys.future === 0, detail: `${problemKeys.future} keys` },
    { name: 'final state written by someone', pass: problemKeys.phantom + problemKeys.mismatch + problemKeys.duplicate + problemKeys.unread === 0, detail: `${problemKeys.phantom} phantom, ${problemKeys.mismatch} mismatched, ${problemKeys.duplicate} duplicate versions, ${problemKeys.unread} unread` },
    { name: 'replicas converge', pass: diverged === 0, detail: `${diverged} keys differ between nodes after ${SETTLE_TIMEOUT_MS / 1000} s` },
    { name: 'every quorum 503 says outcome unknown', pass: missingOutcome === 0, detail: `${missingOutcome} without` },
    ...record.oracles,
  ]
  if (error !== undefined) oracles.push({ name: 'scenario ran to the end', pass: false, detail: error })
  return {
    name: scenario.name, title: scenario.title, nodes: scenario.nodes, durationMs: Date.now() - startedAtMs,
    ops: record.ops.length,
    acked: record.ops.filter(op => op.outcome === 'ok').length,
    failed: record.ops.filter(op => op.outcome === 'failed').length,
    ackedP50Ms: percentile(ackedLatencies, 0.5), ackedP99Ms: percentile(ackedLatencies, 0.99), loadAverage,
    problems, problemKeys, diverged,
    ...(record.aliveAfterHealMs !== undefined ? { aliveAfterHealMs: record.aliveAfterHealMs } : {}),
    ...(record.healWriteFailures !== undefined ? { healWriteFailures: record.healWriteFailures } : {}),
    missingOutcome, oracles, notes: record.notes,
    ...(error !== undefined ? { error } : {}),
  }
}

/**
 * Waits (bounded) until every node serves (/health ok) and all hold the same live records under
 * `prefix`, then returns every node's records. Divergence left at the bound is counted, not hidden.
 */
async function settleAndRead(cluster: FaultCluster, prefix: string, record: Recorder): Promise<{ views: Map<string, FinalRead>[]; diverged: number; readAtMs: number }> {
  const startedAtMs = Date.now()
  let views: Map<string, FinalRead>[] = []
  let diverged = Number.POSITIVE_INFINITY
  let serving = false
  while (Date.now() - startedAtMs < SETTLE_TIMEOUT_MS) {
    serving = await cluster.serving()
    if (serving) {
      const read = await Promise.all(cluster.nodes.map(n => cluster.scan(n.index, prefix)))
      views = read.filter((v): v is Map<string, FinalRead> => v !== undefined)
      diverged = views.length === cluster.nodes.length ? countDiverged(views) : Number.POSITIVE_INFINITY
      if (diverged === 0) break
    }
    await sleep(1_000)
  }
  const readAtMs = Date.now()
  if (!serving) {
    const healthy = await Promise.all(cluster.nodes.map(n => cluster.health(n.index)))
    record.note(`after ${SETTLE_TIMEOUT_MS / 1000} s not every node served: ${healthy.map((h, i) => `n${i + 1} ${h}`).join(', ')}`)
    const read = await Promise.all(cluster.nodes.map(n => cluster.scan(n.index, prefix)))
    views = read.filter((v): v is Map<string, FinalRead> => v !== undefined)
    diverged = countDiverged(views)
  } else {
    record.note(`settled in ${((readAtMs - startedAtMs) / 1000).toFixed(1)} s`)
  }
  return { views, diverged: Number.isFinite(diverged) ? diverged : 0, readAtMs }
}

function countDiverged(views: readonly Map<string, FinalRead>[]): number {
  const keys = new Set(views.flatMap(v => [...v.keys()]))
  let diverged = 0
  for (const key of keys) {
    const versions = new Set(views.map(v => v.get(key)?.version ?? 'absent'))
    if (versions.size > 1) diverged++
  }
  return diverged
}

/** Sends writes with at most `concurrency` in flight; returns them in completion order. */
async function writeAll(cluster: FaultCluster, items: ReadonlyArray<{ node: number; key: string; value: string | undefined; w: WriteLevel }>, concurrency = 8): Promise<RecordedOp[]> {
  const ops: RecordedOp[] = []
  let next = 0
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < items.length) {
      const item = items[next++]!
      ops.push(await sendWrite(cluster, item.node, item.key, item.value, item.w))
    }
  }))
  return ops
}

/** Partitions, then holds until at least `minMs` passed and both sides list each other dead. */
async function isolateUntilDead(cluster: FaultCluster, majority: readonly number[], minority: readonly number[], minMs: number, record: Recorder): Promise<number> {
  const partitionedAtMs = Date.now()
  await cluster.partition([majority, minority])
  const deadAfterMs = await cluster.waitUntil('both sides of the partition to list each other dead', DEAD_TIMEOUT_MS,
    async () => (await cluster.listsDead(majority, minority)) && (await cluster.listsDead(minority, majority)))
  record.note(`both sides listed each other dead ${(deadAfterMs / 1000).toFixed(1)} s after the partition`)
  const remainingMs = minMs - (Date.now() - partitionedAtMs)
  if (remainingMs > 0) await sleep(remainingMs)
  return partitionedAtMs
}

/** Heals and measures how long until every node lists every member alive again. */
async function healAndTimeAlive(cluster: FaultCluster, record: Recorder): Promise<number> {
  await cluster.heal()
  const healedAtMs = Date.now()
  try {
    record.aliveAfterHealMs = await cluster.waitUntil('every member alive on every node after the heal', ALIVE_TIMEOUT_MS, () => cluster.allAlive())
  } catch {
    record.aliveAfterHealMs = null
  }
  const shown = record.aliveAfterHealMs === null ? `not within ${ALIVE_TIMEOUT_MS / 1000} s` : `${record.aliveAfterHealMs} ms`
  record.oracle(`all members alive ≤ ${ALIVE_TARGET_MS} ms after the heal`, record.aliveAfterHealMs !== null && record.aliveAfterHealMs <= ALIVE_TARGET_MS, shown)
  return healedAtMs
}

/** Records a node holds that are not live under `prefix` (tombstones; the scenarios set no TTL); -1 when it does not answer. */
async function tombstonesHeld(cluster: FaultCluster, index: number, prefix: string): Promise<number> {
  const [status, live] = await Promise.all([cluster.status(index), cluster.scan(index, prefix)])
  const keys = status?.['keys']
  return typeof keys === 'number' && live !== undefined ? keys - live.size : -1
}

function failuresBetween(ops: readonly RecordedOp[], fromMs: number, toMs: number): RecordedOp[] {
  return ops.filter(op => op.outcome === 'failed' && op.invokedAtMs >= fromMs && op.invokedAtMs < toMs)
}

function percentile(sorted: readonly number[], q: number): number {
  return sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!
}

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i)
}

/** 1. One of three nodes runs 10 s ahead: the others' acknowledged writes must survive its values. */
const clockSkew: Scenario = {
  name: 'skew', title: 'clock +10 s on one of 3 nodes', nodes: 3, subnetOctet: 31,
  config: index => (index === 2 ? { clock: { offsetMs: 10_000 } } : {}),
  unhealthyAtStart: [2],
  async run(cluster, ctx, record) {
    const load = new Load(cluster, { prefix: `${record.prefix}bg`, keys: 200, workers: 2, pauseMs: 20, deleteShare: 0.1, w: 'quorum', coordinators: [0, 1, 2], seed: 1 })
    load.start()
    // k*: the others then write with W=quorum; a*: with W=all, which the skewed node must ack too.
    const keys = range(20).map(i => `${record.prefix}k${i}`)
    const allKeys = range(10).map(i => `${record.prefix}a${i}`)
    const skewed = await writeAll(cluster, [...keys, ...allKeys].map(key => ({ node: 2, key, value: `${key}-skewed`, w: 'quorum' as const })))
    record.add(skewed)
    // As in the issue: the others write the same keys after the skewed node has answered, by more
    // than the skew bound, so under a working bound their versions are the greater ones.
    await sleep(SKEW_BOUND_MS + 500)
    const acked = await writeAll(cluster, [
      ...keys.map((key, i) => ({ node: i % 2, key, value: `${key}-acked`, w: 'quorum' as const })),
      ...allKeys.map((key, i) => ({ node: i % 2, key, value: `${key}-acked`, w: 'all' as const })),
    ])
    record.add(acked)
    const futureWallMs = Math.max(0, ...skewed.filter(op => op.version !== undefined).map(op => Math.floor(Number(op.version!.slice(0, 16)) / 1000)))
    const ackedAll = acked.filter(op => op.w === 'all')
    record.note(`the skewed node answered ${skewed.filter(op => op.outcome === 'ok').length}/${skewed.length} ok, ${skewed.filter(op => op.version !== undefined && op.outcome === 'failed').length} 503s carrying a version (applied locally); ` +
      `the others acked ${acked.filter(op => op.w === 'quorum' && op.outcome === 'ok').length}/${keys.length} W=quorum and ${ackedAll.filter(op => op.outcome === 'ok').length}/${allKeys.length} W=all writes of the same keys`)
    const health = await cluster.health(2)
    record.oracle('the skewed node says so on /health', health !== 'ok', `/health status ${health}`)
    // Real time must pass the future versions before they can spread; the settle step then waits for convergence.
    const waitMs = futureWallMs - Date.now() + 2_000
    if (futureWallMs > 0 && waitMs > 0) {
      ctx.log(`skew: waiting ${(waitMs / 1000).toFixed(1)} s for real time to pass the skewed versions`)
      await sleep(Math.min(waitMs, 15_000))
    }
    await load.stop()
    record.add(load.ops)
  },
}

/** 2. Deletes acknowledged by the majority while some nodes are away longer than the tombstone grace. */
function tombstoneScenario(name: string, subnetOctet: number, minority: readonly number[], killDuringIsolation: boolean, deletedKeys: number): Scenario {
  const nodes = 5
  const majority = range(nodes).filter(i => !minority.includes(i))
  return {
    name, subnetOctet, nodes,
    title: `${minority.length === 1 ? 'one node' : `${minority.length}-node minority`} of 5 away 22 s > grace 8 s${killDuringIsolation ? ', kill -9 + restart inside' : ''}`,
    config: () => ({ store: { tombstoneGrace: '8s', gcIntervalMs: 500 } }),
    async run(cluster, ctx, record) {
      const keys = range(deletedKeys).map(i => `${record.prefix}d${i}`)
      record.add(await writeAll(cluster, keys.map((key, i) => ({ node: majority[i % majority.length]!, key, value: `${key}-v0`, w: 'all' as const }))))
      const load = new Load(cluster, { prefix: `${record.prefix}bg`, keys: 200, workers: 2, pauseMs: 20, deleteShare: 0.2, w: 'quorum', coordinators: range(nodes), seed: 2 })
      load.start()
      const partitionedAtMs = Date.now()
      await cluster.partition([majority, minority])
      ctx.log(`${name}: partitioned ${minority.map(i => `n${i + 1}`).join('+')} away; deleting ${deletedKeys} keys on the majority`)
      const deletes = await writeAll(cluster, keys.map((key, i) => ({ node: majority[i % majority.length]!, key, value: undefined, w: 'quorum' as const })))
      record.add(deletes)
      record.note(`${deletes.filter(op => op.outcome === 'ok').length}/${deletedKeys} deletes acknowledged (W=quorum) on the majority`)
      if (killDuringIsolation) {
        await sleep(Math.max(0, partitionedAtMs + 10_000 - Date.now()))
        const victim = minority[minority.length - 1]!
        await cluster.kill9(victim)
        await cluster.restart(victim)
        record.note(`n${victim + 1} killed with SIGKILL and restarted inside the minority 10 s into the partition; /health then ${await cluster.health(victim)}`)
      }
      await sleep(Math.max(0, partitionedAtMs + 22_000 - Date.now()))
      const collected = await Promise.all(majority.map(i => cluster.metric(i, 'hearsay_store_gc_collected_total', 'kind="tombstone"')))
      const repairing = await Promise.all(minority.map(async i => `n${i + 1} ${String((await cluster.status(i))?.['repairing'] ?? '?')}`))
      record.note(`before the heal: majority collected ${collected.map(c => c ?? '?').join('/')} tombstones; minority repairing: ${repairing.join(', ')}`)
      await healAndTimeAlive(cluster, record)
      await sleep(5_000)
      await load.stop()
      record.add(load.ops)
      // Liveness of the collector: gated on every replica holding a tombstone, it must still
      // collect once they all do. Not an oracle (the design bounds how soon, not how late).
      const stoppedAtMs = Date.now()
      let held: number[] = []
      try {
        await cluster.waitUntil('every tombstone collected', TOMBSTONE_WAIT_MS, async () => {
          held = await Promise.all(cluster.nodes.map(async n => tombstonesHeld(cluster, n.index, record.prefix)))
          return held.every(count => count === 0)
        }, 1_000)
        record.note(`every tombstone collected on every node ${((Date.now() - stoppedAtMs) / 1000).toFixed(1)} s after the load stopped`)
      } catch {
        record.note(`tombstones still held ${TOMBSTONE_WAIT_MS / 1000} s after the load stopped: ${held.map((c, i) => `n${i + 1} ${c}`).join(', ')}`)
      }
    },
  }
}

/** 3. After a long isolation (both sides declared each other dead), how soon is everyone alive again? */
const healSpeed: Scenario = {
  name: 'heal', title: '1 of 3 isolated 25 s (dead both ways), then healed', nodes: 3, subnetOctet: 33,
  async run(cluster, ctx, record) {
    const load = new Load(cluster, { prefix: `${record.prefix}k`, keys: 200, workers: 2, pauseMs: 50, deleteShare: 0.1, w: 'all', coordinators: [0, 1], seed: 3 })
    load.start()
    await isolateUntilDead(cluster, [0, 1], [2], 25_000, record)
    ctx.log('heal: healing')
    const healedAtMs = await healAndTimeAlive(cluster, record)
    await sleep(Math.max(0, healedAtMs + HEAL_WINDOW_MS - Date.now()))
    await load.stop()
    record.add(load.ops)
    const failures = failuresBetween(load.ops, healedAtMs, healedAtMs + HEAL_WINDOW_MS)
    record.healWriteFailures = failures.length
    const aliveAtMs = healedAtMs + (record.aliveAfterHealMs ?? HEAL_WINDOW_MS)
    const afterAlive = failuresBetween(load.ops, aliveAtMs, healedAtMs + HEAL_WINDOW_MS).length
    record.oracle('no W=all write fails once every member is alive again', afterAlive === 0, `${afterAlive} failed after that`)
    const firstOk = load.ops.filter(op => op.outcome === 'ok' && op.invokedAtMs >= healedAtMs).map(op => op.invokedAtMs - healedAtMs).sort((a, b) => a - b)[0]
    record.note(`W=all writes after the heal: ${failures.length} failed in the first ${HEAL_WINDOW_MS / 1000} s; first success sent ${firstOk === undefined ? 'never' : `${firstOk} ms`} after the heal`)
  },
}

/** 4. At a heal, the majority's W=quorum writes must not fail because of stale "dead" rumours. */
const healRumours: Scenario = {
  name: 'rumour', title: '2 of 5 isolated 20 s (dead both ways), W=quorum on the 3 across the heal', nodes: 5, subnetOctet: 34,
  async run(cluster, ctx, record) {
    const majority = [0, 1, 2]
    const load = new Load(cluster, { prefix: `${record.prefix}k`, keys: 300, workers: 3, pauseMs: 20, deleteShare: 0.1, w: 'quorum', coordinators: majority, seed: 4 })
    load.start()
    await isolateUntilDead(cluster, majority, [3, 4], 20_000, record)
    ctx.log('rumour: healing, watching the majority for false deaths')
    // While the heal happens, watch whether a majority node lists another majority node not alive.
    let watching = true
    const falseDeaths = new Set<string>()
    const watcher = (async () => {
      while (watching) {
        const lists = await Promise.all(majority.map(i => cluster.members(i)))
        lists.forEach((rows, observer) => {
          for (const row of rows ?? []) {
            if (majority.some(i => cluster.nodes[i]!.name === row.name) && row.state !== 'alive') falseDeaths.add(`n${observer + 1} saw ${row.name} ${row.state}`)
          }
        })
        await sleep(50)
      }
    })()
    const healedAtMs = await healAndTimeAlive(cluster, record)
    await sleep(Math.max(0, healedAtMs + HEAL_WINDOW_MS - Date.now()))
    watching = false
    await watcher
    await load.stop()
    record.add(load.ops)
    const failures = failuresBetween(load.ops, healedAtMs, healedAtMs + HEAL_WINDOW_MS)
    record.healWriteFailures = failures.length
    const before = load.ops.filter(op => op.outcome === 'failed' && op.invokedAtMs < healedAtMs).length
    record.oracle('no majority W=quorum write fails at the heal', failures.length === 0, `${failures.length} failed in the ${HEAL_WINDOW_MS / 1000} s after the heal (${before} before it)`)
    record.oracle('no majority member listed suspect/dead by another at the heal', falseDeaths.size === 0, falseDeaths.size === 0 ? 'none seen (polled every ~50 ms)' : [...falseDeaths].slice(0, 6).join('; '))
  },
}

/** 5. A write answered 503 says its outcome is unknown, and such a write may still win. */
const unknownOutcome: Scenario = {
  name: 'outcome', title: '503 answers say "outcome":"unknown"; 503\'d writes may still win', nodes: 3, subnetOctet: 35,
  async run(cluster, ctx, record) {
    await cluster.partition([[0, 1], [2]])
    const wAll = await writeAll(cluster, range(10).map(i => ({ node: 0, key: `${record.prefix}all${i}`, value: `all${i}`, w: 'all' as const })), 10)
    record.add(wAll)
    const contested = range(40).map(i => `${record.prefix}c${i}`)
    const acked = await writeAll(cluster, contested.map(key => ({ node: 0, key, value: `${key}-acked`, w: 'quorum' as const })))
    record.add(acked)
    const late = await writeAll(cluster, contested.map(key => ({ node: 2, key, value: `${key}-minority`, w: 'quorum' as const })), 20)
    record.add(late)
    const quorum503s = [...wAll, ...late].filter(op => op.quorum503 !== undefined)
    record.oracle('writes short of W were answered 503', quorum503s.length === wAll.length + late.length,
      `${quorum503s.length} of ${wAll.length + late.length} (W=all with a replica cut off, W=quorum on the cut-off node)`)
    ctx.log('outcome: healing')
    await cluster.heal()
    await cluster.waitUntil('every member alive after the heal', ALIVE_TIMEOUT_MS, () => cluster.allAlive())
    const final = await Promise.all(contested.map(key => cluster.request('GET', `${cluster.nodes[0]!.url}/kv/${encodeURIComponent(key)}?r=all`, 6_000)))
    const wonBy503 = final.filter((answer, i) => answer.body === `${contested[i]}-minority`).length
    record.note(`${wonBy503} of ${contested.length} contested keys ended with the 503'd (newer) write over the acknowledged one, as last-write-wins allows`)
  },
}

/** 6. kill -9 under load with 5% packet loss: nothing acknowledged is lost. */
const crash: Scenario = {
  name: 'crash', title: 'kill -9 + restart of 2 of 3 nodes in turn, 5% loss, W=quorum load', nodes: 3, subnetOctet: 36,
  async run(cluster, ctx, record) {
    await cluster.addLoss([0, 1, 2], 0.05)
    const load = new Load(cluster, { prefix: `${record.prefix}k`, keys: 300, workers: 3, pauseMs: 10, deleteShare: 0.1, w: 'quorum', coordinators: [0, 1, 2], seed: 6 })
    load.start()
    for (const victim of [1, 2]) {
      await sleep(4_000)
      await cluster.kill9(victim)
      ctx.log(`crash: n${victim + 1} killed`)
      await sleep(2_000)
      await cluster.restart(victim)
    }
    await sleep(4_000)
    await cluster.heal()
    await load.stop()
    record.add(load.ops)
  },
}

/** 7. One node's links slowed (user-space delay proxy), then slower than every deadline, then healed. */
const slowNode: Scenario = {
  name: 'slow', title: 'peer links of 1 of 3 delayed 50±25 ms, then 3 s each way, then healed', nodes: 3, subnetOctet: 38,
  delayProxies: true,
  async run(cluster, ctx, record) {
    const load = new Load(cluster, { prefix: `${record.prefix}k`, keys: 300, workers: 3, pauseMs: 10, deleteShare: 0.1, w: 'quorum', coordinators: [0, 1, 2], seed: 7 })
    load.start()
    cluster.setDelay([2], 50, 25)
    ctx.log('slow: n3 links at 50±25 ms')
    await sleep(8_000)
    const slowAtMs = Date.now()
    cluster.setDelay([2], 3_000)
    ctx.log('slow: n3 links at 3 s (beyond replication.timeoutMs and the probe timeouts)')
    await sleep(10_000)
    const fastAtMs = Date.now()
    cluster.setDelay([], 0)
    ctx.log('slow: delay removed')
    try {
      record.aliveAfterHealMs = await cluster.waitUntil('every member alive after the delay is removed', ALIVE_TIMEOUT_MS, () => cluster.allAlive())
    } catch {
      record.aliveAfterHealMs = null
    }
    await sleep(3_000)
    await load.stop()
    record.add(load.ops)
    const healthy = load.ops.filter(op => op.node !== cluster.nodes[2]!.name && op.invokedAtMs < fastAtMs)
    const healthyFailed = healthy.filter(op => op.outcome === 'failed')
    const viaSlow = load.ops.filter(op => op.node === cluster.nodes[2]!.name && op.invokedAtMs >= slowAtMs && op.invokedAtMs < fastAtMs)
    record.healWriteFailures = failuresBetween(load.ops, fastAtMs, fastAtMs + HEAL_WINDOW_MS).length
    record.note(`while n3 was slow: ${viaSlow.filter(op => op.outcome === 'failed').length} of ${viaSlow.length} writes through n3 failed (expected: it cannot reach a quorum within replication.timeoutMs)`)
    record.oracle('W=quorum writes through the two fast nodes held while n3 was slow', healthyFailed.length === 0, `${healthyFailed.length} of ${healthy.length} failed`)
  },
}

export const scenarios: readonly Scenario[] = [
  clockSkew,
  tombstoneScenario('gc1', 32, [4], false, 300),
  tombstoneScenario('gc2', 37, [3, 4], true, 500),
  healSpeed,
  healRumours,
  unknownOutcome,
  crash,
  slowNode,
  linearizableScenario,
]
