import type { Readable, Writable } from 'node:stream'
import type { HearsayClient, HearsayClientOptions } from './client.js'

/** Everything the CLI touches of the process, so tests run it in-process. */
export interface CliIo {
  readonly stdin: Readable
  readonly stdout: Writable & { readonly isTTY?: boolean }
  readonly stderr: Writable
  readonly env: Readonly<Record<string, string | undefined>>
  /**
   * Calls `listener` on Ctrl-C (SIGINT) until the returned function is called. Only commands that
   * run until interrupted (watch) listen; elsewhere Ctrl-C keeps its usual effect.
   */
  readonly onInterrupt?: (listener: () => void) => () => void
}

/** A command-line option, declared once and shared by the commands that take it. */
export interface OptionSpec {
  readonly type: 'string' | 'boolean'
  /** Placeholder shown in help, e.g. `MS`. */
  readonly valueName?: string
  readonly description: string
}

export interface CommandContext {
  /** Positional arguments after the command name. */
  readonly args: readonly string[]
  /** Parsed option values by name; only options the command declares (or global ones) are set. */
  readonly options: Readonly<Record<string, string | boolean | undefined>>
  /** `--json`: print the JSON reply instead of the human form. */
  readonly json: boolean
  readonly io: CliIo
  /** The client for --node/--token/--timeout/--ca/--cert/--key, created on first use and closed after the command. */
  client(): HearsayClient
  /** What client() is built from (files read, URLs not yet checked), for commands that open clients of their own. */
  clientOptions(): HearsayClientOptions
}

/**
 * One `hearsay <name>` command. New commands (bench) are added to the table in commands.ts
 * with their own options; parsing, help and error reporting come from cli.ts.
 */
export interface Command {
  /** Argument synopsis after the command name, e.g. `KEY VALUE|-`. */
  readonly synopsis: string
  readonly summary: string
  readonly minArgs: number
  readonly maxArgs: number
  readonly options?: Readonly<Record<string, OptionSpec>>
  /** Exit code: 0 success, 1 failure (errors thrown are reported by the CLI). */
  run(context: CommandContext): Promise<number>
}

/** Wrong use of the command line: reported with a pointer to --help, exit code 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'UsageError'
  }
}

/** Parses the value of `--name` as a whole number above zero. */
export function parsePositiveInteger(text: string, name: string): number {
  const value = Number(text)
  if (!/^[0-9]+$/.test(text) || !Number.isSafeInteger(value) || value <= 0) {
    throw new UsageError(`--${name} must be a positive whole number, got ${JSON.stringify(text)}`)
  }
  return value
}
