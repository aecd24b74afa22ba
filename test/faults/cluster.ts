import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { closeSync, mkdirSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { promisify } from 'node:util'
import type { FinalRead } from '../cluster/history.js'
import { deepMerge, nodeArgv, repoRoot } from '../helpers/daemon.js'
import { createLan, deleteNamespaces, deleteNamespacesSync, netnsUnavailableReason, type Lan, type LanHost } from '../helpers/netns.js'
import type { AgentAnswer, AgentRequest } from './agent.js'

/**
 * A cluster of real hearsayd processes, one per network namespace on a private bridge (see
 * test/helpers/netns.ts), with the faults the suite injects: iptables DROP partitions and random
 * loss inside the nodes' namespaces, kill -9 and restart. Every HTTP request goes through one
 * client agent in the switch namespace (agent.ts), which partitions never cut off, so clients
 * reach every node on both sides of a partition, as clients on a LAN would.
 */

const execFileAsync = promisify(execFile)

export const API_PORT = 7070
export const PEER_PORT = 7946
/** Port of the delay proxy in each node's namespace (clusters started with delayProxies). */
export const PROXY_PORT = 7947
/** Bound on one iptables invocation (it waits up to 5 s for the xtables lock itself). */
const IPTABLES_TIMEOUT_MS = 10_000
const STARTUP_TIMEOUT_MS = 30_000
const STOP_GRACE_MS = 8_000
const KILL_WAIT_MS = 5_000
/** Slack on top of an agent request's own timeout before the runner gives up on the answer. */
const AGENT_SLACK_MS = 3_000
const POLL_INTERVAL_MS = 100
const HEALTH_TIMEOUT_MS = 2_000
const SCAN_PAGE_LIMIT = 1000
/** Most scan pages read from one node (1000 keys each): a bound, far above what a scenario writes. */
const MAX_SCAN_PAGES = 100

export interface MemberRow { id: string; name: string; peer: string; api: string; state: string; incarnation: number }

export interface FaultNode {
  readonly index: number
  readonly name: string
  readonly host: LanHost
  /** http://address:port of the client API (reachable from the agent only). */
  readonly url: string
  readonly dataDir: string
  readonly configFile: string
  readonly logFile: string
  process: ChildProcess | undefined
  exited: Promise<void>
}

export interface ClusterOptions {
  /** Namespace name prefix; every namespace this cluster makes starts with it. */
  readonly prefix: string
  /** First three octets of the private /24 the LAN uses. */
  readonly subnetBase: string
  readonly nodes: number
  /** Where config files and node logs go (kept after the run for diagnosis). */
  readonly runDir: string
  readonly daemonBin: string
  /** Config of node `index` (0-based) merged over the addresses, data dir and seeds. */
  readonly config: (index: number) => Record<string, unknown>
  /** Nodes not expected to report /health ok once started (a skewed clock); the rest must. */
  readonly unhealthyAtStart?: readonly number[]
  /**
   * Put a delay proxy (delay-proxy.ts) in front of every node's peer port and advertise it, so
   * setDelay can slow chosen nodes' peer links. Off, peers connect to each other directly.
   */
  readonly delayProxies?: boolean
}

/**
 * Why the fault suite cannot run here, or undefined. Tries the real things: a namespace with a
 * bridge and a veth pair, and an iptables rule with the statistic match inside a namespace.
 */
export function faultsUnavailableReason(prefix: string): string | undefined {
  const netns = netnsUnavailableReason(`${prefix}probe`)
  if (netns !== undefined) return netns
  const probe = `${prefix}iptprobe`
  const run = (args: readonly string[]): void => { execFileSync('ip', args, { stdio: 'pipe', timeout: IPTABLES_TIMEOUT_MS }) }
  try {
    run(['netns', 'add', probe])
    run(['netns', 'exec', probe, 'iptables', '-w', '5', '-A', 'INPUT', '-s', '10.214.0.1', '-m', 'statistic', '--mode', 'random', '--probability', '0.5', '-j', 'DROP'])
    return undefined
  } catch (error) {
    const stderr = String((error as { stderr?: Buffer }).stderr ?? error).trim().split('\n')[0]
    return `iptables (with the statistic match) does not work in a network namespace: ${stderr} (apt-get install -y iptables)`
  } finally {
    try { run(['netns', 'del', probe]) } catch { /* it was never made */ }
  }
}

const liveChildren = new Set<ChildProcess>()
const livePrefixes = new Set<string>()
const liveDataDirs = new Set<string>()
// Last resort when the runner dies before its teardown: no daemon, agent or namespace outlives it.
process.on('exit', () => {
  for (const child of liveChildren) child.kill('SIGKILL')
  for (const prefix of livePrefixes) {
    try { deleteNamespacesSync(prefix) } catch { /* nothing more can be done at exit */ }
  }
  for (const dir of liveDataDirs) rmSync(dir, { recursive: true, force: true })
})

export class FaultCluster {
  readonly nodes: FaultNode[] = []
  private agent: Agent | undefined
  private readonly proxies: ChildProcess[] = []
  /** Client loads running against this cluster: close() stops them before anything else. */
  private readonly loads = new Set<{ stop(): Promise<void> }>()
  private lan: Lan | undefined

  private constructor(private readonly options: ClusterOptions) {}

  /** Builds the LAN, starts every daemon and waits until every node lists every member alive. */
  static async start(options: ClusterOptions): Promise<FaultCluster> {
    const cluster = new FaultCluster(options)
    livePrefixes.add(options.prefix)
    try {
      await cluster.boot()
    } catch (error) {
      await cluster.close()
      throw error
    }
    return cluster
  }

  private async boot(): Promise<void> {
    const { options } = this
    await deleteNamespaces(options.prefix)
    this.lan = await createLan({ prefix: options.prefix, subnetBase: options.subnetBase, hosts: options.nodes })
    this.agent = new Agent(this.lan.switchNamespace)
    mkdirSync(options.runDir, { recursive: true })
    const advertisedPeerPort = options.delayProxies === true ? PROXY_PORT : PEER_PORT
    if (options.delayProxies === true) await Promise.all(this.lan.hosts.map(host => this.startProxy(host)))
    const seed = `${this.lan.hosts[0]!.address}:${advertisedPeerPort}`
    this.lan.hosts.forEach((host, index) => {
      const name = `n${index + 1}`
      const dataDir = mkdtempSync(join(options.runDir, `${name}-data-`))
      liveDataDirs.add(dataDir)
      const configFile = join(options.runDir, `${name}.json`)
      const config = deepMerge({
        node: { name, dataDir },
        api: { host: '0.0.0.0', port: API_PORT, advertise: `${host.address}:${API_PORT}` },
        peer: { host: '0.0.0.0', port: PEER_PORT, advertise: `${host.address}:${advertisedPeerPort}` },
        cluster: { name: 'faults', seeds: index === 0 ? [] : [seed] },
        log: { level: 'info' },
      }, options.config(index))
      writeFileSync(configFile, JSON.stringify(config, null, 2))
      const node: FaultNode = {
        index, name, host, url: `http://${host.address}:${API_PORT}`, dataDir, configFile,
        logFile: join(options.runDir, `${name}.log`), process: undefined, exited: Promise.resolve(),
      }
      this.nodes.push(node)
      this.spawnDaemon(node)
    })
    await this.waitUntil('every node healthy and listing every member alive', STARTUP_TIMEOUT_MS, async () => {
      return (await this.serving()) && (await this.allAlive())
    })
  }

  private spawnDaemon(node: FaultNode): void {
    const log = openSync(node.logFile, 'a')
    const child = spawn('ip', ['netns', 'exec', node.host.namespace, ...nodeArgv([this.options.daemonBin, '--config', node.configFile])], {
      cwd: repoRoot, stdio: ['ignore', log, log],
    })
    closeSync(log)
    liveChildren.add(child)
    node.process = child
    node.exited = new Promise(resolve => child.on('exit', () => { liveChildren.delete(child); resolve() }))
  }

  private async startProxy(host: LanHost): Promise<void> {
    const child = spawn('ip', ['netns', 'exec', host.namespace, ...nodeArgv([join(repoRoot, 'dist/test/faults/delay-proxy.js'),
      '0.0.0.0', String(PROXY_PORT), '127.0.0.1', String(PEER_PORT), host.address])], { cwd: repoRoot, stdio: ['pipe', 'pipe', 'inherit'] })
    liveChildren.add(child)
    child.on('exit', () => liveChildren.delete(child))
    this.proxies.push(child)
    const listening = new Promise<void>((resolve, reject) => {
      createInterface({ input: child.stdout! }).on('line', line => { if (line === 'listening') resolve() })
      child.on('exit', code => reject(new Error(`the delay proxy in ${host.namespace} exited with ${String(code)}`)))
    })
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`the delay proxy in ${host.namespace} did not start within ${STARTUP_TIMEOUT_MS} ms`)), STARTUP_TIMEOUT_MS)
    })
    try {
      await Promise.race([listening, timeout])
    } finally {
      clearTimeout(timer)
    }
  }

  /** Delays every peer link of the given nodes by delayMs ± jitterMs each way ([] or 0: no delay). */
  setDelay(slow: readonly number[], delayMs: number, jitterMs = 0): void {
    if (this.proxies.length === 0) throw new Error('setDelay needs a cluster started with delayProxies')
    const change = JSON.stringify({ slow: slow.map(i => this.nodes[i]!.host.address), delayMs, jitterMs })
    for (const proxy of this.proxies) proxy.stdin!.write(`${change}\n`)
  }

  /** One HTTP request from the switch namespace; never rejects for the network's sake. */
  async request(method: AgentRequest['method'], url: string, timeoutMs: number, body?: string): Promise<AgentAnswer> {
    if (this.agent === undefined) throw new Error('the cluster is not started')
    return this.agent.send({ method, url, timeoutMs, ...(body !== undefined ? { body } : {}) })
  }

  /** /health status of a node ('ok', 'repairing', …), or 'down' when it does not answer. */
  async health(index: number): Promise<string> {
    const answer = await this.request('GET', `${this.nodes[index]!.url}/health`, HEALTH_TIMEOUT_MS)
    if (answer.body === undefined) return 'down'
    try {
      return (JSON.parse(answer.body) as { status?: string }).status ?? `http ${answer.status}`
    } catch {
      return `http ${answer.status}`
    }
  }

  /** Whether every node answers /health ok, except those expected not to (unhealthyAtStart), which must answer at all. */
  async serving(): Promise<boolean> {
    const exempt = this.options.unhealthyAtStart ?? []
    const healthy = await Promise.all(this.nodes.map(n => this.health(n.index)))
    return healthy.every((h, i) => h === 'ok' || (exempt.includes(i) && h !== 'down'))
  }

  async members(index: number): Promise<MemberRow[] | undefined> {
    const answer = await this.request('GET', `${this.nodes[index]!.url}/members`, HEALTH_TIMEOUT_MS)
    return answer.status === 200 && answer.body !== undefined ? JSON.parse(answer.body) as MemberRow[] : undefined
  }

  async status(index: number): Promise<Record<string, unknown> | undefined> {
    const answer = await this.request('GET', `${this.nodes[index]!.url}/status`, HEALTH_TIMEOUT_MS)
    return answer.status === 200 && answer.body !== undefined ? JSON.parse(answer.body) as Record<string, unknown> : undefined
  }

  /** One Prometheus sample's value summed over its label sets (0 when absent), or undefined if unreachable. */
  async metric(index: number, name: string, labelFilter = ''): Promise<number | undefined> {
    const answer = await this.request('GET', `${this.nodes[index]!.url}/metrics`, HEALTH_TIMEOUT_MS)
    if (answer.status !== 200 || answer.body === undefined) return undefined
    let sum = 0
    for (const line of answer.body.split('\n')) {
      if (!line.startsWith(name) || (line[name.length] !== ' ' && line[name.length] !== '{') || !line.includes(labelFilter)) continue
      sum += Number(line.slice(line.lastIndexOf(' ') + 1))
    }
    return sum
  }

  /** Whether every running node lists every node alive. */
  async allAlive(): Promise<boolean> {
    const lists = await Promise.all(this.nodes.map(n => this.members(n.index)))
    return lists.every(rows => rows !== undefined && this.nodes.every(n => rows.some(m => m.name === n.name && m.state === 'alive')))
  }

  /** Whether every node of `observers` lists every node of `subjects` dead (or suspect, with `orSuspect`). */
  async listsDead(observers: readonly number[], subjects: readonly number[]): Promise<boolean> {
    const lists = await Promise.all(observers.map(i => this.members(i)))
    return lists.every(rows => rows !== undefined && subjects.every(s => rows.some(m => m.name === this.nodes[s]!.name && m.state === 'dead')))
  }

  /**
   * The live records under `prefix` as node `index` holds them (a local scan: every scenario
   * replicates every key on every node), or undefined when the node does not answer.
   */
  async scan(index: number, prefix: string): Promise<Map<string, FinalRead> | undefined> {
    const records = new Map<string, FinalRead>()
    let after = ''
    for (let page = 0; page < MAX_SCAN_PAGES; page++) {
      const url = `${this.nodes[index]!.url}/kv?prefix=${encodeURIComponent(prefix)}&limit=${SCAN_PAGE_LIMIT}&after=${encodeURIComponent(after)}`
      const answer = await this.request('GET', url, 10_000)
      if (answer.status !== 200 || answer.body === undefined) return undefined
      const body = JSON.parse(answer.body) as { items: Array<{ key: string; value: string; version: string }>; next?: string | null }
      for (const item of body.items) records.set(item.key, { value: Buffer.from(item.value, 'base64').toString('utf8'), version: item.version })
      if (body.next === undefined || body.next === null || body.next === '') return records
      after = body.next
    }
    throw new Error(`node ${index + 1} has more than ${MAX_SCAN_PAGES * SCAN_PAGE_LIMIT} keys under ${prefix}`)
  }

  /** Cuts every node of one group off from every node of the others (both directions, iptables DROP). */
  async partition(groups: ReadonlyArray<readonly number[]>): Promise<void> {
    const groupOf = new Map<number, number>()
    groups.forEach((group, g) => { for (const i of group) groupOf.set(i, g) })
    await Promise.all(this.nodes.map(async node => {
      const mine = groupOf.get(node.index)
      for (const other of this.nodes) {
        const theirs = groupOf.get(other.index)
        if (mine === undefined || theirs === undefined || mine === theirs) continue
        await this.iptables(node, ['-A', 'INPUT', '-s', other.host.address, '-j', 'DROP'])
        await this.iptables(node, ['-A', 'OUTPUT', '-d', other.host.address, '-j', 'DROP'])
      }
    }))
  }

  /** Drops each packet between the given nodes and their peers with this probability (iptables statistic). */
  async addLoss(indices: readonly number[], probability: number): Promise<void> {
    await Promise.all(indices.map(async i => {
      const node = this.nodes[i]!
      for (const other of this.nodes) {
        if (other.index === i) continue
        await this.iptables(node, ['-A', 'INPUT', '-s', other.host.address, '-m', 'statistic', '--mode', 'random', '--probability', String(probability), '-j', 'DROP'])
      }
    }))
  }

  /** Removes every rule: full connectivity again. */
  async heal(): Promise<void> {
    await Promise.all(this.nodes.map(node => this.iptables(node, ['-F'])))
  }

  private async iptables(node: FaultNode, args: readonly string[]): Promise<void> {
    await execFileAsync('ip', ['netns', 'exec', node.host.namespace, 'iptables', '-w', '5', ...args], { timeout: IPTABLES_TIMEOUT_MS })
  }

  /** kill -9: no leave, no flush beyond what LMDB already committed. */
  async kill9(index: number): Promise<void> {
    const node = this.nodes[index]!
    node.process?.kill('SIGKILL')
    await bounded(node.exited, KILL_WAIT_MS)
  }

  /** Starts a stopped node again on its data dir; resolves once its API answers /health at all. */
  async restart(index: number): Promise<void> {
    const node = this.nodes[index]!
    this.spawnDaemon(node)
    await this.waitUntil(`${node.name} answering /health after restart`, STARTUP_TIMEOUT_MS, async () => (await this.health(index)) !== 'down')
  }

  /** Polls `condition` every `intervalMs` until it holds; throws after timeoutMs. Resolves with the ms it took. */
  async waitUntil(what: string, timeoutMs: number, condition: () => Promise<boolean>, intervalMs = POLL_INTERVAL_MS): Promise<number> {
    const startedAtMs = Date.now()
    for (;;) {
      const exited = this.nodes.find(n => n.process !== undefined && n.process.exitCode !== null && n.process.signalCode === null)
      if (exited !== undefined) throw new Error(`${exited.name} exited with ${exited.process!.exitCode} while waiting for ${what} (log: ${exited.logFile})`)
      if (await condition()) return Date.now() - startedAtMs
      if (Date.now() - startedAtMs > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
      await sleep(intervalMs)
    }
  }

  /** Registers a client load so that close() stops it even when a scenario broke off early. */
  track(load: { stop(): Promise<void> }): void {
    this.loads.add(load)
  }

  /** Stops every load, daemon (SIGTERM, then SIGKILL) and the agent, and deletes the namespaces and data dirs. */
  async close(): Promise<void> {
    await Promise.all([...this.loads].map(load => load.stop()))
    await Promise.all(this.nodes.map(async node => {
      const child = node.process
      if (child === undefined || child.exitCode !== null || child.signalCode !== null) return
      child.kill('SIGTERM')
      await bounded(node.exited, STOP_GRACE_MS)
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL')
        await bounded(node.exited, KILL_WAIT_MS)
      }
    }))
    await this.agent?.close()
    for (const proxy of this.proxies) {
      proxy.stdin!.end()
      if (proxy.exitCode === null && proxy.signalCode === null) proxy.kill('SIGKILL')
    }
    await deleteNamespaces(this.options.prefix)
    livePrefixes.delete(this.options.prefix)
    for (const node of this.nodes) {
      rmSync(node.dataDir, { recursive: true, force: true })
      liveDataDirs.delete(node.dataDir)
    }
  }
}

/** The runner's side of agent.ts: requests by id over the agent's stdin and stdout. */
class Agent {
  private readonly child: ChildProcess
  private readonly pending = new Map<number, (answer: AgentAnswer) => void>()
  private nextId = 1
  private readonly exited: Promise<void>

  constructor(namespace: string) {
    this.child = spawn('ip', ['netns', 'exec', namespace, ...nodeArgv([join(repoRoot, 'dist/test/faults/agent.js')])], {
      cwd: repoRoot, stdio: ['pipe', 'pipe', 'inherit'],
    })
    liveChildren.add(this.child)
    this.exited = new Promise(resolve => this.child.on('exit', () => {
      liveChildren.delete(this.child)
      for (const [id, resolveAnswer] of this.pending) resolveAnswer({ id, error: 'the client agent exited' })
      this.pending.clear()
      resolve()
    }))
    // An agent that died mid-write answers every pending request with an error (above), never a crash here.
    this.child.stdin!.on('error', () => {})
    createInterface({ input: this.child.stdout! }).on('line', line => {
      const answer = JSON.parse(line) as AgentAnswer
      const resolveAnswer = this.pending.get(answer.id)
      this.pending.delete(answer.id)
      resolveAnswer?.(answer)
    })
  }

  send(request: Omit<AgentRequest, 'id'>): Promise<AgentAnswer> {
    const id = this.nextId++
    if (this.child.exitCode !== null || this.child.signalCode !== null || this.child.stdin!.writableEnded) {
      return Promise.resolve({ id, error: 'the client agent has exited' })
    }
    return new Promise(resolve => {
      const timer = setTimeout(() => {
        this.pending.delete(id)
        resolve({ id, error: `no answer from the client agent within ${request.timeoutMs + AGENT_SLACK_MS} ms` })
      }, request.timeoutMs + AGENT_SLACK_MS)
      this.pending.set(id, answer => { clearTimeout(timer); resolve(answer) })
      this.child.stdin!.write(`${JSON.stringify({ id, ...request })}\n`)
    })
  }

  async close(): Promise<void> {
    this.child.stdin!.end()
    await bounded(this.exited, KILL_WAIT_MS)
    if (this.child.exitCode === null && this.child.signalCode === null) {
      this.child.kill('SIGKILL')
      await bounded(this.exited, KILL_WAIT_MS)
    }
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise(resolve => setTimeout(resolve, ms))
}

async function bounded(promise: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined
  await Promise.race([promise, new Promise<void>(resolve => { timer = setTimeout(resolve, ms) })])
  clearTimeout(timer)
}

