import t from 'tap'
import { DEFAULT_OPTIONS, parseCompareArgs, UsageError } from '../../bench/compare/args.js'

t.test('--rounds runs the systems that many times; one by default', async t => {
  t.equal(DEFAULT_OPTIONS.rounds, 1)
  t.equal(parseCompareArgs([])?.rounds, 1)
  t.equal(parseCompareArgs(['--rounds', '3', '--cas'])?.rounds, 3)
})

t.test('--rounds refuses what is not a whole number from 1 to 20, naming the option', async t => {
  for (const bad of ['0', '21', '1.5', '-1', 'three', '']) {
    t.throws(() => parseCompareArgs([`--rounds=${bad}`]), new UsageError(`--rounds must be a whole number from 1 to 20, got ${JSON.stringify(bad)}`), bad)
  }
})
