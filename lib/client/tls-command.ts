/**
 * `hearsay tls ca create` and `hearsay tls cert create`: the certificate material of a cluster in
 * two commands, as `consul tls ca create` / `consul tls cert create` do. It parses its own
 * arguments (cli.ts hands it everything after `tls`) because --ip and --dns repeat, and it talks
 * to no node.
 */
import { parseArgs } from 'node:util'
import { createCa, createCert, DEFAULT_CA_DAYS, DEFAULT_CERT_DAYS, TlsCreateError } from '../tls/create.js'
import { writeOut } from './cli-output.js'
import type { CliIo } from './command.js'

export const TLS_COMMAND_SYNOPSIS = 'tls ca create|cert create …'
export const TLS_COMMAND_SUMMARY = 'make the cluster\'s CA and node or client certificates (hearsay tls --help)'

const USAGE = `Usage:
  hearsay tls ca create --dir DIR [--days N] [--force]
      writes DIR/ca.pem and DIR/ca-key.pem (ECDSA P-256; default ${DEFAULT_CA_DAYS} days).
      Keep ca-key.pem off the nodes: only \`tls cert create\` needs it.

  hearsay tls cert create --ca DIR --name NAME --ip IP… [--dns HOST…] [--client] [--days N] [--out DIR] [--force]
      writes OUT/NAME.pem and OUT/NAME-key.pem (OUT defaults to the CA directory), signed by
      DIR/ca.pem. A node certificate (NAME = the node's node.name) names the node and every
      address peers and clients reach it by: repeat --ip and --dns, or give comma-separated lists.
      --client makes a client certificate for nodes with tls.api mutual. Default ${DEFAULT_CERT_DAYS} days.

Existing files are kept unless --force. Exit status: 0 written, 1 a file problem, 2 wrong usage.
`

/** Wrong use of `hearsay tls`: exit 2. */
class TlsUsageError extends Error {}

const OPTIONS = {
  dir: { type: 'string' },
  ca: { type: 'string' },
  name: { type: 'string' },
  ip: { type: 'string', multiple: true },
  dns: { type: 'string', multiple: true },
  client: { type: 'boolean' },
  days: { type: 'string' },
  out: { type: 'string' },
  force: { type: 'boolean' },
  json: { type: 'boolean' },
  help: { type: 'boolean' },
} as const

/** Which options each subcommand takes, so a misplaced one is an error rather than ignored. */
const ALLOWED: Readonly<Record<string, readonly string[]>> = {
  'ca create': ['dir', 'days', 'force', 'json'],
  'cert create': ['ca', 'name', 'ip', 'dns', 'client', 'days', 'out', 'force', 'json'],
}

/** Runs `hearsay tls …` (argv without the leading `tls`); resolves to the exit code, never throws. */
export async function runTlsCommand(argv: readonly string[], io: CliIo): Promise<number> {
  try {
    let parsed
    try {
      parsed = parseArgs({ args: [...argv], options: OPTIONS, allowPositionals: true, strict: true })
    } catch (err) {
      const first = ((err as Error).message.split(/\.\s|\n/)[0] ?? '').replace(/^./, c => c.toLowerCase())
      throw new TlsUsageError(first)
    }
    const { values, positionals } = parsed
    if (values.help === true || positionals[0] === 'help') {
      await writeOut(io.stdout, USAGE)
      return 0
    }
    const subcommand = positionals.join(' ')
    const allowed = ALLOWED[subcommand]
    if (allowed === undefined) {
      throw new TlsUsageError(positionals.length === 0 ? 'say what to create: `hearsay tls ca create` or `hearsay tls cert create`' : `unknown tls command ${JSON.stringify(subcommand)}; use \`ca create\` or \`cert create\``)
    }
    for (const option of Object.keys(values)) {
      if (!allowed.includes(option)) throw new TlsUsageError(`option --${option} does not apply to tls ${subcommand}`)
    }
    const days = values.days === undefined ? undefined : parseDays(values.days)
    const force = values.force === true

    if (subcommand === 'ca create') {
      if (values.dir === undefined || values.dir === '') throw new TlsUsageError('tls ca create needs --dir DIR: where to write ca.pem and ca-key.pem')
      const created = await createCa({ dir: values.dir, ...(days === undefined ? {} : { days }), force })
      await writeOut(io.stdout, values.json === true
        ? JSON.stringify(created) + '\n'
        : `wrote ${created.certPath} (give it to every node as tls.ca, and to clients as --ca)\nwrote ${created.keyPath} (private: keep it where you make certificates, not on the nodes)\n`)
      return 0
    }

    if (values.ca === undefined || values.ca === '') throw new TlsUsageError('tls cert create needs --ca DIR: the directory `hearsay tls ca create --dir` wrote')
    if (values.name === undefined) throw new TlsUsageError('tls cert create needs --name NAME: the node\'s node.name, or a client\'s name with --client')
    const ips = splitList(values.ip)
    const dns = splitList(values.dns)
    const client = values.client === true
    if (client && (ips.length > 0 || dns.length > 0)) throw new TlsUsageError('--client certificates name a client, not addresses; leave out --ip and --dns')
    const created = await createCert({
      caDir: values.ca, name: values.name, ips, dns, client, force,
      ...(days === undefined ? {} : { days }),
      ...(values.out === undefined ? {} : { outDir: values.out }),
    })
    await writeOut(io.stdout, values.json === true
      ? JSON.stringify(created) + '\n'
      : `wrote ${created.certPath} (serial ${created.serial})\nwrote ${created.keyPath} (private: readable by the ${client ? 'client' : 'node'}'s user only)\n`)
    return 0
  } catch (err) {
    const usage = err instanceof TlsUsageError || (err instanceof TlsCreateError && err.usage)
    const message = err instanceof Error ? err.message : String(err)
    try {
      await writeOut(io.stderr, `hearsay tls: ${message}${usage ? ' (see hearsay tls --help)' : ''}\n`)
    } catch {
      // stderr is gone; the exit code still tells
    }
    return usage ? 2 : 1
  }
}

function parseDays(text: string): number {
  if (!/^[0-9]+$/.test(text)) throw new TlsUsageError(`--days must be a whole number of days, got ${JSON.stringify(text)}`)
  return Number(text)
}

/** Repeated options and comma-separated lists both work: `--ip a --ip b` or `--ip a,b`. */
function splitList(values: readonly string[] | undefined): string[] {
  return (values ?? []).flatMap(value => value.split(',')).map(value => value.trim()).filter(value => value !== '')
}
