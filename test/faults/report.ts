import type { ScenarioResult } from './scenarios.js'

/** Plain-text tables for the fault suite: one block per scenario, then a summary row each. */

export function renderResult(result: ScenarioResult): string {
  const lines: string[] = []
  const alive = result.aliveAfterHealMs === undefined ? '' : result.aliveAfterHealMs === null ? ', all alive after heal: never (bound)' : `, all alive after heal: ${result.aliveAfterHealMs} ms`
  lines.push(`   ${result.ops} ops (${result.acked} acknowledged, ${result.failed} failed/unknown; acked p50 ${result.ackedP50Ms} ms, p99 ${result.ackedP99Ms} ms) in ${(result.durationMs / 1000).toFixed(0)} s, load average ${result.loadAverage.toFixed(1)}; ` +
    `lost ${result.problemKeys.lost}, resurrected ${result.problemKeys.resurrected}, future ${result.problemKeys.future}, diverged ${result.diverged}${alive}` +
    `${result.healWriteFailures === undefined ? '' : `, write failures after heal: ${result.healWriteFailures}`}`)
  for (const note of result.notes) lines.push(`   · ${note}`)
  for (const oracle of result.oracles) lines.push(`   ${oracle.pass ? 'ok  ' : 'FAIL'} ${oracle.name}: ${oracle.detail}`)
  const shown = result.problems.slice(0, 5)
  for (const problem of shown) lines.push(`        ${problem.kind} ${problem.key}: ${problem.message}`)
  if (result.problems.length > shown.length) lines.push(`        … ${result.problems.length - shown.length} more problems`)
  return `${lines.join('\n')}\n`
}

const COLUMNS = ['scenario', 'nodes', 'ops', 'acked', 'failed', 'acked p99', 'lost', 'resurrected', 'future', 'diverged', 'alive after heal', 'heal write failures', '503 w/o outcome', 'result'] as const

export function summaryRow(result: ScenarioResult): string[] {
  const alive = result.aliveAfterHealMs === undefined ? '–' : result.aliveAfterHealMs === null ? '> 45 s' : `${(result.aliveAfterHealMs / 1000).toFixed(1)} s`
  const failedOracles = result.oracles.filter(o => !o.pass).length
  return [
    result.name, String(result.nodes), String(result.ops), String(result.acked), String(result.failed), `${result.ackedP99Ms} ms`,
    String(result.problemKeys.lost), String(result.problemKeys.resurrected), String(result.problemKeys.future), String(result.diverged),
    alive, result.healWriteFailures === undefined ? '–' : String(result.healWriteFailures), String(result.missingOutcome),
    failedOracles === 0 ? 'pass' : `FAIL (${failedOracles})`,
  ]
}

/** The summary as a Markdown table (it is what docs/reliability.md records). */
export function renderSummary(results: readonly ScenarioResult[]): string {
  const rows = [COLUMNS.slice() as string[], ...results.map(summaryRow)]
  const widths = COLUMNS.map((_, c) => Math.max(...rows.map(r => r[c]!.length)))
  const line = (cells: readonly string[]): string => `| ${cells.map((cell, c) => cell.padEnd(widths[c]!)).join(' | ')} |`
  return [line(rows[0]!), `|${widths.map(w => '-'.repeat(w + 2)).join('|')}|`, ...rows.slice(1).map(line)].join('\n') + '\n'
}
