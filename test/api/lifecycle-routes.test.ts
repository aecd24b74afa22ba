import t from 'tap'
import { ConflictError, NotFoundError } from '../../lib/errors.js'
import { startApi } from './fixtures/harness.js'

t.test('POST /admin/members/remove passes ?node= on and maps refusals to 409 and 404', async t => {
  const asked: string[] = []
  const api = await startApi(t, {
    lifecycle: {
      remove: async (target) => {
        asked.push(target)
        if (target === 'node-2') throw new ConflictError('member node-2 (00000000000000b2) is alive: hearsay members remove is for dead members', { state: 'alive' })
        if (target === 'ghost') throw new NotFoundError('no member "ghost" in this node\'s member table', { node: 'ghost' })
        return { removal: { id: '00000000000000c3', name: target }, alreadyRemoved: false }
      },
      decommission: async () => ({ phase: 'streaming' }),
      clusterStatus: async () => ({ removed: [], leaving: [], decommission: null }),
    },
  })
  const ok = await fetch(`${api.url}/admin/members/remove?node=node-3`, { method: 'POST' })
  t.equal(ok.status, 200)
  t.same(await ok.json(), { removal: { id: '00000000000000c3', name: 'node-3' }, alreadyRemoved: false })
  const alive = await fetch(`${api.url}/admin/members/remove?node=node-2`, { method: 'POST' })
  t.equal(alive.status, 409)
  t.match(await alive.json(), { error: /is alive/, state: 'alive' })
  t.equal((await fetch(`${api.url}/admin/members/remove?node=ghost`, { method: 'POST' })).status, 404)
  const missing = await fetch(`${api.url}/admin/members/remove`, { method: 'POST' })
  t.equal(missing.status, 400)
  t.match(await missing.json(), { error: /give the member to remove as \?node=ID or \?node=NAME/ })
  t.equal((await fetch(`${api.url}/admin/members/remove?node=${'x'.repeat(300)}`, { method: 'POST' })).status, 400)
  t.equal((await fetch(`${api.url}/admin/members/remove?node=a&bogus=1`, { method: 'POST' })).status, 400, 'unknown parameters are refused')
  t.equal((await fetch(`${api.url}/admin/members/remove?node=node-3`)).status, 405, 'GET is not a removal')
  t.strictSame(asked, ['node-3', 'node-2', 'ghost'])
  t.same(await (await fetch(`${api.url}/admin/decommission`, { method: 'POST' })).json(), { phase: 'streaming' })
  t.same(await (await fetch(`${api.url}/admin/lifecycle`)).json(), { removed: [], leaving: [], decommission: null })
})

t.test('lifecycle routes answer 503 on a node without lifecycle, and need the token', async t => {
  const bare = await startApi(t)
  t.equal((await fetch(`${bare.url}/admin/decommission`, { method: 'POST' })).status, 503)
  const guarded = await startApi(t, { token: 'secret', lifecycle: { remove: async () => ({}), decommission: async () => ({}), clusterStatus: async () => ({}) } })
  t.equal((await fetch(`${guarded.url}/admin/lifecycle`)).status, 401)
  t.equal((await fetch(`${guarded.url}/admin/lifecycle`, { headers: { authorization: 'Bearer secret' } })).status, 200)
})
