import type { HealthView, MemberView } from './views.js'

/**
 * The status page at `/`: rendered on the server from the same data as /status and /members,
 * so it reads with JavaScript off and loads no external assets.
 */

export interface StatusPageInput {
  readonly health: HealthView
  readonly status: Readonly<Record<string, unknown>>
  readonly members: readonly MemberView[]
  readonly generatedAt: Date
}

/** Seconds between automatic reloads; a glance, not a live stream. */
const REFRESH_SECONDS = 10

const STATE_ORDER: Readonly<Record<MemberView['state'], number>> = { alive: 0, suspect: 1, dead: 2, left: 3 }

const STYLE = `
body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}
h1{font-size:1.4em;margin:0 0 .2em}h2{font-size:1.1em;margin:1.5em 0 .4em}
table{border-collapse:collapse}td,th{padding:.25em .8em;border-bottom:1px solid #ddd;text-align:left;vertical-align:top}
th{background:#f4f4f4}code{font-size:.95em}.muted{color:#777}
.alive{color:#176f2c}.suspect{color:#a66300}.dead{color:#b00020}.left{color:#777}
.ok{color:#176f2c}.starting,.leaving{color:#a66300}.skewed{color:#b00020}`

export function renderStatusPage(input: StatusPageInput): string {
  const { health, status, members } = input
  const sortedMembers = [...members].sort((a, b) => STATE_ORDER[a.state] - STATE_ORDER[b.state] || a.name.localeCompare(b.name) || a.id.localeCompare(b.id))
  const statusRows = Object.entries(status)
    .map(([field, value]) => `<tr><th>${escapeHtml(field)}</th><td><code>${escapeHtml(formatValue(value))}</code></td></tr>`)
    .join('\n')
  const memberRows = sortedMembers
    .map(m => `<tr><td>${escapeHtml(m.name)}${m.id === health.id ? ' <span class="muted">(this node)</span>' : ''}</td>`
      + `<td class="${m.state}">${m.state}</td><td><code>${escapeHtml(m.id)}</code></td>`
      + `<td>${escapeHtml(m.peer)}</td><td>${escapeHtml(m.api)}</td><td>${m.incarnation}</td></tr>`)
    .join('\n')
  const alive = members.filter(m => m.state === 'alive').length

  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="${REFRESH_SECONDS}">
<title>hearsay · ${escapeHtml(health.name)}</title>
<style>${STYLE}</style>
</head>
<body>
<h1>hearsay · ${escapeHtml(health.name)}</h1>
<p>Node <code>${escapeHtml(health.id)}</code> is <strong class="${health.status}">${health.status}</strong>.
${alive} of ${members.length} members alive. <span class="muted">Generated ${escapeHtml(input.generatedAt.toISOString())}.</span></p>
<h2>Node</h2>
<table>
${statusRows}
</table>
<h2>Members</h2>
<table>
<tr><th>name</th><th>state</th><th>id</th><th>peer</th><th>api</th><th>incarnation</th></tr>
${memberRows}
</table>
<p class="muted">JSON: <a href="status">/status</a> · <a href="members">/members</a> · <a href="metrics">/metrics</a></p>
</body>
</html>
`
}

function formatValue(value: unknown): string {
  if (typeof value === 'string') return value
  return JSON.stringify(value) ?? String(value)
}

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, c => `&#${c.charCodeAt(0)};`)
}
