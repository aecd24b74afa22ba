import { readFileSync } from 'node:fs'
import { networkInterfaces } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { ConfigError } from './config/error.js'
import { loadConfig, type LoadedConfig } from './config/load.js'
import { maskSecrets } from './config/mask.js'
import { diffReloadable } from './config/reload.js'
import { createLogger, type Logger } from './log/logger.js'
import { checkTlsConfiguration } from './tls/check.js'
import { HearsayNode } from './node.js'
import { restoreSnapshot } from './store/snapshot.js'

const USAGE = `usage: hearsayd [--config FILE]... [--check | --print-config | --restore SNAPSHOT]

  --config FILE     configuration file (repeatable; later files override earlier ones;
                    conf.d/*.json beside the first file and HEARSAY_* variables apply on top)
  --check           validate the configuration, the TLS files and secret files, and exit (0 = valid)
  --print-config    print the merged configuration with secrets masked and exit
  --restore FILE    fill the (empty) node.dataDir from a snapshot (hearsay snapshot save) and exit;
                    the node keeps the snapshot's node id: start it as that node
  --version         print the version and exit
  --help            print this help and exit`

/** Exit codes: 0 ok, 1 runtime failure, 2 usage or configuration error (like nginx -t). */
const EXIT_OK = 0
const EXIT_FAILURE = 1
const EXIT_USAGE = 2

export function packageVersion(): string {
  // dist/lib/daemon.js → ../../package.json; lib/daemon.ts under tap → ../package.json
  const here = dirname(fileURLToPath(import.meta.url))
  for (const candidate of [join(here, '../../package.json'), join(here, '../package.json')]) {
    try {
      const pkg = JSON.parse(readFileSync(candidate, 'utf8')) as { name?: string; version?: string }
      if (pkg.name === 'hearsay' && typeof pkg.version === 'string') return pkg.version
    } catch { /* try the next location */ }
  }
  return 'unknown'
}

/** The `hearsayd` program: parse arguments, load config, run the node until a signal stops it. */
export async function runDaemon(argv: readonly string[], env: NodeJS.ProcessEnv): Promise<number> {
  let args
  try {
    args = parseArgs({
      args: [...argv],
      options: {
        config: { type: 'string', multiple: true },
        check: { type: 'boolean' },
        'print-config': { type: 'boolean' },
        restore: { type: 'string' },
        version: { type: 'boolean' },
        help: { type: 'boolean' },
      },
      strict: true,
      allowPositionals: false,
    }).values
  } catch (error) {
    process.stderr.write(`hearsayd: ${(error as Error).message}; see hearsayd --help\n`)
    return EXIT_USAGE
  }
  if (args.help === true) { process.stdout.write(`${USAGE}\n`); return EXIT_OK }
  if (args.version === true) { process.stdout.write(`hearsayd ${packageVersion()}\n`); return EXIT_OK }

  const files = args.config ?? []
  let loaded: LoadedConfig
  try {
    loaded = loadConfig({ files, env })
  } catch (error) {
    process.stderr.write(`hearsayd: ${error instanceof ConfigError ? error.message : `config error: ${(error as Error).message}`}\n`)
    return EXIT_USAGE
  }
  if (args.check === true) {
    // One line per problem, so a fix for one does not hide the next.
    const problems = checkTlsConfiguration(loaded.config, networkInterfaces(), Date.now())
    for (const problem of problems) process.stderr.write(`hearsayd: ${problem}\n`)
    if (problems.length > 0) return EXIT_USAGE
    process.stdout.write(`hearsayd: configuration ok (${loaded.files.length === 0 ? 'defaults and environment only' : loaded.files.join(', ')})\n`)
    return EXIT_OK
  }
  if (args['print-config'] === true) {
    process.stdout.write(`${JSON.stringify(maskSecrets(loaded.config), null, 2)}\n`)
    return EXIT_OK
  }
  if (args.restore !== undefined) return restore(args.restore, loaded)
  return serve(loaded, files, env)
}

async function restore(file: string, loaded: LoadedConfig): Promise<number> {
  const { config } = loaded
  try {
    const header = await restoreSnapshot(file, { dataDir: config.node.dataDir, partitions: config.partitions, hearsayVersion: packageVersion() })
    process.stdout.write(`hearsayd: restored ${config.node.dataDir} from ${file}: node ${header.nodeName} (${header.nodeId}), ${header.records['kv'] ?? 0} records, taken ${new Date(header.createdAtMs).toISOString()} by hearsay ${header.hearsayVersion}; start hearsayd to rejoin as that node (anti-entropy brings in what changed since)\n`)
    return EXIT_OK
  } catch (error) {
    process.stderr.write(`hearsayd: restore refused: ${(error as Error).message}\n`)
    return EXIT_FAILURE
  }
}

async function serve(loaded: LoadedConfig, files: readonly string[], env: NodeJS.ProcessEnv): Promise<number> {
  const { config } = loaded
  const log = createLogger(config.log.level, { nodeName: config.node.name })
  for (const name of loaded.unknownEnv) log.warn({ variable: name }, 'environment variable names no setting; ignored (typo?)')
  if (loaded.files.length === 0) log.warn('no --config given: running on defaults and HEARSAY_* variables')

  let node: HearsayNode
  try {
    node = await HearsayNode.start(config, log, { version: packageVersion() })
  } catch (error) {
    const message = (error as Error).message
    log.fatal({ err: error }, `could not start: ${message}`)
    process.stderr.write(`hearsayd: ${message}\n`)
    return EXIT_FAILURE
  }

  // Outside input never reaches here (every handler catches), so an escaped exception is a bug:
  // log it loudly and exit non-zero for systemd to restart us, rather than limp on.
  const onFatal = (error: unknown): void => {
    log.fatal({ err: error }, 'unexpected error; exiting')
    process.exit(EXIT_FAILURE)
  }
  process.on('uncaughtException', onFatal)
  process.on('unhandledRejection', onFatal)

  let current = loaded.config
  process.on('SIGHUP', () => {
    // Certificates first and on their own: a config file mid-edit must not block a rotation.
    node.reloadTls()
    try {
      const next = loadConfig({ files, env }).config
      const diff = diffReloadable(current, next)
      node.reload(next, diff.reloadable)
      current = next
      log.info({ applied: diff.reloadable, restartNeeded: diff.restartNeeded }, diff.reloadable.length + diff.restartNeeded.length === 0 ? 'configuration reloaded; nothing changed' : 'configuration reloaded')
    } catch (error) {
      log.error({ err: error }, `configuration reload refused, keeping the running configuration: ${(error as Error).message}`)
    }
  })

  const stopped = new Promise<string>((resolve) => {
    process.once('SIGTERM', () => resolve('SIGTERM'))
    process.once('SIGINT', () => resolve('SIGINT'))
  })
  // A node removed from the cluster (hearsay members remove) stops rather than serve as a stranger.
  const removed = node.removed.then((reason) => {
    log.fatal(reason)
    process.stderr.write(`hearsayd: ${reason}\n`)
    return 'removed'
  })
  const signal = await Promise.race([stopped, removed])
  // A second signal during shutdown means "now": exit without waiting.
  const forceExit = (): void => { log.warn('second signal during shutdown; exiting at once'); process.exit(EXIT_FAILURE) }
  process.on('SIGTERM', forceExit)
  process.on('SIGINT', forceExit)
  log.info({ signal }, 'shutting down')
  const outcome = await node.stop(config.shutdown.timeoutMs)
  log.info({ outcome }, 'stopped')
  if (signal === 'removed') return EXIT_FAILURE
  return outcome === 'clean' ? EXIT_OK : EXIT_FAILURE
}

export type { Logger }
