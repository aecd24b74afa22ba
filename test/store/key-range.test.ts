import t from 'tap'
import { keyRange } from '../../lib/store/keys.js'

const text = (range: { start?: Buffer; end?: Buffer }): { start?: string; end?: string } => ({
  ...(range.start !== undefined ? { start: range.start.toString('latin1') } : {}),
  ...(range.end !== undefined ? { end: range.end.toString('latin1') } : {}),
})

t.test('start and end narrow a prefix range: the greatest lower bound, the least upper one', async t => {
  t.same(text(keyRange('', undefined, { start: 'b', end: 'd' })), { start: 'b', end: 'd' })
  t.same(text(keyRange('a/', undefined, { start: 'a/m' })), { start: 'a/m', end: 'a0' })
  t.same(text(keyRange('a/', undefined, { start: 'A', end: 'z' })), { start: 'a/', end: 'a0' }, 'bounds outside the prefix change nothing')
  t.same(text(keyRange('', 'c', { start: 'b' })), { start: 'c\u0000' }, 'the cursor moves past start')
  t.same(text(keyRange('', 'a', { start: 'b' })), { start: 'b' }, 'a cursor before start does not widen it')
  t.same(text(keyRange('', undefined, { start: 'd', end: 'b' })), { start: 'd', end: 'd' }, 'an inverted range is empty')
  t.same(text(keyRange('', undefined, { start: '' })), {}, 'an empty start is no bound')
})
