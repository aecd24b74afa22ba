import { execFileSync } from 'node:child_process'
import { Etcd3 } from 'etcd3'
import { freeLoopbackPorts } from '../ports.js'
import type { ServerProcess } from '../processes.js'
import { attempt, CLUSTER_READY_TIMEOUT_MS, OPERATION_TIMEOUT_MS, SERVERS_PER_SYSTEM, type RunningSystem, type StartContext, type SystemDriver } from '../system.js'
import { waitUntil } from '../wait.js'

const HEALTH_TIMEOUT_MS = 2_000

export const etcd: SystemDriver = {
  name: 'etcd',
  writeOperation: 'put',
  readOperation: 'serializable range get',
  casOperation: 'txn: mod_revision == last seen → put',
  ackPromise: 'a put is acknowledged once a Raft majority (2 of 3 members) has fsynced it to its WAL and the leader applied it; a serializable get answers from the contacted member\'s local state, which may lag',
  version(binaries) {
    const text = execFileSync(binaries.etcd, ['--version'], { encoding: 'utf8' })
    return `etcd ${/etcd Version:\s*(\S+)/.exec(text)?.[1] ?? 'unknown'}`
  },
  start,
}

async function start({ group, binaries, workload }: StartContext): Promise<RunningSystem> {
  const ports = await freeLoopbackPorts(2 * SERVERS_PER_SYSTEM)
  const members = Array.from({ length: SERVERS_PER_SYSTEM }, (_, i) => ({
    name: `etcd-${i + 1}`,
    clientUrl: `http://127.0.0.1:${ports[i] as number}`,
    peerUrl: `http://127.0.0.1:${ports[SERVERS_PER_SYSTEM + i] as number}`,
  }))
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
  ]))
  // /health is true once the member sees a leader, i.e. the cluster can commit.
  await Promise.all(members.map((member, i) => waitUntil(
    `${member.name} reports healthy`,
    CLUSTER_READY_TIMEOUT_MS,
    async () => {
      const answer = await fetch(`${member.clientUrl}/health`, { signal: AbortSignal.timeout(HEALTH_TIMEOUT_MS) })
      const body: unknown = await answer.json()
      return answer.ok && typeof body === 'object' && body !== null && 'health' in body && body.health === 'true'
    },
    () => servers[i]?.death(),
  )))
  // One client (one gRPC HTTP/2 channel) per member; workers spread over them as over the
  // hearsay nodes. Followers forward puts to the leader, as etcd clients expect.
  const clients = members.map(member => new Etcd3({
    hosts: member.clientUrl,
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
