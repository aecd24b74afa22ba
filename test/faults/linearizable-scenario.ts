import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { checkLinearizable } from '../helpers/linearizability.js'
import { checkCounter, HistoryRecorder, type Transport } from '../helpers/lin-recorder.js'
import { runWorkload } from '../helpers/lin-workload.js'
import { sleep, type FaultCluster } from './cluster.js'
import type { Scenario } from './scenarios.js'

/**
 * Issue 13 in the fault suite: clients doing compare-and-set, increments and linearizable reads
 * through every node of three, one node's clock 1.5 s ahead, while the cluster goes through a
 * partition (one node cut off, then healed), 5 % packet loss, and kill -9 + restart of two nodes
 * in turn. Oracles: the history (final reads through every node included) is linearizable, and
 * every counter ends within [K, K+U]. The history goes to linearizable-history.json in the
 * scenario's run dir.
 */

const MAX_SKEW_MS = 5_000
const CLOCK_OFFSET_MS = 1_500
const SKEWED_NODE = 2
const CLIENTS = 5
const MAX_OPS_PER_CLIENT = 100_000
const REQUEST_TIMEOUT_MS = 6_000
const ALIVE_TIMEOUT_MS = 45_000
const FINAL_READ_TIMEOUT_MS = 30_000
const SEED = 1313

/** Requests through the suite's agent in the switch namespace, which partitions never cut off. */
function agentTransport(cluster: FaultCluster): Transport {
  return async ({ method, url, body, timeoutMs }) => {
    const answer = await cluster.request(method, url, timeoutMs, body)
    if (answer.status === undefined) return { error: agentErrorCode(answer.error ?? 'no answer') }
    return { status: answer.status, body: answer.body ?? '', version: answer.version ?? null }
  }
}

/** The agent reports `<error> (<code>)`; a timeout is an abort. */
export function agentErrorCode(text: string): string {
  const code = /\(([A-Z][A-Z_]+)\)$/.exec(text)?.[1]
  if (code !== undefined) return code
  return /timeout|aborted/i.test(text) ? 'TimeoutError' : text
}

export const linearizableScenario: Scenario = {
  name: 'linearizable', title: 'CAS, incr and linearizable reads through a partition, 5% loss and kill -9 of 2 of 3, one clock +1.5 s', nodes: 3, subnetOctet: 39,
  config: (index) => ({ clock: { maxSkewMs: MAX_SKEW_MS, ...(index === SKEWED_NODE ? { offsetMs: CLOCK_OFFSET_MS } : {}) } }),
  async run(cluster, ctx, record) {
    const prefix = `lin-${record.prefix}`
    const registerKeys = [`${prefix}lock`, `${prefix}config`, `${prefix}leader`]
    const counterKeys = [`${prefix}hits`, `${prefix}seq`]
    const recorder = new HistoryRecorder({ requestTimeoutMs: REQUEST_TIMEOUT_MS, transport: agentTransport(cluster) })
    const down = new Set<number>()
    let stopped = false
    const load = runWorkload(recorder, {
      nodes: () => cluster.nodes.filter((node) => !down.has(node.index)).map((node) => node.url),
      registerKeys, counterKeys, clients: CLIENTS, opsPerClient: MAX_OPS_PER_CLIENT, stop: () => stopped, seed: SEED,
    })
    try {
      await sleep(5_000)
      await cluster.partition([[0, 1], [2]])
      ctx.log('linearizable: n3 cut off')
      await sleep(8_000)
      await cluster.heal()
      await cluster.waitUntil('every member alive after the heal', ALIVE_TIMEOUT_MS, () => cluster.allAlive())
      ctx.log('linearizable: healed; 5% loss, then kill -9 of n1 and n2 in turn')
      await cluster.addLoss([0, 1, 2], 0.05)
      for (const victim of [0, 1]) {
        await sleep(4_000)
        down.add(victim)
        await cluster.kill9(victim)
        await sleep(2_000)
        await cluster.restart(victim)
        down.delete(victim)
      }
      await sleep(4_000)
      await cluster.heal()
    } finally {
      stopped = true
    }
    const summary = await load
    await cluster.waitUntil('every member alive at the end', ALIVE_TIMEOUT_MS, () => cluster.allAlive())

    const finals = new Map<string, string | null>()
    const unread: string[] = []
    for (const key of [...registerKeys, ...counterKeys]) {
      for (const node of cluster.nodes) {
        try {
          await cluster.waitUntil(`a linearizable read of ${key} through ${node.name}`, FINAL_READ_TIMEOUT_MS, async () => {
            const output = await recorder.read(node.url, key, 'final')
            if (output?.kind === 'read') finals.set(key, output.value)
            return output?.kind === 'read'
          })
        } catch {
          unread.push(`${key} via ${node.name}`)
        }
      }
    }
    record.note(`${summary.sent} linearizable operations sent: ${JSON.stringify(summary.outcomes)}; left out of the history: ${JSON.stringify(Object.fromEntries(recorder.omitted))}`)
    record.oracle('linearizable reads answer through every node at the end', unread.length === 0, unread.length === 0 ? 'all answered' : unread.join(', '))

    const result = checkLinearizable(recorder.ops)
    record.oracle('the CAS / incr / read history is linearizable', result.verdict === 'linearizable',
      result.verdict === 'linearizable' ? `${recorder.ops.length} operations over ${result.keys.length} keys`
        : result.verdict === 'inconclusive' ? `inconclusive: the search ran out of steps on ${result.keys.filter((k) => k.verdict === 'inconclusive').map((k) => k.key).join(', ')}`
          : result.explanation)
    const counterProblems = counterKeys.map((key) => checkCounter(recorder.ops, key, finals.get(key) ?? null)).filter((p): p is string => p !== undefined)
    record.oracle('every counter ends within [K, K+U]', counterProblems.length === 0, counterProblems.length === 0 ? counterKeys.map((key) => `${key}=${finals.get(key) ?? 'absent'}`).join(', ') : counterProblems.join('; '))
    try {
      writeFileSync(join(ctx.runDir, 'linearizable', 'linearizable-history.json'), JSON.stringify(recorder.ops, (_, v: unknown) => typeof v === 'bigint' ? v.toString() : v))
    } catch { /* the run dir is the suite's; a missing one only loses the dump */ }
  },
}
