import t from 'tap'
import type { MemberRecord } from '../../lib/membership/messages.js'
import { GOSSIP_MAX_UPDATES_PER_MESSAGE, MAX_NEW_MEMBERS_PER_MESSAGE } from '../../lib/membership/swim.js'
import {
  localMember, memberRecord, nextPing, nodeId, newSwim, ofKind, peerOf, runAnswering, runUntil, sender, sent, swimWithMembers,
} from './fixture.js'

function gossipOf(records: MemberRecord[]) {
  return { type: 'gossip' as const, body: { gossip: records } }
}

function stateChanges(steps: Array<{ atMs: number; effects: ReturnType<typeof runUntil> }>, n: number) {
  return steps.flatMap(step => ofKind(step.effects, 'memberChanged')
    .filter(effect => effect.member.id === nodeId(n))
    .map(effect => ({ atMs: step.atMs, state: effect.member.state })))
}

t.test('joining', async t => {
  t.test('a new node persists incarnation 1, then asks each seed but itself to push-pull', async t => {
    const swim = newSwim(1)
    const effects = swim.join([peerOf(1), peerOf(2), peerOf(3), peerOf(2)], 0)
    t.same(effects[0], { kind: 'persistIncarnation', incarnation: 1 }, 'persisted before anything is sent')
    const joins = sent(effects, 'pushPull')
    t.same(joins.map(s => s.to), [peerOf(2), peerOf(3)])
    for (const { message } of joins) {
      t.same(message.body, { members: [memberRecord(1)], join: true })
    }
  })

  t.test('a restarted node rejoins with a higher incarnation than it ever used', async t => {
    const restarted = newSwim(1, { storedIncarnation: 7 })
    const effects = restarted.join([peerOf(2)], 0)
    t.same(ofKind(effects, 'persistIncarnation'), [{ kind: 'persistIncarnation', incarnation: 8 }])
    t.equal(restarted.local.incarnation, 8)

    const seed = swimWithMembers(2, [1, 3])
    seed.receive(sender(3), gossipOf([memberRecord(1, 'dead', 7, 3)]), 10)
    t.equal(seed.member(nodeId(1))?.state, 'dead', 'the seed had declared its previous life dead')
    const [join] = sent(effects, 'pushPull')
    if (join?.message.type !== 'pushPull') throw new Error('no join sent')
    seed.receive(sender(1), join.message, 20)
    t.same([seed.member(nodeId(1))?.state, seed.member(nodeId(1))?.incarnation], ['alive', 8])
  })

  t.test('a seed answers a join with its table and learns the newcomer; the newcomer learns the cluster', async t => {
    const seed = swimWithMembers(2, [3, 4])
    const newcomer = newSwim(1)
    const [join] = sent(newcomer.join([peerOf(2)], 0), 'pushPull')
    if (join?.message.type !== 'pushPull') throw new Error('no join sent')
    const effects = seed.receive(sender(1), join.message, 5)
    const [reply] = sent(effects, 'pushPullReply')
    t.equal(reply?.to, peerOf(1))
    t.same(ofKind(effects, 'memberChanged').map(e => [e.member.name, e.member.state, e.previous]), [['node-1', 'alive', undefined]])
    if (reply?.message.type !== 'pushPullReply') throw new Error('no reply')
    const joined = newcomer.receive(sender(2), reply.message, 10)
    t.same(ofKind(joined, 'joined'), [{ kind: 'joined', seed: peerOf(2) }])
    t.same(newcomer.members().map(m => m.name).sort(), ['node-1', 'node-2', 'node-3', 'node-4'])
    t.same(ofKind(runUntil(newcomer, 60_000), 'joinUnanswered'), [], 'an answered join is not retried')
  })

  t.test('a join nobody answers is retried with capped exponential backoff while the node runs alone', async t => {
    const swim = newSwim(1, { config: { joinRetryMaxMs: 5000 } })
    swim.join([peerOf(2)], 0)
    const effects = runUntil(swim, 20_000)
    t.same(ofKind(effects, 'joinUnanswered').map(e => [e.attempt, e.retryAtMs]), [[1, 3000], [2, 7000], [3, 12000], [4, 17000], [5, 22000]])
    t.equal(sent(effects, 'pushPull').filter(s => s.to === peerOf(2)).length, 5, 'each retry asks the seed again')
    t.same(swim.members().map(m => m.name), ['node-1'], 'alone, and still alive')
  })
})

t.test('answering probes', async t => {
  t.test('a ping is acked with piggybacked gossip', async t => {
    const swim = swimWithMembers(1, [2, 3])
    const effects = swim.receive(sender(2), { type: 'ping', body: { seq: 5, target: nodeId(1), gossip: [] } }, 100)
    const [ack] = sent(effects, 'ack')
    t.equal(ack?.to, peerOf(2))
    if (ack?.message.type !== 'ack') throw new Error('no ack')
    t.equal(ack.message.body.seq, 5)
    t.ok(ack.message.body.gossip.length > 0 && ack.message.body.gossip.length <= GOSSIP_MAX_UPDATES_PER_MESSAGE, 'queued news rides along')
  })

  t.test('a ping meant for another node id is not answered', async t => {
    const swim = swimWithMembers(1, [2, 3])
    t.same(sent(swim.receive(sender(2), { type: 'ping', body: { seq: 5, target: nodeId(9), gossip: [] } }, 100)), [])
  })

  t.test('a ping from a stranger introduces it', async t => {
    const swim = swimWithMembers(1, [2, 3])
    swim.receive(sender(4), { type: 'ping', body: { seq: 1, target: nodeId(1), from: memberRecord(4), gossip: [] } }, 100)
    t.equal(swim.member(nodeId(4))?.state, 'alive')
  })

  t.test('a relay pings the target for the asker and passes the ack back', async t => {
    const swim = swimWithMembers(1, [2, 3])
    const asked = swim.receive(sender(2), { type: 'pingReq', body: { seq: 42, target: nodeId(3), targetPeer: peerOf(3) } }, 100)
    const [ping] = sent(asked, 'ping')
    if (ping?.message.type !== 'ping') throw new Error('no relayed ping')
    t.same([ping.to, ping.message.body.target], [peerOf(3), nodeId(3)])
    const answered = swim.receive(sender(3), { type: 'ack', body: { seq: ping.message.body.seq, gossip: [] } }, 150)
    t.same(sent(answered, 'ack').map(s => [s.to, s.message.body]).map(([to, body]) => [to, (body as { seq: number }).seq]), [[peerOf(2), 42]])
    t.same(sent(runUntil(swim, 2000), 'nack'), [], 'no nack once the ack came')
  })

  t.test('a relay that hears nothing sends a nack after the probe timeout', async t => {
    const swim = swimWithMembers(1, [2, 3])
    swim.receive(sender(2), { type: 'pingReq', body: { seq: 42, target: nodeId(3), targetPeer: peerOf(3) } }, 100)
    t.same(sent(runUntil(swim, 599), 'nack'), [])
    t.same(sent(runUntil(swim, 600), 'nack').map(s => [s.to, s.message.body]), [[peerOf(2), { seq: 42 }]])
  })
})

t.test('probing', async t => {
  t.test('every live member is probed once per round, in a reshuffled order each round', async t => {
    const others = [2, 3, 4, 5, 6, 7]
    const swim = swimWithMembers(1, others)
    const rounds: string[][] = []
    for (let round = 0; round < 4; round++) {
      const targets: string[] = []
      for (let i = 0; i < others.length; i++) {
        const ping = nextPing(swim)
        targets.push(ping.target)
        swim.receive(sender(Number(ping.to.split('.')[3]!.split(':')[0])), { type: 'ack', body: { seq: ping.seq, gossip: [] } }, ping.atMs)
      }
      t.same([...targets].sort(), others.map(nodeId).sort(), `round ${round} probes each member once`)
      rounds.push(targets)
    }
    t.ok(new Set(rounds.map(r => r.join())).size > 1, 'the order changes between rounds')
  })

  t.test('a probe answered in time suspects nobody', async t => {
    const swim = swimWithMembers(1, [2, 3, 4, 5])
    const ping = nextPing(swim)
    swim.receive(sender(Number(ping.to.split('.')[3]!.split(':')[0])), { type: 'ack', body: { seq: ping.seq, gossip: [] } }, ping.atMs + 10)
    const effects = runUntil(swim, ping.atMs + 999)
    t.same(sent(effects, 'pingReq'), [])
    t.ok(swim.members().every(m => m.state === 'alive'))
    t.equal(swim.awarenessScore, 0)
  })

  t.test('an unanswered probe asks k others, then suspects the target and loses health for missing nacks', async t => {
    const swim = swimWithMembers(1, [2, 3, 4, 5, 6])
    const ping = nextPing(swim)
    t.same(sent(runUntil(swim, ping.atMs + 499), 'pingReq'), [], 'direct probe timeout not reached yet')
    const requests = sent(runUntil(swim, ping.atMs + 500), 'pingReq')
    t.equal(requests.length, 3, 'indirectChecks = 3')
    t.equal(new Set(requests.map(r => r.to)).size, 3, 'to distinct members')
    t.notOk(requests.some(r => r.to === ping.to || r.to === localMember(1).peer), 'neither the target nor ourselves')
    t.ok(requests.every(r => r.message.type === 'pingReq' && r.message.body.target === ping.target && r.message.body.seq === ping.seq))
    const end = runUntil(swim, ping.atMs + 1000)
    t.same(ofKind(end, 'memberChanged').map(e => [e.member.id, e.member.state]), [[ping.target, 'suspect']])
    t.equal(swim.awarenessScore, 3, 'three relays owed a nack and none came: the fault may be ours')
  })

  t.test('nacks from the relays show the fault is not ours', async t => {
    const swim = swimWithMembers(1, [2, 3, 4, 5, 6])
    const ping = nextPing(swim)
    for (const request of sent(runUntil(swim, ping.atMs + 500), 'pingReq')) {
      const n = Number(request.to.split('.')[3]!.split(':')[0])
      swim.receive(sender(n), { type: 'nack', body: { seq: ping.seq } }, ping.atMs + 700)
    }
    runUntil(swim, ping.atMs + 1000)
    t.equal(swim.member(ping.target)?.state, 'suspect')
    t.equal(swim.awarenessScore, 0)
  })

  t.test('an ack relayed by another member counts as an answer', async t => {
    const swim = swimWithMembers(1, [2, 3, 4, 5, 6])
    const ping = nextPing(swim)
    const [request] = sent(runUntil(swim, ping.atMs + 500), 'pingReq')
    const relay = Number(request!.to.split('.')[3]!.split(':')[0])
    swim.receive(sender(relay), { type: 'ack', body: { seq: ping.seq, gossip: [] } }, ping.atMs + 800)
    runUntil(swim, ping.atMs + 1000)
    t.equal(swim.member(ping.target)?.state, 'alive')
  })

  t.test('an unhealthy node waits longer between probes (Lifeguard)', async t => {
    const swim = swimWithMembers(1, [2, 3, 4, 5, 6])
    const first = nextPing(swim)
    const second = nextPing(swim)
    t.equal(second.atMs - first.atMs, 1000, 'healthy: one probe interval')
    t.equal(swim.awarenessScore, 3)
    const third = nextPing(swim)
    t.equal(third.atMs - second.atMs, 4000, 'score 3: the interval is stretched fourfold')
  })
})

t.test('suspicion and refutation', async t => {
  t.test('a member that hears it is suspected refutes with a higher incarnation, persisted first', async t => {
    const swim = swimWithMembers(1, [2, 3])
    const effects = swim.receive(sender(2), gossipOf([memberRecord(1, 'suspect', 1, 2)]), 100)
    t.same(ofKind(effects, 'persistIncarnation'), [{ kind: 'persistIncarnation', incarnation: 2 }])
    t.same([swim.local.state, swim.local.incarnation], ['alive', 2])
    t.equal(swim.awarenessScore, 1, 'being doubted counts against our health')
    const [ack] = sent(swim.receive(sender(3), { type: 'ping', body: { seq: 1, target: nodeId(1), gossip: [] } }, 110), 'ack')
    if (ack?.message.type !== 'ack') throw new Error('no ack')
    t.ok(ack.message.body.gossip.some(r => r.id === nodeId(1) && r.state === 'alive' && r.incarnation === 2), 'the refutation is gossiped')
  })

  t.test('a death notice about ourselves is refuted above its incarnation', async t => {
    const swim = swimWithMembers(1, [2, 3])
    swim.receive(sender(2), gossipOf([memberRecord(1, 'dead', 5, 2)]), 100)
    t.same([swim.local.state, swim.local.incarnation], ['alive', 6])
  })

  t.test('a stale rumour about ourselves needs no refutation', async t => {
    const swim = newSwim(1, { storedIncarnation: 4 })
    swim.join([], 0)
    const effects = swim.receive(sender(2), gossipOf([memberRecord(1, 'suspect', 3, 2)]), 100)
    t.same(ofKind(effects, 'persistIncarnation'), [])
    t.equal(swim.local.incarnation, 5)
  })

  t.test('a suspect that does not refute is declared dead when the suspicion times out', async t => {
    const swim = swimWithMembers(1, [2, 3, 4, 5, 6, 7])
    swim.receive(sender(3), gossipOf([memberRecord(2, 'suspect', 1, 3)]), 100)
    // 7 live members: k = 3, min = 4 × max(1, log10 7) × 1 s = 4 s, max = 6 × min = 24 s.
    const changes = stateChanges(runAnswering(swim, 30_000), 2)
    t.same(changes, [{ atMs: 24_100, state: 'dead' }])
  })

  t.test('independent confirmations bring the death forward to the minimum timeout', async t => {
    const swim = swimWithMembers(1, [2, 3, 4, 5, 6, 7])
    swim.receive(sender(3), gossipOf([memberRecord(2, 'suspect', 1, 3)]), 100)
    swim.receive(sender(4), gossipOf([memberRecord(2, 'suspect', 1, 4), memberRecord(2, 'suspect', 1, 5), memberRecord(2, 'suspect', 1, 6)]), 200)
    t.same(stateChanges(runAnswering(swim, 30_000), 2), [{ atMs: 4100, state: 'dead' }])
  })

  t.test('a refuted suspicion never turns into a death', async t => {
    const swim = swimWithMembers(1, [2, 3, 4, 5, 6, 7])
    swim.receive(sender(3), gossipOf([memberRecord(2, 'suspect', 1, 3)]), 100)
    swim.receive(sender(2), gossipOf([memberRecord(2, 'alive', 2)]), 200)
    t.same(stateChanges(runAnswering(swim, 60_000), 2), [])
    t.same([swim.member(nodeId(2))?.state, swim.member(nodeId(2))?.incarnation], ['alive', 2])
  })

  t.test('a push-pull merge turns a remote death into a local suspicion', async t => {
    const swim = swimWithMembers(1, [2, 3, 4, 5, 6])
    swim.receive(sender(3), { type: 'pushPull', body: { members: [memberRecord(2, 'dead', 1)], join: false } }, 100)
    t.equal(swim.member(nodeId(2))?.state, 'suspect')
  })
})

t.test('partitions and heals', async t => {
  t.test('a rumour about a member that spoke to us within the suspicion timeout is passed on, not believed', async t => {
    // Member 7 sent the fixture's push-pull at 0 ms: heard from directly.
    const swim = swimWithMembers(1, [2, 3, 4, 5, 6, 7])
    const effects = swim.receive(sender(3), gossipOf([memberRecord(7, 'dead', 1, 3)]), 100)
    t.equal(swim.member(nodeId(7))?.state, 'alive', 'not dead on hearsay')
    t.same(ofKind(effects, 'memberChanged'), [])
    const later = sent(runUntil(swim, 1500))
    const [ping] = later.filter(s => s.message.type === 'ping')
    t.ok(ping?.message.type === 'ping' && ping.message.body.target === nodeId(7), 'our own probe checks it next')
    const gossip = later.flatMap(s => s.message.type === 'gossip' || s.message.type === 'ping' ? s.message.body.gossip : [])
    t.ok(gossip.some(r => r.id === nodeId(7) && r.state === 'dead'), 'passed on, so member 7 hears it and refutes')
  })

  t.test('the same rumour is believed once the member has been silent past the suspicion timeout', async t => {
    const swim = swimWithMembers(1, [2, 3, 4, 5, 6, 7])
    swim.receive(sender(3), gossipOf([memberRecord(7, 'suspect', 1, 3)]), 5000)
    t.equal(swim.member(nodeId(7))?.state, 'suspect')
  })

  t.test('a push-pull from a member we hold dead cannot make our live members suspect', async t => {
    const swim = swimWithMembers(1, [2, 3, 4, 5, 6, 7])
    swim.receive(sender(3), gossipOf([memberRecord(6, 'dead', 1, 3)]), 10_000)
    t.equal(swim.member(nodeId(6))?.state, 'dead')
    // At the heal, 6 (on the far side) holds everyone else dead.
    const stale = [2, 3, 4, 5, 7].map(n => memberRecord(n, 'dead', 1, 6)).concat([memberRecord(6, 'alive', 2), memberRecord(1, 'dead', 1, 6)])
    const effects = swim.receive(sender(6), { type: 'pushPull', body: { members: stale, join: false } }, 10_100)
    t.same([2, 3, 4, 5, 7].map(n => swim.member(nodeId(n))?.state), ['alive', 'alive', 'alive', 'alive', 'alive'])
    t.same([swim.member(nodeId(6))?.state, swim.member(nodeId(6))?.incarnation], ['alive', 2], 'its own refutation is news')
    t.equal(swim.local.incarnation, 2, 'we refute the death they held of us')
    const [reply] = sent(effects, 'pushPullReply')
    t.ok(reply?.message.type === 'pushPullReply' && reply.message.body.members.some(r => r.id === nodeId(1) && r.state === 'alive' && r.incarnation === 2),
      'the reply already carries our refutation')
  })

  t.test('dead members get a push-pull every probe interval, and one exchange heals both sides', async t => {
    const a = swimWithMembers(1, [2, 3])
    const b = swimWithMembers(2, [1, 3])
    runUntil(a, 10_000)
    a.receive(sender(3), gossipOf([memberRecord(2, 'dead', 1, 3)]), 10_000)
    b.receive(sender(3), gossipOf([memberRecord(1, 'dead', 1, 3)]), 10_000)
    const tries = sent(runUntil(a, 13_000), 'pushPull').filter(s => s.to === peerOf(2))
    t.ok(tries.length >= 2 && tries.length <= 4, `${tries.length} push-pulls to the dead member in 3 s`)
    const [first] = tries
    if (first?.message.type !== 'pushPull') throw new Error('no push-pull')
    const [reply] = sent(b.receive(sender(1), first.message, 13_001), 'pushPullReply')
    if (reply?.message.type !== 'pushPullReply') throw new Error('no reply')
    const [back] = sent(a.receive(sender(2), reply.message, 13_002), 'pushPull')
    t.equal(a.member(nodeId(2))?.state, 'alive', 'a sees b alive after the reply')
    if (back?.message.type !== 'pushPull') throw new Error('a did not send its refutation back')
    b.receive(sender(1), back.message, 13_003)
    t.equal(b.member(nodeId(1))?.state, 'alive', 'b sees a alive one message later')
  })
})

t.test('what one member may claim about others is bounded', async t => {
  t.test('a relayed "left" about a member that spoke to us just now is not believed, and the member refutes one at any incarnation', async t => {
    const swim = swimWithMembers(1, [2, 3, 4, 5, 6, 7])
    swim.receive(sender(3), gossipOf([memberRecord(7, 'left', 1)]), 100)
    t.equal(swim.member(nodeId(7))?.state, 'alive', 'only member 7 can say it left')
    swim.receive(sender(7), gossipOf([memberRecord(7, 'left', 2)]), 200)
    t.equal(swim.member(nodeId(7))?.state, 'left', 'said by itself: left')

    const target = newSwim(2)
    target.join([], 0)
    target.receive(sender(3), gossipOf([memberRecord(2, 'left', 1_000_000)]), 10)
    t.equal(target.local.incarnation, 1_000_001, 'a claim within the step bound is refuted above it')
    target.receive(sender(3), gossipOf([memberRecord(2, 'left', 2 ** 40)]), 20)
    t.equal(target.local.incarnation, 1_000_001, 'a claim beyond any honest step is ignored, so its refutations still reach the others')
  })

  t.test('an incarnation far beyond the member\'s is not believed', async t => {
    const swim = swimWithMembers(1, [2, 3, 4])
    swim.receive(sender(3), gossipOf([memberRecord(2, 'dead', 2 ** 30, 3)]), 10_000)
    t.same([swim.member(nodeId(2))?.state, swim.member(nodeId(2))?.incarnation], ['alive', 1])
  })

  t.test('a member\'s addresses change only when the member itself says so', async t => {
    const swim = swimWithMembers(1, [2, 3, 4])
    const moved = { ...memberRecord(2, 'alive', 5), peer: peerOf(3), api: 'n3.test:7070' }
    swim.receive(sender(3), gossipOf([moved]), 100)
    t.same([swim.member(nodeId(2))?.peer, swim.member(nodeId(2))?.incarnation], [peerOf(2), 1], 'relayed: ignored')
    swim.receive(sender(2), gossipOf([moved]), 200)
    t.same([swim.member(nodeId(2))?.peer, swim.member(nodeId(2))?.incarnation], [peerOf(3), 5], 'from the member: taken')
  })

  t.test('on certificate-bound links, speaking as a member takes its id and its certified name (issue 12)', async t => {
    const swim = swimWithMembers(1, [2, 3, 4])
    // Node 3's certificate names node-3; its handshake claims node 2's id.
    const impostor = { id: nodeId(2), peer: peerOf(3), name: 'node-3', nameCertified: true }
    const moved = { ...memberRecord(2, 'alive', 5), peer: peerOf(3), api: 'n3.test:7070' }
    swim.receive(impostor, gossipOf([moved]), 100)
    swim.receive(impostor, gossipOf([{ ...moved, name: 'node-3' }]), 110)
    t.same([swim.member(nodeId(2))?.peer, swim.member(nodeId(2))?.name, swim.member(nodeId(2))?.incarnation], [peerOf(2), 'node-2', 1], 'no move, no rename')
    swim.receive(impostor, gossipOf([memberRecord(2, 'left', 6)]), 120)
    swim.receive(impostor, gossipOf([{ ...memberRecord(2, 'left', 7), name: 'node-3' }]), 130)
    t.equal(swim.member(nodeId(2))?.state, 'alive', 'no eviction in its name')

    const itself = { id: nodeId(2), peer: peerOf(2), name: 'node-2', nameCertified: true }
    swim.receive(itself, gossipOf([moved]), 200)
    t.same([swim.member(nodeId(2))?.peer, swim.member(nodeId(2))?.incarnation], [peerOf(3), 5], 'the member itself moves')
    swim.receive(itself, gossipOf([memberRecord(2, 'left', 8)]), 300)
    t.equal(swim.member(nodeId(2))?.state, 'left', 'and leaves')
  })

  t.test('one message introduces at most MAX_NEW_MEMBERS_PER_MESSAGE members, except the answer to our own join', async t => {
    const invented = Array.from({ length: 1000 }, (_, i) => memberRecord(100 + i))
    const swim = swimWithMembers(1, [2, 3])
    swim.receive(sender(3), { type: 'pushPull', body: { members: invented, join: false } }, 100)
    t.equal(swim.members().length, 3 + MAX_NEW_MEMBERS_PER_MESSAGE)
    const newcomer = newSwim(1)
    newcomer.join([peerOf(2)], 0)
    newcomer.receive(sender(2), { type: 'pushPullReply', body: { members: [memberRecord(2), ...invented] } }, 10)
    t.equal(newcomer.members().length, 1002, 'a joining node learns the whole table it asked for')
  })
})

t.test('leaving and reaping', async t => {
  t.test('leave() announces left at a bumped incarnation and settles once it has spread', async t => {
    const swim = swimWithMembers(1, [2, 3])
    const effects = swim.leave(1000)
    t.same(ofKind(effects, 'persistIncarnation'), [{ kind: 'persistIncarnation', incarnation: 2 }])
    t.same([swim.local.state, swim.local.incarnation], ['left', 2])
    const told = sent(effects, 'gossip')
    t.ok(told.length > 0, 'told at once, not at the next gossip tick')
    t.ok(told.every(s => s.message.type === 'gossip' && s.message.body.gossip.some(r => r.id === nodeId(1) && r.state === 'left')))
    t.notOk(swim.leaveSettled())
    runUntil(swim, 5000)
    t.ok(swim.leaveSettled(), 'gossiped its retransmit budget within 5 s')
    t.same(ofKind(swim.receive(sender(2), gossipOf([memberRecord(1, 'suspect', 2, 2)]), 6000), 'persistIncarnation'), [], 'a node that left does not refute')
  })

  t.test('others record left, which neither a death nor an old alive can overturn', async t => {
    const swim = swimWithMembers(2, [1, 3])
    swim.receive(sender(1), gossipOf([memberRecord(1, 'left', 2)]), 100)
    swim.receive(sender(3), gossipOf([memberRecord(1, 'dead', 2, 3), memberRecord(1, 'alive', 2)]), 200)
    t.same([swim.member(nodeId(1))?.state, swim.member(nodeId(1))?.incarnation], ['left', 2])
    t.same(sent(runAnswering(swim, 10_000).flatMap(s => s.effects), 'ping').filter(s => s.to === peerOf(1)), [], 'a member that left is not probed')
  })

  t.test('dead and left members are forgotten after reapAfterMs', async t => {
    const swim = swimWithMembers(1, [2, 3, 4], { config: { reapAfterMs: 60_000 } })
    swim.receive(sender(4), gossipOf([memberRecord(2, 'dead', 1, 4)]), 1000)
    swim.receive(sender(3), gossipOf([memberRecord(3, 'left', 2)]), 2000)
    const before = runAnswering(swim, 60_999, new Set([2, 3]))
    t.same(before.flatMap(s => ofKind(s.effects, 'memberReaped')), [])
    const after = runAnswering(swim, 62_000, new Set([2, 3]))
    t.same(after.flatMap(s => ofKind(s.effects, 'memberReaped').map(e => [s.atMs, e.member.name])), [[61_000, 'node-2'], [62_000, 'node-3']])
    t.same(swim.members().map(m => m.name).sort(), ['node-1', 'node-4'])
  })
})

t.test('dissemination', async t => {
  t.test('queued news fans out to up to gossipNodes distinct members per gossip interval', async t => {
    const swim = swimWithMembers(1, [2, 3, 4, 5, 6])
    const gossipSteps = runAnswering(swim, 1000).map(step => sent(step.effects, 'gossip')).filter(sends => sends.length > 0)
    t.ok(gossipSteps.length > 0, 'the queued news goes out')
    for (const sends of gossipSteps) {
      t.ok(sends.length <= 3)
      t.equal(new Set(sends.map(s => s.to)).size, sends.length, 'distinct targets')
    }
  })

  t.test('nothing is sent by the gossip loop once the news has been told often enough', async t => {
    const swim = swimWithMembers(1, [2, 3, 4, 5, 6])
    runAnswering(swim, 30_000)
    const quiet = runAnswering(swim, 40_000)
    t.same(quiet.flatMap(s => sent(s.effects, 'gossip')), [])
  })

  t.test('a quiet node wakes for its probes only: no gossip round with nothing queued, no reconnect round with nobody dead', async t => {
    const swim = swimWithMembers(1, [2, 3, 4, 5, 6])
    runAnswering(swim, 30_000)
    const quiet = runAnswering(swim, 40_000)
    const wakeups = new Set(quiet.map(step => step.atMs))
    const probes = quiet.filter(step => sent(step.effects, 'ping').length > 0).length
    // One tick per probe interval plus at most one push-pull: before, every gossip interval
    // (200 ms) and every reconnect round (1 s) woke the node too, about 70 times in these 10 s.
    t.ok(probes >= 9 && probes <= 11, `${probes} probes in 10 s`)
    t.ok(wakeups.size <= probes + 1, `${wakeups.size} wake-ups for ${probes} probes`)
    // Placement and the acceptor sets recompute on memberChanged only (lib/wiring.ts): a quiet
    // round must raise none.
    t.same(quiet.flatMap(step => ofKind(step.effects, 'memberChanged')), [], 'and no member change')
  })

  t.test('news after a quiet spell goes out on the gossip schedule the node kept while it slept', async t => {
    const config = { gossipIntervalMs: 200 }
    const quiet = swimWithMembers(1, [2, 3, 4, 5, 6], { config })
    runAnswering(quiet, 30_000)
    // The first gossip round after the news comes at a point of the old 200 ms grid, as if the
    // node had ticked idly all along, not at once and not one interval after the news.
    const gossipAt = (swim: typeof quiet): number[] => runAnswering(swim, 31_000)
      .filter(step => sent(step.effects, 'gossip').length > 0).map(step => step.atMs)
    const phaseOf = (atMs: number): number => atMs % config.gossipIntervalMs
    const before = runAnswering(swimWithMembers(1, [2, 3, 4, 5, 6], { config }), 1000)
      .filter(step => sent(step.effects, 'gossip').length > 0).map(step => step.atMs)
    t.ok(before.length > 0, 'the join news was gossiped')
    quiet.receive(sender(3), gossipOf([memberRecord(7)]), 30_050)
    const after = gossipAt(quiet)
    t.ok(after.length > 0, 'the news is gossiped')
    t.ok(after[0]! > 30_050 && after[0]! <= 30_050 + config.gossipIntervalMs, `first round at ${after[0]} ms`)
    t.equal(phaseOf(after[0]!), phaseOf(before[0]!), 'on the grid the node started with')
  })

  t.test('a member declared dead gets its first reconnect push-pull within one probe interval', async t => {
    const swim = swimWithMembers(1, [2, 3])
    runUntil(swim, 10_000)
    swim.receive(sender(3), gossipOf([memberRecord(2, 'dead', 1, 3)]), 10_000)
    t.equal(swim.member(nodeId(2))?.state, 'dead')
    const first = sent(runUntil(swim, 11_000), 'pushPull').filter(s => s.to === peerOf(2))
    t.ok(first.length >= 1 && first.length <= 2, `${first.length} reconnect push-pulls within one probe interval`)
    const next = sent(runUntil(swim, 12_000), 'pushPull').filter(s => s.to === peerOf(2))
    t.equal(next.length, 1, 'and one more a probe interval later, while the member stays dead')
  })

  t.test('push-pull goes to one random alive member about every pushPullIntervalMs', async t => {
    const swim = swimWithMembers(1, [2, 3, 4])
    const pushPulls = runAnswering(swim, 600_000).flatMap(s => sent(s.effects, 'pushPull'))
    // Each wait is the 30 s interval ± 50 % jitter: 10 minutes hold between 13 and 41 exchanges.
    t.ok(pushPulls.length >= 13 && pushPulls.length <= 41, `${pushPulls.length} exchanges in 10 minutes`)
    t.ok(pushPulls.every(s => s.message.type === 'pushPull' && !s.message.body.join && s.message.body.members.length === 4), 'the full table')
    t.ok(new Set(pushPulls.map(s => s.to)).size > 1, 'with different partners')
  })
})

t.test('a node that left keeps passing news on without judging anyone', async t => {
  const swim = swimWithMembers(1, [2, 3, 4, 5, 6])
  swim.receive(sender(3), gossipOf([memberRecord(2, 'suspect', 1, 3)]), 100)
  swim.leave(200)
  swim.receive(sender(4), gossipOf([memberRecord(5, 'suspect', 1, 4)]), 300)
  const effects = runUntil(swim, 120_000)
  t.same(sent(effects, 'ping'), [], 'no probes')
  t.same(ofKind(effects, 'memberChanged').filter(e => e.member.state === 'dead'), [], 'no suspicion runs out into a death')
  t.ok(swim.nextTickAtMs() > 120_000, 'and no deadline is left spinning')
})
