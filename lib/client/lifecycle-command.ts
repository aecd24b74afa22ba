import { HearsayClient, DEFAULT_TIMEOUT_MS } from './client.js'
import { writeOut } from './cli-output.js'
import { UsageError, type Command, type CommandContext, type OptionSpec } from './command.js'
import { MAX_TIMEOUT_OPTION_MS } from './duration-option.js'

/**
 * `hearsay members remove NODE` and `hearsay decommission`: start the operation, then (unless
 * --no-wait) poll its progress, print a line whenever it changes, and exit 0 once it is done —
 * or 1 when --timeout (the whole wait; default 10 minutes) runs out first. The operation goes on
 * in the cluster either way: the CLI only stops watching.
 */

/** How often the progress is asked for while waiting. */
const POLL_INTERVAL_MS = 1000

const NO_WAIT_OPTION: OptionSpec = { type: 'boolean', description: 'start it and return at once instead of waiting and printing progress (--timeout bounds the wait)' }

interface Waiting {
  /** Polls progress; its requests get at most the default request deadline each. */
  readonly client: HearsayClient
  readonly deadlineMs: number
  readonly timeoutMs: number
}

/** The wait's bound (--timeout, default the longest it takes) and a client whose requests fit in it. */
function waiting(context: CommandContext): Waiting {
  const timeoutMs = context.clientOptions().timeoutMs ?? MAX_TIMEOUT_OPTION_MS
  const client = new HearsayClient({ ...context.clientOptions(), timeoutMs: Math.min(timeoutMs, DEFAULT_TIMEOUT_MS) })
  return { client, deadlineMs: Date.now() + timeoutMs, timeoutMs }
}

/**
 * Polls `check` until it says done; prints each new progress line (human form) on stdout.
 * Resolves with the last answer, or undefined when the deadline passed first.
 */
async function pollUntilDone<T>(context: CommandContext, wait: Waiting, check: () => Promise<{ readonly line: string; readonly done: boolean; readonly value: T }>): Promise<T | undefined> {
  let lastLine = ''
  for (;;) {
    const { line, done, value } = await check()
    if (!context.json && line !== lastLine) await writeOut(context.io.stdout, `${line}\n`)
    lastLine = line
    if (done) return value
    if (Date.now() + POLL_INTERVAL_MS > wait.deadlineMs) return undefined
    await new Promise((resolve) => setTimeout(resolve, POLL_INTERVAL_MS))
  }
}

/** `1200 keys (3.4 MB) moved`; bytes are keys and values, as the anti-entropy sessions sent them. */
function moved(progress: { readonly keysMoved: number; readonly bytesMoved?: number }): string {
  const bytes = progress.bytesMoved ?? 0
  const size = bytes < 1000 ? `${bytes} B` : bytes < 1e6 ? `${(bytes / 1e3).toFixed(1)} kB` : bytes < 1e9 ? `${(bytes / 1e6).toFixed(1)} MB` : `${(bytes / 1e9).toFixed(1)} GB`
  return `${progress.keysMoved} keys (${size}) moved`
}

function formatDuration(ms: number): string {
  return ms % 60_000 === 0 ? `${ms / 60_000}m` : ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`
}

interface RemovalProgress {
  readonly id: string
  readonly name: string
  readonly byName: string
  readonly underReplicatedPartitions: number
  readonly gainedPartitions: number
  readonly keysMoved: number
  readonly bytesMoved: number
  readonly unanswered: readonly string[]
  readonly complete: boolean
}

function removalOf(status: Record<string, unknown>, id: string): RemovalProgress | undefined {
  const removed = Array.isArray(status['removed']) ? status['removed'] as RemovalProgress[] : []
  return removed.find((r) => typeof r === 'object' && r !== null && r.id === id)
}

export async function runMembersRemove(context: CommandContext, target: string): Promise<number> {
  const reply = await context.client().removeMember(target)
  const removal = reply['removal'] as { id: string; name: string; byName: string } | undefined
  if (removal === undefined || typeof removal.id !== 'string') throw new Error('the node answered the removal without its record')
  const who = `${removal.name} (${removal.id})`
  if (context.options['no-wait'] === true) {
    await writeOut(context.io.stdout, context.json ? JSON.stringify(reply) + '\n'
      : `${reply['alreadyRemoved'] === true ? 'already removed' : 'removed'} ${who}; re-replication of its partitions goes on (hearsay members remove ${target} shows the progress)\n`)
    return 0
  }
  if (!context.json) await writeOut(context.io.stdout, `${reply['alreadyRemoved'] === true ? 'already removed' : 'removed'} ${who} for good; re-replicating its partitions from the live replicas\n`)
  const wait = waiting(context)
  try {
    const last = await pollUntilDone(context, wait, async () => {
      const progress = removalOf(await wait.client.lifecycle(), removal.id)
      if (progress === undefined) return { line: `waiting for the removal of ${who} to reach the node asked`, done: false, value: undefined }
      const unanswered = progress.unanswered.length === 0 ? '' : `; no answer yet from ${progress.unanswered.join(', ')}`
      return {
        line: `${progress.underReplicatedPartitions} of ${progress.gainedPartitions} re-placed partitions still to copy, ${moved(progress)}${unanswered}`,
        done: progress.complete,
        value: progress,
      }
    })
    if (last === undefined) {
      await writeOut(context.io.stderr, `hearsay: gave up waiting after ${formatDuration(wait.timeoutMs)}: the removal of ${who} stands and its re-replication goes on; hearsay members remove ${target} shows the progress again\n`)
      return 1
    }
    await writeOut(context.io.stdout, context.json ? JSON.stringify(last) + '\n' : `done: every partition ${who} held is re-replicated (${moved(last)})\n`)
    return 0
  } finally {
    wait.client.close()
  }
}

interface DecommissionProgress {
  readonly phase: string
  readonly transfers: number
  readonly confirmed: number
  readonly partitionsPending: number
  readonly keysMoved: number
  readonly bytesMoved: number
  readonly waitingFor: readonly string[]
  readonly lastError?: string
}

export const DECOMMISSION_COMMAND: Command = {
  synopsis: '',
  summary: 'retire the first --node: stream its partitions to their new owners, wait until each confirms (Merkle roots equal), then leave; refused below N live members',
  minArgs: 0,
  maxArgs: 0,
  options: { 'no-wait': NO_WAIT_OPTION },
  async run(context) {
    const nodes = context.clientOptions().nodes
    if (nodes.length !== 1) throw new UsageError('decommission retires one node: give exactly one --node URL, the node to retire')
    const started = await context.client().decommission() as unknown as DecommissionProgress
    if (context.options['no-wait'] === true) {
      await writeOut(context.io.stdout, context.json ? JSON.stringify(started) + '\n' : `decommissioning ${nodes[0]}: ${started.phase}; hearsay --node ${nodes[0]} status shows the progress\n`)
      return 0
    }
    const wait = waiting(context)
    try {
      const last = await pollUntilDone(context, wait, async () => {
        const status = await wait.client.lifecycle({ firstNode: true })
        const progress = status['decommission'] as DecommissionProgress | null
        if (progress === null || typeof progress !== 'object') throw new Error(`${nodes[0]} reports no decommission; it may have restarted (a restart cancels one): run hearsay decommission again`)
        if (progress.phase === 'stopped') throw new Error(`the decommission of ${nodes[0]} stopped${progress.lastError === undefined ? '' : ` (${progress.lastError})`}; run hearsay decommission again`)
        const waitingFor = progress.waitingFor.length === 0 ? '' : `; waiting for ${progress.waitingFor.join(', ')} to be alive`
        return {
          line: `${progress.phase}: ${progress.confirmed} of ${progress.transfers} partition copies confirmed by their new owners, ${moved(progress)}${waitingFor}`,
          done: progress.phase === 'left',
          value: progress,
        }
      })
      if (last === undefined) {
        await writeOut(context.io.stderr, `hearsay: gave up waiting after ${formatDuration(wait.timeoutMs)}: the decommission of ${nodes[0]} goes on; hearsay --node ${nodes[0]} status shows it\n`)
        return 1
      }
      await writeOut(context.io.stdout, context.json ? JSON.stringify(last) + '\n' : `decommissioned ${nodes[0]}: its new owners hold every partition and it has left the cluster; stop its daemon now\n`)
      return 0
    } finally {
      wait.client.close()
    }
  },
}

export const MEMBERS_REMOVE_OPTIONS: Readonly<Record<string, OptionSpec>> = { 'no-wait': NO_WAIT_OPTION }
