import t from 'tap'
import { converge, simulation } from './simulation-fixture.js'

/** Simulated crashes, loss, restarts, leaves and partitions. HEARSAY_SIM_SEED=<n> replays. */

t.test('a killed node is declared dead by every other node within a bounded time', async t => {
  const sim = simulation(t, { nodeCount: 100, defaultSeed: 31, lossProbability: 0.02, delayMinMs: 1, delayMaxMs: 20, joinSpreadMs: 5000 })
  converge(t, sim)
  sim.kill(42)
  // Detection (≤ a few probe intervals) + suspicion (8–48 s at n = 100) + dissemination.
  const boundMs = 60_000
  const tookMs = sim.runUntil(() => sim.allSee(42, 'dead'), boundMs, 100)
  t.ok(tookMs !== undefined, `seed ${sim.seed}: all 99 see the killed node dead within ${boundMs / 1000} s (took ${tookMs} ms)`)
  t.same(sim.falseDeaths, [], `seed ${sim.seed}: only the killed node was declared dead`)
})

t.test('no live node is declared dead under 10% message loss over five simulated minutes', async t => {
  const nodeCount = 100
  const sim = simulation(t, { nodeCount, defaultSeed: 41, lossProbability: 0.1, delayMinMs: 1, delayMaxMs: 20, joinSpreadMs: 5000 })
  sim.runFor(300_000)
  t.same(sim.falseDeaths, [], `seed ${sim.seed}: suspicions were refuted in time`)
  t.equal(sim.invalidMessages, 0)
  t.ok(sim.upNodes().every(node => node.swim.memberCount('alive') + node.swim.memberCount('suspect') === nodeCount),
    `seed ${sim.seed}: every node still counts all ${nodeCount} members as live`)
})

t.test('a restarted node rejoins with a higher incarnation and everyone sees it alive', async t => {
  const sim = simulation(t, { nodeCount: 30, defaultSeed: 51, lossProbability: 0.01, delayMinMs: 1, delayMaxMs: 10, joinSpreadMs: 2000 })
  converge(t, sim)
  sim.kill(7)
  t.ok(sim.runUntil(() => sim.allSee(7, 'dead'), 60_000) !== undefined, `seed ${sim.seed}: declared dead`)
  const before = sim.nodes[7]!.swim.local.incarnation
  sim.restart(7, 0)
  t.ok(sim.nodes[7]!.swim.local.incarnation > before, `seed ${sim.seed}: incarnation ${sim.nodes[7]!.swim.local.incarnation} > ${before}`)
  const tookMs = sim.runUntil(() => sim.allSee(7, 'alive'), 30_000)
  t.ok(tookMs !== undefined, `seed ${sim.seed}: seen alive by all again (took ${tookMs} ms)`)
})

t.test('a node that leaves is seen as left, not dead, by everyone', async t => {
  const sim = simulation(t, { nodeCount: 30, defaultSeed: 61, lossProbability: 0.01, delayMinMs: 1, delayMaxMs: 10, joinSpreadMs: 2000 })
  converge(t, sim)
  sim.leave(5)
  t.ok(sim.runUntil(() => sim.nodes[5]!.swim.leaveSettled(), 10_000) !== undefined, `seed ${sim.seed}: the leave settles`)
  sim.kill(5)
  const tookMs = sim.runUntil(() => sim.allSee(5, 'left'), 30_000)
  t.ok(tookMs !== undefined, `seed ${sim.seed}: everyone records left (took ${tookMs} ms)`)
  sim.runFor(60_000)
  t.ok(sim.allSee(5, 'left'), `seed ${sim.seed}: and nobody later declares it dead`)
})

t.test('both sides of a healed partition see each other alive again', async t => {
  const sim = simulation(t, { nodeCount: 30, defaultSeed: 71, lossProbability: 0.01, delayMinMs: 1, delayMaxMs: 10, joinSpreadMs: 2000 })
  converge(t, sim)
  const minority = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]
  sim.partition(minority)
  const split = sim.runUntil(() => minority.every(i => sim.stateSeenBy(i, 20) === 'dead') && sim.stateSeenBy(20, 0) === 'dead', 120_000, 500)
  t.ok(split !== undefined, `seed ${sim.seed}: each side declares the other dead (took ${split} ms)`)
  sim.heal()
  const healedMs = sim.runUntil(() => sim.converged(), 300_000, 500)
  t.ok(healedMs !== undefined, `seed ${sim.seed}: push-pull to dead members merges the sides again (took ${healedMs} ms)`)
})

