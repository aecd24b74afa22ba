import t from 'tap'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { ChildProcess } from 'node:child_process'
import { daemonBin, nodeCommand, repoRoot, waitFor } from '../helpers/daemon.js'
import {
  createLan, deleteNamespaces, deleteNamespacesSync, execInNamespace, namespacesWithPrefix, netnsUnavailableReason,
  routesOf, spawnInNamespace, type Lan, type LanHost,
} from '../helpers/netns.js'

/**
 * Three daemons on three "hosts" (network namespaces) of a private bridge, binding every interface
 * as on a real LAN. Their member lists must carry the namespace addresses, whether configured
 * (peer.advertise/api.advertise) or derived from the one non-internal interface.
 */

interface MemberRow { id: string; name: string; peer: string; api: string; state: string; incarnation: number }

const NAMESPACE_PREFIX = `hs-${process.pid}-`
/** A private subnet used by nothing else; all test traffic stays on it (no other route exists). */
const SUBNET_BASE = '10.213.7'
const API_PORT = 7070
const PEER_PORT = 7946
const HOSTS = 3
/** Index of the host whose daemon has no advertise settings and must derive its address. */
const DERIVING_HOST = 2
const CONVERGE_TIMEOUT_MS = 30_000
const STOP_GRACE_MS = 12_000
const KILL_WAIT_MS = 5_000
/** Bound on one member-list read from the switch namespace (a node process start plus 3 fetches). */
const READ_TIMEOUT_MS = 8_000
const FETCH_TIMEOUT_MS = 2_000
/** How much of a daemon's log a failure message shows. */
const LOG_TAIL_CHARS = 3_000
/** Membership timings for tests: the LAN defaults, a little faster. */
const FAST = { probeIntervalMs: 500, probeTimeoutMs: 200, gossipIntervalMs: 100, pushPullIntervalMs: 5000 }

/** Fetches each URL given as an argument and prints [{url, status, body} | {url, error}] as JSON. */
const FETCH_SCRIPT = `
const results = await Promise.all(process.argv.slice(1).map(async (url) => {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(${FETCH_TIMEOUT_MS}) })
    return { url, status: res.status, body: await res.json() }
  } catch (error) {
    return { url, error: String(error) }
  }
}))
process.stdout.write(JSON.stringify(results))
`

interface NamespacedDaemon {
  readonly host: LanHost
  readonly name: string
  readonly process: ChildProcess
  /** Resolves with the exit code (null when killed by a signal) once the daemon has exited. */
  readonly exited: Promise<number | null>
  output(): string
  /** SIGTERM, SIGKILL after STOP_GRACE_MS; resolves once the process is gone (or given up on). */
  stop(): Promise<void>
}

const running = new Set<ChildProcess>()
// Last resort if the test process dies before its teardown: no daemon or namespace outlives it.
process.on('exit', () => {
  for (const child of running) child.kill('SIGKILL')
  try { deleteNamespacesSync(NAMESPACE_PREFIX) } catch { /* nothing more can be done at exit */ }
})

function startInNamespace(host: LanHost, name: string, config: Record<string, unknown>, configDir: string): NamespacedDaemon {
  const configFile = join(configDir, `${name}.json`)
  writeFileSync(configFile, JSON.stringify(config, null, 2))
  const daemon = nodeCommand([daemonBin, '--config', configFile])
  const child = spawnInNamespace(host.namespace, daemon.command, daemon.args, repoRoot)
  running.add(child)
  let output = ''
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => { output += chunk })
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => { output += chunk })
  const exited = new Promise<number | null>(resolve => child.on('exit', code => { running.delete(child); resolve(code) }))
  const gone = (): boolean => child.exitCode !== null || child.signalCode !== null
  return {
    host, name, process: child, exited,
    output: () => output,
    async stop() {
      if (gone()) return
      child.kill('SIGTERM')
      const bounded = (ms: number): Promise<unknown> => Promise.race([exited, new Promise<void>(r => setTimeout(r, ms).unref())])
      await bounded(STOP_GRACE_MS)
      if (gone()) return
      child.kill('SIGKILL')
      await bounded(KILL_WAIT_MS)
    },
  }
}

/** Reads /members of every daemon through its namespace address, from the switch namespace. */
async function readMembers(lan: Lan, daemons: readonly NamespacedDaemon[]): Promise<Map<string, MemberRow[]>> {
  const urls = daemons.map(d => `http://${d.host.address}:${API_PORT}/members`)
  const reader = nodeCommand(['--input-type=module', '-e', FETCH_SCRIPT, ...urls])
  const stdout = await execInNamespace(lan.switchNamespace, reader.command, reader.args, READ_TIMEOUT_MS)
  const results = JSON.parse(stdout) as Array<{ url: string; status?: number; body?: unknown; error?: string }>
  const byName = new Map<string, MemberRow[]>()
  results.forEach((result, i) => {
    const daemon = daemons[i]!
    if (result.status !== 200 || !Array.isArray(result.body)) throw new Error(`${result.url}: ${result.error ?? `status ${result.status}`}`)
    byName.set(daemon.name, result.body as MemberRow[])
  })
  return byName
}

function logs(daemons: readonly NamespacedDaemon[]): string {
  return daemons.map(d => `--- ${d.name} (${d.host.namespace}) ---\n${d.output().slice(-LOG_TAIL_CHARS)}`).join('\n')
}

const unavailable = netnsUnavailableReason(`${NAMESPACE_PREFIX}probe`)

t.test('three nodes in separate network namespaces form a cluster on their LAN addresses', { skip: unavailable ?? false }, async t => {
  const daemons: NamespacedDaemon[] = []
  const tempDirs: string[] = []
  // Registered before anything is created, so a failure anywhere below still cleans up everything.
  t.teardown(async () => {
    await Promise.all(daemons.map(d => d.stop()))
    await deleteNamespaces(NAMESPACE_PREFIX)
    for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true })
  })

  const lan = await createLan({ prefix: NAMESPACE_PREFIX, subnetBase: SUBNET_BASE, hosts: HOSTS })
  const configDir = mkdtempSync(join(tmpdir(), 'hearsay-netns-config-'))
  tempDirs.push(configDir)

  await t.test('no namespace can reach anything outside the private test subnet', async t => {
    for (const namespace of [lan.switchNamespace, ...lan.hosts.map(h => h.namespace)]) {
      const routes = (await routesOf(namespace)).filter(route => !/^(local|broadcast) /.test(route))
      t.ok(routes.length > 0, `${namespace} has its subnet route`)
      for (const route of routes) t.match(route, new RegExp(`^${lan.subnet.replaceAll('.', '\\.')} `), `${namespace}: only the test subnet is routed (${route})`)
    }
  })

  const seed = `${lan.hosts[0]!.address}:${PEER_PORT}`
  lan.hosts.forEach((host, i) => {
    const dataDir = mkdtempSync(join(tmpdir(), 'hearsay-netns-data-'))
    tempDirs.push(dataDir)
    // Without advertise settings the daemon must pick eth0's address: the namespace has only lo and eth0.
    const advertised = i === DERIVING_HOST
      ? {}
      : { api: { advertise: `${host.address}:${API_PORT}` }, peer: { advertise: `${host.address}:${PEER_PORT}` } }
    daemons.push(startInNamespace(host, `lan-${i + 1}`, {
      node: { name: `lan-${i + 1}`, dataDir },
      api: { host: '0.0.0.0', port: API_PORT, ...advertised.api },
      peer: { host: '0.0.0.0', port: PEER_PORT, ...advertised.peer },
      cluster: { seeds: [seed] },
      membership: FAST,
      log: { level: 'info' },
    }, configDir))
  })

  let converged = false
  await t.test('every node lists three alive members', async t => {
    let last: Map<string, MemberRow[]> | undefined
    // Ends the polling below when a daemon exit has already decided the race.
    let abandoned = false
    try {
      await Promise.race([
        waitFor('three alive members on every node', CONVERGE_TIMEOUT_MS, async () => {
          if (abandoned) return true
          last = await readMembers(lan, daemons)
          return [...last.values()].every(rows => rows.length === HOSTS && rows.every(m => m.state === 'alive'))
        }),
        // A daemon that exits (bad config, bind failure) fails the test now rather than at the deadline.
        ...daemons.map(d => d.exited.then(code => { throw new Error(`${d.name} exited with ${String(code)}`) })),
      ])
    } catch (error) {
      abandoned = true
      throw new Error(`${(error as Error).message}\nlast member lists: ${JSON.stringify(last ? [...last] : null)}\n${logs(daemons)}`)
    }
    for (const [name, rows] of await readMembers(lan, daemons)) {
      t.same(rows.map(m => m.name).sort(), daemons.map(d => d.name), `${name} lists every node`)
      t.ok(rows.every(m => m.state === 'alive'), `${name} sees every member alive`)
    }
    converged = true
  })

  await t.test('members carry the namespace addresses, configured or derived, never a wildcard or loopback', { skip: converged ? false : 'the cluster never formed' }, async t => {
    const expected = new Map(daemons.map(d => [d.name, d.host.address]))
    for (const [observer, rows] of await readMembers(lan, daemons)) {
      for (const row of rows) {
        const address = expected.get(row.name)
        t.equal(row.peer, `${address}:${PEER_PORT}`, `${observer} sees ${row.name}'s peer address`)
        t.equal(row.api, `${address}:${API_PORT}`, `${observer} sees ${row.name}'s api address`)
        t.notMatch(`${row.peer} ${row.api}`, /(^|\s)(0\.0\.0\.0|127\.\d+\.\d+\.\d+):/, `${observer}: ${row.name} advertises no wildcard or loopback address`)
      }
    }
    const deriving = daemons[DERIVING_HOST]!
    const self = (await readMembers(lan, [deriving])).get(deriving.name)!.find(m => m.name === deriving.name)
    t.equal(self?.peer, `${deriving.host.address}:${PEER_PORT}`, 'the node without advertise settings derived its namespace address')
  })
})

t.test('no test namespace is left behind', { skip: unavailable ?? false }, async t => {
  t.same(await namespacesWithPrefix(NAMESPACE_PREFIX), [], `no ${NAMESPACE_PREFIX}* namespace remains`)
})
