import { readFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { HearsayClient, type ClientTlsOptions, type HearsayClientOptions } from './client.js'
import { OutputClosedError, writeOut } from './cli-output.js'
import { COMMANDS } from './commands.js'
import { runTlsCommand, TLS_COMMAND_SUMMARY, TLS_COMMAND_SYNOPSIS } from './tls-command.js'
import { parseTimeoutOption } from './duration-option.js'
import { ClientOptionsError, HearsayClientError } from './errors.js'
import { UsageError, type CliIo, type Command, type CommandContext, type OptionSpec } from './command.js'

export type { CliIo, Command, CommandContext, OptionSpec } from './command.js'

export const DEFAULT_NODE_URL = 'http://127.0.0.1:7070'
/** How many directories up from this file to look for the project's package.json. */
const MAX_PACKAGE_SEARCH_DEPTH = 5

const GLOBAL_OPTIONS: Readonly<Record<string, OptionSpec>> = {
  node: { type: 'string', valueName: 'URL[,URL…]', description: `nodes to ask, in order of preference (env HEARSAY_NODE; default ${DEFAULT_NODE_URL})` },
  token: { type: 'string', valueName: 'TOKEN', description: 'bearer token for the client API (env HEARSAY_TOKEN)' },
  ca: { type: 'string', valueName: 'FILE', description: 'CA certificate (PEM) that signed the nodes\' certificates, for https:// nodes (env HEARSAY_CA)' },
  cert: { type: 'string', valueName: 'FILE', description: 'client certificate (PEM) for nodes with tls.api mutual (env HEARSAY_CERT)' },
  key: { type: 'string', valueName: 'FILE', description: 'private key (PEM) of --cert (env HEARSAY_KEY)' },
  timeout: { type: 'string', valueName: 'TIME', description: 'give up on a node after this long, e.g. 5s or 500ms (a bare number is seconds; default 10s)' },
  json: { type: 'boolean', description: 'print the JSON reply (machine output)' },
  help: { type: 'boolean', description: 'show this help' },
  version: { type: 'boolean', description: 'show the version' },
}

/**
 * Runs `hearsay …` and resolves to the exit code: 0 success, 1 an error from a node or the
 * network, 2 wrong usage. Never throws and never exits the process.
 */
export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  // `hearsay tls …` takes repeatable options and talks to no node: it parses its own arguments.
  if (argv[0] === 'tls') return await runTlsCommand(argv.slice(1), io)
  let client: HearsayClient | undefined
  try {
    const parsed = parseCommandLine(argv)
    if (parsed.values['help'] === true) {
      await writeOut(io.stdout, helpText())
      return 0
    }
    if (parsed.values['version'] === true) {
      await writeOut(io.stdout, `hearsay ${packageVersion()}\n`)
      return 0
    }
    const [name, ...args] = parsed.positionals
    if (name === undefined) throw new UsageError('no command given')
    const command = COMMANDS[name]
    if (!Object.hasOwn(COMMANDS, name) || command === undefined) throw new UsageError(`unknown command ${JSON.stringify(name)}`)
    checkCommandLine(name, command, args, parsed.values)

    const timeoutText = parsed.values['timeout']
    const timeoutMs = typeof timeoutText === 'string' ? parseTimeoutOption(timeoutText) : undefined
    let clientOptions: HearsayClientOptions | undefined
    const options = (): HearsayClientOptions => clientOptions ??= {
      nodes: nodeUrls(parsed.values['node'], io.env),
      token: stringOr(parsed.values['token'], io.env['HEARSAY_TOKEN']),
      timeoutMs,
      tls: tlsFiles(parsed.values, io.env),
    }
    const context: CommandContext = {
      args,
      options: parsed.values,
      json: parsed.values['json'] === true,
      io,
      clientOptions: options,
      client: () => client ??= new HearsayClient(options()),
    }
    return await command.run(context)
  } catch (err) {
    return report(err, io)
  } finally {
    client?.close()
  }
}

interface ParsedCommandLine {
  readonly values: Readonly<Record<string, string | boolean | undefined>>
  readonly positionals: readonly string[]
}

function parseCommandLine(argv: readonly string[]): ParsedCommandLine {
  try {
    const { values, positionals } = parseArgs({ args: [...argv], options: allOptions(), allowPositionals: true, strict: true })
    return { values: values as Record<string, string | boolean | undefined>, positionals }
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err)
    const ambiguous = /^Option '(?:-\w, )?(--[\w-]+)[^']*' argument is ambiguous/.exec(message)
    if (ambiguous !== null) throw new UsageError(`the value of ${ambiguous[1]} starts with "-": write ${ambiguous[1]}=VALUE`)
    // parseArgs explains at length; its first sentence is the part that helps.
    const first = message.split(/\.\s|\n/)[0] ?? message
    throw new UsageError(first.charAt(0).toLowerCase() + first.slice(1))
  }
}

/** Global options plus every command's own; an option is then checked against its command. */
function allOptions(): Record<string, { type: 'string' | 'boolean' }> {
  const options: Record<string, { type: 'string' | 'boolean' }> = {}
  const specs = [GLOBAL_OPTIONS, ...Object.values(COMMANDS).map(command => command.options ?? {})]
  for (const [name, spec] of specs.flatMap(table => Object.entries(table))) {
    const known = options[name]
    if (known !== undefined && known.type !== spec.type) throw new Error(`option --${name} is declared with two types`)
    options[name] = { type: spec.type }
  }
  return options
}

function checkCommandLine(name: string, command: Command, args: readonly string[], values: ParsedCommandLine['values']): void {
  for (const option of Object.keys(values)) {
    if (values[option] === undefined || Object.hasOwn(GLOBAL_OPTIONS, option)) continue
    if (command.options === undefined || !Object.hasOwn(command.options, option)) {
      throw new UsageError(`option --${option} does not apply to ${name}`)
    }
  }
  const synopsis = `hearsay ${name}${command.synopsis === '' ? '' : ` ${command.synopsis}`}`
  if (args.length < command.minArgs) throw new UsageError(`missing argument: ${synopsis}`)
  if (args.length > command.maxArgs) throw new UsageError(`too many arguments: ${synopsis}`)
}

function nodeUrls(option: string | boolean | undefined, env: CliIo['env']): string[] {
  const list = stringOr(option, env['HEARSAY_NODE']) ?? DEFAULT_NODE_URL
  return list.split(',').map(url => url.trim()).filter(url => url !== '')
}

/** --ca, --cert, --key (or HEARSAY_CA, HEARSAY_CERT, HEARSAY_KEY) read into PEM bytes. */
function tlsFiles(values: ParsedCommandLine['values'], env: CliIo['env']): ClientTlsOptions | undefined {
  const ca = stringOr(values['ca'], env['HEARSAY_CA'])
  const cert = stringOr(values['cert'], env['HEARSAY_CERT'])
  const key = stringOr(values['key'], env['HEARSAY_KEY'])
  if ((cert === undefined) !== (key === undefined)) {
    throw new UsageError(cert === undefined ? '--key needs --cert (or HEARSAY_CERT): the certificate the key belongs to' : '--cert needs --key (or HEARSAY_KEY): the private key of that certificate')
  }
  if (ca === undefined && cert === undefined) return undefined
  return {
    ...(ca === undefined ? {} : { ca: readPemFile(ca, 'ca', 'the CA certificate that signed the nodes\' certificates (ca.pem from hearsay tls ca create)') }),
    ...(cert === undefined ? {} : { cert: readPemFile(cert, 'cert', 'this client\'s certificate (from hearsay tls cert create --client)') }),
    ...(key === undefined ? {} : { key: readPemFile(key, 'key', 'the private key of --cert') }),
  }
}

/** PEM files are small; anything larger is the wrong file. */
const MAX_PEM_FILE_BYTES = 1024 * 1024

function readPemFile(path: string, option: string, what: string): Buffer {
  let bytes: Buffer
  try {
    bytes = readFileSync(path)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : code === 'EISDIR' ? 'it is a directory' : (err as Error).message
    throw new UsageError(`--${option} ${path}: cannot read it (${why}); pass ${what}`)
  }
  const label = option === 'key' ? /-----BEGIN [A-Z ]*PRIVATE KEY-----/ : /-----BEGIN CERTIFICATE-----/
  if (bytes.byteLength > MAX_PEM_FILE_BYTES || !label.test(bytes.toString('latin1'))) {
    throw new UsageError(`--${option} ${path} is not a PEM ${option === 'key' ? 'private key' : 'certificate'}; pass ${what}`)
  }
  return bytes
}

/** The option's value, else the environment's when set and non-empty. */
function stringOr(option: string | boolean | undefined, fallback: string | undefined): string | undefined {
  if (typeof option === 'string') return option
  return fallback === undefined || fallback === '' ? undefined : fallback
}

async function report(err: unknown, io: CliIo): Promise<number> {
  if (err instanceof OutputClosedError) return 0
  let line: string
  let code = 1
  if (err instanceof UsageError || err instanceof ClientOptionsError) {
    line = `${err.message} (see hearsay --help)`
    code = 2
  } else if (err instanceof HearsayClientError) {
    line = `${err.message} (HTTP ${err.status} from ${err.node})`
  } else {
    line = err instanceof Error ? err.message : String(err)
  }
  try {
    await writeOut(io.stderr, `hearsay: ${line.replace(/\s*\n\s*/g, ' ')}\n`)
  } catch {
    // stderr is gone too; the exit code still tells
  }
  return code
}

function helpText(): string {
  const optionLine = (name: string, spec: OptionSpec): [string, string] =>
    [`--${name}${spec.valueName === undefined ? '' : ` ${spec.valueName}`}`, spec.description]
  const commandRows = Object.entries(COMMANDS).map(([name, command]): [string, string] =>
    [`${name}${command.synopsis === '' ? '' : ` ${command.synopsis}`}`, command.summary])
  commandRows.push([TLS_COMMAND_SYNOPSIS, TLS_COMMAND_SUMMARY])
  const commandOptions = new Map<string, { spec: OptionSpec; commands: string[] }>()
  for (const [name, command] of Object.entries(COMMANDS)) {
    for (const [option, spec] of Object.entries(command.options ?? {})) {
      const entry = commandOptions.get(option) ?? { spec, commands: [] }
      entry.commands.push(name)
      commandOptions.set(option, entry)
    }
  }
  const commandOptionRows = [...commandOptions].map(([option, { spec, commands }]): [string, string] => {
    const [flag, description] = optionLine(option, spec)
    return [flag, `${description} (${commands.join(', ')})`]
  })
  const section = (title: string, rows: readonly [string, string][]): string => {
    const width = Math.max(...rows.map(([left]) => left.length))
    return `${title}:\n${rows.map(([left, right]) => `  ${left.padEnd(width)}  ${right}`).join('\n')}\n`
  }
  return [
    'Usage: hearsay [options] <command> [arguments]\n',
    section('Commands', commandRows),
    section('Options', Object.entries(GLOBAL_OPTIONS).map(([name, spec]) => optionLine(name, spec))),
    section('Command options', commandOptionRows),
    'Exit status: 0 success, 1 error from a node or the network, 2 wrong usage.\n',
  ].join('\n')
}

/**
 * The version in package.json. Searched upwards because this file runs from lib/client in
 * development and from dist/lib/client when built.
 */
function packageVersion(): string {
  let directory = new URL('./', import.meta.url)
  for (let depth = 0; depth < MAX_PACKAGE_SEARCH_DEPTH; depth++) {
    try {
      const manifest = JSON.parse(readFileSync(new URL('package.json', directory), 'utf8')) as { name?: unknown; version?: unknown }
      if (manifest.name === 'hearsay' && typeof manifest.version === 'string') return manifest.version
    } catch {
      // no readable package.json here; look one level up
    }
    directory = new URL('../', directory)
  }
  return 'unknown'
}
