import { pino, type Logger, type LevelWithSilent } from 'pino'

export type { Logger }

/**
 * JSON lines on stdout, one object per event, as journald and log shippers expect. Times are
 * ISO strings so a human reading `journalctl -o cat` does not need to convert epoch ms.
 */
export function createLogger(level: LevelWithSilent, bindings: Record<string, unknown> = {}): Logger {
  return pino({
    level,
    base: { pid: process.pid, ...bindings },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
  })
}
