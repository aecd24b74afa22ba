import t from 'tap'
import { SseEventTooLargeError, SseParser } from '../../lib/client/sse.js'

const feed = (parser: SseParser, ...chunks: string[]): ReturnType<SseParser['push']> =>
  chunks.flatMap(chunk => parser.push(Buffer.from(chunk, 'utf8')))

t.test('events end at a blank line; comments and unknown fields are skipped', async t => {
  const events = feed(new SseParser(1000), ': heartbeat\n\nid: 1\nevent: change\ndata: {"a":1}\nretry: 10\nfoo: bar\n\n')
  t.same(events, [{ event: 'change', data: '{"a":1}', id: '1' }])
})

t.test('CRLF and CR line ends, also when a CRLF is split between chunks', async t => {
  const events = feed(new SseParser(1000), 'data: a\r', '\n\r', '\ndata: b\rdata: c\r\r')
  t.same(events, [{ event: 'message', data: 'a', id: undefined }, { event: 'message', data: 'b\nc', id: undefined }])
})

t.test('a multi-byte character split between chunks arrives whole', async t => {
  const bytes = Buffer.from('data: 🦜\n\n', 'utf8')
  const parser = new SseParser(1000)
  const events = [...parser.push(bytes.subarray(0, 8)), ...parser.push(bytes.subarray(8))]
  t.same(events.map(e => e.data), ['🦜'])
})

t.test('an id-only block is reported (a resume point) with no data', async t => {
  t.same(feed(new SseParser(1000), 'id: 42\n\n'), [{ event: 'message', data: undefined, id: '42' }])
})

t.test('an event or a line over the limit is refused, not buffered', async t => {
  t.throws(() => feed(new SseParser(10), 'data: 0123456789abc\n'), SseEventTooLargeError)
  t.throws(() => feed(new SseParser(10), 'data: 0123', '456789abcdef'), SseEventTooLargeError, 'an unterminated line counts too')
})
