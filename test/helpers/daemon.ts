import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import http from 'node:http'
import https from 'node:https'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createCa, createCert } from '../../lib/tls/create.js'
import { nodeCommand } from './node-command.js'

export { nodeArgv, nodeCommand, scriptCommand } from './node-command.js'

const here = dirname(fileURLToPath(import.meta.url))
/** Repository root, found from this file whether it runs from test/ or dist/test/. */
export const repoRoot = resolve(here, existsSync(resolve(here, '../../package.json')) ? '../..' : '../../..')
export const daemonBin = join(repoRoot, 'dist/bin/hearsayd.js')
export const cliBin = join(repoRoot, 'dist/bin/hearsay.js')

const STARTUP_TIMEOUT_MS = 20_000
const STOP_TIMEOUT_MS = 15_000
/**
 * Bound on a graceful stop when a test is done with its cluster (teardown), before SIGKILL: a
 * node whose peers are all leaving at the same moment can spend most of shutdown.timeoutMs
 * (10 s) on it, and no test looks at how a teardown ended.
 */
const TEARDOWN_STOP_TIMEOUT_MS = 3000
const POLL_INTERVAL_MS = 50
/** One /health poll while a daemon starts; a listener that never answers must not outlast the deadline. */
const HEALTH_POLL_TIMEOUT_MS = 2000
/**
 * Starts of a daemon whose ports startDaemon picked, when another process took one of them between
 * the pick and the daemon's bind (a port is free only "a moment ago"; tests run side by side).
 */
const PORT_PICK_ATTEMPTS = 3

/** A loopback port that was free a moment ago (the OS picks it; tiny race accepted in tests). */
export async function freePort(): Promise<number> {
  const server = net.createServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as net.AddressInfo
  server.close()
  await once(server, 'close')
  return port
}

/**
 * `count` loopback ports that were free a moment ago, all different: held open together before
 * any is let go, which daemons started side by side need (separate freePort() calls could be
 * handed a port another daemon has not bound yet).
 */
export async function freePorts(count: number): Promise<number[]> {
  const servers = Array.from({ length: count }, () => net.createServer().listen(0, '127.0.0.1'))
  try {
    await Promise.all(servers.map((server) => server.listening ? undefined : once(server, 'listening')))
    return servers.map((server) => (server.address() as net.AddressInfo).port)
  } finally {
    await Promise.all(servers.map((server) => new Promise((resolveClose) => server.close(resolveClose))))
  }
}

export function tempDir(prefix = 'hearsay-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix))
}

export interface DaemonOptions {
  /** Config object written to the daemon's config file (merged over loopback ports and dataDir). */
  readonly config?: Record<string, unknown>
  /** Reuse a data dir (restart); a new temp dir otherwise. */
  readonly dataDir?: string
  /** Reuse ports (restart). */
  readonly apiPort?: number
  readonly peerPort?: number
  readonly env?: NodeJS.ProcessEnv
  /** Wait for /health 200 (default true). */
  readonly waitHealthy?: boolean
  /** With `tls.api mutual`: the client certificate `daemon.fetch` presents. */
  readonly clientCertificate?: { readonly certPath: string; readonly keyPath: string }
}

export interface Daemon {
  /** http://… or, with tls.api on or mutual, https://… */
  readonly url: string
  /** tls.ca of its config, when TLS is on for the API: what a client must trust. */
  readonly caPath: string | undefined
  /**
   * fetch() against this daemon's API (`path` like '/health'), trusting its tls.ca when the API
   * is HTTPS (Node's global fetch cannot be given a CA without a dispatcher from undici).
   */
  fetch(path: string, init?: RequestOptions): Promise<Response>
  readonly apiPort: number
  readonly peerPort: number
  readonly dataDir: string
  readonly configFile: string
  readonly process: ChildProcess
  /** Everything the daemon printed so far. */
  output(): string
  /** Send a signal and wait (bounded, SIGKILL after `timeoutMs`) for exit; resolves to the exit code or signal. */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }>
}

const running = new Set<ChildProcess>()
/**
 * Directories startDaemon made (a data dir the caller did not pass, and every config dir). A test
 * may restart a daemon on the data dir of one it stopped, so they go when the test process ends,
 * not at stop(): a test file leaves neither a process nor a directory behind.
 */
const madeDirs = new Set<string>()
process.on('exit', () => {
  for (const child of running) child.kill('SIGKILL')
  // A daemon killed just now may still be writing into its dir; what it leaves must not turn a
  // test file that passed into one that exits with an error.
  for (const dir of madeDirs) {
    try { rmSync(dir, { recursive: true, force: true, maxRetries: 3 }) } catch { /* left in the temp dir */ }
  }
})

/** The daemon exited at start-up because a port in its config was taken (its fatal error names which). */
class PortTakenError extends Error {
  constructor(message: string, readonly setting: 'api.port' | 'peer.port') {
    super(message)
  }
}

/**
 * Starts a daemon on the ports given, or on loopback ports it picks. A picked port that another
 * process took before the daemon bound it is picked again (PORT_PICK_ATTEMPTS starts at most); a
 * port the caller gave is the caller's to have kept free.
 */
export async function startDaemon(options: DaemonOptions = {}): Promise<Daemon> {
  if (!existsSync(daemonBin)) throw new Error(`${daemonBin} is missing: run npm run build first (npm test does)`)
  for (let attempt = 1; ; attempt++) {
    const [apiPort, peerPort] = options.apiPort !== undefined && options.peerPort !== undefined ? [] : await freePorts(2)
    try {
      return await startDaemonOn({ ...options, apiPort: options.apiPort ?? apiPort!, peerPort: options.peerPort ?? peerPort! })
    } catch (error) {
      const picked = error instanceof PortTakenError && options[error.setting === 'api.port' ? 'apiPort' : 'peerPort'] === undefined
      if (!picked || attempt >= PORT_PICK_ATTEMPTS) throw error
    }
  }
}

async function startDaemonOn(options: DaemonOptions & { readonly apiPort: number; readonly peerPort: number }): Promise<Daemon> {
  const { apiPort, peerPort } = options
  const dataDir = options.dataDir ?? tempDir()
  if (options.dataDir === undefined) madeDirs.add(dataDir)
  const configDir = tempDir('hearsay-config-')
  madeDirs.add(configDir)
  const configFile = join(configDir, 'hearsay.json')
  const base = {
    node: { name: `test-${apiPort}`, dataDir },
    api: { host: '127.0.0.1', port: apiPort },
    peer: { host: '127.0.0.1', port: peerPort },
    log: { level: 'info' },
  }
  const config = deepMerge(base, options.config ?? {})
  writeFileSync(configFile, JSON.stringify(config, null, 2))
  const tls = isPlainObject(config.tls) ? config.tls : {}
  const apiTls = tls.api === 'on' || tls.api === 'mutual'
  const caPath = apiTls && typeof tls.ca === 'string' ? resolve(configDir, tls.ca) : undefined
  const trust = caPath === undefined ? undefined : {
    ca: readFileSync(caPath),
    ...(options.clientCertificate === undefined ? {} : { cert: readFileSync(options.clientCertificate.certPath), key: readFileSync(options.clientCertificate.keyPath) }),
  }
  // Kept-alive connections: a TLS handshake per request would dominate a test's requests.
  const client: HttpsClient | undefined = trust === undefined ? undefined : { ...trust, agent: new https.Agent({ keepAlive: true, ...trust }) }
  const command = nodeCommand([daemonBin, '--config', configFile])
  const child = spawn(command.command, command.args, {
    env: { ...process.env, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  running.add(child)
  let output = ''
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => { output += chunk })
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => { output += chunk })
  // Set once it answered /health, and once stop() was called: a daemon that served and then exited
  // with an error by itself crashed, and the test that meets the consequence should say why.
  let served = false
  let stopping = false
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolveExit) => {
    child.on('exit', (code, signal) => {
      running.delete(child)
      if (served && !stopping && code !== null && code !== 0) reportCrash(`hearsayd on api port ${apiPort}`, code, output)
      resolveExit({ code, signal })
    })
  })
  const url = `${apiTls ? 'https' : 'http'}://127.0.0.1:${apiPort}`
  const daemon: Daemon = {
    url, caPath, apiPort, peerPort, dataDir, configFile, process: child,
    fetch: (path, init) => client === undefined ? fetch(`${url}${path}`, init) : httpsFetch(`${url}${path}`, client, init),
    output: () => output,
    async stop(signal: NodeJS.Signals = 'SIGTERM', timeoutMs = STOP_TIMEOUT_MS) {
      stopping = true
      if (child.exitCode === null && child.signalCode === null) child.kill(signal)
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
      try { return await exited } finally { clearTimeout(timer); client?.agent?.destroy(); rmSync(configDir, { recursive: true, force: true }) }
    },
  }
  if (options.waitHealthy !== false) {
    try {
      await waitHealthy(daemon, child, () => output)
      served = true
    } catch (error) {
      // Leave nothing behind: the process, its config, and a data dir this call created.
      await daemon.stop('SIGKILL')
      if (options.dataDir === undefined) rmSync(dataDir, { recursive: true, force: true })
      throw error
    }
  }
  return daemon
}

/** Lines of a crashed daemon's output reportCrash prints. */
const CRASH_REPORT_LINES = 40

/**
 * Prints a daemon's end to stderr as TAP comments, beginning with a line .ci/run's failure summary
 * looks for: a test that fails because a daemon died then comes with the daemon's last words.
 */
function reportCrash(what: string, code: number, output: string): void {
  const tail = output.trimEnd().split('\n').slice(-CRASH_REPORT_LINES)
  process.stderr.write(`# ${what} exited on its own with code ${code}; its last output:\n${tail.map((line) => `#   ${line}`).join('\n')}\n`)
}

async function waitHealthy(daemon: Daemon, child: ChildProcess, output: () => string): Promise<void> {
  const deadline = Date.now() + STARTUP_TIMEOUT_MS
  for (;;) {
    if (child.exitCode !== null) {
      const message = `hearsayd exited with ${child.exitCode} before becoming healthy:\n${output()}`
      const taken = /is already in use; choose another (api\.port|peer\.port)/.exec(output())
      throw taken === null ? new Error(message) : new PortTakenError(message, taken[1] as 'api.port' | 'peer.port')
    }
    try {
      const res = await daemon.fetch('/health', { signal: AbortSignal.timeout(HEALTH_POLL_TIMEOUT_MS) })
      if (res.status === 200) return
    } catch { /* not listening yet */ }
    if (Date.now() > deadline) throw new Error(`hearsayd did not become healthy within ${STARTUP_TIMEOUT_MS} ms:\n${output()}`)
    await new Promise((r) => setTimeout(r, POLL_INTERVAL_MS))
  }
}

/** Runs a built program to completion with bounded time; returns its exit code and output. */
export async function runProgram(bin: string, args: readonly string[], options: { env?: NodeJS.ProcessEnv; input?: Buffer | string; timeoutMs?: number } = {}): Promise<{ code: number | null; stdout: Buffer; stderr: string }> {
  const command = nodeCommand([bin, ...args])
  const child = spawn(command.command, command.args, { env: { ...process.env, ...options.env }, stdio: ['pipe', 'pipe', 'pipe'] })
  running.add(child)
  const stdout: Buffer[] = []
  let stderr = ''
  child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk))
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk })
  child.stdin.end(options.input ?? '')
  const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 20_000)
  const [code] = await once(child, 'exit') as [number | null]
  clearTimeout(timer)
  running.delete(child)
  return { code, stdout: Buffer.concat(stdout), stderr }
}

/** `b` over `a`, objects merged key by key (as config files layer). */
export function deepMerge(a: Record<string, unknown>, b: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...a }
  for (const [key, value] of Object.entries(b)) {
    const prev = out[key]
    out[key] = isPlainObject(prev) && isPlainObject(value) ? deepMerge(prev, value) : value
  }
  return out
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

export interface Cluster {
  readonly nodes: Daemon[]
  /** Stops every node still running (bounded) and removes the data dirs. */
  stop(): Promise<void>
}

/**
 * Starts `size` daemons on free loopback ports; every node after the first joins through the
 * first one's peer address. `config(i)` adds settings per node. The first node starts alone (the
 * others' first join attempt finds it listening, not a retry a second later); the others start
 * together, each a process of its own, as a cluster's machines boot.
 */
export async function startCluster(size: number, config: (index: number) => Record<string, unknown> = () => ({})): Promise<Cluster> {
  const nodes: Daemon[] = []
  const stop = async (): Promise<void> => {
    await Promise.all(nodes.map(async (node) => {
      await node.stop('SIGTERM', TEARDOWN_STOP_TIMEOUT_MS)
      rmSync(node.dataDir, { recursive: true, force: true })
    }))
  }
  let seedPeerPort = 0
  const start = (i: number): Promise<Daemon> => startDaemon({
    config: deepMerge({ node: { name: `node-${i + 1}` }, cluster: { seeds: i === 0 ? [] : [`127.0.0.1:${seedPeerPort}`] } }, config(i)),
  })
  try {
    if (size > 0) {
      nodes.push(await start(0))
      seedPeerPort = nodes[0]!.peerPort
    }
    // Every start is awaited, the failed ones too, so stop() below finds each node that did start.
    const rest = await Promise.allSettled(Array.from({ length: size - 1 }, (_, i) => start(i + 1)))
    for (const result of rest) if (result.status === 'fulfilled') nodes.push(result.value)
    const failed = rest.find((result): result is PromiseRejectedResult => result.status === 'rejected')
    if (failed !== undefined) throw failed.reason
  } catch (error) {
    await stop()
    throw error
  }
  return { nodes, stop }
}

/** Polls `check` every POLL_INTERVAL_MS until it returns true or `timeoutMs` passes. */
export async function waitFor(what: string, timeoutMs: number, check: () => Promise<boolean> | boolean): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    try {
      if (await check()) return
    } catch { /* not yet */ }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await new Promise((r) => setTimeout(r, POLL_INTERVAL_MS * 2))
  }
}

export interface RequestOptions {
  readonly method?: string
  readonly headers?: Record<string, string>
  readonly body?: string | Uint8Array
  readonly signal?: AbortSignal
}

/** What an HTTPS client trusts and presents. */
export interface HttpsClient {
  readonly ca: Buffer
  readonly cert?: Buffer
  readonly key?: Buffer
  /** Reuses connections (give it the same ca, cert and key); a new connection per request without. */
  readonly agent?: https.Agent
}

const HTTPS_REQUEST_TIMEOUT_MS = 10_000

/** A fetch() over node:https with our own CA (and client certificate), answering a standard Response. */
export async function httpsFetch(url: string, client: HttpsClient, init: RequestOptions = {}): Promise<Response> {
  return await new Promise<Response>((resolveResponse, reject) => {
    const request = https.request(url, {
      method: init.method ?? 'GET', headers: init.headers, ca: client.ca, cert: client.cert, key: client.key,
      signal: init.signal ?? AbortSignal.timeout(HTTPS_REQUEST_TIMEOUT_MS), agent: client.agent ?? false,
    }, (response: http.IncomingMessage) => {
      const chunks: Buffer[] = []
      response.on('data', (chunk: Buffer) => chunks.push(chunk))
      response.on('error', reject)
      response.on('end', () => {
        const headers = new Headers()
        for (const [name, value] of Object.entries(response.headers)) {
          if (value !== undefined) headers.set(name, Array.isArray(value) ? value.join(', ') : value)
        }
        const status = response.statusCode ?? 0
        const body = status === 204 || status === 304 ? null : Buffer.concat(chunks)
        resolveResponse(new Response(body, { status, headers }))
      })
    })
    request.on('error', reject)
    request.end(init.body)
  })
}

/** Certificates for a test cluster: one CA and one certificate per node, made by lib/tls/create.ts. */
export interface TlsFiles {
  readonly dir: string
  readonly caPath: string
  readonly certs: Readonly<Record<string, { readonly certPath: string; readonly keyPath: string; readonly serial: string }>>
}

/**
 * A CA in `dir` (a new temp dir by default) and a certificate for each name (CN and DNS SAN the
 * name, IP SAN 127.0.0.1); remove `dir` when done.
 */
export async function makeTlsFiles(names: readonly string[], dir = tempDir('hearsay-tls-')): Promise<TlsFiles> {
  const ca = await createCa({ dir })
  const certs: Record<string, { certPath: string; keyPath: string; serial: string }> = {}
  for (const name of names) certs[name] = await createCert({ caDir: dir, name, ips: ['127.0.0.1'] })
  return { dir, caPath: ca.certPath, certs }
}

/** The `tls` config section for node `name` with the files of `makeTlsFiles`. */
export function tlsSettings(files: TlsFiles, name: string, modes: { readonly peer?: 'on' | 'off'; readonly api?: 'off' | 'on' | 'mutual' } = {}): Record<string, unknown> {
  const cert = files.certs[name]
  if (cert === undefined) throw new Error(`no certificate was made for ${name}`)
  return { tls: { ca: files.caPath, cert: cert.certPath, key: cert.keyPath, peer: modes.peer ?? 'on', api: modes.api ?? 'off' } }
}
