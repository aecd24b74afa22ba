import t, { type Test } from 'tap'
import { loadHasher } from '../../lib/placement/hash.js'
import { preferenceList } from '../../lib/placement/rendezvous.js'
import { loadPerNode, membersOf, seededIds, summarize } from './fixtures/ids.js'

const hasher = await loadHasher()
const PARTITION_COUNT = 256
const CLUSTER_SIZE = 5
const MAX_OVER_MEAN = 1.15
/** Random-but-seeded id sets: the bound must hold for ids we did not pick. */
const ID_SET_SEEDS = Array.from({ length: 20 }, (_, i) => 1000 + i)

/** max/mean partitions per node for each seeded id set. */
function loadRatios(replicationFactor: number): { seed: number; ratio: number; loads: number[] }[] {
  return ID_SET_SEEDS.map(seed => {
    const members = membersOf(seededIds(seed, CLUSTER_SIZE))
    const load = loadPerNode(p => preferenceList(hasher, p, members).slice(0, replicationFactor), PARTITION_COUNT)
    const loads = [...load.values()]
    const mean = (PARTITION_COUNT * replicationFactor) / CLUSTER_SIZE
    return { seed, ratio: Math.max(...loads) / mean, loads }
  })
}

function checkBound(t: Test, replicationFactor: number, bound: number): void {
  const ratios = loadRatios(replicationFactor)
  t.comment(`Q=${PARTITION_COUNT} n=${CLUSTER_SIZE} N=${replicationFactor}: max/mean ${summarize(ratios.map(r => r.ratio))}`)
  for (const { seed, ratio, loads } of ratios) {
    t.ok(ratio <= bound, `id set seed ${seed}: loads ${loads.join('/')}, max/mean ${ratio.toFixed(3)} ≤ ${bound}`)
  }
}

// Plain rendezvous gives each node each partition's primary with probability 1/n, so a node's
// load is ≈ Binomial(256, 0.2): mean 51.2, σ 6.4. The largest of five such loads exceeds 58.9
// (1.15 × mean) about half the time — a property of random placement at 51 partitions per node,
// not of the hash (measured over 200 id sets: median 1.15, max 1.45; docs/benchmarks.md). The
// bound here only rules out a skewed hash; the 1.15 target holds for replica load (N=3).
const PRIMARY_MAX_OVER_MEAN = 1.5
t.test('primaries (N=1) show no skew beyond random placement over random id sets', async t => {
  checkBound(t, 1, PRIMARY_MAX_OVER_MEAN)
})

t.test('replica load (N=3) is balanced within max/mean 1.15 over random id sets', async t => {
  checkBound(t, 3, MAX_OVER_MEAN)
})

t.test('with full replication every node holds every partition', async t => {
  const ratios = loadRatios(CLUSTER_SIZE)
  for (const { seed, loads } of ratios) t.strictSame(loads, new Array(CLUSTER_SIZE).fill(PARTITION_COUNT), `seed ${seed}`)
})
