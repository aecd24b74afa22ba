import { execFileSync } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { errorLabel as hearsayErrorLabel } from '../../../lib/bench/error-label.js'
import { HearsayClient, HearsayClientError } from '../../../lib/client/client.js'
import { freeLoopbackPorts } from '../ports.js'
import type { ServerProcess } from '../processes.js'
import { attempt, CLUSTER_READY_TIMEOUT_MS, OPERATION_TIMEOUT_MS, SERVERS_PER_SYSTEM, WATCH_PREFIX, type RunningSystem, type StartContext, type SystemDriver, type WatchDriver } from '../system.js'
import { waitUntil } from '../wait.js'

/** The repository root: the nearest ancestor of this file (src or dist) with a package.json. */
function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url))
  while (!existsSync(join(dir, 'package.json'))) {
    const parent = dirname(dir)
    if (parent === dir) throw new Error('cannot find the hearsay repository root (package.json) above the harness')
    dir = parent
  }
  return dir
}

/**
 * ` (at abc1234)` so numbers can be tied to code; empty outside git. Read-only on purpose:
 * `describe --dirty` and `status` may rewrite the index while someone else commits.
 */
function gitRevision(): string {
  try {
    const revision = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: repoRoot(), encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim()
    return revision === '' ? '' : ` (at ${revision})`
  } catch {
    return ''
  }
}

export const hearsay: SystemDriver = {
  name: 'hearsay',
  writeOperation: 'PUT W=quorum',
  readOperation: 'GET R=1',
  watchOperation: 'client.watch (SSE)',
  casOperation: 'PUT ?ifVersion=last seen (CASPaxos)',
  ackPromise: 'W=quorum (2 of 3) replicas committed the write to LMDB with fsync before the ack; R=1 reads answer from the coordinating node\'s store',
  serverNames: nodeNames(),
  tlsSetup: 'tls.peer on (wss:// peer links, mutual TLS, certificates naming the nodes) and tls.api on (HTTPS and wss:// streams; the client verifies the nodes against the CA)',
  version() {
    const pkg: unknown = JSON.parse(readFileSync(join(repoRoot(), 'package.json'), 'utf8'))
    const version = typeof pkg === 'object' && pkg !== null && 'version' in pkg ? String(pkg.version) : 'unknown'
    return `hearsay ${version}${gitRevision()}`
  },
  start,
}

function nodeNames(): string[] {
  return Array.from({ length: SERVERS_PER_SYSTEM }, (_, i) => `hearsay-${i + 1}`)
}

async function start({ group, concurrency, workload, tls }: StartContext): Promise<RunningSystem> {
  const daemonBin = join(repoRoot(), 'dist/bin/hearsayd.js')
  if (!existsSync(daemonBin)) throw new Error(`${daemonBin} is missing: run npm run build first (npm run bench:compare does)`)
  const ports = await freeLoopbackPorts(2 * SERVERS_PER_SYSTEM)
  const seed = `127.0.0.1:${ports[SERVERS_PER_SYSTEM] as number}`
  const servers: ServerProcess[] = []
  const urls: string[] = []
  for (let i = 0; i < SERVERS_PER_SYSTEM; i++) {
    const name = nodeNames()[i] as string
    const apiPort = ports[i] as number
    const peerPort = ports[SERVERS_PER_SYSTEM + i] as number
    const dir = group.tempDir(`compare-${name}-`)
    const dataDir = join(dir, 'data')
    mkdirSync(dataDir)
    const configFile = join(dir, 'hearsay.json')
    writeFileSync(configFile, JSON.stringify({
      node: { name, dataDir },
      api: { host: '127.0.0.1', port: apiPort },
      peer: { host: '127.0.0.1', port: peerPort },
      cluster: { name: 'compare', seeds: [seed] },
      replication: { factor: 3, writeQuorum: 'quorum', readQuorum: 1 },
      log: { level: 'warn' },
      ...(tls === undefined ? {} : {
        tls: { ca: tls.caPath, cert: tls.certificateFor(name).certPath, key: tls.certificateFor(name).keyPath, peer: 'on', api: 'on' },
      }),
    }))
    servers.push(group.start(name, process.execPath, [daemonBin, '--config', configFile]))
    urls.push(`${tls === undefined ? 'http' : 'https'}://127.0.0.1:${apiPort}`)
  }
  // One client per node: a client sticks to the node that answered last, so a shared one would
  // send everything to one node.
  const socketsPerNode = Math.ceil(concurrency / SERVERS_PER_SYSTEM)
  const clientTls = tls === undefined ? {} : { tls: { ca: readFileSync(tls.caPath) } }
  const clients = urls.map(url => new HearsayClient({ nodes: [url], timeoutMs: OPERATION_TIMEOUT_MS, maxSockets: socketsPerNode, ...clientTls }))
  try {
    await Promise.all(clients.map((client, i) => waitUntil(
      `${servers[i]?.name ?? 'hearsay'} sees ${SERVERS_PER_SYSTEM} alive members`,
      CLUSTER_READY_TIMEOUT_MS,
      async () => {
        await client.health()
        const members = await client.members()
        return members.filter(member => member.state === 'alive').length === SERVERS_PER_SYSTEM
      },
      () => servers[i]?.death(),
    )))
  } catch (error) {
    for (const client of clients) client.close()
    throw error
  }
  const clientFor = (worker: number): HearsayClient => clients[worker % clients.length] as HearsayClient
  /** The version of each CAS key at its last answer ('absent' before the first write). */
  const versions = new Map<string, string>()
  return {
    servers,
    write: worker => attempt('put', async () => {
      await clientFor(worker).put(workload.nextWriteKey(), workload.value, { w: 'quorum' })
      return undefined
    }, hearsayErrorLabel),
    read: worker => attempt('get', async () => {
      const reply = await clientFor(worker).get(workload.randomReadKey(), { r: 1 })
      return reply === undefined ? 'not_found' : undefined
    }, hearsayErrorLabel),
    watch: hearsayWatch(clients, urls, workload),
    cas: worker => attempt('cas', async () => {
      // Each worker's own key through its own node (the one-round-trip path keeps a proposer on a key).
      const key = workload.casKey(worker)
      try {
        const reply = await clientFor(worker).cas(key, workload.value, { ifVersion: versions.get(key) ?? 'absent' })
        versions.set(key, reply.version)
        return undefined
      } catch (error) {
        if (!(error instanceof HearsayClientError) || error.status !== 409) throw error
        const current = (error.body.current as { version?: unknown } | undefined)?.version
        versions.set(key, typeof current === 'string' ? current : 'absent')
        return 'conflict'
      }
    }, hearsayErrorLabel),
    async close() { for (const client of clients) client.close() },
  }
}

/** How long the watchers may take to open (each delivers the start marker). */
const WATCH_OPEN_TIMEOUT_MS = 30_000

/**
 * Watchers through client.watch (one SSE stream each), spread over the nodes; a change is named
 * by its version, which the put's reply carries too. They open from the version of a start
 * marker and count as open once they delivered it.
 */
function hearsayWatch(clients: readonly HearsayClient[], urls: readonly string[], workload: StartContext['workload']): WatchDriver {
  /** One per watcher: a signal shared by a hundred streams would collect a hundred listeners. */
  const aborts: AbortController[] = []
  const watchClients: HearsayClient[] = []
  const draining: Promise<void>[] = []
  return {
    async open(count, onEvent) {
      const marker = `${WATCH_PREFIX}watch-start`
      const since = (await (clients[0] as HearsayClient).put(marker, 'go', { w: 'quorum' })).version
      let opened = 0
      let failure: unknown
      for (let i = 0; i < count; i++) {
        const first = i % urls.length
        const client = new HearsayClient({ nodes: [...urls.slice(first), ...urls.slice(0, first)], timeoutMs: OPERATION_TIMEOUT_MS })
        watchClients.push(client)
        const abort = new AbortController()
        aborts.push(abort)
        const watch = client.watch(WATCH_PREFIX, { since, signal: abort.signal })
        draining.push((async () => {
          for await (const change of watch) {
            if (change.key === marker) opened++
            else onEvent(change.version)
          }
        })().catch((error: unknown) => { failure ??= error }))
      }
      await waitUntil(`${count} hearsay watchers open`, WATCH_OPEN_TIMEOUT_MS, async () => opened >= count,
        () => failure === undefined ? undefined : `a watcher failed: ${failure instanceof Error ? failure.message : String(failure)}`)
    },
    write: (worker, onAck) => attempt('put', async () => {
      const reply = await (clients[worker % clients.length] as HearsayClient).put(workload.nextWriteKey(), workload.value, { w: 'quorum' })
      onAck(reply.version)
      return undefined
    }, hearsayErrorLabel),
    async close() {
      for (const abort of aborts) abort.abort()
      await Promise.all(draining)
      for (const client of watchClients) client.close()
    },
  }
}
