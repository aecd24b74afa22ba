import { Writable } from 'node:stream'
import t from 'tap'
import { createProgressLine } from '../../lib/bench/progress.js'

function capture(isTTY: boolean): { stream: Writable & { isTTY: boolean }; text(): string } {
  const chunks: string[] = []
  const stream = Object.assign(new Writable({ write(chunk: Buffer, _encoding, done) { chunks.push(chunk.toString()); done() } }), { isTTY })
  return { stream, text: () => chunks.join('') }
}

const first = { elapsedMs: 1000.4, completed: 420, errors: 0, opsPerSecond: 419.6 }
const second = { elapsedMs: 2001, completed: 900, errors: 3, opsPerSecond: 480 }

t.test('in a pipe or file, one whole line per update', async t => {
  const out = capture(false)
  const line = createProgressLine(out.stream)
  line.update('', first)
  line.update('w=2', second)
  line.end()
  t.equal(out.text(), 'bench: 1s, 420 ops, 420 ops/s, 0 errors\nbench w=2: 2s, 900 ops, 480 ops/s, 3 errors\n')
})

t.test('on a terminal, one line rewritten in place and ended once', async t => {
  const out = capture(true)
  const line = createProgressLine(out.stream)
  line.update('w=10', second)
  line.update('', first)
  line.end()
  line.end()
  const text = out.text()
  t.equal(text.split('\n').length, 2, 'a single newline, at the end')
  const frames = text.slice(0, -1).split('\r').slice(1)
  t.equal(frames.length, 2)
  t.ok(frames[1]!.length >= frames[0]!.length, 'a shorter line is padded over the longer one')
  t.match(frames[1], /^bench: 1s, 420 ops/)
})

t.test('nothing is written for a run that ended before its first update', async t => {
  const out = capture(true)
  createProgressLine(out.stream).end()
  t.equal(out.text(), '')
})
