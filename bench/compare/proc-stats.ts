import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'

/** Resource use of one server process, read from /proc. */
export interface ProcessSample {
  /** User plus system CPU time of all its threads since it started. */
  readonly cpuSeconds: number
  /** Resident set size now (VmRSS). */
  readonly rssBytes: number
  /** Largest resident set size so far (VmHWM). */
  readonly peakRssBytes: number
}

/** Linux reports CPU times in clock ticks; 100 per second on every common build. */
const FALLBACK_CLOCK_TICKS_PER_SECOND = 100
let clockTicksPerSecond: number | undefined

function ticksPerSecond(): number {
  if (clockTicksPerSecond === undefined) {
    try {
      const parsed = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim())
      clockTicksPerSecond = Number.isSafeInteger(parsed) && parsed > 0 ? parsed : FALLBACK_CLOCK_TICKS_PER_SECOND
    } catch {
      clockTicksPerSecond = FALLBACK_CLOCK_TICKS_PER_SECOND
    }
  }
  return clockTicksPerSecond
}

export function sampleProcess(pid: number): ProcessSample {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  // The command name (field 2) is parenthesised and may contain spaces; fields after it are plain.
  const afterName = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  // proc(5): utime is field 14 and stime field 15; afterName[0] is field 3.
  const utimeTicks = Number(afterName[11])
  const stimeTicks = Number(afterName[12])
  if (!Number.isFinite(utimeTicks) || !Number.isFinite(stimeTicks)) throw new Error(`cannot parse /proc/${pid}/stat`)
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  return {
    cpuSeconds: (utimeTicks + stimeTicks) / ticksPerSecond(),
    rssBytes: statusKib(status, 'VmRSS', pid) * 1024,
    peakRssBytes: statusKib(status, 'VmHWM', pid) * 1024,
  }
}

function statusKib(status: string, field: string, pid: number): number {
  const match = new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(status)
  if (match?.[1] === undefined) throw new Error(`/proc/${pid}/status has no ${field} line`)
  return Number(match[1])
}
