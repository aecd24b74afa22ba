import t from 'tap'
import type os from 'node:os'
import { isLoopbackHost, isUnspecifiedHost, parseHostPort } from '../../lib/config/address.js'
import { resolveAdvertiseAddress } from '../../lib/config/advertise.js'

t.test('host:port parses IPv4, host names and bracketed IPv6', async t => {
  t.same(parseHostPort('192.168.1.11:7946'), { host: '192.168.1.11', port: 7946 })
  t.same(parseHostPort('node-2.lan:7946'), { host: 'node-2.lan', port: 7946 })
  t.same(parseHostPort('[fe80::1]:7946'), { host: 'fe80::1', port: 7946 })
  for (const bad of ['', 'host', ':7946', 'host:', 'host:0', 'host:65536', '300.1.1.1:80', 'fe80::1:80', '[nope]:80', 'a b:80', '-x:80', 'host:80:80']) {
    t.equal(parseHostPort(bad), undefined, bad)
  }
})

t.test('loopback and unspecified hosts are recognised in any spelling', async t => {
  for (const host of ['127.0.0.1', '127.1.2.3', '::1', '0:0:0:0:0:0:0:1', 'localhost', 'LOCALHOST']) t.ok(isLoopbackHost(host), host)
  for (const host of ['192.168.1.1', '::2', 'node.lan']) t.notOk(isLoopbackHost(host), host)
  for (const host of ['0.0.0.0', '::', '0:0::0']) t.ok(isUnspecifiedHost(host), host)
  t.notOk(isUnspecifiedHost('127.0.0.1'))
})

const interfaces = (entries: Record<string, Array<Partial<os.NetworkInterfaceInfo>>>): NodeJS.Dict<os.NetworkInterfaceInfo[]> =>
  entries as NodeJS.Dict<os.NetworkInterfaceInfo[]>

t.test('an explicit advertise address wins', async t => {
  t.equal(resolveAdvertiseAddress({ key: 'peer.advertise', bindHost: '0.0.0.0', boundPort: 7946, advertise: '10.1.1.1:9000', interfaces: {} }), '10.1.1.1:9000')
})

t.test('a specific bind address is advertised with the bound port', async t => {
  t.equal(resolveAdvertiseAddress({ key: 'api.advertise', bindHost: '127.0.0.1', boundPort: 40123, advertise: '', interfaces: {} }), '127.0.0.1:40123')
  t.equal(resolveAdvertiseAddress({ key: 'api.advertise', bindHost: 'fd00::5', boundPort: 7070, advertise: '', interfaces: {} }), '[fd00::5]:7070')
})

t.test('binding every interface advertises the first non-internal IPv4 address', async t => {
  const nics = interfaces({
    lo: [{ address: '127.0.0.1', family: 'IPv4', internal: true }],
    eth0: [{ address: 'fe80::1', family: 'IPv6', internal: false }, { address: '192.168.1.11', family: 'IPv4', internal: false }],
    eth1: [{ address: '10.0.0.5', family: 'IPv4', internal: false }],
  })
  t.equal(resolveAdvertiseAddress({ key: 'peer.advertise', bindHost: '0.0.0.0', boundPort: 7946, advertise: '', interfaces: nics }), '192.168.1.11:7946')
})

t.test('with no LAN address to derive from, the error says which setting to set', async t => {
  const nics = interfaces({ lo: [{ address: '127.0.0.1', family: 'IPv4', internal: true }] })
  t.throws(() => resolveAdvertiseAddress({ key: 'peer.advertise', bindHost: '::', boundPort: 7946, advertise: '', interfaces: nics }),
    { name: 'ConfigError', key: 'peer.advertise', message: /set peer\.advertise explicitly/ })
})
