import { BENCH_OPTIONS } from '../bench/args.js'
import { runBenchCommand } from '../bench/command.js'
import { BadRequestError } from '../errors.js'
import { parseConsistencyLevel, type ConsistencyLevel } from '../replication/consistency.js'
import { verifySnapshotFile } from '../store/snapshot.js'
import { formatKeyValues, formatTable, writeOut } from './cli-output.js'
import { parsePositiveInteger, UsageError, type Command, type CommandContext, type OptionSpec } from './command.js'
import { WATCH_COMMAND } from './watch-command.js'
import { DECOMMISSION_COMMAND, MEMBERS_REMOVE_OPTIONS, runMembersRemove } from './lifecycle-command.js'

/** `put KEY -` buffers stdin; a value this large is refused by any node anyway. */
export const MAX_STDIN_BYTES = 64 * 1024 * 1024
/** Page size asked for by `scan --limit`; below any node's maxScanLimit. */
const SCAN_PAGE_SIZE = 100

const W_OPTION: OptionSpec = { type: 'string', valueName: 'LEVEL', description: 'write level: one, quorum, all or a number' }
const R_OPTION: OptionSpec = { type: 'string', valueName: 'LEVEL', description: 'read level: one, quorum, all or a number' }
const TTL_OPTION: OptionSpec = { type: 'string', valueName: 'SECONDS', description: 'expire the value after this many seconds' }
const PREFIX_OPTION: OptionSpec = { type: 'string', valueName: 'P', description: 'only keys starting with P' }
const LIMIT_OPTION: OptionSpec = { type: 'string', valueName: 'N', description: 'print at most N items' }

/** The command table: `hearsay <name>` runs COMMANDS[name]. */
export const COMMANDS: Readonly<Record<string, Command>> = {
  put: {
    synopsis: 'KEY VALUE|-',
    summary: 'store VALUE under KEY (- reads the value bytes from stdin)',
    minArgs: 2,
    maxArgs: 2,
    options: { w: W_OPTION, ttl: TTL_OPTION },
    async run(context) {
      const key = keyArgument(context)
      const text = context.args[1] as string
      const value = text === '-' ? await readStdin(context) : Buffer.from(text, 'utf8')
      const reply = await context.client().put(key, value, {
        w: levelOption(context, 'w'),
        ttlSeconds: integerOption(context, 'ttl'),
      })
      await writeOut(context.io.stdout, context.json
        ? JSON.stringify(reply) + '\n'
        : `stored ${JSON.stringify(key)} at version ${reply.version} (${reply.acks} acks, ${reply.w} needed)\n`)
      return 0
    },
  },

  get: {
    synopsis: 'KEY',
    summary: 'print the value of KEY (raw bytes)',
    minArgs: 1,
    maxArgs: 1,
    options: { r: R_OPTION, linearizable: { type: 'boolean', description: 'a read that sees every change completed before it (not with --r)' } },
    async run(context) {
      const key = keyArgument(context)
      const linearizable = context.options['linearizable'] === true
      if (linearizable && context.options['r'] !== undefined) throw new UsageError('give either --r or --linearizable, not both')
      const reply = await context.client().get(key, linearizable ? { consistency: 'linearizable' } : { r: levelOption(context, 'r') })
      if (reply === undefined) {
        await writeOut(context.io.stderr, `hearsay: key ${JSON.stringify(key)} not found\n`)
        return 1
      }
      if (context.json) {
        await writeOut(context.io.stdout, JSON.stringify({ key, value: reply.value.toString('base64'), version: reply.version }) + '\n')
      } else {
        await writeOut(context.io.stdout, reply.value)
        // A terminal prompt would otherwise glue onto the value; pipes get the exact bytes.
        if (context.io.stdout.isTTY === true) await writeOut(context.io.stdout, '\n')
      }
      return 0
    },
  },

  cas: {
    synopsis: 'KEY VALUE|- --if-version V|absent',
    summary: 'store VALUE under KEY only if KEY is at version V (absent: does not exist); linearizable',
    minArgs: 2,
    maxArgs: 2,
    options: { 'if-version': { type: 'string', valueName: 'V', description: 'the version KEY must be at, or absent' } },
    async run(context) {
      const key = keyArgument(context)
      const ifVersion = context.options['if-version']
      if (typeof ifVersion !== 'string' || ifVersion === '') throw new UsageError('cas needs --if-version V (a version as hearsay prints it) or --if-version absent')
      const text = context.args[1] as string
      const value = text === '-' ? await readStdin(context) : Buffer.from(text, 'utf8')
      const reply = await context.client().cas(key, value, { ifVersion })
      await writeOut(context.io.stdout, context.json
        ? JSON.stringify(reply) + '\n'
        : `stored ${JSON.stringify(key)} at version ${reply.version}\n`)
      return 0
    },
  },

  incr: {
    synopsis: 'KEY',
    summary: 'add --by N (default 1) to the decimal integer under KEY (absent counts as 0) and print the new value; linearizable',
    minArgs: 1,
    maxArgs: 1,
    options: { by: { type: 'string', valueName: 'N', description: 'the amount to add: an integer, negative to subtract' } },
    async run(context) {
      const key = keyArgument(context)
      const text = context.options['by']
      let by: number | undefined
      if (typeof text === 'string') {
        by = /^-?[0-9]{1,16}$/.test(text) ? Number(text) : Number.NaN
        if (!Number.isSafeInteger(by)) throw new UsageError(`--by must be an integer from -${Number.MAX_SAFE_INTEGER} to ${Number.MAX_SAFE_INTEGER}, got ${JSON.stringify(text)}`)
      }
      const reply = await context.client().incr(key, by === undefined ? {} : { by })
      await writeOut(context.io.stdout, context.json ? JSON.stringify(reply) + '\n' : `${reply.value}\n`)
      return 0
    },
  },

  del: {
    synopsis: 'KEY',
    summary: 'delete KEY (writes a tombstone; succeeds for an absent key)',
    minArgs: 1,
    maxArgs: 1,
    options: { w: W_OPTION, 'if-version': { type: 'string', valueName: 'V', description: 'delete only if KEY is at version V; linearizable (not with --w)' } },
    async run(context) {
      const key = keyArgument(context)
      const ifVersion = context.options['if-version']
      if (typeof ifVersion === 'string') {
        if (context.options['w'] !== undefined) throw new UsageError('give either --w or --if-version, not both')
        const cas = await context.client().cas(key, null, { ifVersion })
        await writeOut(context.io.stdout, context.json ? JSON.stringify(cas) + '\n' : `deleted ${JSON.stringify(key)} at version ${cas.version}\n`)
        return 0
      }
      const reply = await context.client().delete(key, { w: levelOption(context, 'w') })
      await writeOut(context.io.stdout, context.json
        ? JSON.stringify(reply) + '\n'
        : `deleted ${JSON.stringify(key)} at version ${reply.version} (${reply.acks} acks, ${reply.w} needed)\n`)
      return 0
    },
  },

  scan: {
    synopsis: '',
    summary: 'print one KEY<TAB>VALUE line per key (--json: one JSON object per line), following pages',
    minArgs: 0,
    maxArgs: 0,
    options: { prefix: PREFIX_OPTION, limit: LIMIT_OPTION },
    async run(context) {
      const limit = integerOption(context, 'limit')
      const prefix = context.options['prefix'] as string | undefined
      const items = context.client().scanAll({ prefix, pageSize: limit === undefined ? undefined : Math.min(limit, SCAN_PAGE_SIZE) })
      let printed = 0
      for await (const item of items) {
        if (limit !== undefined && printed >= limit) break
        const line = context.json
          ? Buffer.from(JSON.stringify({ key: item.key, value: item.value.toString('base64'), version: item.version }) + '\n')
          : Buffer.concat([Buffer.from(`${item.key}\t`), item.value, Buffer.from('\n')])
        await writeOut(context.io.stdout, line)
        printed++
      }
      return 0
    },
  },

  watch: WATCH_COMMAND,

  members: {
    synopsis: '[remove NODE]',
    summary: 'list the cluster members as this node sees them; remove NODE: take a dead member (id or name) out for good and re-replicate its partitions',
    minArgs: 0,
    maxArgs: 2,
    options: MEMBERS_REMOVE_OPTIONS,
    async run(context) {
      if (context.args.length > 0) {
        const [action, target] = context.args
        if (action !== 'remove') throw new UsageError(`members takes no argument or remove NODE, got ${JSON.stringify(action)}`)
        if (target === undefined || target === '') throw new UsageError('missing argument: hearsay members remove NODE (a member id or name)')
        return await runMembersRemove(context, target)
      }
      if (context.options['no-wait'] !== undefined) throw new UsageError('--no-wait applies to members remove only')
      const members = await context.client().members()
      await writeOut(context.io.stdout, context.json
        ? JSON.stringify(members) + '\n'
        : formatTable(
          ['ID', 'NAME', 'PEER', 'API', 'STATE', 'INCARNATION'],
          members.map(m => [m.id, m.name, m.peer, m.api, m.state, String(m.incarnation)]),
        ))
      return 0
    },
  },

  status: {
    synopsis: '',
    summary: "show the node's status",
    minArgs: 0,
    maxArgs: 0,
    async run(context) {
      const status = await context.client().status()
      await writeOut(context.io.stdout, context.json ? JSON.stringify(status) + '\n' : formatKeyValues(status))
      return 0
    },
  },

  sync: {
    synopsis: '',
    summary: 'run an anti-entropy round on the node now and show its summary',
    minArgs: 0,
    maxArgs: 0,
    async run(context) {
      const summary = await context.client().sync()
      await writeOut(context.io.stdout, context.json ? JSON.stringify(summary) + '\n' : formatKeyValues(summary))
      return 0
    },
  },

  decommission: DECOMMISSION_COMMAND,

  snapshot: {
    synopsis: 'save FILE | verify FILE',
    summary: "save: stream a consistent copy of the node's store into FILE (the first --node); verify: check FILE's checksum and show its header",
    minArgs: 2,
    maxArgs: 2,
    async run(context) {
      const [action, file] = context.args as [string, string]
      if (action !== 'save' && action !== 'verify') throw new UsageError(`snapshot takes save or verify, got ${JSON.stringify(action)}`)
      const header = action === 'save' ? await context.client().saveSnapshot(file) : await verifySnapshotFile(file)
      await writeOut(context.io.stdout, context.json
        ? JSON.stringify(header) + '\n'
        : `${action === 'save' ? 'saved' : 'verified'} ${file}: node ${header.nodeName} (${header.nodeId}), ${header.records['kv'] ?? 0} records, ${header.partitions} partitions, hearsay ${header.hearsayVersion}, taken ${new Date(header.createdAtMs).toISOString()}, ${header.dataBytes} bytes of data\n`)
      return 0
    },
  },

  bench: {
    synopsis: '',
    summary: 'closed-loop load over every --node with a latency table; --sweep w=1,2,3 compares write levels',
    minArgs: 0,
    maxArgs: 0,
    options: { ...BENCH_OPTIONS, w: W_OPTION, r: R_OPTION },
    run: runBenchCommand,
  },
}

function keyArgument(context: CommandContext): string {
  const key = context.args[0] as string
  if (key === '') throw new UsageError('KEY must not be empty')
  return key
}

function levelOption(context: CommandContext, name: 'w' | 'r'): ConsistencyLevel | undefined {
  const text = context.options[name]
  if (typeof text !== 'string') return undefined
  try {
    return parseConsistencyLevel(text, name)
  } catch (err) {
    if (err instanceof BadRequestError) throw new UsageError(`--${err.message}`)
    throw err
  }
}

function integerOption(context: CommandContext, name: string): number | undefined {
  const text = context.options[name]
  return typeof text === 'string' ? parsePositiveInteger(text, name) : undefined
}

async function readStdin(context: CommandContext): Promise<Buffer> {
  const chunks: Buffer[] = []
  let totalBytes = 0
  for await (const chunk of context.io.stdin) {
    const bytes = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk as Buffer
    totalBytes += bytes.byteLength
    if (totalBytes > MAX_STDIN_BYTES) throw new StdinTooLargeError()
    chunks.push(bytes)
  }
  return Buffer.concat(chunks, totalBytes)
}

class StdinTooLargeError extends Error {
  constructor() {
    super(`stdin holds more than ${MAX_STDIN_BYTES} bytes, more than any hearsay value may be`)
    this.name = 'StdinTooLargeError'
  }
}
