import t from 'tap'
import { asNodeId } from '../../lib/clock/version.js'
import { heldByEveryReplica, SyncCertificates } from '../../lib/antientropy/certificates.js'

const [SELF, B, C] = ['0000000000000001', '0000000000000002', '0000000000000003'].map(asNodeId) as [ReturnType<typeof asNodeId>, ReturnType<typeof asNodeId>, ReturnType<typeof asNodeId>]

t.test('a partition is held everywhere before the oldest of the other replicas\' latest agreeing sessions', async t => {
  const certificates = new SyncCertificates()
  t.equal(certificates.heldEverywhereBeforeMs(0, [B, C]), undefined, 'nothing is known before any session')
  certificates.record(B, [0, 1], 1000)
  t.equal(certificates.heldEverywhereBeforeMs(0, [B, C]), undefined, 'one replica not synced yet: nothing may go')
  certificates.record(C, [0], 3000)
  t.equal(certificates.heldEverywhereBeforeMs(0, [B, C]), 1000)
  certificates.record(B, [0], 5000)
  t.equal(certificates.heldEverywhereBeforeMs(0, [B, C]), 3000, 'each replica\'s latest session counts')
  certificates.record(B, [0], 2000)
  t.equal(certificates.heldEverywhereBeforeMs(0, [B, C]), 3000, 'an older session reported late moves nothing back')
  t.equal(certificates.heldEverywhereBeforeMs(7, []), Infinity, 'a partition with no other replica')
  certificates.forget(C)
  t.equal(certificates.heldEverywhereBeforeMs(0, [B, C]), undefined, 'a forgotten member is unknown again')
})

t.test('a record may be collected only if it arrived before every other replica last agreed', async t => {
  const certificates = new SyncCertificates()
  const arrivals = new Map([['early', 500], ['late', 1500]])
  const mayCollect = heldByEveryReplica({
    certificates, localId: SELF, replicasOf: () => [SELF, B, C], partitionOf: () => 0, arrivalMs: (key) => arrivals.get(key) ?? 0,
  })
  certificates.record(B, [0], 1000)
  t.notOk(mayCollect('early'), 'C has not agreed yet')
  certificates.record(C, [0], 2000)
  t.ok(mayCollect('early'))
  t.notOk(mayCollect('late'), 'arrived after B last agreed: B may lack it')
})
