import t from 'tap'
import { DEFAULT_LAN_MEMBERSHIP_CONFIG, type MembershipConfig } from '../../lib/membership/config.js'
import { MembershipDriver } from '../../lib/membership/driver.js'
import { Swim } from '../../lib/membership/swim.js'
import { createRandom } from '../../lib/runtime/random.js'
import { MemoryNetwork } from '../../lib/transport/memory-network.js'
import { localMember, nodeId } from './fixture.js'

/** Drivers over the memory network (real codec and validation) on a fake clock. */
function cluster(size: number, seed = 5, config: Partial<MembershipConfig> = {}) {
  const network = new MemoryNetwork({ seed, conditions: { delayMs: { minMs: 1, maxMs: 5 } } })
  const persisted = new Map<number, number[]>()
  const drivers = Array.from({ length: size }, (_, i) => {
    const n = i + 1
    persisted.set(n, [])
    const local = localMember(n)
    return new MembershipDriver({
      transport: network.transport(local),
      swim: new Swim({ local, storedIncarnation: 0, config: { ...DEFAULT_LAN_MEMBERSHIP_CONFIG, ...config }, random: createRandom(seed * 100 + n) }),
      persistIncarnation: incarnation => persisted.get(n)!.push(incarnation),
      clock: network.clock,
    })
  })
  return { network, drivers, persisted }
}

function statesSeenBy(driver: MembershipDriver): string[] {
  return driver.members().map(m => `${m.name}:${m.state}`).sort()
}

t.test('drivers joined through one seed converge over the transport', async t => {
  const { network, drivers, persisted } = cluster(4)
  const changes: string[] = []
  drivers[0]!.on('change', member => changes.push(`${member.name}:${member.state}`))
  const joined: string[] = []
  drivers[3]!.on('joined', seed => joined.push(seed))
  drivers[0]!.start([])
  for (const driver of drivers.slice(1)) driver.start([localMember(1).peer])
  await network.clock.advance(5000)
  const everyoneAlive = ['node-1:alive', 'node-2:alive', 'node-3:alive', 'node-4:alive']
  for (const driver of drivers) t.same(statesSeenBy(driver), everyoneAlive, `${driver.local.name} sees everyone alive`)
  t.same(persisted.get(2), [1], 'the starting incarnation is persisted')
  t.same(joined, [localMember(1).peer])
  t.ok(changes.includes('node-4:alive'), 'change events report newcomers')
  for (const driver of drivers) driver.stop()
})

t.test('a node whose process dies is declared dead by the others', async t => {
  const { network, drivers } = cluster(4)
  drivers[0]!.start([])
  for (const driver of drivers.slice(1)) driver.start([localMember(1).peer])
  await network.clock.advance(5000)
  network.kill(localMember(4).peer)
  drivers[3]!.stop()
  // n = 3 live members < k + 2, so the suspicion runs its minimum, 4 s, after at most ~3 probe rounds.
  await network.clock.advance(20_000)
  for (const driver of drivers.slice(0, 3)) {
    t.equal(driver.members().find(m => m.id === nodeId(4))?.state, 'dead', `${driver.local.name} declared node-4 dead`)
  }
  for (const driver of drivers) driver.stop()
})

t.test('leave() resolves once the news has spread, and everyone records left', async t => {
  const { network, drivers, persisted } = cluster(3)
  drivers[0]!.start([])
  for (const driver of drivers.slice(1)) driver.start([localMember(1).peer])
  await network.clock.advance(5000)
  let resolved = false
  const leaving = drivers[2]!.leave(10_000).then(() => { resolved = true })
  await network.clock.advance(3000)
  t.ok(resolved, 'settled well before the 10 s deadline')
  await leaving
  t.same(persisted.get(3), [1, 2], 'the bumped incarnation is persisted')
  drivers[2]!.stop()
  await network.clock.advance(30_000)
  for (const driver of drivers.slice(0, 2)) {
    t.equal(driver.members().find(m => m.id === nodeId(3))?.state, 'left', `${driver.local.name} records node-3 as left, not dead`)
  }
  for (const driver of drivers) driver.stop()
})

t.test('leave() gives up at its deadline when the news cannot spread in time', async t => {
  // Gossip and probes once a minute: after the first telling, `left` stays queued for long.
  const { network, drivers } = cluster(3, 5, { gossipIntervalMs: 60_000, probeIntervalMs: 60_000, probeTimeoutMs: 30_000 })
  drivers[0]!.start([])
  for (const driver of drivers.slice(1)) driver.start([localMember(1).peer])
  await network.clock.advance(5000)
  t.equal(drivers[2]!.members().length, 3, 'node-3 knows the others')
  let resolved = false
  const leaving = drivers[2]!.leave(1000).then(() => { resolved = true })
  await network.clock.advance(999)
  t.notOk(resolved, 'still waiting before the deadline')
  await network.clock.advance(1)
  await leaving
  t.ok(resolved, 'resolved at the deadline')
  for (const driver of drivers) driver.stop()
})

t.test('a failing incarnation store is reported, not thrown', async t => {
  const network = new MemoryNetwork({ seed: 1 })
  const local = localMember(1)
  const driver = new MembershipDriver({
    transport: network.transport(local),
    swim: new Swim({ local, storedIncarnation: 0, config: DEFAULT_LAN_MEMBERSHIP_CONFIG, random: createRandom(1) }),
    persistIncarnation: () => { throw new Error('disk full') },
    clock: network.clock,
  })
  const failures: unknown[] = []
  driver.on('persistFailed', error => failures.push(error))
  t.doesNotThrow(() => driver.start([]))
  t.match(failures, [{ message: 'disk full' }])
  driver.stop()
})

t.test('stop() cancels the membership timer', async t => {
  const network = new MemoryNetwork({ seed: 1 })
  const local = localMember(1)
  const driver = new MembershipDriver({
    transport: network.transport(local),
    swim: new Swim({ local, storedIncarnation: 0, config: DEFAULT_LAN_MEMBERSHIP_CONFIG, random: createRandom(1) }),
    persistIncarnation: () => {},
    clock: network.clock,
  })
  driver.start([])
  t.equal(network.clock.pendingTimers, 1)
  driver.stop()
  t.equal(network.clock.pendingTimers, 0)
})
