import t from 'tap'
import { asNodeId } from '../../lib/clock/version.js'
import type { WireEntry } from '../../lib/replication/messages.js'
import { ReplicaWriteBatcher } from '../../lib/replication/write-batcher.js'
import { TransportError, type PeerMessage } from '../../lib/transport/transport.js'

const node = asNodeId('00000000000000a1')
/** End of turn as the daemon has it. */
const defer = (task: () => void): void => { setImmediate(task) }
const entry = (key: string, valueBytes = 10): WireEntry => ({ key, value: Buffer.alloc(valueBytes), hlc: 1, node })

interface Sent { readonly peer: string; readonly keys: string[]; readonly timeoutMs: number }

/** A send that records each batch and answers `applied` = every other record (or fails). */
function recorder(fail?: Error): { sent: Sent[]; send: (peer: string, message: PeerMessage, timeoutMs: number) => Promise<PeerMessage> } {
  const sent: Sent[] = []
  return {
    sent,
    send: async (peer, message, timeoutMs) => {
      const entries = (message.body as { entries: WireEntry[] }).entries
      sent.push({ peer, keys: entries.map((e) => e.key), timeoutMs })
      if (fail !== undefined) throw fail
      return { type: 'replicaWriteReply', body: { applied: entries.map((_, i) => i % 2 === 0) } }
    },
  }
}

t.test('writes to one peer in the same turn travel as one replicaWrite, and each caller gets its own slice', async t => {
  const { sent, send } = recorder()
  const batcher = new ReplicaWriteBatcher({ send, maxEntries: 1024, maxBytes: 1 << 20, maxInFlight: 4, nowMs: () => 0, defer })
  const answers = await Promise.all([
    batcher.write('a:1', [entry('k1')], 2000),
    batcher.write('a:1', [entry('k2'), entry('k3')], 2000),
    batcher.write('b:1', [entry('k4')], 3000),
    batcher.write('a:1', [entry('k5')], 2500),
  ])
  t.same(sent, [
    { peer: 'a:1', keys: ['k1', 'k2', 'k3', 'k5'], timeoutMs: 2500 },
    { peer: 'b:1', keys: ['k4'], timeoutMs: 3000 },
  ], 'one request per peer, records in call order, the longest deadline')
  t.same(answers.map((a) => (a.body as { applied: boolean[] }).applied), [[true], [false, true], [true], [false]], 'each caller sees the flags of its own records')
})

t.test('a batch that would pass maxEntries or maxBytes is sent and a new one started', async t => {
  const { sent, send } = recorder()
  const batcher = new ReplicaWriteBatcher({ send, maxEntries: 3, maxBytes: 1 << 20, maxInFlight: 4, nowMs: () => 0, defer })
  await Promise.all(['k1', 'k2', 'k3', 'k4'].map((key) => batcher.write('a:1', [entry(key)], 1000)))
  t.same(sent.map((s) => s.keys), [['k1', 'k2', 'k3'], ['k4']], 'at most 3 records per batch')
  const bySize = recorder()
  const small = new ReplicaWriteBatcher({ send: bySize.send, maxEntries: 1024, maxBytes: 400, maxInFlight: 4, nowMs: () => 0, defer })
  await Promise.all(['k1', 'k2', 'k3'].map((key) => small.write('a:1', [entry(key, 100)], 1000)))
  t.same(bySize.sent.map((s) => s.keys), [['k1', 'k2'], ['k3']], 'the byte budget splits batches too')
})

t.test('a failed batch fails every caller in it; other batches are unaffected', async t => {
  const { send } = recorder(new Error('peer unreachable'))
  const batcher = new ReplicaWriteBatcher({ send, maxEntries: 1024, maxBytes: 1 << 20, maxInFlight: 4, nowMs: () => 0, defer })
  const results = await Promise.allSettled([batcher.write('a:1', [entry('k1')], 1000), batcher.write('a:1', [entry('k2')], 1000)])
  t.same(results.map((r) => r.status), ['rejected', 'rejected'])
  t.match((results[0] as PromiseRejectedResult).reason, /peer unreachable/)
  const wrong = new ReplicaWriteBatcher({ send: async () => ({ type: 'replicaWriteReply', body: { applied: [true] } }), maxEntries: 1024, maxBytes: 1 << 20, maxInFlight: 4, nowMs: () => 0, defer })
  await t.rejects(Promise.all([wrong.write('a:1', [entry('k1')], 1000), wrong.write('a:1', [entry('k2')], 1000)]), /answered a replicaWrite of 2 records/, 'an answer of the wrong length is an error, not a guess')
  t.throws(() => new ReplicaWriteBatcher({ send: recorder().send, maxEntries: 0, maxBytes: 1, maxInFlight: 1, nowMs: () => 0, defer }), RangeError)
})

t.test('while maxInFlight batches to a peer await their answers, later writes gather into one batch (issue 15)', async t => {
  const sent: string[][] = []
  const answers: (() => void)[] = []
  const send = (_peer: string, message: PeerMessage): Promise<PeerMessage> => {
    const entries = (message.body as { entries: WireEntry[] }).entries
    sent.push(entries.map((e) => e.key))
    return new Promise((resolve) => { answers.push(() => resolve({ type: 'replicaWriteReply', body: { applied: entries.map(() => true) } })) })
  }
  const batcher = new ReplicaWriteBatcher({ send, maxEntries: 1024, maxBytes: 1 << 20, maxInFlight: 1, nowMs: () => 0, defer })
  const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve))
  const first = batcher.write('a:1', [entry('k1')], 1000)
  await turn()
  t.same(sent, [['k1']], 'an idle peer gets its batch at the end of the turn')
  const later = [batcher.write('a:1', [entry('k2')], 1000)]
  await turn()
  later.push(batcher.write('a:1', [entry('k3')], 1000))
  const other = batcher.write('b:1', [entry('k4')], 1000)
  await turn()
  t.same(sent, [['k1'], ['k4']], 'records for a peer with an unanswered batch wait; another peer is not held up')
  answers[0]!()
  t.same((await first).body, { applied: [true] })
  await turn()
  t.same(sent, [['k1'], ['k4'], ['k2', 'k3']], 'the answer releases everything that gathered, as one batch')
  answers[1]!()
  answers[2]!()
  t.same((await Promise.all([...later, other])).map((a) => (a.body as { applied: boolean[] }).applied), [[true], [true], [true]])
  t.throws(() => new ReplicaWriteBatcher({ send, maxEntries: 1, maxBytes: 1, maxInFlight: 0, nowMs: () => 0, defer }), RangeError)
})

t.test('a full batch leaves even while the peer has answers outstanding', async t => {
  const sent: string[][] = []
  const send = async (_peer: string, message: PeerMessage): Promise<PeerMessage> => {
    const entries = (message.body as { entries: WireEntry[] }).entries
    sent.push(entries.map((e) => e.key))
    return new Promise(() => undefined)
  }
  const batcher = new ReplicaWriteBatcher({ send, maxEntries: 2, maxBytes: 1 << 20, maxInFlight: 1, nowMs: () => 0, defer })
  for (const key of ['k1', 'k2', 'k3', 'k4', 'k5']) void batcher.write('a:1', [entry(key)], 1000)
  await new Promise((resolve) => setImmediate(resolve))
  t.same(sent, [['k1', 'k2'], ['k3', 'k4']], 'full batches go at once; the partial one waits for an answer')
})

t.test('a batch that waited behind an unanswered one past its deadline is not sent: its writes time out, never arrive late', async t => {
  // Found by the replication cluster test under load: writes queued for a killed replica were
  // sent once the earlier batches timed out, and reached it after its restart.
  let nowMs = 0
  const sent: string[][] = []
  let failFirst!: (error: Error) => void
  const send = (_peer: string, message: PeerMessage): Promise<PeerMessage> => {
    sent.push((message.body as { entries: WireEntry[] }).entries.map((e) => e.key))
    return new Promise((_resolve, reject) => { failFirst = reject })
  }
  const batcher = new ReplicaWriteBatcher({ send, maxEntries: 1024, maxBytes: 1 << 20, maxInFlight: 1, nowMs: () => nowMs, defer })
  const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve))
  const first = batcher.write('a:1', [entry('k1')], 1000).catch((error: unknown) => error)
  await turn()
  const queued = batcher.write('a:1', [entry('k2')], 1000).catch((error: unknown) => error)
  await turn()
  t.same(sent, [['k1']], 'the second write waits behind the unanswered first')
  nowMs = 1001
  failFirst(new TransportError('timed out', 'timeout'))
  await first
  t.match(await queued, { name: 'TransportError', code: 'timeout' }, 'the queued write fails as timed out')
  t.same(sent, [['k1']], 'and is never sent')
})
