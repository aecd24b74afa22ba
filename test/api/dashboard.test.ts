import t from 'tap'
import { Script } from 'node:vm'
import { DASHBOARD_JS } from '../../lib/api/dashboard/page-script.js'
import { startApi } from './fixtures/harness.js'

t.test('the page, its script and stylesheet are static, with a CSP that allows nothing from elsewhere', async t => {
  const api = await startApi(t)
  const page = await fetch(`${api.url}/`)
  t.equal(page.status, 200)
  t.match(page.headers.get('content-type'), /^text\/html/)
  const csp = page.headers.get('content-security-policy') ?? ''
  t.match(csp, /default-src 'none'/)
  t.match(csp, /script-src 'self'/)
  t.notMatch(csp, /unsafe/, 'no inline script or style, no eval')
  const html = await page.text()
  t.match(html, /<script src="dashboard.js"><\/script>/)
  t.notMatch(html, /https?:\/\/|wss?:\/\/|src="\/|href="\//, 'relative URLs only: works over HTTPS and behind a path prefix')
  const script = await fetch(`${api.url}/dashboard.js`)
  t.match(script.headers.get('content-type'), /^text\/javascript/)
  const js = await script.text()
  t.doesNotThrow(() => new Script(js), 'the script parses')
  t.notMatch(js, /https?:\/\/(?!www\.w3\.org\/2000\/svg)|wss?:\/\//, 'no absolute URLs but the SVG namespace')
  t.notMatch(js, /new EventSource/, 'fetch-based streaming, which can send the bearer token')
  t.equal((await fetch(`${api.url}/dashboard.css`)).headers.get('content-type'), 'text/css; charset=utf-8')
  t.ok(Buffer.byteLength(DASHBOARD_JS) < 32 * 1024, 'the script stays small')
})

t.test('the event stream sends each cluster state as a server-sent event and ends when the server closes', async t => {
  let listener: ((state: unknown) => void) | undefined
  let unsubscribed = 0
  const api = await startApi(t, {
    dashboard: {
      subscribe: l => { listener = l; l({ round: 1 }); return () => { unsubscribed++ } },
      replicaVersions: async key => ({ key }),
    },
  })
  const res = await fetch(`${api.url}/dashboard/events`)
  t.equal(res.status, 200)
  t.match(res.headers.get('content-type'), /^text\/event-stream/)
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader()
  let text = ''
  while (!text.includes('"round":1')) text += (await reader.read()).value ?? ''
  listener!({ round: 2 })
  while (!text.includes('"round":2')) text += (await reader.read()).value ?? ''
  t.match(text, /event: cluster\ndata: \{"round":1\}\n\n/)
  t.match(text, /event: cluster\ndata: \{"round":2\}\n\n/)
  await api.server.close(1000)
  for (let i = 0; i < 100 && !(await reader.read()).done; i++) { /* drain until the server ends it */ }
  t.equal(unsubscribed, 1, 'the stream unsubscribed when it ended')
})

t.test('a full dashboard answers 503; /admin/replicas checks its key', async t => {
  const api = await startApi(t, { dashboard: { subscribe: () => undefined, replicaVersions: async key => ({ key, replicas: [] }) } })
  const res = await fetch(`${api.url}/dashboard/events`)
  t.equal(res.status, 503)
  t.match(await res.json(), { error: /too many dashboards/ })
  t.same(await (await fetch(`${api.url}/admin/replicas?key=a%2Fb`)).json(), { key: 'a/b', replicas: [] })
  t.equal((await fetch(`${api.url}/admin/replicas`)).status, 400, 'a key is required')
  t.equal((await fetch(`${api.url}/admin/replicas?key=k&x=1`)).status, 400, 'unknown parameters are refused')
})

t.test('without a dashboard the stream and the replica view answer 503', async t => {
  const api = await startApi(t)
  t.equal((await fetch(`${api.url}/dashboard/events`)).status, 503)
  t.equal((await fetch(`${api.url}/admin/replicas?key=k`)).status, 503)
})
