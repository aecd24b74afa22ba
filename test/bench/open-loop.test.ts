import { createServer, request, Agent, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { setImmediate as nextMacrotask, setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import type { OpOutcome } from '../../lib/bench/closed-loop.js'
import { runOpenLoop, type OpenLoopSample } from '../../lib/bench/open-loop.js'

const STALL_MS = 200

/** A loopback HTTP server that answers at once, except request number `stallAt`, which it holds STALL_MS. */
async function stallingServer(stallAt: number): Promise<{ server: Server; url: string }> {
  let requests = 0
  const server = createServer((_req, res) => {
    const n = requests++
    if (n === stallAt) setTimeout(() => res.end('late'), STALL_MS)
    else res.end('ok')
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/` }
}

function get(url: string, agent: Agent): Promise<OpOutcome> {
  return new Promise(resolve => {
    const req = request(url, { agent }, res => {
      res.resume()
      res.on('end', () => resolve({ kind: 'get', ok: res.statusCode === 200 }as OpOutcome))
    })
    req.on('error', () => resolve({ kind: 'get', ok: false, error: 'connection' }))
    req.end()
  })
}

t.test('a server that stalls once shows in the open loop: every operation scheduled during the stall waited for it', async t => {
  // Warm the connection and the JIT first, so a loaded machine does not start the schedule behind.
  const WARM_REQUESTS = 10
  const STALLED_INDEX = 30
  const { server, url } = await stallingServer(WARM_REQUESTS + STALLED_INDEX)
  const agent = new Agent({ keepAlive: true, maxSockets: 1 })
  t.teardown(() => {
    agent.destroy()
    server.close()
  })
  for (let i = 0; i < WARM_REQUESTS; i++) await get(url, agent)
  const samples: OpenLoopSample[] = []
  const result = await runOpenLoop({
    ratePerSecond: 100,
    maxInFlight: 1,
    durationMs: 2000,
    operation: () => get(url, agent),
    onRecorded: sample => samples.push(sample),
  })
  t.equal(result.total.count + result.schedule.notStarted, result.schedule.scheduled, 'every scheduled operation was run or counted as not started')
  t.equal(result.schedule.scheduled, 200)
  const stalled = samples.find(sample => sample.index === STALLED_INDEX)
  t.ok(stalled, 'the stalled request was recorded')
  if (stalled === undefined) return
  // The server held it STALL_MS, so it finished no earlier than that after it started; with one in
  // flight, nothing scheduled after it could start before then. That holds however slow the machine.
  const stallEnd = stalled.startedAt + STALL_MS
  t.ok(stalled.latencyMs >= STALL_MS, `the stalled request took at least ${STALL_MS} ms: ${stalled.latencyMs}`)
  const queued = samples.filter(sample => sample.index > stalled.index && sample.scheduledAt < stallEnd)
  t.ok(queued.length >= 15, `the ${STALL_MS / 10 - 1} operations scheduled in the ${STALL_MS} ms after it queued behind it: ${queued.length}`)
  for (const sample of queued) {
    if (sample.latencyMs < stallEnd - sample.scheduledAt) t.fail(`operation ${sample.index} hid its wait: ${sample.latencyMs} ms`)
  }
  t.ok(queued.filter(sample => sample.latencyMs >= STALL_MS / 2).length >= 8, 'the first half of them waited at least half the stall')
  t.ok(result.schedule.heldBack >= queued.length, `they are counted as held back: ${result.schedule.heldBack}`)
  t.ok(result.total.latencyMs.max >= STALL_MS, `max ${result.total.latencyMs.max}`)
  // 200 scheduled, at least 8 recorded at ≥ 100 ms: the top 1 % lies in the stall's queue.
  t.ok(result.total.latencyMs.p99 >= STALL_MS / 2, `p99 ${result.total.latencyMs.p99} reflects the queue behind the stall`)
})

t.test('the schedule is kept: operations start no earlier than scheduled and the count is exact', async t => {
  const starts: number[] = []
  const samples: OpenLoopSample[] = []
  const result = await runOpenLoop({
    ratePerSecond: 500,
    maxInFlight: 8,
    ops: 50,
    warmupMs: 20,
    async operation(slot) {
      t.ok(slot >= 0 && slot < 8, 'slots are within the in-flight bound')
      starts.push(performance.now())
      await nextMacrotask()
      return { kind: 'put', ok: true }
    },
    onRecorded: sample => samples.push(sample),
  })
  t.equal(result.total.count, 50, 'exactly --ops recorded operations')
  t.equal(starts.length, 60, 'plus the 10 scheduled during the 20 ms warm-up, run but not recorded')
  t.same(samples.map(sample => sample.index).sort((a, b) => a - b), Array.from({ length: 50 }, (_, i) => i + 10))
  for (const sample of samples) {
    if (sample.startedAt < sample.scheduledAt) t.fail(`operation ${sample.index} started before its time`)
    if (Math.abs(sample.latencyMs - (sample.latencyMs + sample.scheduledAt - sample.scheduledAt)) > 0) t.fail('latency is from the schedule')
  }
  t.equal(result.schedule.notStarted, 0)
})

t.test('never more than maxInFlight at once; what cannot start before the schedule ends is counted, not run', async t => {
  let inFlight = 0
  let mostInFlight = 0
  let started = 0
  let release: () => void = () => {}
  const gate = new Promise<void>(resolve => { release = resolve })
  const run = runOpenLoop({
    ratePerSecond: 1000,
    maxInFlight: 3,
    durationMs: 50,
    async operation() {
      started++
      inFlight++
      mostInFlight = Math.max(mostInFlight, inFlight)
      await gate
      inFlight--
      return { kind: 'get', ok: false, error: 'timeout' }
    },
  })
  // Hold the three slots until the whole schedule is due (bounded: the run's own 50 ms schedule).
  for (let i = 0; i < 1000 && started < 3; i++) await nextMacrotask()
  await sleep(60)
  release()
  const result = await run
  t.equal(mostInFlight, 3)
  t.equal(result.schedule.scheduled, 50)
  t.equal(result.total.count, started, 'every started operation is recorded (failures too)')
  t.equal(result.total.count + result.schedule.notStarted, 50)
  t.ok(result.schedule.notStarted > 0, `the backlog was dropped at the end of the schedule: ${result.schedule.notStarted}`)
  t.same(result.total.errors, { timeout: result.total.count })
})

t.test('bad options are refused', async t => {
  const operation = async (): Promise<OpOutcome> => ({ kind: 'put', ok: true })
  await t.rejects(runOpenLoop({ ratePerSecond: 0, maxInFlight: 1, ops: 1, operation }), /ratePerSecond must be above 0/)
  await t.rejects(runOpenLoop({ ratePerSecond: 10, maxInFlight: 0, ops: 1, operation }), /maxInFlight must be a whole number/)
  await t.rejects(runOpenLoop({ ratePerSecond: 10, maxInFlight: 1, operation }), /give durationMs or ops/)
})
