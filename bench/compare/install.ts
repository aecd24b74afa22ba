import { execFileSync, spawnSync } from 'node:child_process'
import { accessSync, constants, existsSync } from 'node:fs'
import net from 'node:net'
import { delimiter, join } from 'node:path'

/** A server binary the harness needs and the Debian package that provides it. */
interface Needed {
  readonly binary: string
  readonly debianPackage: string
  /** The init script the package installs, and the port its own service would listen on. */
  readonly service: string
  readonly defaultPort: number
}

const NEEDED: readonly Needed[] = [
  { binary: 'etcd', debianPackage: 'etcd-server', service: 'etcd', defaultPort: 2379 },
  { binary: 'redis-server', debianPackage: 'redis-server', service: 'redis-server', defaultPort: 6379 },
]
const APT_TIMEOUT_MS = 10 * 60 * 1000
const SERVICE_STOP_TIMEOUT_MS = 30_000
const PORT_PROBE_TIMEOUT_MS = 1_000

export interface ServerBinaries {
  readonly etcd: string
  readonly redisServer: string
}

/**
 * Finds etcd and redis-server, installing the Debian packages when one is missing. A package's
 * postinst may start its own service; the harness never uses it, so when this call installed
 * the package and that service is now listening, it is stopped again.
 */
export async function ensureServerBinaries(log: (line: string) => void): Promise<ServerBinaries> {
  const missing = NEEDED.filter(needed => findOnPath(needed.binary) === undefined)
  if (missing.length > 0) {
    const packages = missing.map(needed => needed.debianPackage)
    const command = `apt-get install -y ${packages.join(' ')}`
    if (process.getuid?.() !== 0) {
      throw new Error(`${missing.map(needed => needed.binary).join(' and ')} not found; installing needs root: run \`sudo ${command}\` and try again`)
    }
    log(`installing ${packages.join(', ')} (${command})`)
    const result = spawnSync('apt-get', ['install', '-y', ...packages], {
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
      stdio: ['ignore', 'inherit', 'inherit'],
      timeout: APT_TIMEOUT_MS,
    })
    if (result.error !== undefined) throw new Error(`${command} could not run: ${result.error.message}`)
    if (result.status !== 0) throw new Error(`${command} failed with exit code ${result.status}; see its output above`)
    for (const needed of missing) await stopPackageService(needed, log)
  }
  const located = NEEDED.map(needed => {
    const path = findOnPath(needed.binary)
    if (path === undefined) throw new Error(`${needed.binary} is still not on PATH after installing ${needed.debianPackage}; check that package's file list (dpkg -L ${needed.debianPackage})`)
    return path
  })
  return { etcd: located[0] as string, redisServer: located[1] as string }
}

function findOnPath(binary: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir === '') continue
    const candidate = join(dir, binary)
    try {
      accessSync(candidate, constants.X_OK)
      return candidate
    } catch {
      // not in this directory
    }
  }
  return undefined
}

async function stopPackageService(needed: Needed, log: (line: string) => void): Promise<void> {
  if (!await listening(needed.defaultPort)) return
  log(`the ${needed.debianPackage} package started its own ${needed.service} service; stopping it (the harness runs its own servers)`)
  // systemd only when it is PID 1; containers have the package's init script instead.
  const [command, args]: [string, string[]] = existsSync('/run/systemd/system')
    ? ['systemctl', ['stop', needed.service]]
    : ['service', [needed.service, 'stop']]
  try {
    execFileSync(command, args, { stdio: 'ignore', timeout: SERVICE_STOP_TIMEOUT_MS })
  } catch (error) {
    log(`could not stop ${needed.service} (${command} ${args.join(' ')}): ${error instanceof Error ? error.message : String(error)}; stop it by hand`)
  }
}

function listening(port: number): Promise<boolean> {
  return new Promise(resolve => {
    const socket = net.connect({ host: '127.0.0.1', port })
    const done = (result: boolean): void => { socket.destroy(); resolve(result) }
    socket.setTimeout(PORT_PROBE_TIMEOUT_MS, () => done(false))
    socket.once('connect', () => done(true))
    socket.once('error', () => done(false))
  })
}
