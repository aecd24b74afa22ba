import { DEFAULT_LAN_MEMBERSHIP_CONFIG } from '../lib/membership/config.js'
import { Simulation } from '../lib/membership/simulation.js'
import { pushPullIntervalMs } from '../lib/membership/swim.js'

/**
 * SWIM membership on the deterministic simulator with LAN defaults (memberlist DefaultLANConfig
 * timings): how long a join and a death take to reach every node, and what steady state costs.
 * Times are simulated, so they do not depend on this machine; only the run time does.
 *
 *   node dist/bench/membership-sim.js [--sizes 10,100,1000] [--seed 1] [--loss 0]
 *
 * n = 1000 takes several minutes of CPU: a mass join is O(n² log n) gossip by nature.
 */

interface Options {
  readonly sizes: number[]
  readonly seed: number
  readonly lossProbability: number
}

/** Above this size the codec is skipped and bytes are estimated, or the run would take many minutes. */
const MAX_NODES_WITH_WIRE_CODEC = 200
/** Bounds on every simulated wait, so a regression shows as "not reached" rather than a hang. */
const MAX_FORMATION_MS = 600_000
const MAX_SPREAD_MS = 120_000
/** Steady state is measured once no node has had gossip to send for this long. */
const QUIET_WINDOW_MS = 10_000
/** Push-pull periods the steady state is averaged over (its rate is low and bursty). */
const STEADY_PUSH_PULL_PERIODS = 2

function parseArgs(argv: readonly string[]): Options {
  const options = { sizes: [10, 100, 1000], seed: 1, lossProbability: 0 }
  for (let i = 0; i < argv.length; i += 2) {
    const value = argv[i + 1]
    if (value === undefined) throw new Error(`${argv[i]} needs a value`)
    if (argv[i] === '--sizes') options.sizes = value.split(',').map(Number)
    else if (argv[i] === '--seed') options.seed = Number(value)
    else if (argv[i] === '--loss') options.lossProbability = Number(value)
    else throw new Error(`unknown option ${argv[i]} (expected --sizes, --seed or --loss)`)
  }
  if (!options.sizes.every(n => Number.isSafeInteger(n) && n >= 2)) throw new Error('--sizes must be integers of at least 2')
  if (!Number.isSafeInteger(options.seed)) throw new Error('--seed must be an integer')
  if (!(options.lossProbability >= 0 && options.lossProbability < 1)) throw new Error('--loss must be in [0, 1)')
  return options
}

function seconds(ms: number | undefined): string {
  return ms === undefined ? 'not reached' : `${(ms / 1000).toFixed(1)} s`
}

function benchOne(nodeCount: number, options: Options): void {
  const startedAt = Date.now()
  const wireCodec = nodeCount <= MAX_NODES_WITH_WIRE_CODEC
  const sim = new Simulation({
    nodeCount, seed: options.seed, lossProbability: options.lossProbability, delayMinMs: 1, delayMaxMs: 2,
    joinSpreadMs: Math.min(10_000, nodeCount * 10), wireCodec,
  })
  const formedMs = sim.runUntil(() => sim.converged(), MAX_FORMATION_MS, 500)

  // Let the join news finish its retransmissions, then measure the steady state.
  sim.resetTraffic()
  for (let waitedMs = 0; waitedMs < MAX_FORMATION_MS; waitedMs += QUIET_WINDOW_MS) {
    sim.runFor(QUIET_WINDOW_MS)
    const gossiping = (sim.trafficByType().get('gossip')?.messages ?? 0) > 0
    sim.resetTraffic()
    if (!gossiping) break
  }
  const steadyWindowMs = STEADY_PUSH_PULL_PERIODS * pushPullIntervalMs(DEFAULT_LAN_MEMBERSHIP_CONFIG.pushPullIntervalMs, nodeCount)
  sim.runFor(steadyWindowMs)
  const steady = sim.traffic()
  const perNodePerSecond = (count: number) => count / steady.nodes / (steadyWindowMs / 1000)
  const byType = [...sim.trafficByType()].map(([type, counts]) => `${type} ${perNodePerSecond(counts.messages).toFixed(3)}`).join(', ')

  const newcomer = sim.addNode(0)
  const joinMs = sim.runUntil(() => sim.allSee(newcomer.index, 'alive'), MAX_SPREAD_MS, 10)
  sim.runFor(30_000)

  const victim = Math.floor(nodeCount / 2)
  sim.kill(victim)
  const firstSuspectMs = sim.runUntil(() => sim.upNodes().some(node => sim.stateSeenBy(node.index, victim) !== 'alive'), MAX_SPREAD_MS, 10)
  const afterSuspect = firstSuspectMs ?? 0
  const firstDeadMs = sim.runUntil(() => sim.upNodes().some(node => sim.stateSeenBy(node.index, victim) === 'dead'), MAX_SPREAD_MS, 10)
  const afterFirstDead = firstDeadMs ?? 0
  const allDeadMs = sim.runUntil(() => sim.allSee(victim, 'dead'), MAX_SPREAD_MS, 10)

  const lines = [
    `n = ${nodeCount}${wireCodec ? '' : ' (bytes estimated, codec skipped)'}`,
    `  cluster formed (all joining within ${seconds(Math.min(10_000, nodeCount * 10))}): ${seconds(formedMs)}`,
    `  steady state per node: ${perNodePerSecond(steady.messages).toFixed(2)} msg/s, ${perNodePerSecond(steady.bytes).toFixed(0)} B/s  [${byType}]`,
    `  join reaches all nodes: ${seconds(joinMs)}`,
    `  crash: first suspicion ${seconds(firstSuspectMs)}, first dead ${seconds(firstDeadMs === undefined ? undefined : afterSuspect + afterFirstDead)}, ` +
      `all see dead ${seconds(allDeadMs === undefined ? undefined : afterSuspect + afterFirstDead + allDeadMs)}`,
    `  false deaths: ${sim.falseDeaths.length}, invalid messages: ${sim.invalidMessages}, run time ${((Date.now() - startedAt) / 1000).toFixed(1)} s`,
  ]
  console.log(lines.join('\n'))
}

const options = parseArgs(process.argv.slice(2))
const config = DEFAULT_LAN_MEMBERSHIP_CONFIG
console.log(`SWIM membership simulation, seed ${options.seed}, loss ${options.lossProbability * 100}%, delay 1–2 ms, ` +
  `probe ${config.probeIntervalMs} ms / timeout ${config.probeTimeoutMs} ms, ${config.indirectChecks} indirect, suspicion mult ${config.suspicionMult}, ` +
  `gossip ${config.gossipNodes} nodes every ${config.gossipIntervalMs} ms, push-pull ${config.pushPullIntervalMs / 1000} s`)
for (const nodeCount of options.sizes) benchOne(nodeCount, options)
