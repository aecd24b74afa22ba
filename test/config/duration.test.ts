import t from 'tap'
import { parseDurationMs } from '../../lib/config/duration.js'

t.test('duration strings with one unit parse to milliseconds', async t => {
  t.equal(parseDurationMs('10d'), 10 * 86_400_000)
  t.equal(parseDurationMs('36h'), 36 * 3_600_000)
  t.equal(parseDurationMs('15m'), 15 * 60_000)
  t.equal(parseDurationMs('30s'), 30_000)
  t.equal(parseDurationMs('500ms'), 500)
})

t.test('a number is taken as milliseconds', async t => {
  t.equal(parseDurationMs(86_400_000), 86_400_000)
})

t.test('anything else is not a duration', async t => {
  for (const value of ['', '10', '10 d', '1.5h', '-5s', '0s', '10w', '1h30m', 'd', 0, -1, 1.5, Number.NaN, 2 ** 60, '9999999999999999d', null, true, ['1s']]) {
    t.equal(parseDurationMs(value), undefined, JSON.stringify(value))
  }
})
