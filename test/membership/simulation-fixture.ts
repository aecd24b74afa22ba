import type t from 'tap'
import { Simulation, type SimulationOptions } from '../../lib/membership/simulation.js'

/**
 * The real protocol over a simulated network. Each test has a fixed seed so runs are repeatable;
 * HEARSAY_SIM_SEED=<n> replays (or explores) another one. Every assertion names the seed.
 */
export function seedFor(defaultSeed: number): number {
  const fromEnv = process.env.HEARSAY_SIM_SEED
  if (fromEnv === undefined || fromEnv === '') return defaultSeed
  const seed = Number(fromEnv)
  if (!Number.isSafeInteger(seed)) throw new Error(`HEARSAY_SIM_SEED must be an integer, got ${JSON.stringify(fromEnv)}`)
  return seed
}

export function simulation(t: Asserts, options: Omit<SimulationOptions, 'seed'> & { defaultSeed: number }): Simulation {
  const seed = seedFor(options.defaultSeed)
  t.comment(`simulation seed ${seed} (replay with HEARSAY_SIM_SEED=${seed})`)
  return new Simulation({ ...options, seed })
}

/** The parts of a tap test these helpers use. */
export type Asserts = Pick<typeof t, 'ok' | 'comment'>

/** Runs a fresh cluster until every node sees every node alive, or fails the test. */
export function converge(t: Asserts, sim: Simulation, maxMs = 120_000): void {
  const tookMs = sim.runUntil(() => sim.converged(), maxMs, 500)
  t.ok(tookMs !== undefined, `seed ${sim.seed}: ${sim.nodes.length} nodes converge within ${maxMs / 1000} s (took ${tookMs} ms)`)
}

