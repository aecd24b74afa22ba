import t from 'tap'
import { formatVersion } from '../../lib/clock/version.js'
import { ConditionFailedError, OutcomeUnknownError, UnavailableError } from '../../lib/errors.js'
import { Acceptor } from '../../lib/paxos/acceptor.js'
import { AcceptorStore } from '../../lib/paxos/acceptor-store.js'
import { compareAndSet, increment, read } from '../../lib/paxos/changes.js'
import { Cluster, ids } from './harness.js'

const [A, B, C] = ids as [typeof ids[number], typeof ids[number], typeof ids[number]]
const text = (value: Uint8Array | null | undefined): string | null => value == null ? null : Buffer.from(value).toString()

t.test('incr from an absent key counts from zero, and a linearizable read sees the count', async t => {
  const cluster = await Cluster.create()
  const p = cluster.proposer(A)
  t.equal((await cluster.run(p.run('n', increment('n', 1n)))).value, '1')
  t.equal((await cluster.run(p.run('n', increment('n', 41n)))).value, '42')
  const seen = await cluster.run(cluster.proposer(B).run('n', read('n'), true))
  t.equal(text(seen?.value), '42')
  for (const site of cluster.sites) t.equal(text(site.kv.get('n')?.value), '42', `the committed value reached ${site.id}'s store as a strong record`)
  t.equal(cluster.sites[0]!.kv.get('n')?.strong, true)
})

t.test('two proposers racing for the same lock: exactly one wins, the other is told the winner', async t => {
  const cluster = await Cluster.create()
  const results = await cluster.run(Promise.allSettled([
    cluster.proposer(A).run('lock', compareAndSet('lock', Buffer.from('A'), 'absent')),
    cluster.proposer(B).run('lock', compareAndSet('lock', Buffer.from('B'), 'absent')),
  ]))
  const won = results.filter((r) => r.status === 'fulfilled')
  const lost = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected')
  t.equal(won.length, 1, 'one winner')
  t.equal(lost.length, 1)
  t.ok(lost[0]!.reason instanceof ConditionFailedError, 'the loser gets 409, not an unknown outcome')
  const holder = await cluster.run(cluster.proposer(C).run('lock', read('lock'), true))
  const winner = (won[0] as PromiseFulfilledResult<{ version: { hlc: number; node: string } }>).value
  t.equal(formatVersion(holder!.version), formatVersion(winner.version as never))
  t.same((lost[0]!.reason as ConditionFailedError).details, { current: { version: formatVersion(holder!.version) } })
})

t.test('concurrent increments from three proposers all count, none twice', async t => {
  const cluster = await Cluster.create()
  const proposers = ids.map((id) => cluster.proposer(id))
  const runs = []
  for (let i = 0; i < 30; i++) runs.push(proposers[i % 3]!.run('c', increment('c', 1n)))
  const settled = await cluster.run(Promise.allSettled(runs))
  const ok = settled.filter((s) => s.status === 'fulfilled') as PromiseFulfilledResult<{ value: string }>[]
  t.equal(ok.length, 30, `every increment succeeded (${settled.filter((s) => s.status === 'rejected').map((s) => String((s as PromiseRejectedResult).reason)).join('; ')})`)
  t.same(ok.map((s) => Number(s.value.value)).sort((a, b) => a - b), Array.from({ length: 30 }, (_, i) => i + 1), 'each value answered once')
  t.equal(text((await cluster.run(proposers[0]!.run('c', read('c'), true)))?.value), '30')
})

t.test('the one-round-trip path: a proposer that just accepted skips prepare, and falls back after a conflict', async t => {
  const cluster = await Cluster.create()
  const p = cluster.proposer(A)
  await cluster.run(p.run('k', increment('k', 1n)))
  const before = { ...cluster.counts }
  await cluster.run(p.run('k', increment('k', 1n)))
  t.equal(cluster.counts.prepares - before.prepares, 0, 'no prepare for the second change')
  t.equal(cluster.counts.accepts - before.accepts, 3, 'one accept per acceptor')
  // Another proposer changes the key: A's cached ballot is stale; its next change must notice.
  await cluster.run(cluster.proposer(B).run('k', increment('k', 10n)))
  const again = await cluster.run(p.run('k', increment('k', 1n)))
  t.equal(again.value, '13', 'the stale cache did not lose B\'s change')
  t.equal(text((await cluster.run(cluster.proposer(C).run('k', read('k'), true)))?.value), '13')
})

t.test('a stale cached value never answers 409: the condition is checked against a fresh prepare', async t => {
  const cluster = await Cluster.create()
  const a = cluster.proposer(A)
  const first = await cluster.run(a.run('v', compareAndSet('v', Buffer.from('1'), 'absent')))
  const second = await cluster.run(cluster.proposer(B).run('v', compareAndSet('v', Buffer.from('2'), first.version)))
  const third = await cluster.run(a.run('v', compareAndSet('v', Buffer.from('3'), second.version)))
  t.ok(third.version.hlc > second.version.hlc, 'A\'s change on top of B\'s went through')
})

t.test('a crashed acceptor keeps its promise after a restart', async t => {
  const cluster = await Cluster.create()
  const [a, b, c] = cluster.sites as [typeof cluster.sites[0], typeof cluster.sites[0], typeof cluster.sites[0]]
  // A high promise on b, then b restarts: a lower ballot must still be refused there.
  const high = { counter: 9_000_000, node: C }
  t.equal((await b.acceptor.prepare('x', high, ids)).ok, true)
  await cluster.restart(b)
  const low = { counter: 8_000_000, node: A }
  t.same(await b.acceptor.prepare('x', low, ids), { ok: false, promised: high })
  t.same(await b.acceptor.accept('x', low, { value: Buffer.from('late'), version: { hlc: 8_000_000, node: A } }, [], ids), { ok: false, promised: high })
  // With a and c down too little is left for a quorum: a change fails cleanly, nothing applied.
  a.down = true
  c.down = true
  await t.rejects(cluster.run(cluster.proposer(A).run('x', increment('x', 1n))), UnavailableError)
  a.down = false
  c.down = false
  t.equal((await cluster.run(cluster.proposer(A).run('x', increment('x', 1n)))).value, '1', 'the failed change left nothing behind')
})

t.test('an accept whose answers were lost: the retry finds its own value and does not apply the change twice', async t => {
  const cluster = await Cluster.create()
  const p = cluster.proposer(A)
  await cluster.run(p.run('n', increment('n', 1n)))
  // Every acceptor handles the accept but no answer comes back, for one round.
  for (const site of cluster.sites) site.loseReplies = true
  const pending = p.run('n', increment('n', 1n))
  await cluster.clock.advance(1)
  for (const site of cluster.sites) site.loseReplies = false
  t.equal((await cluster.run(pending)).value, '2', 'answered as applied once')
  t.equal(text((await cluster.run(cluster.proposer(B).run('n', read('n'), true)))?.value), '2', 'and applied once')
})

t.test('an accept that reached a minority and then lost the race answers outcome unknown, never a failure', async t => {
  const cluster = await Cluster.create()
  const [a, b, c] = cluster.sites as [typeof cluster.sites[0], typeof cluster.sites[0], typeof cluster.sites[0]]
  const p = cluster.proposer(A)
  await cluster.run(p.run('n', increment('n', 1n)))
  // A's next accept (the one-round-trip one) lands on a only: b and c are unreachable, and
  // every later attempt fails too.
  b.down = true
  c.down = true
  const result = await cluster.run(p.run('n', increment('n', 1n)).then(() => 'ok', (e: unknown) => e))
  t.ok(result instanceof OutcomeUnknownError, `outcome unknown (${String(result)})`)
  t.match((result as OutcomeUnknownError).details, { outcome: 'unknown' })
  b.down = false
  c.down = false
  const after = Number(text((await cluster.run(cluster.proposer(B).run('n', read('n'), true)))?.value))
  t.ok(after === 1 || after === 2, `the counter is 1 or 2, never more (${after})`)
  t.equal(a.down, false)
})

t.test('a condition that fails is answered 409 with the current version; an absent key reports null', async t => {
  const cluster = await Cluster.create()
  const p = cluster.proposer(A)
  await t.rejects(cluster.run(p.run('q', compareAndSet('q', Buffer.from('x'), { hlc: 5, node: A }))), { status: 409, details: { current: { version: null } } } as never)
  const made = await cluster.run(p.run('q', compareAndSet('q', Buffer.from('x'), 'absent')))
  await t.rejects(cluster.run(p.run('q', compareAndSet('q', Buffer.from('y'), 'absent'))), { status: 409, details: { current: { version: formatVersion(made.version) } } } as never)
  await cluster.run(p.run('q', compareAndSet('q', null, made.version)))
  t.equal(await cluster.run(p.run('q', read('q'), true)), undefined, 'a compare-and-set delete leaves the key absent')
  await t.rejects(cluster.run(p.run('q', increment('q', 1n)).then(() => p.run('q', compareAndSet('q', Buffer.from('not a number'), 'absent')))), ConditionFailedError)
  await cluster.run(p.run('t', compareAndSet('t', Buffer.from('text'), 'absent')))
  await t.rejects(cluster.run(p.run('t', increment('t', 1n))), { status: 409, message: /decimal integer/ })
})

t.test('a 409 names a value only once it is chosen: a value a minority accepted is committed before the refusal', async t => {
  // Found by the linearizable fault scenario: a 409 reported the version of a value only one
  // acceptor had accepted; a later quorum without that acceptor never saw it.
  const cluster = await Cluster.create()
  const [a, b, c] = cluster.sites as [typeof cluster.sites[0], typeof cluster.sites[0], typeof cluster.sites[0]]
  const p = cluster.proposer(A)
  const first = await cluster.run(p.run('k', compareAndSet('k', Buffer.from('one'), 'absent')))
  // A's next accept (the one-round-trip one) lands on a only.
  b.down = true
  c.down = true
  const minority = await cluster.run(p.run('k', compareAndSet('k', Buffer.from('minority'), first.version)).then(() => 'ok', (e: unknown) => e))
  t.ok(minority instanceof OutcomeUnknownError, `the change reached a only (${String(minority)})`)
  b.down = false
  // B's prepare quorum is {a, b}: it sees a's accepted value and refuses a CAS against it.
  const refused = await cluster.run(cluster.proposer(B).run('k', compareAndSet('k', Buffer.from('x'), 'absent')).then(() => 'ok', (e: unknown) => e))
  t.ok(refused instanceof ConditionFailedError, '409')
  const named = ((refused as ConditionFailedError).details as { current: { version: string } }).current.version
  t.not(named, formatVersion(first.version), 'the refusal names the value a accepted')
  // Without a, a quorum {b, c} must still see the value the 409 named.
  a.down = true
  c.down = false
  const seen = await cluster.run(cluster.proposer(C).run('k', read('k'), true))
  t.equal(formatVersion(seen!.version), named, 'a read through b and c sees the version the 409 named')
  t.equal(text(seen?.value), 'minority')
})

t.test('the first change of a key starts from the newest plain record a quorum holds', async t => {
  const cluster = await Cluster.create()
  const plain = { value: Buffer.from('41'), version: { hlc: 500, node: B } }
  cluster.sites[1]!.kv.set('p', plain)
  cluster.sites[2]!.kv.set('p', { value: Buffer.from('7'), version: { hlc: 400, node: C } })
  const result = await cluster.run(cluster.proposer(A).run('p', increment('p', 1n)))
  t.ok(result.value === '42' || result.value === '8', `counted from a plain value (${result.value})`)
  t.ok(result.version.hlc > 500, 'the new version is above every plain one the quorum showed')
})

t.test('an accept that reached a minority and was built upon by another proposer is answered as applied, once', async t => {
  const cluster = await Cluster.create()
  const [, b, c] = cluster.sites as [typeof cluster.sites[0], typeof cluster.sites[0], typeof cluster.sites[0]]
  const p = cluster.proposer(A)
  await cluster.run(p.run('n', increment('n', 1n)))
  b.down = true
  c.down = true
  const mine = p.run('n', increment('n', 1n))
  let theirs: Promise<{ value: string }> | undefined
  // The others come back while A retries, and B increments at once: B may adopt A's half-done value.
  cluster.clock.setTimeout(() => {
    b.down = false
    c.down = false
    theirs = cluster.proposer(B).run('n', increment('n', 1n))
  }, 10)
  const [a1] = await cluster.run(Promise.all([mine]))
  const b1 = await cluster.run(theirs!)
  t.same([a1.value, b1.value].sort(), ['2', '3'], 'each increment answered with its own value')
  t.equal(text((await cluster.run(cluster.proposer(C).run('n', read('n'), true)))?.value), '3', 'and each applied exactly once')
})

t.test('a committed record newer than every accepted value of the quorum is the base (an acceptor that missed accepts)', async t => {
  const cluster = await Cluster.create()
  const [a, , c] = cluster.sites as [typeof cluster.sites[0], typeof cluster.sites[0], typeof cluster.sites[0]]
  await cluster.run(cluster.proposer(A).run('n', increment('n', 1n)))
  // c comes back as a fresh replica (no acceptor state) that anti-entropy gave a newer committed value.
  for (const key of [...c.db.getKeys()]) c.db.removeNow(key)
  await cluster.restart(c)
  c.kv.set('n', { value: Buffer.from('5'), version: { hlc: 9_000_000_000, node: A }, strong: true })
  a.down = true
  t.equal((await cluster.run(cluster.proposer(B).run('n', increment('n', 1n)))).value, '6')
})

t.test('a strong delete stays the register\'s value when tombstone collection lets an older strong record reappear in a store', async t => {
  const cluster = await Cluster.create()
  const p = cluster.proposer(A)
  const { version } = await cluster.run(p.run('k', compareAndSet('k', Buffer.from('old'), 'absent')))
  const older = cluster.sites[0]!.kv.get('k')!
  await cluster.run(p.run('k', compareAndSet('k', null, version)))
  // Collected tombstones; a replica that kept the older strong record hands it back around.
  for (const site of cluster.sites) site.kv.set('k', older)
  t.equal(await cluster.run(cluster.proposer(B).run('k', read('k'), true)), undefined, 'the accepted delete wins over the older record')
  t.equal((await cluster.run(cluster.proposer(C).run('k', compareAndSet('k', Buffer.from('new'), 'absent')))).key, 'k', 'ifVersion=absent holds')
})

t.test('an acceptor refuses a request its view does not take part in: asked once, before it decides, and nothing changes', async t => {
  const cluster = await Cluster.create()
  const site = cluster.sites[0]!
  let calls = 0
  const store = await AcceptorStore.open({ db: site.db, journal: site.journal, defer: queueMicrotask })
  const acceptor = new Acceptor({
    store, stored: () => undefined, observeTick: () => undefined,
    refusal: () => { calls++; return 'placement mismatch for partition 0' },
  })
  t.same(await acceptor.prepare('k', { counter: 5, node: A }, ids), { ok: false, refused: 'placement mismatch for partition 0' })
  t.same(await acceptor.accept('k', { counter: 5, node: A }, { value: Buffer.from('v'), version: { hlc: 5_000_000, node: A } }, [], ids), { ok: false, refused: 'placement mismatch for partition 0' })
  t.equal(calls, 2, 'one check per request: the store decides in the same run, so no view change falls between')
  t.equal(store.get('k'), undefined, 'no promise or value was written')
})

t.test('a proposer that stops between the accepts and the commit leaves the value to be learned: the next read finds it chosen and commits it', async t => {
  const cluster = await Cluster.create()
  // A's commit never happens (it stopped right after the quorum accepted).
  const a = cluster.proposer(A, { commit: () => undefined })
  const written = await cluster.run(a.run('lock', compareAndSet('lock', Buffer.from('me'), 'absent')))
  for (const site of cluster.sites) t.equal(site.kv.get('lock'), undefined, `no plain store holds the value yet (${site.id})`)
  const b = cluster.proposer(B)
  const seen = await cluster.run(b.run('lock', read('lock'), true))
  t.equal(text(seen?.value), 'me', 'the read sees the chosen value')
  t.same(seen?.version, written.version)
  for (const site of cluster.sites) t.equal(text(site.kv.get('lock')?.value), 'me', `and it reached ${site.id}'s store`)
})

t.test('a round asks the other acceptors first and its own node\'s last, so its store work starts after their requests left', async t => {
  const cluster = await Cluster.create()
  const order: string[] = []
  const p = cluster.proposer(B, {
    prepare: (to, key, ballot, set) => { order.push(`prepare ${to}`); return cluster.sites.find((s) => s.id === to)!.acceptor.prepare(key, ballot, set) },
    accept: (to, key, ballot, record, history, set) => { order.push(`accept ${to}`); return cluster.sites.find((s) => s.id === to)!.acceptor.accept(key, ballot, record, history, set) },
  })
  await cluster.run(p.run('k', increment('k', 1n)))
  t.same(order, [`prepare ${A}`, `prepare ${C}`, `prepare ${B}`, `accept ${A}`, `accept ${C}`, `accept ${B}`], 'B (this node) last, the others in placement order')
})

t.test('an accept is marked alone only while the proposer runs no other operation', async t => {
  const cluster = await Cluster.create()
  const flags: string[] = []
  const p = cluster.proposer(A, {
    accept: (to, key, ballot, record, history, set, alone) => {
      if (to === A) flags.push(`${key}:${String(alone)}`)
      return cluster.sites.find((s) => s.id === to)!.acceptor.accept(key, ballot, record, history, set)
    },
  })
  await cluster.run(p.run('x', increment('x', 1n)))
  t.same(flags, ['x:true'], 'a lone operation')
  flags.length = 0
  await cluster.run(Promise.all([p.run('y', increment('y', 1n)), p.run('z', increment('z', 1n))]))
  t.same(flags.sort(), ['y:false', 'z:false'], 'two at once: neither is alone, their accepts wait for the end of the turn together')
})
