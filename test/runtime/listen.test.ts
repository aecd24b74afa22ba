import t from 'tap'
import net from 'node:net'
import { listenOn } from '../../lib/runtime/listen.js'

t.test('a taken port is one line naming the port and the setting to change; a free one listens', async t => {
  const first = net.createServer()
  await listenOn(first, '127.0.0.1', 0, 'peer.port')
  t.teardown(() => { first.close() })
  const port = (first.address() as net.AddressInfo).port
  t.ok(port > 0, 'listening on the port the OS picked')

  for (const setting of ['api.port', 'peer.port'] as const) {
    const second = net.createServer()
    await t.rejects(listenOn(second, '127.0.0.1', port, setting), { message: `${setting.replace('.', ' ')} ${port} on 127.0.0.1 is already in use; choose another ${setting}` })
    t.equal(second.listenerCount('error'), 0, `${setting}: no error handler is left on the server`)
  }

  const elsewhere = net.createServer()
  await t.rejects(listenOn(elsewhere, '192.0.2.1', 0, 'api.port'), { message: /^cannot listen on the API port 192\.0\.2\.1:0: / }, 'an address this machine does not have')
  t.equal(elsewhere.listening, false)
})
