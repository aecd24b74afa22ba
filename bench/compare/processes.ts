import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

/** A server that ignores SIGTERM this long is killed. */
const STOP_TIMEOUT_MS = 15_000
/** Only the tail of a server's output is kept, for error messages. */
const MAX_OUTPUT_CHARS = 16 * 1024
/** Lines of that tail quoted when a server dies: enough for its last complaint. */
const DEATH_OUTPUT_LINES = 8

export interface ExitInfo {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
}

export interface ServerProcess {
  /** Human name shown in the table, e.g. `etcd-2`. */
  readonly name: string
  readonly pid: number
  /** The last few KiB the process printed (stdout and stderr). */
  output(): string
  /** Why the process is no longer running, or undefined while it runs. */
  death(): string | undefined
}

interface Tracked extends ServerProcess {
  readonly child: ChildProcess
  readonly exited: Promise<ExitInfo>
}

/**
 * Every process and temp dir the harness creates, so that each exit path (normal end, error,
 * Ctrl-C, SIGTERM) can stop and remove all of them and nothing else.
 */
export class ProcessGroup {
  readonly #processes = new Set<Tracked>()
  readonly #dirs = new Set<string>()

  tempDir(prefix: string): string {
    const dir = mkdtempSync(join(tmpdir(), prefix))
    this.#dirs.add(dir)
    return dir
  }

  start(name: string, command: string, args: readonly string[]): ServerProcess {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] })
    let output = ''
    let failure: string | undefined
    const keep = (chunk: string): void => { output = (output + chunk).slice(-MAX_OUTPUT_CHARS) }
    child.stdout?.setEncoding('utf8').on('data', keep)
    child.stderr?.setEncoding('utf8').on('data', keep)
    const exited = new Promise<ExitInfo>(resolve => {
      child.on('error', error => {
        failure = `could not start ${command}: ${error.message}`
        resolve({ code: null, signal: null })
      })
      child.on('exit', (code, signal) => {
        failure ??= `exited (code ${code}, signal ${signal})`
        resolve({ code, signal })
      })
    })
    if (child.pid === undefined) {
      // spawn reports ENOENT asynchronously; the pid is missing exactly in that case.
      throw new Error(`could not start ${command} for ${name}: is it installed and on PATH?`)
    }
    const tracked: Tracked = {
      name,
      pid: child.pid,
      child,
      exited,
      output: () => output,
      death: () => failure === undefined ? undefined : `${name} ${failure}\n${lastLines(output, DEATH_OUTPUT_LINES)}`,
    }
    this.#processes.add(tracked)
    return tracked
  }

  /** Stops every running process (SIGTERM, then SIGKILL after a bound) and removes the temp dirs. */
  async stopAll(): Promise<void> {
    const stopping = [...this.#processes].map(async tracked => {
      if (tracked.death() === undefined) tracked.child.kill('SIGTERM')
      const timer = setTimeout(() => tracked.child.kill('SIGKILL'), STOP_TIMEOUT_MS)
      try {
        await tracked.exited
      } finally {
        clearTimeout(timer)
        this.#processes.delete(tracked)
      }
    })
    await Promise.all(stopping)
    this.#removeDirs()
  }

  /** For process 'exit', where nothing asynchronous runs any more. */
  killAllNow(): void {
    for (const tracked of this.#processes) {
      if (tracked.death() === undefined) tracked.child.kill('SIGKILL')
    }
    this.#processes.clear()
    this.#removeDirs()
  }

  #removeDirs(): void {
    for (const dir of this.#dirs) rmSync(dir, { recursive: true, force: true })
    this.#dirs.clear()
  }
}

/**
 * Makes Ctrl-C, SIGTERM and any exit stop what `group` started. A second signal while stopping
 * kills at once.
 */
export function stopOnExit(group: ProcessGroup, log: (line: string) => void): void {
  let stopping = false
  const onSignal = (signal: NodeJS.Signals): void => {
    if (stopping) {
      group.killAllNow()
      process.exit(130)
    }
    stopping = true
    log(`${signal}: stopping the servers this run started`)
    group.stopAll().finally(() => process.exit(130))
  }
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)
  process.on('exit', () => group.killAllNow())
}

function lastLines(text: string, count: number): string {
  return text.trimEnd().split('\n').slice(-count).join('\n')
}
