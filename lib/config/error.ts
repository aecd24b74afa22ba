/**
 * A configuration problem, reported before the daemon starts. The message is one line that names
 * the setting (dotted path) and where its value came from, so `hearsayd --check` output points
 * straight at the line to fix.
 */
export class ConfigError extends Error {
  /** Dotted setting path, e.g. `api.port`; undefined when a whole file is at fault. */
  readonly key: string | undefined
  /** File path, `env HEARSAY_…` or `defaults`. */
  readonly source: string | undefined

  constructor(problem: string, where: { key?: string, source?: string }) {
    // A whole-file problem reads like a compiler error, "<file>: <problem>".
    const subject = where.key ?? where.source
    const prefix = subject === undefined ? '' : `${subject}: `
    const origin = where.key === undefined || where.source === undefined ? '' : ` (from ${where.source})`
    super(`config error: ${prefix}${problem}${origin}`.replace(/\s*[\r\n]+\s*/g, ' '))
    this.name = 'ConfigError'
    this.key = where.key
    this.source = where.source
  }
}
