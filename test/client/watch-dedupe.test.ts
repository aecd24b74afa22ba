import t from 'tap'
import { DeliveredVersions } from '../../lib/client/watch-dedupe.js'
import { versionAt } from '../../lib/client/watch.js'

const NODE = '00000000000000ab'
const at = (ms: number, node = NODE): string => `${versionAt(ms).slice(0, 16)}-${node}`

t.test('a key is delivered once per version and never older than delivered', async t => {
  const seen = new DeliveredVersions(10_000, 100)
  t.ok(seen.admit('k', at(1000)))
  t.notOk(seen.admit('k', at(1000)), 'the same version again is a duplicate')
  t.ok(seen.admit('k', at(2000)))
  t.notOk(seen.admit('k', at(1500)), 'an older version after a newer one is dropped (per-key order)')
  t.ok(seen.admit('other', at(1500)), 'another key is independent')
  t.equal(seen.newest, at(2000), 'the resume point is the newest version delivered')
})

t.test('keys older than the window are forgotten; so are the least recent beyond the count', async t => {
  const windowed = new DeliveredVersions(1_000, 100)
  windowed.admit('old', at(1000))
  windowed.admit('new', at(5000))
  t.equal(windowed.size, 1, 'a key 4 s behind the newest is forgotten with a 1 s window')
  t.ok(windowed.admit('old', at(1000)), 'so its (very late) re-delivery is delivered again: at least once')

  const counted = new DeliveredVersions(1_000_000, 3)
  for (let i = 0; i < 10; i++) counted.admit(`k${i}`, at(1000 + i))
  t.equal(counted.size, 3, 'never more keys than the limit')
  t.notOk(counted.admit('k9', at(1009)), 'the most recent keys are the ones kept')
})

t.test('advanceTo moves the resume point forward only', async t => {
  const seen = new DeliveredVersions(1_000, 10)
  seen.advanceTo(at(5000))
  seen.advanceTo(at(4000))
  t.equal(seen.newest, at(5000))
})
