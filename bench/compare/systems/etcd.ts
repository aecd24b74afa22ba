import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import https from 'node:https'
import { Etcd3, type Watcher } from 'etcd3'
import type { CompareTls } from '../certificates.js'
import { freeLoopbackPorts } from '../ports.js'
import type { ServerProcess } from '../processes.js'
import { attempt, CLUSTER_READY_TIMEOUT_MS, OPERATION_TIMEOUT_MS, SERVERS_PER_SYSTEM, WATCH_PREFIX, type RunningSystem, type StartContext, type SystemDriver, type WatchDriver } from '../system.js'
import { waitUntil } from '../wait.js'

const HEALTH_TIMEOUT_MS = 2_000

export const etcd: SystemDriver = {
  name: 'etcd',
  writeOperation: 'put',
  readOperation: 'serializable range get',
  serverNames: memberNames(),
  tlsSetup: 'peer TLS with client-certificate auth (--peer-cert-file, --peer-key-file, --peer-trusted-ca-file, --peer-client-cert-auth) and TLS on the client port (--cert-file, --key-file, --trusted-ca-file, which makes etcd require a client certificate too); the etcd3 client verifies the members against the CA and presents a client certificate',
  watchOperation: 'prefix watch',
  casOperation: 'txn: mod_revision == last seen → put',
  ackPromise: 'a put is acknowledged once a Raft majority (2 of 3 members) has fsynced it to its WAL and the leader applied it; a serializable get answers from the contacted member\'s local state, which may lag',
  version(binaries) {
    const text = execFileSync(binaries.etcd, ['--version'], { encoding: 'utf8' })
    return `etcd ${/etcd Version:\s*(\S+)/.exec(text)?.[1] ?? 'unknown'}`
  },
  start,
}

function memberNames(): string[] {
  return Array.from({ length: SERVERS_PER_SYSTEM }, (_, i) => `etcd-${i + 1}`)
}

/** etcd's flags for TLS on the peer and client ports, with client-certificate auth between peers. */
function tlsFlags(tls: CompareTls, name: string): string[] {
  const { certPath, keyPath } = tls.certificateFor(name)
  return [
    '--peer-cert-file', certPath, '--peer-key-file', keyPath, '--peer-trusted-ca-file', tls.caPath, '--peer-client-cert-auth',
    '--cert-file', certPath, '--key-file', keyPath, '--trusted-ca-file', tls.caPath,
  ]
}

async function start({ group, binaries, workload, tls }: StartContext): Promise<RunningSystem> {
  const ports = await freeLoopbackPorts(2 * SERVERS_PER_SYSTEM)
  const scheme = tls === undefined ? 'http' : 'https'
  const members = memberNames().map((name, i) => ({
    name,
    clientUrl: `${scheme}://127.0.0.1:${ports[i] as number}`,
    peerUrl: `${scheme}://127.0.0.1:${ports[SERVERS_PER_SYSTEM + i] as number}`,
  }))
  // etcd requires a client certificate whenever --trusted-ca-file is set.
  const clientTls = tls === undefined ? undefined : { ca: readFileSync(tls.caPath), cert: readFileSync(tls.client.certPath), key: readFileSync(tls.client.keyPath) }
  const initialCluster = members.map(member => `${member.name}=${member.peerUrl}`).join(',')
  const token = `compare-${process.pid}-${Date.now()}`
  const servers: ServerProcess[] = members.map(member => group.start(member.name, binaries.etcd, [
    '--name', member.name,
    '--data-dir', group.tempDir(`compare-${member.name}-`),
    '--listen-client-urls', member.clientUrl,
    '--advertise-client-urls', member.clientUrl,
    '--listen-peer-urls', member.peerUrl,
    '--initial-advertise-peer-urls', member.peerUrl,
    '--initial-cluster', initialCluster,
    '--initial-cluster-state', 'new',
    '--initial-cluster-token', token,
    '--logger', 'zap',
    '--log-level', 'warn',
    ...(tls === undefined ? [] : tlsFlags(tls, member.name)),
  ]))
  // /health is true once the member sees a leader, i.e. the cluster can commit.
  await Promise.all(members.map((member, i) => waitUntil(
    `${member.name} reports healthy`,
    CLUSTER_READY_TIMEOUT_MS,
    async () => {
      const answer = await getJson(`${member.clientUrl}/health`, clientTls)
      return answer.ok && typeof answer.body === 'object' && answer.body !== null && 'health' in answer.body && answer.body.health === 'true'
    },
    () => servers[i]?.death(),
  )))
  // One client (one gRPC HTTP/2 channel) per member; workers spread over them as over the
  // hearsay nodes. Followers forward puts to the leader, as etcd clients expect.
  const clients = members.map(member => new Etcd3({
    hosts: member.clientUrl,
    ...(clientTls === undefined ? {} : { credentials: { rootCertificate: clientTls.ca, certChain: clientTls.cert, privateKey: clientTls.key } }),
    defaultCallOptions: context => context.isStream ? {} : { deadline: Date.now() + OPERATION_TIMEOUT_MS },
  }))
  const clientFor = (worker: number): Etcd3 => clients[worker % clients.length] as Etcd3
  /** The mod_revision of each CAS key at its last answer (absent: never written). */
  const modRevisions = new Map<string, string>()
  return {
    servers,
    write: worker => attempt('put', async () => {
      await clientFor(worker).put(workload.nextWriteKey()).value(workload.value)
      return undefined
    }),
    read: worker => attempt('get', async () => {
      const value = await clientFor(worker).get(workload.randomReadKey()).serializable(true).buffer()
      return value === null ? 'not_found' : undefined
    }),
    watch: etcdWatch(clients, workload),
    cas: worker => attempt('cas', async () => {
      // Each worker's own key, compared on its mod_revision as etcd's own lock and election
      // recipes do; a key not written yet is compared on create_revision 0 (absent).
      const key = workload.casKey(worker)
      const client = clientFor(worker)
      const seen = modRevisions.get(key)
      const compare = seen === undefined ? client.if(key, 'Create', '==', 0) : client.if(key, 'Mod', '==', seen)
      const result = await compare.then(client.put(key).value(workload.value)).else(client.get(key)).commit()
      if (result.succeeded) {
        modRevisions.set(key, String(result.header.revision))
        return undefined
      }
      const current = result.responses[0]?.response_range?.kvs[0]?.mod_revision
      if (current === undefined) modRevisions.delete(key)
      else modRevisions.set(key, String(current))
      return 'conflict'
    }),
    async close() { for (const client of clients) client.close() },
  }
}

/** GET a JSON document over http, or https with these CA and client certificate, within HEALTH_TIMEOUT_MS. */
async function getJson(url: string, tls: { ca: Buffer; cert: Buffer; key: Buffer } | undefined): Promise<{ ok: boolean; body: unknown }> {
  if (tls === undefined) {
    const answer = await fetch(url, { signal: AbortSignal.timeout(HEALTH_TIMEOUT_MS) })
    return { ok: answer.ok, body: await answer.json() }
  }
  return new Promise((resolve, reject) => {
    const request = https.get(url, { ...tls, timeout: HEALTH_TIMEOUT_MS }, response => {
      let text = ''
      response.setEncoding('utf8')
      response.on('data', chunk => { text += chunk })
      response.on('end', () => {
        try {
          resolve({ ok: response.statusCode === 200, body: JSON.parse(text) })
        } catch (error) {
          reject(error)
        }
      })
    })
    request.on('timeout', () => request.destroy(new Error(`no answer from ${url} within ${HEALTH_TIMEOUT_MS} ms`)))
    request.on('error', reject)
  })
}

/**
 * Watchers spread over the members' clients (etcd3 multiplexes a client's watchers on one gRPC
 * stream, as etcd's own clients do); a change is named by its revision, which the put's response
 * header carries too.
 */
function etcdWatch(clients: readonly Etcd3[], workload: StartContext['workload']): WatchDriver {
  const watchers: Watcher[] = []
  return {
    async open(count, onEvent) {
      for (let i = 0; i < count; i++) {
        const watcher = await (clients[i % clients.length] as Etcd3).watch().prefix(WATCH_PREFIX).create()
        watcher.on('put', kv => onEvent(kv.mod_revision))
        watchers.push(watcher)
      }
    },
    write: (worker, onAck) => attempt('put', async () => {
      const reply = await (clients[worker % clients.length] as Etcd3).put(workload.nextWriteKey()).value(workload.value).exec()
      onAck(reply.header.revision)
      return undefined
    }),
    async close() { await Promise.all(watchers.map(watcher => watcher.cancel())) },
  }
}
