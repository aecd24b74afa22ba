import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { Redis } from 'ioredis'
import type { CompareTls } from '../certificates.js'
import { freeLoopbackPorts } from '../ports.js'
import type { ServerProcess } from '../processes.js'
import { attempt, CLUSTER_READY_TIMEOUT_MS, OPERATION_TIMEOUT_MS, SERVERS_PER_SYSTEM, type RunningSystem, type StartContext, type SystemDriver } from '../system.js'
import { waitUntil } from '../wait.js'

/** Replicas that must confirm each write (`WAIT 1 0`): one besides the primary, like W=2 of 3. */
const WAIT_REPLICAS = 1
const REPLICA_COUNT = SERVERS_PER_SYSTEM - 1

export const redis: SystemDriver = {
  name: 'redis',
  writeOperation: `SET + WAIT ${WAIT_REPLICAS} 0`,
  readOperation: 'GET',
  serverNames: serverNames(),
  tlsSetup: 'tls-port only (port 0), TLS replication (tls-replication yes) and clients over TLS verifying the servers against the CA (tls-auth-clients no, like tls.api on)',
  ackPromise: `SET + WAIT ${WAIT_REPLICAS} 0 returns once ${WAIT_REPLICAS} replica has the write in memory; the primary appends it to its AOF and fsyncs once a second (appendfsync everysec), so an ack does not mean on disk anywhere; GET answers from the server asked (primary or a replica, which may lag)`,
  version(binaries) {
    const text = execFileSync(binaries.redisServer, ['--version'], { encoding: 'utf8' })
    return `redis ${/v=(\S+)/.exec(text)?.[1] ?? 'unknown'}`
  },
  start,
}

function serverNames(): string[] {
  return Array.from({ length: SERVERS_PER_SYSTEM }, (_, i) => i === 0 ? 'redis-primary' : `redis-replica-${i}`)
}

/** Redis's TLS flags: the TLS port replaces the plain one, and replication runs over TLS too. */
function tlsFlags(tls: CompareTls, name: string, port: number): string[] {
  const { certPath, keyPath } = tls.certificateFor(name)
  return [
    '--port', '0', '--tls-port', String(port),
    '--tls-cert-file', certPath, '--tls-key-file', keyPath, '--tls-ca-cert-file', tls.caPath,
    '--tls-auth-clients', 'no', '--tls-replication', 'yes',
  ]
}

function connect(port: number, autoPipelining: boolean, ca: Buffer | undefined): Redis {
  const client = new Redis({
    host: '127.0.0.1',
    port,
    ...(ca === undefined ? {} : { tls: { ca } }),
    lazyConnect: true,
    commandTimeout: OPERATION_TIMEOUT_MS,
    enableAutoPipelining: autoPipelining,
  })
  return quiet(client)
}

/**
 * ioredis also emits connection errors as events and prints them when nobody listens; the
 * harness sees them where they matter, as failed commands counted in the report.
 */
function quiet(client: Redis): Redis {
  client.on('error', () => {})
  return client
}

async function start({ group, binaries, workload, concurrency, tls }: StartContext): Promise<RunningSystem> {
  const ports = await freeLoopbackPorts(SERVERS_PER_SYSTEM)
  const primaryPort = ports[0] as number
  const ca = tls === undefined ? undefined : readFileSync(tls.caPath)
  const names = serverNames()
  const servers: ServerProcess[] = ports.map((port, i) => group.start(names[i] as string, binaries.redisServer, [
    ...(tls === undefined ? ['--port', String(port)] : tlsFlags(tls, names[i] as string, port)),
    '--bind', '127.0.0.1',
    '--dir', group.tempDir(`compare-redis-${i + 1}-`),
    '--appendonly', 'yes',
    '--appendfsync', 'everysec',
    '--save', '',
    ...(i === 0 ? [] : ['--replicaof', '127.0.0.1', String(primaryPort)]),
  ]))
  const anyDeath = (): string | undefined => servers.map(server => server.death()).find(death => death !== undefined)
  await waitUntil(`redis primary has ${REPLICA_COUNT} online replicas`, CLUSTER_READY_TIMEOUT_MS, async () => {
    const probe = quiet(new Redis({ host: '127.0.0.1', port: primaryPort, lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0, ...(ca === undefined ? {} : { tls: { ca } }) }))
    try {
      await probe.connect()
      const info = await probe.info('replication')
      return (info.match(/^slave\d+:.*state=online/gm) ?? []).length === REPLICA_COUNT
    } finally {
      probe.disconnect()
    }
  }, anyDeath)

  // WAIT counts the writes of its own connection, so every writer needs a connection of its
  // own; SET and WAIT go out pipelined, one round trip, as a careful client would send them.
  const writers = Array.from({ length: concurrency }, () => connect(primaryPort, false, ca))
  // Reads spread over the primary and the replicas like the R=1 and serializable reads of the
  // others, one auto-pipelined connection per server (ioredis batches the commands of a tick).
  const readers = ports.map(port => connect(port, true, ca))
  const all = [...writers, ...readers]
  try {
    await Promise.all(all.map(client => client.connect()))
  } catch (error) {
    for (const client of all) client.disconnect()
    throw error
  }
  return {
    servers,
    write: worker => attempt('put', async () => {
      const writer = writers[worker % writers.length] as Redis
      const replies = await writer.pipeline().set(workload.nextWriteKey(), workload.value).wait(WAIT_REPLICAS, 0).exec()
      const [setReply, waitReply] = replies ?? []
      if (setReply?.[0] != null || waitReply?.[0] != null) throw setReply?.[0] ?? waitReply?.[0]
      return typeof waitReply?.[1] === 'number' && waitReply[1] >= WAIT_REPLICAS ? undefined : 'not_replicated'
    }),
    read: worker => attempt('get', async () => {
      const reader = readers[worker % readers.length] as Redis
      return await reader.getBuffer(workload.randomReadKey()) === null ? 'not_found' : undefined
    }),
    async close() { for (const client of all) client.disconnect() },
  }
}
