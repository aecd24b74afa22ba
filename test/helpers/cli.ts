import { Readable, Writable } from 'node:stream'
import { runCli } from '../../lib/client/cli.js'

export interface CliRunOptions {
  readonly stdin?: Readable
  readonly env?: Record<string, string | undefined>
  readonly tty?: boolean
}

/** The CLI run in-process with its output captured; stdout as bytes (a get may print binary). */
export async function runCliBytes(argv: readonly string[], options: CliRunOptions = {}): Promise<{ code: number; stdout: Buffer; stderr: string }> {
  const out: Buffer[] = []
  const err: Buffer[] = []
  const collect = (into: Buffer[]): Writable => new Writable({
    write(chunk: Buffer, _encoding, done) { into.push(Buffer.from(chunk)); done() },
  })
  const stdout = Object.assign(collect(out), { isTTY: options.tty ?? false })
  const code = await runCli(argv, {
    stdin: options.stdin ?? Readable.from([]),
    stdout,
    stderr: collect(err),
    env: options.env ?? {},
  })
  return { code, stdout: Buffer.concat(out), stderr: Buffer.concat(err).toString('utf8') }
}

/** runCliBytes with stdout as UTF-8 text. */
export async function runCliText(argv: readonly string[], options: CliRunOptions = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  const result = await runCliBytes(argv, options)
  return { ...result, stdout: result.stdout.toString('utf8') }
}
