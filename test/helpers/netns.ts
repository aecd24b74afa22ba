import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { promisify } from 'node:util'

/**
 * A private LAN built from Linux network namespaces, for cluster tests that need real, distinct
 * host addresses. Every host namespace has `lo` and one veth (`eth0`) on a bridge that lives in
 * its own "switch" namespace, so nothing is added to the root namespace and no packet can leave
 * the test subnet: there is no route but the subnet's own, and IPv6 is off (no link-local chatter).
 */

const execFileAsync = promisify(execFile)

/** Bound on one `ip` invocation; they normally take milliseconds. */
const IP_COMMAND_TIMEOUT_MS = 10_000
/** Prefix length of the test subnet. */
const SUBNET_PREFIX_BITS = 24
/** Host number of the switch namespace's own address (hosts are numbered from 1). */
const SWITCH_HOST_NUMBER = 254
const BRIDGE_NAME = 'br0'
const HOST_INTERFACE_NAME = 'eth0'

export interface LanHost {
  readonly namespace: string
  /** The IPv4 address of this host's `eth0`. */
  readonly address: string
}

export interface Lan {
  readonly hosts: readonly LanHost[]
  /** The namespace holding the bridge; it has an address on the subnet too, to act as a client. */
  readonly switchNamespace: string
  readonly switchAddress: string
  /** `a.b.c.0/24`: the only destination any namespace can reach. */
  readonly subnet: string
}

async function ip(args: readonly string[]): Promise<string> {
  const { stdout } = await execFileAsync('ip', args, { timeout: IP_COMMAND_TIMEOUT_MS })
  return stdout
}

/**
 * Why namespace tests cannot run here, or undefined when they can. Tries the real thing (a
 * namespace holding a bridge and a veth pair) rather than guessing from the uid, since containers
 * may be root without the capabilities.
 */
export function netnsUnavailableReason(probeNamespace: string): string | undefined {
  if (process.platform !== 'linux') return 'network namespaces need Linux'
  if (process.getuid?.() !== 0) return 'network namespaces need root (ip netns add)'
  const run = (args: readonly string[]): void => {
    execFileSync('ip', args, { stdio: 'pipe', timeout: IP_COMMAND_TIMEOUT_MS })
  }
  try {
    run(['netns', 'add', probeNamespace])
  } catch (error) {
    return `ip netns add is not available: ${firstLine(error)}`
  }
  try {
    run(['-n', probeNamespace, 'link', 'add', 'probe-br', 'type', 'bridge'])
    run(['-n', probeNamespace, 'link', 'add', 'probe-a', 'type', 'veth', 'peer', 'name', 'probe-b'])
    return undefined
  } catch (error) {
    return `bridges or veth pairs are not available in a network namespace: ${firstLine(error)}`
  } finally {
    try { run(['netns', 'del', probeNamespace]) } catch { /* reported by namespacesWithPrefix checks */ }
  }
}

/** Names of the existing namespaces that start with `prefix`. */
export async function namespacesWithPrefix(prefix: string): Promise<string[]> {
  return parseNamespaceList(await ip(['netns', 'list'])).filter(name => name.startsWith(prefix))
}

/**
 * Deletes every namespace starting with `prefix`; the veths and bridge inside go with them. Safe
 * to call whether or not createLan finished, which is what makes it a teardown.
 */
export async function deleteNamespaces(prefix: string): Promise<void> {
  for (const name of await namespacesWithPrefix(prefix)) await ip(['netns', 'del', name])
}

/** deleteNamespaces for a process 'exit' handler, where nothing asynchronous runs. */
export function deleteNamespacesSync(prefix: string): void {
  const list = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8', timeout: IP_COMMAND_TIMEOUT_MS })
  for (const name of parseNamespaceList(list).filter(n => n.startsWith(prefix))) {
    execFileSync('ip', ['netns', 'del', name], { stdio: 'pipe', timeout: IP_COMMAND_TIMEOUT_MS })
  }
}

/**
 * Creates `${prefix}sw` (the switch) and `${prefix}1` … `${prefix}N` (the hosts) on
 * `${subnetBase}.0/24`, host i at `${subnetBase}.i`. On failure, leaves cleanup to
 * deleteNamespaces(prefix).
 */
export async function createLan(options: { prefix: string; subnetBase: string; hosts: number }): Promise<Lan> {
  const { prefix, subnetBase } = options
  const switchNamespace = `${prefix}sw`
  const switchAddress = `${subnetBase}.${SWITCH_HOST_NUMBER}`
  await addIsolatedNamespace(switchNamespace)
  await ip(['-n', switchNamespace, 'link', 'add', BRIDGE_NAME, 'type', 'bridge'])
  await ip(['-n', switchNamespace, 'addr', 'add', `${switchAddress}/${SUBNET_PREFIX_BITS}`, 'dev', BRIDGE_NAME])
  await ip(['-n', switchNamespace, 'link', 'set', BRIDGE_NAME, 'up'])

  const hosts: LanHost[] = []
  for (let i = 1; i <= options.hosts; i++) {
    const namespace = `${prefix}${i}`
    const address = `${subnetBase}.${i}`
    const switchPort = `port${i}`
    await addIsolatedNamespace(namespace)
    // Both ends are created inside namespaces, so the root namespace never sees them.
    await ip(['-n', switchNamespace, 'link', 'add', switchPort, 'type', 'veth', 'peer', 'name', HOST_INTERFACE_NAME, 'netns', namespace])
    await ip(['-n', switchNamespace, 'link', 'set', switchPort, 'master', BRIDGE_NAME])
    await ip(['-n', switchNamespace, 'link', 'set', switchPort, 'up'])
    await ip(['-n', namespace, 'addr', 'add', `${address}/${SUBNET_PREFIX_BITS}`, 'dev', HOST_INTERFACE_NAME])
    await ip(['-n', namespace, 'link', 'set', HOST_INTERFACE_NAME, 'up'])
    hosts.push({ namespace, address })
  }
  return { hosts, switchNamespace, switchAddress, subnet: `${subnetBase}.0/${SUBNET_PREFIX_BITS}` }
}

/** The IPv4 routes of a namespace, one per line as `ip route` prints them. */
export async function routesOf(namespace: string): Promise<string[]> {
  const [v4, v6] = await Promise.all([ip(['-n', namespace, '-4', 'route', 'show', 'table', 'all']), ip(['-n', namespace, '-6', 'route', 'show', 'table', 'all'])])
  return `${v4}\n${v6}`.split('\n').map(line => line.trim()).filter(line => line !== '')
}

/** Runs a program inside a namespace to completion, bounded by `timeoutMs`; returns stdout. */
export async function execInNamespace(namespace: string, command: string, args: readonly string[], timeoutMs: number): Promise<string> {
  const { stdout } = await execFileAsync('ip', ['netns', 'exec', namespace, command, ...args], { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 })
  return stdout
}

/**
 * Starts a long-running program inside a namespace. `ip netns exec` execs the program in place
 * (no fork), so the returned child's pid is the program's and signals reach it directly.
 */
export function spawnInNamespace(namespace: string, command: string, args: readonly string[], cwd: string): ChildProcess {
  return spawn('ip', ['netns', 'exec', namespace, command, ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'] })
}

async function addIsolatedNamespace(namespace: string): Promise<void> {
  await ip(['netns', 'add', namespace])
  await ip(['-n', namespace, 'link', 'set', 'lo', 'up'])
  // Before any interface exists, so no link-local IPv6 address or router solicitation ever appears.
  await execInNamespace(namespace, 'sysctl', ['-q', '-w', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1'], IP_COMMAND_TIMEOUT_MS)
}

function parseNamespaceList(list: string): string[] {
  // Lines look like `hs-123-1 (id: 0)` or just `hs-123-1`.
  return list.split('\n').map(line => line.trim().split(/\s+/)[0] ?? '').filter(name => name !== '')
}

function firstLine(error: unknown): string {
  const stderr = (error as { stderr?: Buffer | string }).stderr
  const text = stderr !== undefined && String(stderr).trim() !== '' ? String(stderr) : String(error)
  return text.trim().split('\n')[0] ?? ''
}
