import type { Random } from '../runtime/random.js'
import type { SimCluster } from './cluster.js'

/**
 * Faults drawn from a seed: network cuts (symmetric, one-way, flapping, one node isolated, past
 * the tombstone grace too), a lossy network (loss, duplication, reordering, delay), crashes with
 * restarts on the durable state, and clock skew (within and beyond clock.maxSkewMs). A plan is
 * a list of timed steps, a pure function of the random source it was drawn from.
 */

export interface FaultStep {
  /** From the start of the fault phase, in simulated ms. */
  readonly atMs: number
  readonly describe: string
  readonly apply: (cluster: SimCluster) => Promise<void> | void
}

export interface FaultPlanOptions {
  readonly nodeCount: number
  /** Length of the fault phase; steps fall inside it, and everything is healed at its end. */
  readonly durationMs: number
  readonly tombstoneGraceMs: number
  readonly maxSkewMs: number
}

/** The benign network between faults: 1–5 ms, nothing lost, duplicated or reordered. */
export const CALM_NETWORK = { delayMs: { minMs: 1, maxMs: 5 }, lossProbability: 0, duplicateProbability: 0, reorderProbability: 0 }

export function drawFaultPlan(random: Random, options: FaultPlanOptions): FaultStep[] {
  const { nodeCount, durationMs } = options
  const steps: FaultStep[] = []
  const node = (): number => random.int(nodeCount)
  const span = (minMs: number, maxMs: number): number => minMs + random.int(maxMs - minMs + 1)

  // Cuts of the network one after another (each heals before the next), with quiet gaps.
  for (let atMs = span(0, 3000); atMs < durationMs - 1000;) {
    const lengthMs = Math.min(durationMs - atMs, span(2000, 12_000))
    const endMs = atMs + lengthMs
    const kind = random.int(5)
    if (kind === 0) {
      const isolated = node()
      // One in three isolations outlasts the tombstone grace: the absence rule must bite.
      const longMs = random.chance(1 / 3) ? options.tombstoneGraceMs + span(2000, 8000) : lengthMs
      const healAtMs = Math.min(durationMs, atMs + longMs)
      steps.push({ atMs, describe: `isolate n${isolated} for ${healAtMs - atMs} ms`, apply: (c) => c.split([isolated]) })
      steps.push({ atMs: healAtMs, describe: 'heal', apply: (c) => c.network.heal() })
      atMs = healAtMs + span(500, 3000)
      continue
    }
    if (kind === 1) {
      const side = shuffled(random, nodeCount).slice(0, 1 + random.int(Math.max(1, nodeCount - 1)))
      steps.push({ atMs, describe: `split {${side.map((i) => `n${i}`).join(',')}} from the rest`, apply: (c) => c.split(side) })
    } else if (kind === 2) {
      const [from, to] = shuffled(random, nodeCount)
      steps.push({ atMs, describe: `cut n${from} → n${to} one way`, apply: (c) => c.network.blockOneWay(c.nodes[from!]!.peer, c.nodes[to!]!.peer) })
    } else if (kind === 3) {
      const side = shuffled(random, nodeCount).slice(0, 1 + random.int(Math.max(1, nodeCount - 1)))
      const periodMs = span(300, 2000)
      for (let flipMs = atMs, cut = true; flipMs < endMs; flipMs += periodMs, cut = !cut) {
        steps.push(cut
          ? { atMs: flipMs, describe: `flap: split {${side.map((i) => `n${i}`).join(',')}}`, apply: (c) => c.split(side) }
          : { atMs: flipMs, describe: 'flap: heal', apply: (c) => c.network.heal() })
      }
    } else {
      const conditions = {
        delayMs: { minMs: 1, maxMs: span(5, 150) },
        lossProbability: random.int(20) / 100,
        duplicateProbability: random.int(10) / 100,
        reorderProbability: random.int(20) / 100,
      }
      steps.push({ atMs, describe: `lossy network ${JSON.stringify(conditions)}`, apply: (c) => c.network.setConditions(conditions) })
      steps.push({ atMs: endMs, describe: 'calm network', apply: (c) => c.network.setConditions(CALM_NETWORK) })
      atMs = endMs + span(500, 3000)
      continue
    }
    steps.push({ atMs: endMs, describe: 'heal', apply: (c) => c.network.heal() })
    atMs = endMs + span(500, 3000)
  }

  // Crashes, each restarted later on its durable state (or at the final heal).
  for (let crashes = random.int(3); crashes > 0; crashes--) {
    const victim = node()
    const atMs = span(0, durationMs - 1000)
    const restartMs = Math.min(durationMs, atMs + span(500, 15_000))
    steps.push({ atMs, describe: `crash n${victim}`, apply: (c) => c.crash(victim) })
    steps.push({ atMs: restartMs, describe: `restart n${victim}`, apply: (c) => restart(c, victim) })
  }

  // Clock skew, within the bound (tolerated) or beyond it (the node must stop coordinating writes).
  if (random.chance(0.4)) {
    const skewed = node()
    const beyond = random.chance(0.5)
    const magnitude = beyond ? options.maxSkewMs * (2 + random.int(18)) : Math.floor(options.maxSkewMs * (0.1 + random.int(50) / 100))
    const skewMs = beyond || random.chance(0.5) ? magnitude : -magnitude
    const atMs = span(0, durationMs - 2000)
    steps.push({ atMs, describe: `skew n${skewed} by ${skewMs} ms`, apply: (c) => c.setSkew(skewed, skewMs) })
    steps.push({ atMs: Math.min(durationMs, atMs + span(2000, 15_000)), describe: `n${skewed}'s clock corrected`, apply: (c) => c.setSkew(skewed, 0) })
  }
  return steps.sort((a, b) => a.atMs - b.atMs)
}

/** Ends every fault: network healed and calm, clocks corrected, crashed nodes restarted. */
export async function healEverything(cluster: SimCluster): Promise<void> {
  cluster.network.heal()
  cluster.network.setConditions(CALM_NETWORK)
  for (const node of cluster.nodes) {
    cluster.setSkew(node.index, 0)
    if (!node.up) await cluster.start(node.index)
  }
}

async function restart(cluster: SimCluster, index: number): Promise<void> {
  if (!cluster.nodes[index]!.up) await cluster.start(index)
}

function shuffled(random: Random, count: number): number[] {
  const items = Array.from({ length: count }, (_, i) => i)
  for (let i = items.length - 1; i > 0; i--) {
    const j = random.int(i + 1)
    ;[items[i], items[j]] = [items[j]!, items[i]!]
  }
  return items
}
