import type { Writable } from 'node:stream'
import type { LoadProgress } from './closed-loop.js'

export interface ProgressLine {
  update(label: string, progress: LoadProgress): void
  /** Ends the line on a terminal so the table starts on a fresh one. */
  end(): void
}

/**
 * The running status on stderr: on a terminal one line rewritten in place with \r, elsewhere
 * (a log file, CI) one line per update so nothing is garbled. Written without waiting for
 * drain: at one short line a second there is nothing to hold back.
 */
export function createProgressLine(stream: Writable & { readonly isTTY?: boolean }): ProgressLine {
  const tty = stream.isTTY === true
  let shownChars = 0
  return {
    update(label, progress) {
      const line = formatProgress(label, progress)
      if (tty) {
        stream.write(`\r${line.padEnd(shownChars)}`)
        shownChars = line.length
      } else {
        stream.write(line + '\n')
      }
    },
    end() {
      if (tty && shownChars > 0) stream.write('\n')
      shownChars = 0
    },
  }
}

export function formatProgress(label: string, progress: LoadProgress): string {
  const parts = [
    `${(progress.elapsedMs / 1000).toFixed(0)}s`,
    `${progress.completed} ops`,
    `${Math.round(progress.opsPerSecond)} ops/s`,
    `${progress.errors} errors`,
  ]
  return `bench${label === '' ? '' : ` ${label}`}: ${parts.join(', ')}`
}
