/**
 * The dashboard's script, served at /dashboard.js: plain browser JavaScript, no framework, no
 * build step. Kept as a string here because the build is tsc alone; test/api/dashboard.test.ts
 * parses it, and test/cluster/dashboard.test.ts runs it in Chromium.
 */
export const DASHBOARD_JS = String.raw`'use strict'
// hearsay dashboard: one node's view of the cluster, streamed as Server-Sent Events over fetch
// (EventSource cannot send the bearer token). Relative URLs only, so it works behind TLS or a
// path prefix. No framework: the DOM is rebuilt per section from each state event.
;(function () {
  var TOKEN_KEY = 'hearsay.token'
  var MAX_EVENT_BUFFER_CHARS = 8 * 1024 * 1024
  var SCAN_LIMIT = 50
  var state = null
  var selectedKey = null
  var retryMs = 1000

  function $(id) { return document.getElementById(id) }
  function el(tag, attrs, children) {
    var node = document.createElement(tag)
    if (attrs) for (var name in attrs) {
      if (name === 'text') node.textContent = attrs[name]
      else if (name === 'class') node.className = attrs[name]
      else if (name.slice(0, 2) === 'on') node.addEventListener(name.slice(2), attrs[name])
      else node.setAttribute(name, attrs[name])
    }
    if (children) children.forEach(function (c) { if (c != null) node.appendChild(typeof c === 'string' ? document.createTextNode(c) : c) })
    return node
  }
  function svg(tag, attrs) {
    var node = document.createElementNS('http://www.w3.org/2000/svg', tag)
    for (var name in attrs) node.setAttribute(name, attrs[name])
    return node
  }
  function replace(container, children) {
    while (container.firstChild) container.removeChild(container.firstChild)
    children.forEach(function (c) { container.appendChild(c) })
  }
  function token() { try { return sessionStorage.getItem(TOKEN_KEY) || '' } catch (e) { return '' } }
  function headers() { var t = token(); return t ? { authorization: 'Bearer ' + t } : {} }
  function bytes(n) {
    if (n == null) return '–'
    var units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'], i = 0
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++ }
    return (i === 0 ? n : n.toFixed(n < 10 ? 1 : 0)) + ' ' + units[i]
  }
  function duration(seconds) {
    if (seconds < 60) return seconds + ' s'
    if (seconds < 3600) return Math.floor(seconds / 60) + ' min'
    if (seconds < 86400) return Math.floor(seconds / 3600) + ' h ' + Math.floor(seconds % 3600 / 60) + ' min'
    return Math.floor(seconds / 86400) + ' d ' + Math.floor(seconds % 86400 / 3600) + ' h'
  }
  function ago(ms) { return duration(Math.max(0, Math.round((Date.now() - ms) / 1000))) + ' ago' }
  function num(n, digits) { return n == null ? '–' : Number(n).toLocaleString(undefined, { maximumFractionDigits: digits || 0 }) }

  // ---- token ------------------------------------------------------------------------------
  function askToken(message) {
    $('token-message').textContent = message
    $('token-dialog').hidden = false
    $('token-input').focus()
  }
  $('token-form').addEventListener('submit', function (event) {
    event.preventDefault()
    try { sessionStorage.setItem(TOKEN_KEY, $('token-input').value.trim()) } catch (e) { /* private mode: kept for this page only */ }
    $('token-dialog').hidden = true
    connect()
  })
  $('token-button').addEventListener('click', function () { askToken('Bearer token for this node (api.token):') })

  // ---- the event stream -------------------------------------------------------------------
  var controller = null
  function setLive(live, text) {
    $('live').className = live ? 'live on' : 'live off'
    $('live-text').textContent = text
  }
  function connect() {
    if (controller) controller.abort()
    controller = new AbortController()
    var signal = controller.signal
    fetch('dashboard/events', { headers: headers(), cache: 'no-store', signal: signal }).then(function (res) {
      if (res.status === 401) { setLive(false, 'token needed'); askToken('This node needs a bearer token (api.token):'); return }
      if (!res.ok || !res.body) throw new Error('HTTP ' + res.status)
      setLive(true, 'live')
      retryMs = 1000
      var reader = res.body.pipeThrough(new TextDecoderStream()).getReader()
      var buffer = ''
      function pump() {
        return reader.read().then(function (chunk) {
          if (chunk.done) throw new Error('stream ended')
          buffer += chunk.value
          if (buffer.length > MAX_EVENT_BUFFER_CHARS) throw new Error('event too large')
          var end
          while ((end = buffer.indexOf('\n\n')) >= 0) {
            onEvent(buffer.slice(0, end))
            buffer = buffer.slice(end + 2)
          }
          return pump()
        })
      }
      return pump()
    }).catch(function (error) {
      if (signal.aborted) return
      setLive(false, 'reconnecting (' + error.message + ')')
      setTimeout(connect, retryMs)
      retryMs = Math.min(retryMs * 2, 10000)
    })
  }
  function onEvent(text) {
    var type = 'message', data = ''
    text.split('\n').forEach(function (line) {
      if (line.slice(0, 6) === 'event:') type = line.slice(6).trim()
      else if (line.slice(0, 5) === 'data:') data += line.slice(5).trim()
    })
    if (type === 'cluster' && data) { state = JSON.parse(data); render() }
  }

  // ---- rendering --------------------------------------------------------------------------
  function selfEntry() { return state.nodes.filter(function (n) { return n.id === state.self })[0] }
  function stateOf(id) {
    var self = selfEntry()
    var seen = self && self.summary ? self.summary.members.filter(function (m) { return m.id === id })[0] : null
    return seen ? seen.state : 'unknown'
  }

  function render() {
    var self = selfEntry()
    document.title = 'hearsay · ' + (self ? self.name : '')
    $('node-name').textContent = self ? self.name : ''
    renderTiles()
    renderMembers()
    renderMatrix()
    renderPartitions()
    renderRounds()
    renderLifecycle()
    $('updated').textContent = 'updated ' + new Date(state.generatedAtMs).toLocaleTimeString()
  }

  function tile(label, value, tone) {
    return el('div', { class: 'tile ' + (tone || '') }, [el('div', { class: 'tile-value', text: value }), el('div', { class: 'tile-label', text: label })])
  }
  function renderTiles() {
    var summaries = state.nodes.filter(function (n) { return n.summary }).map(function (n) { return n.summary })
    var alive = state.nodes.filter(function (n) { return stateOf(n.id) === 'alive' }).length
    var ops = 0, p99 = null, hints = 0
    summaries.forEach(function (s) {
      var last = s.samples[s.samples.length - 1]
      if (last) { ops += last.opsPerSecond; if (last.p99Ms != null) p99 = Math.max(p99 || 0, last.p99Ms) }
      hints += s.hintsPending
    })
    var reachable = state.nodes.filter(function (n) { return n.summary && !n.error })
    var digests = {}
    reachable.forEach(function (n) { digests[n.summary.digest] = true })
    var inSync = Object.keys(digests).length === 1
    var self = selfEntry()
    replace($('tiles'), [
      tile('members alive', alive + ' / ' + state.nodes.length, alive === state.nodes.length ? 'good' : 'bad'),
      tile('keys here', self && self.summary ? num(self.summary.keys) : '–'),
      tile('requests / s', num(ops, 1)),
      tile('worst p99', p99 == null ? '–' : num(p99, 1) + ' ms'),
      tile('hints waiting', num(hints), hints > 0 ? 'warn' : ''),
      tile('replicas', inSync ? 'in sync' : 'differ', inSync ? 'good' : 'warn')
    ])
  }

  function sparkline(values, cls, label) {
    var width = 160, height = 36, box = svg('svg', { viewBox: '0 0 ' + width + ' ' + height, class: 'spark ' + cls, preserveAspectRatio: 'none', role: 'img', 'aria-label': label })
    var points = values.filter(function (v) { return v != null })
    if (points.length < 2) { box.appendChild(svg('line', { x1: 0, y1: height - 1, x2: width, y2: height - 1, class: 'spark-empty' })); return box }
    var max = Math.max.apply(null, points) || 1
    var step = width / (values.length - 1)
    var line = [], area = ['0,' + height]
    values.forEach(function (v, i) {
      if (v == null) return
      var xy = (i * step).toFixed(1) + ',' + (height - 2 - (v / max) * (height - 6)).toFixed(1)
      line.push(xy); area.push(xy)
    })
    area.push(((values.length - 1) * step).toFixed(1) + ',' + height)
    box.appendChild(svg('polygon', { points: area.join(' '), class: 'spark-area' }))
    box.appendChild(svg('polyline', { points: line.join(' '), class: 'spark-line' }))
    return box
  }

  function renderMembers() {
    var cards = state.nodes.map(function (node) {
      var s = node.summary, seen = stateOf(node.id)
      var samples = s ? s.samples : []
      var last = samples[samples.length - 1]
      var isSelf = node.id === state.self
      var card = el('article', { class: 'card state-' + seen, 'data-member-id': node.id, 'data-state': seen, 'data-name': node.name }, [
        el('header', null, [
          el('span', { class: 'dot' }),
          el('h3', { text: node.name }),
          isSelf ? el('span', { class: 'badge', text: 'this node' }) : null,
          el('span', { class: 'pill pill-' + seen, text: seen })
        ]),
        el('dl', null, [
          el('dt', { text: 'status' }), el('dd', { text: s ? s.status : '–' }),
          el('dt', { text: 'version' }), el('dd', { text: s ? s.version : '–' }),
          el('dt', { text: 'uptime' }), el('dd', { text: s ? duration(s.uptimeSeconds) : '–' }),
          el('dt', { text: 'keys' }), el('dd', { text: s ? num(s.keys) + ' · ' + bytes(s.storeBytes) : '–' }),
          el('dt', { text: 'digest' }), el('dd', { class: 'mono', text: s ? s.digest.slice(0, 8) : '–' })
        ]),
        el('div', { class: 'sparks' }, [
          el('div', null, [el('div', { class: 'spark-label' }, ['ops/s ', el('b', { text: last ? num(last.opsPerSecond, 1) : '–' })]), sparkline(samples.map(function (x) { return x.opsPerSecond }), 'ops', 'requests per second')]),
          el('div', null, [el('div', { class: 'spark-label' }, ['p99 ', el('b', { text: last && last.p99Ms != null ? num(last.p99Ms, 1) + ' ms' : '–' })]), sparkline(samples.map(function (x) { return x.p99Ms }), 'p99', 'p99 latency')])
        ]),
        node.error ? el('p', { class: 'card-error', text: (s ? 'as of ' + ago(node.heardAtMs) + ': ' : '') + node.error }) : null
      ])
      return card
    })
    replace($('members'), cards)
  }

  function renderMatrix() {
    var observers = state.nodes.filter(function (n) { return n.summary })
    var head = el('tr', null, [el('th', { text: 'seen by ↓ / member →' })].concat(state.nodes.map(function (n) { return el('th', { text: n.name }) })))
    var rows = observers.map(function (o) {
      var byId = {}
      o.summary.members.forEach(function (m) { byId[m.id] = m })
      return el('tr', null, [el('th', { text: o.name + (o.error ? ' (stale)' : '') })].concat(state.nodes.map(function (n) {
        var m = byId[n.id]
        if (!m) return el('td', { class: 'cell-none', text: '—' })
        var detail = n.id === o.id ? 'self' : (m.rttMs == null ? 'no probe yet' : num(m.rttMs, 1) + ' ms')
        return el('td', { class: 'cell cell-' + m.state, title: m.state + ', incarnation ' + m.incarnation }, [
          el('span', { class: 'dot' }), el('span', { text: m.state }), el('small', { text: detail + ' · inc ' + m.incarnation })
        ])
      })))
    })
    replace($('matrix'), [el('table', { class: 'matrix' }, [el('thead', null, [head]), el('tbody', null, rows)])])
  }

  function renderPartitions() {
    var map = state.partitions, canvas = $('partition-canvas')
    var syncing = {}, hinted = {}
    state.nodes.forEach(function (n) {
      if (!n.summary) return
      n.summary.syncingPartitions.forEach(function (p) { syncing[n.id + ':' + p] = true })
      n.summary.hintedPartitions.forEach(function (p) { hinted[p] = true })
    })
    var columns = Math.min(map.count, 128), rowsPerMember = Math.ceil(map.count / columns)
    var cell = Math.max(3, Math.min(9, Math.floor((canvas.parentNode.clientWidth - 140) / columns)))
    var labelWidth = 130, gap = 6
    var width = labelWidth + columns * cell, height = map.members.length * (rowsPerMember * cell + gap)
    var ratio = window.devicePixelRatio || 1
    canvas.width = width * ratio; canvas.height = Math.max(height, 1) * ratio
    canvas.style.width = width + 'px'; canvas.style.height = height + 'px'
    var ctx = canvas.getContext('2d')
    ctx.scale(ratio, ratio)
    ctx.font = '12px system-ui, sans-serif'
    ctx.textBaseline = 'middle'
    var colors = { held: '#2a9d8f', heldDown: '#e76f51', sync: '#f4a261', hint: '#e63946', none: '#e9edf2' }
    var counts = []
    map.members.forEach(function (m, row) {
      var bits = atob(m.held), top = row * (rowsPerMember * cell + gap), held = 0
      ctx.fillStyle = m.state === 'alive' ? '#1d2733' : '#9aa5b1'
      ctx.fillText(m.name.length > 16 ? m.name.slice(0, 15) + '…' : m.name, 0, top + rowsPerMember * cell / 2)
      for (var p = 0; p < map.count; p++) {
        var isHeld = (bits.charCodeAt(p >> 3) >> (p & 7)) & 1
        if (isHeld) held++
        var color = !isHeld ? colors.none : syncing[m.id + ':' + p] ? colors.sync : m.state !== 'alive' ? (hinted[p] ? colors.hint : colors.heldDown) : colors.held
        ctx.fillStyle = color
        ctx.fillRect(labelWidth + (p % columns) * cell, top + Math.floor(p / columns) * cell, cell - 1, cell - 1)
      }
      counts.push(m.name + ': ' + held)
    })
    $('partition-caption').textContent = map.count + ' partitions, ' + map.replicationFactor + ' replicas each · held: ' + counts.join(', ') +
      ' · hints waiting in ' + Object.keys(hinted).length + ' · syncing ' + Object.keys(syncing).length
  }

  function renderRounds() {
    var rows = state.rounds.map(function (r) {
      return el('tr', { class: r.failures > 0 ? 'failed' : '' }, [
        el('td', { text: ago(r.endedAtMs) }), el('td', { text: r.trigger + (r.mode === 'repair' ? ' (repair)' : '') }),
        el('td', { text: String(r.peers) }), el('td', { text: r.partitionsDiffering + ' / ' + r.partitionsCompared }),
        el('td', { text: num(r.pushed) + ' ↑ ' + num(r.pulled) + ' ↓' }), el('td', { text: bytes(r.bytes) }),
        el('td', { text: num(r.durationMs) + ' ms' }), el('td', { text: r.failures > 0 ? r.failures + ' failed' : 'ok' })
      ])
    })
    if (rows.length === 0) rows = [el('tr', null, [el('td', { colspan: '8', class: 'muted', text: 'No anti-entropy round has run on this node yet.' })])]
    replace($('rounds'), rows)
  }

  // Removed members with the cluster's re-replication, leaving members, this node's decommission.
  function renderLifecycle() {
    var life = state.lifecycle || { removed: [], leaving: [], decommission: null }
    var rows = life.removed.map(function (r) {
      var moved = num(r.keysMoved) + ' keys (' + bytes(r.bytesMoved) + ') moved'
      var progress = r.complete ? 'done: ' + moved
        : num(r.underReplicatedPartitions) + ' of ' + num(r.gainedPartitions) + ' partitions to copy, ' + moved +
          (r.unanswered.length ? ' · no answer from ' + r.unanswered.join(', ') : '')
      return el('tr', { class: r.complete ? '' : 'failed' }, [el('td', { text: r.name + ' ' + r.id }), el('td', { text: 'removed by ' + r.byName }), el('td', { text: ago(r.atMs) }), el('td', { text: progress })])
    })
    life.leaving.forEach(function (l) {
      var d = l.id === state.self ? life.decommission : null
      var progress = d ? d.phase + ': ' + num(d.confirmed) + ' of ' + num(d.transfers) + ' partition copies confirmed, ' + num(d.keysMoved) + ' keys (' + bytes(d.bytesMoved) + ') moved' : 'streaming its partitions to their new owners'
      rows.push(el('tr', null, [el('td', { text: l.name + ' ' + l.id }), el('td', { text: 'decommissioning' }), el('td', { text: ago(l.startedAtMs) }), el('td', { text: progress })]))
    })
    if (rows.length === 0) rows = [el('tr', null, [el('td', { colspan: '4', class: 'muted', text: 'No member is being removed or decommissioned.' })])]
    replace($('lifecycle'), rows)
  }

  // ---- key browser ------------------------------------------------------------------------
  function api(path) {
    return fetch(path, { headers: headers(), cache: 'no-store' }).then(function (res) {
      if (res.status === 401) { askToken('This node needs a bearer token (api.token):'); throw new Error('unauthorized') }
      return res
    })
  }
  function scan(after) {
    var prefix = $('prefix').value
    var query = 'kv?prefix=' + encodeURIComponent(prefix) + '&limit=' + SCAN_LIMIT + (after ? '&after=' + encodeURIComponent(after) : '')
    $('scan-status').textContent = 'scanning…'
    api(query).then(function (res) {
      return res.json().then(function (body) {
        if (!res.ok) throw new Error(body.error || ('HTTP ' + res.status))
        var rows = body.items.map(function (item) {
          return el('tr', { class: 'key-row' + (item.key === selectedKey ? ' selected' : ''), 'data-key': item.key, onclick: function () { showKey(item.key) } }, [
            el('td', { class: 'mono', text: item.key }), el('td', { class: 'mono', text: item.version }), el('td', { text: bytes(atob(item.value).length) })
          ])
        })
        if (!after) replace($('keys'), rows); else rows.forEach(function (r) { $('keys').appendChild(r) })
        $('scan-status').textContent = $('keys').children.length + ' keys' + (body.next ? '' : ' (end)')
        var more = $('scan-more')
        more.hidden = !body.next
        more.onclick = function () { scan(body.next) }
      })
    }).catch(function (error) { $('scan-status').textContent = 'scan failed: ' + error.message })
  }
  $('scan-form').addEventListener('submit', function (event) { event.preventDefault(); scan(null) })

  function printable(bytesText) {
    for (var i = 0; i < bytesText.length; i++) { var c = bytesText.charCodeAt(i); if (c < 9 || (c > 13 && c < 32)) return false }
    return true
  }
  function showKey(key) {
    selectedKey = key
    Array.prototype.forEach.call(document.querySelectorAll('.key-row'), function (row) { row.classList.toggle('selected', row.getAttribute('data-key') === key) })
    var detail = $('key-detail')
    replace(detail, [el('p', { class: 'muted', text: 'Loading ' + key + '…' })])
    var path = 'kv/' + encodeURIComponent(key)
    Promise.all([
      api(path).then(function (res) {
        if (res.status === 404) return { missing: true }
        if (!res.ok) return res.json().then(function (b) { throw new Error(b.error) })
        return res.arrayBuffer().then(function (buf) { return { version: res.headers.get('hearsay-version'), bytes: new Uint8Array(buf) } })
      }),
      api('admin/replicas?key=' + encodeURIComponent(key)).then(function (res) { return res.json() })
    ]).then(function (results) {
      var value = results[0], replicas = results[1]
      var text = ''
      if (!value.missing) {
        var raw = ''
        for (var i = 0; i < Math.min(value.bytes.length, 4096); i++) raw += String.fromCharCode(value.bytes[i])
        try { text = printable(raw) ? new TextDecoder('utf-8', { fatal: true }).decode(value.bytes.slice(0, 4096)) : null } catch (e) { text = null }
        if (text === null) text = Array.prototype.map.call(value.bytes.slice(0, 512), function (b) { return ('0' + b.toString(16)).slice(-2) }).join(' ')
      }
      var rows = (replicas.replicas || []).map(function (r) {
        var stale = r.version !== replicas.newest
        return el('tr', { class: 'replica-row', 'data-replica': r.name }, [
          el('td', null, [el('span', { class: 'pill pill-' + r.state, text: r.state }), ' ' + r.name + (r.self ? ' (this node)' : '')]),
          el('td', { class: 'holds-' + r.holds, text: r.holds }),
          el('td', { class: 'mono', text: r.version || '—' }),
          el('td', { class: stale ? 'stale' : 'fresh', text: r.holds === 'error' ? (r.error || 'no answer') : stale ? 'behind' : 'newest' })
        ])
      })
      replace(detail, [
        el('h3', { class: 'mono', id: 'detail-key', text: key }),
        value.missing ? el('p', { class: 'muted', text: 'Not found (deleted or expired) at the read level.' }) :
          el('div', null, [
            el('p', null, ['version ', el('code', { id: 'detail-version', text: value.version }), ' · ' + bytes(value.bytes.length) + ' · partition ' + replicas.partition]),
            el('pre', { class: 'value', id: 'detail-value', text: text })
          ]),
        el('table', { class: 'replicas' }, [el('thead', null, [el('tr', null, [el('th', { text: 'replica' }), el('th', { text: 'holds' }), el('th', { text: 'version' }), el('th', { text: '' })])]), el('tbody', null, rows)])
      ])
    }).catch(function (error) { replace(detail, [el('p', { class: 'error', text: 'Could not read ' + key + ': ' + error.message })]) })
  }

  window.addEventListener('resize', function () { if (state) renderPartitions() })
  connect()
})()
`
