import t from 'tap'
import { Simulation } from '../../lib/membership/simulation.js'
import { converge, seedFor, simulation } from './simulation-fixture.js'

/** Simulated clusters reach one view: same seed, same run; joins spread. HEARSAY_SIM_SEED=<n> replays. */

t.test('the same seed replays the same run, message for message', async t => {
  const run = (seed: number) => {
    const sim = new Simulation({ nodeCount: 20, seed, lossProbability: 0.02, delayMinMs: 1, delayMaxMs: 20, joinSpreadMs: 2000 })
    sim.runFor(20_000)
    sim.kill(3)
    sim.runFor(20_000)
    return { digest: sim.traceDigest, traffic: sim.traffic() }
  }
  const seed = seedFor(11)
  t.same(run(seed), run(seed), `seed ${seed}: identical digest and traffic`)
  t.not(run(seed).digest, run(seed + 1).digest, `seeds ${seed} and ${seed + 1} differ`)
})

for (const lossProbability of [0.01, 0.05]) {
  t.test(`100 nodes with ${lossProbability * 100}% loss and 1–20 ms delay converge to the same view`, async t => {
    const sim = simulation(t, { nodeCount: 100, defaultSeed: 21, lossProbability, delayMinMs: 1, delayMaxMs: 20, joinSpreadMs: 5000 })
    converge(t, sim)
    t.equal(sim.invalidMessages, 0, `seed ${sim.seed}: every message the protocol sent passed validation`)
    t.same(sim.falseDeaths, [], `seed ${sim.seed}: nobody alive was declared dead`)
    t.ok(sim.messagesLost > 0, `seed ${sim.seed}: the network did lose messages (${sim.messagesLost})`)
  })
}

t.test('a newcomer is known to every node within seconds', async t => {
  const sim = simulation(t, { nodeCount: 100, defaultSeed: 81, lossProbability: 0.01, delayMinMs: 1, delayMaxMs: 20, joinSpreadMs: 5000 })
  converge(t, sim)
  sim.runFor(30_000)
  const newcomer = sim.addNode(3)
  const tookMs = sim.runUntil(() => sim.allSee(newcomer.index, 'alive') && sim.converged(), 30_000)
  t.ok(tookMs !== undefined && tookMs < 10_000, `seed ${sim.seed}: all 101 know the newcomer within 10 s (took ${tookMs} ms)`)
})
