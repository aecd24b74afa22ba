import { writeOut } from './cli-output.js'
import { UsageError, type Command, type CommandContext } from './command.js'
import { isVersionString, type WatchEvent } from './replies.js'
import { WatchHistoryGoneError, type WatchReconnect } from './watch.js'

/** Text shown bare in the human form; anything else is printed as a JSON string. */
const BARE_TEXT = /^[\x21\x23-\x7e]*$/

/**
 * `hearsay watch --prefix P [--since V] [--json]`: one line per change until Ctrl-C (exit 0).
 * Reconnects are noted on stderr; a --since the nodes no longer keep exits 1 with what to do
 * (list, then watch from the oldest version they keep: docs/consistency.md "Retention and 410").
 */
export const WATCH_COMMAND: Command = {
  synopsis: '--prefix P [--since VERSION]',
  summary: 'print every change under a prefix as it happens (--json: one object per line), until Ctrl-C',
  minArgs: 0,
  maxArgs: 0,
  options: {
    prefix: { type: 'string', valueName: 'P', description: 'only keys starting with P' },
    since: { type: 'string', valueName: 'VERSION', description: 'start after this version (resume) instead of from now' },
  },
  async run(context) {
    const prefix = context.options['prefix']
    if (typeof prefix !== 'string') throw new UsageError('watch needs --prefix P (--prefix "" watches every key)')
    const since = context.options['since']
    if (since !== undefined && (typeof since !== 'string' || !isVersionString(since))) {
      throw new UsageError(`--since must be a version such as 0001733500000000000-0123456789abcdef (from a write, a scan or an earlier watch), got ${JSON.stringify(since)}`)
    }
    const notes = new ReconnectNotes()
    const stop = new AbortController()
    const unsubscribe = context.io.onInterrupt?.(() => stop.abort()) ?? (() => {})
    try {
      const changes = context.client().watch(prefix, {
        ...(since === undefined ? {} : { since }),
        signal: stop.signal,
        onReconnect: reconnect => { if (notes.due(reconnect)) void noteReconnect(context, reconnect) },
      })
      for await (const change of changes) await writeOut(context.io.stdout, context.json ? jsonLine(change) : humanLine(change))
      return 0
    } catch (err) {
      if (!(err instanceof WatchHistoryGoneError)) throw err
      await writeOut(context.io.stderr, `hearsay: ${err.node} no longer keeps changes that old (--since ${since ?? ''}; the oldest it can resume from is ${err.oldest}). ` +
        `Read the current state with \`hearsay scan --prefix ${JSON.stringify(prefix)}\`, then watch again with --since ${err.oldest}.\n`)
      return 1
    } finally {
      unsubscribe()
    }
  },
}

export function humanLine(change: WatchEvent): string {
  if (change.deleted || change.value === null) return `del key=${text(change.key)} version=${change.version}\n`
  return `put key=${text(change.key)} version=${change.version} value=${valueText(change.value)}\n`
}

export function jsonLine(change: WatchEvent): string {
  return JSON.stringify({ key: change.key, value: change.value === null ? null : change.value.toString('base64'), version: change.version, deleted: change.deleted }) + '\n'
}

function text(value: string): string {
  return BARE_TEXT.test(value) && value !== '' ? value : JSON.stringify(value)
}

/** UTF-8 text as text; other bytes as base64, marked so they cannot be mistaken for text. */
function valueText(value: Buffer): string {
  const decoded = value.toString('utf8')
  return Buffer.from(decoded, 'utf8').equals(value) ? text(decoded) : `base64:${value.toString('base64')}`
}

/** The same failure again is noted at most this often: a node that stays down is one line per interval, not one per retry. */
const REPEAT_NOTE_INTERVAL_MS = 10_000

/** Distinct failures remembered for that; a client has at most MAX_NODES nodes, so this is plenty. */
const MAX_REMEMBERED_NOTES = 256

class ReconnectNotes {
  /** `node reason` → when it was last noted. */
  readonly #notedAtMs = new Map<string, number>()

  due(reconnect: WatchReconnect): boolean {
    const key = `${reconnect.node} ${reconnect.reason}`
    const nowMs = Date.now()
    const last = this.#notedAtMs.get(key)
    if (last !== undefined && nowMs - last < REPEAT_NOTE_INTERVAL_MS) return false
    if (this.#notedAtMs.size >= MAX_REMEMBERED_NOTES) this.#notedAtMs.clear()
    this.#notedAtMs.set(key, nowMs)
    return true
  }
}

async function noteReconnect(context: CommandContext, reconnect: WatchReconnect): Promise<void> {
  const from = reconnect.since === undefined ? 'live' : `after version ${reconnect.since}`
  try {
    await writeOut(context.io.stderr, `hearsay: watch: ${reconnect.reason}; resuming ${from} on ${reconnect.next} in ${reconnect.delayMs} ms\n`)
  } catch {
    // stderr is gone; the watch goes on
  }
}
