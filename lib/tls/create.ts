/**
 * Makes the certificate material a cluster needs: one CA, and per node a key and certificate that
 * the CA signs (used by `hearsay tls …` and by the tests). ECDSA P-256 with SHA-256 throughout:
 * every TLS 1.2/1.3 stack speaks it, keys are small and handshakes cheap.
 */
import { constants as fsConstants, promises as fs } from 'node:fs'
import { randomBytes, webcrypto, X509Certificate } from 'node:crypto'
import { isIP } from 'node:net'
import path from 'node:path'
import type * as X509 from '@peculiar/x509'
import { x509 as loadX509 } from './x509.js'

/** File names inside a CA directory. */
export const CA_CERT_FILE = 'ca.pem'
export const CA_KEY_FILE = 'ca-key.pem'
export const DEFAULT_CA_DAYS = 3650
export const DEFAULT_CERT_DAYS = 365
/** A hundred years: past that a typo ("36500" for "365") is more likely than an intent. */
export const MAX_DAYS = 36_500
/** Serial numbers are 16 random bytes (RFC 5280 §4.1.2.2 allows up to 20; CAs use ≥ 8 of entropy). */
const SERIAL_BYTES = 16
/** Nodes' clocks on a LAN differ by seconds; starting validity this much earlier lets a fresh certificate work at once on all of them. */
const CLOCK_SKEW_ALLOWANCE_MS = 5 * 60_000
const DAY_MS = 86_400_000

const KEY_ALGORITHM: webcrypto.EcKeyGenParams = { name: 'ECDSA', namedCurve: 'P-256' }
const SIGNING_ALGORITHM: webcrypto.EcdsaParams & webcrypto.EcKeyGenParams = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' }

/** A bad argument or a file that would be overwritten; the message is one sentence for the operator. */
export class TlsCreateError extends Error {
  /** True when the arguments are at fault (the CLI exits 2), false for files (exit 1). */
  readonly usage: boolean
  constructor(message: string, usage = true) {
    super(message)
    this.name = 'TlsCreateError'
    this.usage = usage
  }
}

export interface CreateCaOptions {
  readonly dir: string
  readonly days?: number
  readonly commonName?: string
  /** Overwrite existing files (otherwise an existing ca.pem or ca-key.pem is an error). */
  readonly force?: boolean
}

export interface CreateCertOptions {
  readonly caDir: string
  /** The node's name (`node.name`), or a client's name with `client`. Becomes the CN and a DNS SAN. */
  readonly name: string
  readonly ips?: readonly string[]
  readonly dns?: readonly string[]
  /** A client certificate for `tls.api mutual`: clientAuth only, no server use. */
  readonly client?: boolean
  readonly days?: number
  /** Start of validity; default now minus a few minutes of clock-skew allowance. */
  readonly validFrom?: Date
  /** Where NAME.pem and NAME-key.pem go; default the CA directory. */
  readonly outDir?: string
  readonly force?: boolean
}

export interface CreatedFiles { readonly certPath: string; readonly keyPath: string }

export async function createCa(o: CreateCaOptions): Promise<CreatedFiles> {
  const x509 = loadX509()
  const days = checkDays(o.days ?? DEFAULT_CA_DAYS)
  // A distinct default name per CA, so an error naming the issuer tells two clusters' CAs apart.
  const commonName = o.commonName ?? `hearsay CA ${randomBytes(4).toString('hex')}`
  if (commonName.length === 0) throw new TlsCreateError('the CA common name is empty; give a name or leave it out')
  const certPath = path.join(o.dir, CA_CERT_FILE)
  const keyPath = path.join(o.dir, CA_KEY_FILE)
  await refuseOverwrite([certPath, keyPath], o.force === true)

  const keys = await generateKeys()
  const notBefore = new Date(Date.now() - CLOCK_SKEW_ALLOWANCE_MS)
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: newSerialHex(),
    name: distinguishedName(commonName),
    notBefore,
    notAfter: new Date(notBefore.getTime() + days * DAY_MS),
    keys,
    signingAlgorithm: SIGNING_ALGORITHM,
    extensions: [
      // pathLength 0: this CA signs node and client certificates only, never another CA.
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  })
  await fs.mkdir(o.dir, { recursive: true, mode: 0o700 })
  await writeKey(keyPath, keys.privateKey, o.force === true)
  await writeFile(certPath, cert.toString('pem') + '\n', 0o644, o.force === true)
  return { certPath, keyPath }
}

export async function createCert(o: CreateCertOptions): Promise<CreatedFiles & { serial: string }> {
  const x509 = loadX509()
  const days = checkDays(o.days ?? DEFAULT_CERT_DAYS)
  if (o.name.length === 0) throw new TlsCreateError('the certificate name is empty; give the node name (node.name) or the client name')
  if (/[/\\\0]/.test(o.name) || o.name === '.' || o.name === '..') {
    throw new TlsCreateError(`the certificate name ${JSON.stringify(o.name)} cannot be a file name; use the node name without slashes`)
  }
  const ips = (o.ips ?? []).map(ip => checkIp(ip))
  const dns = (o.dns ?? []).map(name => checkDnsName(name))
  // The node's name is its identity on peer links (lib/tls/names.ts namesNode): the CN always
  // carries it, and a DNS SAN too when it is spelled like a host name.
  if (isDnsName(o.name) && !dns.some(name => name.toLowerCase() === o.name.toLowerCase())) dns.unshift(o.name)
  if (o.client !== true && ips.length === 0 && dns.length === 0) {
    throw new TlsCreateError(`a node certificate needs the addresses peers and clients reach it by; give --ip (or --dns) for ${o.name}`)
  }

  const ca = await readCa(o.caDir)
  const outDir = o.outDir ?? o.caDir
  const certPath = path.join(outDir, `${o.name}.pem`)
  const keyPath = path.join(outDir, `${o.name}-key.pem`)
  await refuseOverwrite([certPath, keyPath], o.force === true)

  const notBefore = o.validFrom ?? new Date(Date.now() - CLOCK_SKEW_ALLOWANCE_MS)
  if (Number.isNaN(notBefore.getTime())) throw new TlsCreateError('the start of validity is not a date')
  const keys = await generateKeys()
  const altNames: X509.JsonGeneralName[] = [
    ...dns.map(value => ({ type: 'dns' as const, value })),
    ...ips.map(value => ({ type: 'ip' as const, value })),
  ]
  const extendedUsages = o.client === true
    ? [x509.ExtendedKeyUsage.clientAuth]
    : [x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: newSerialHex(),
    subject: distinguishedName(o.name),
    issuer: ca.cert.subjectName,
    notBefore,
    notAfter: new Date(notBefore.getTime() + days * DAY_MS),
    publicKey: keys.publicKey,
    signingKey: ca.key,
    signingAlgorithm: SIGNING_ALGORITHM,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension(extendedUsages, false),
      ...(altNames.length > 0 ? [new x509.SubjectAlternativeNameExtension(altNames, false)] : []),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      await x509.AuthorityKeyIdentifierExtension.create(ca.cert, false),
    ],
  })
  await fs.mkdir(outDir, { recursive: true, mode: 0o700 })
  const pem = cert.toString('pem') + '\n'
  await writeKey(keyPath, keys.privateKey, o.force === true)
  await writeFile(certPath, pem, 0o644, o.force === true)
  return { certPath, keyPath, serial: new X509Certificate(pem).serialNumber }
}

function checkDays(days: number): number {
  if (!Number.isInteger(days) || days < 1 || days > MAX_DAYS) {
    throw new TlsCreateError(`days must be a whole number from 1 to ${MAX_DAYS}, not ${days}`)
  }
  return days
}

function checkIp(ip: string): string {
  if (isIP(ip) === 0) throw new TlsCreateError(`${JSON.stringify(ip)} is not an IP address; give --ip as e.g. 192.168.1.11 or fd00::11`)
  return ip
}

/** RFC 1123 host names (letters, digits, hyphens; dot-separated labels up to 63 characters). */
function isDnsName(name: string): boolean {
  if (name.length > 253) return false
  return name.split('.').every(label => /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/.test(label))
}

function checkDnsName(name: string): string {
  if (!isDnsName(name)) throw new TlsCreateError(`${JSON.stringify(name)} is not a DNS name; give --dns as e.g. node-1.lan`)
  return name
}

/** Positive (top bit clear) and never starting with a zero byte, so every reader prints the same hex. */
function newSerialHex(): string {
  const bytes = randomBytes(SERIAL_BYTES)
  bytes[0] = (bytes[0]! & 0x7f) | 0x40
  return bytes.toString('hex')
}

/** JSON form, so a name with commas or quotes needs no escaping rules. */
function distinguishedName(commonName: string): X509.JsonName {
  return [{ '2.5.4.3': [commonName] }]
}

async function generateKeys(): Promise<webcrypto.CryptoKeyPair> {
  return await webcrypto.subtle.generateKey(KEY_ALGORITHM, true, ['sign', 'verify']) as webcrypto.CryptoKeyPair
}

async function readCa(caDir: string): Promise<{ cert: X509.X509Certificate; key: webcrypto.CryptoKey }> {
  const x509 = loadX509()
  const certPath = path.join(caDir, CA_CERT_FILE)
  const keyPath = path.join(caDir, CA_KEY_FILE)
  const certPem = await readFileFor(certPath, 'CA certificate')
  const keyPem = await readFileFor(keyPath, 'CA key')
  let cert: X509.X509Certificate
  try {
    cert = new x509.X509Certificate(certPem)
  } catch {
    throw new TlsCreateError(`${certPath} is not a PEM certificate; make the CA with \`hearsay tls ca create --dir ${caDir}\``, false)
  }
  let key: webcrypto.CryptoKey
  try {
    const der = x509.PemConverter.decodeFirst(keyPem)
    key = await webcrypto.subtle.importKey('pkcs8', der, KEY_ALGORITHM, false, ['sign']) as webcrypto.CryptoKey
  } catch {
    throw new TlsCreateError(`${keyPath} is not an unencrypted PKCS#8 ECDSA P-256 key as \`hearsay tls ca create\` writes`, false)
  }
  return { cert, key }
}

async function readFileFor(file: string, what: string): Promise<string> {
  try {
    return await fs.readFile(file, 'utf8')
  } catch (err) {
    throw new TlsCreateError(`cannot read the ${what} ${file} (${(err as NodeJS.ErrnoException).code ?? String(err)}); make the CA with \`hearsay tls ca create --dir ${path.dirname(file)}\``, false)
  }
}

async function refuseOverwrite(files: readonly string[], force: boolean): Promise<void> {
  if (force) return
  for (const file of files) {
    const exists = await fs.access(file, fsConstants.F_OK).then(() => true, () => false)
    if (exists) throw new TlsCreateError(`${file} already exists; remove it or pass --force to overwrite it`, false)
  }
}

async function writeKey(file: string, key: webcrypto.CryptoKey, force: boolean): Promise<void> {
  const x509 = loadX509()
  const der = await webcrypto.subtle.exportKey('pkcs8', key)
  await writeFile(file, x509.PemConverter.encode(der, 'PRIVATE KEY') + '\n', 0o600, force)
}

/** 'wx' without --force so two runs racing cannot both write; an overwrite keeps the mode we want. */
async function writeFile(file: string, text: string, mode: number, force: boolean): Promise<void> {
  try {
    await fs.writeFile(file, text, { mode, flag: force ? 'w' : 'wx' })
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'EEXIST') throw new TlsCreateError(`${file} already exists; remove it or pass --force to overwrite it`, false)
    throw new TlsCreateError(`cannot write ${file} (${code ?? String(err)}); check the directory exists and is writable`, false)
  }
  // An overwritten file keeps its old mode; a key must end up private whatever it was.
  await fs.chmod(file, mode)
}
