import t from 'tap'
import { Awareness } from '../../lib/membership/awareness.js'

t.test('a healthy node scales timeouts by one', async t => {
  const awareness = new Awareness(8)
  t.equal(awareness.score, 0)
  t.equal(awareness.scaleMs(500), 500)
})

t.test('failures raise the score and stretch timeouts by score + 1', async t => {
  const awareness = new Awareness(8)
  awareness.applyDelta(1)
  awareness.applyDelta(2)
  t.equal(awareness.score, 3)
  t.equal(awareness.scaleMs(1000), 4000)
})

t.test('the score stays within 0 and maxMultiplier - 1', async t => {
  const awareness = new Awareness(8)
  awareness.applyDelta(100)
  t.equal(awareness.score, 7, 'capped so timeouts grow at most eightfold')
  t.equal(awareness.scaleMs(1000), 8000)
  awareness.applyDelta(-100)
  t.equal(awareness.score, 0, 'successful probes never push it below healthy')
})

t.test('a max multiplier of 1 disables scaling', async t => {
  const awareness = new Awareness(1)
  awareness.applyDelta(5)
  t.equal(awareness.scaleMs(1000), 1000)
})

t.test('a nonsensical max multiplier is refused', async t => {
  t.throws(() => new Awareness(0), RangeError)
  t.throws(() => new Awareness(1.5), RangeError)
})
