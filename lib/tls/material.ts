/**
 * The node's TLS material: the CA that every peer and (with `tls.api mutual`) every client must
 * chain to, and this node's certificate and key. Read and checked as a whole, so a daemon never
 * starts or reloads with a key that does not match its certificate, a certificate another CA
 * signed, or one outside its validity — each refused with one sentence naming the file.
 */
import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { createSecureContext } from 'node:tls'
import { certificateNames } from './names.js'

export interface TlsPaths { readonly caPath: string; readonly certPath: string; readonly keyPath: string }
export interface CertificateNames { readonly commonName: string; readonly dns: readonly string[]; readonly ips: readonly string[] }
export interface TlsMaterial {
  readonly ca: Buffer
  readonly cert: Buffer
  readonly key: Buffer
  /** Upper-case hex, as crypto.X509Certificate#serialNumber. */
  readonly serial: string
  readonly notBeforeMs: number
  readonly notAfterMs: number
  readonly names: CertificateNames
}

/** Which check failed; `--check` and the logs name it, the message says it for people. */
export type TlsProblem =
  | 'unreadable' | 'not-pem' | 'not-ca' | 'key-mismatch' | 'not-chained'
  | 'not-yet-valid' | 'expired' | 'wrong-usage' | 'rejected'

export class TlsMaterialError extends Error {
  constructor(message: string, readonly file: string, readonly problem: TlsProblem) {
    super(message)
    this.name = 'TlsMaterialError'
  }
}

/** Extended key usages a node certificate needs: it serves (API, inbound links) and is a client (outbound links). */
const SERVER_AUTH = '1.3.6.1.5.5.7.3.1'
const CLIENT_AUTH = '1.3.6.1.5.5.7.3.2'
const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g
const REMEDY = 'make one with `hearsay tls cert create` (docs/operations.md, TLS)'

/** Reads and validates (key matches cert, cert chains to CA, valid now). Throws TlsMaterialError (one-sentence message naming the file). */
export function loadTlsMaterial(paths: TlsPaths, nowMs: number): TlsMaterial {
  const inspected = inspectTlsMaterial(paths, nowMs)
  if (inspected.material === undefined) throw inspected.problems[0]!
  return inspected.material
}

/**
 * Every problem with the files, not only the first (`hearsayd --check` prints one line each).
 * `material` is set exactly when `problems` is empty.
 */
export function inspectTlsMaterial(paths: TlsPaths, nowMs: number): { material?: TlsMaterial; problems: TlsMaterialError[] } {
  const problems: TlsMaterialError[] = []
  const caPem = readPem(paths.caPath, 'tls.ca', problems)
  const certPem = readPem(paths.certPath, 'tls.cert', problems)
  const keyPem = readPem(paths.keyPath, 'tls.key', problems)

  const cas = caPem === undefined ? [] : parseCertificates(caPem, paths.caPath, 'tls.ca', problems)
  for (const ca of cas) {
    if (!ca.ca) problems.push(new TlsMaterialError(`tls.ca ${paths.caPath} holds a certificate that is not a CA (${ca.subject.replaceAll('\n', ', ')}); point tls.ca at the ca.pem that \`hearsay tls ca create\` wrote`, paths.caPath, 'not-ca'))
    else checkValidity(ca, paths.caPath, 'tls.ca', nowMs, problems)
  }
  const cert = certPem === undefined ? undefined : parseCertificates(certPem, paths.certPath, 'tls.cert', problems)[0]
  const key = keyPem === undefined ? undefined : parseKey(keyPem, paths.keyPath, problems)

  if (cert !== undefined) {
    if (key !== undefined && !cert.checkPrivateKey(key)) {
      problems.push(new TlsMaterialError(`tls.key ${paths.keyPath} does not match the certificate in tls.cert ${paths.certPath}; use the key file written with that certificate`, paths.keyPath, 'key-mismatch'))
    }
    if (cas.length > 0 && !cas.some(ca => cert.checkIssued(ca) && cert.verify(ca.publicKey))) {
      problems.push(new TlsMaterialError(`tls.cert ${paths.certPath} does not chain to the CA in tls.ca ${paths.caPath} (issuer ${cert.issuer.replaceAll('\n', ', ')}); ${REMEDY} from this CA`, paths.certPath, 'not-chained'))
    }
    checkValidity(cert, paths.certPath, 'tls.cert', nowMs, problems)
    const usages = cert.keyUsage
    // An absent extended-key-usage extension permits every use (RFC 5280 §4.2.1.12).
    if (usages !== undefined && !(usages.includes(SERVER_AUTH) && usages.includes(CLIENT_AUTH))) {
      problems.push(new TlsMaterialError(`tls.cert ${paths.certPath} is not a node certificate (it lacks serverAuth and clientAuth use; a --client certificate is for API clients only); ${REMEDY} without --client`, paths.certPath, 'wrong-usage'))
    }
  }
  if (problems.length > 0 || caPem === undefined || certPem === undefined || keyPem === undefined || cert === undefined) {
    return { problems }
  }
  // The last word is Node's own: the same call a server makes with this material.
  try {
    createSecureContext({ ca: caPem, cert: certPem, key: keyPem })
  } catch (err) {
    problems.push(new TlsMaterialError(`tls.cert ${paths.certPath} and tls.key ${paths.keyPath} were refused by Node's TLS (${(err as Error).message}); ${REMEDY}`, paths.certPath, 'rejected'))
    return { problems }
  }
  return {
    problems,
    material: {
      ca: caPem, cert: certPem, key: keyPem,
      serial: cert.serialNumber,
      notBeforeMs: Date.parse(cert.validFrom),
      notAfterMs: Date.parse(cert.validTo),
      names: certificateNames(cert),
    },
  }
}

/** Holds the material in use and swaps it on reload (SIGHUP), telling the servers and link dialers that use it. */
export class TlsMaterialHolder {
  private material: TlsMaterial
  private readonly listeners = new Set<(material: TlsMaterial) => void>()

  /**
   * `check` adds what the files alone cannot tell (lib/tls/check.ts: the certificate names this
   * node and its advertised hosts); it returns the reason to refuse new material, or undefined.
   */
  constructor(
    readonly paths: TlsPaths,
    material: TlsMaterial,
    private readonly nowMs: () => number,
    private readonly check: (material: TlsMaterial) => string | undefined = () => undefined,
  ) {
    this.material = material
  }

  current(): TlsMaterial {
    return this.material
  }

  /**
   * Re-reads the files; on failure keeps the old material and returns the reason. On success the
   * listeners run in registration order; they must not throw (a listener that does stops the
   * rest, and the exception reaches the caller).
   */
  reload(): { ok: true; material: TlsMaterial } | { ok: false; reason: string } {
    let material: TlsMaterial
    try {
      material = loadTlsMaterial(this.paths, this.nowMs())
    } catch (err) {
      return { ok: false, reason: err instanceof Error ? err.message : String(err) }
    }
    const refusal = this.check(material)
    if (refusal !== undefined) return { ok: false, reason: refusal }
    this.material = material
    for (const listener of [...this.listeners]) listener(material)
    return { ok: true, material }
  }

  onChange(listener: (material: TlsMaterial) => void): () => void {
    this.listeners.add(listener)
    return () => { this.listeners.delete(listener) }
  }
}

function readPem(file: string, key: string, problems: TlsMaterialError[]): Buffer | undefined {
  if (file === '') {
    problems.push(new TlsMaterialError(`${key} is not set; give the PEM file's path`, file, 'unreadable'))
    return undefined
  }
  try {
    return readFileSync(file)
  } catch (err) {
    const e = err as NodeJS.ErrnoException
    const why = e.code === 'ENOENT' ? 'it does not exist' : e.code === 'EACCES' ? 'permission denied' : e.code === 'EISDIR' ? 'it is a directory' : (e.code ?? e.message)
    problems.push(new TlsMaterialError(`cannot read ${key} ${file}: ${why}; check the path and that the daemon's user may read it`, file, 'unreadable'))
    return undefined
  }
}

function parseCertificates(pem: Buffer, file: string, key: string, problems: TlsMaterialError[]): X509Certificate[] {
  const blocks = pem.toString('latin1').match(PEM_CERTIFICATE) ?? []
  const certs: X509Certificate[] = []
  for (const block of blocks) {
    try {
      certs.push(new X509Certificate(block))
    } catch (err) {
      problems.push(new TlsMaterialError(`${key} ${file} holds a PEM certificate that does not parse (${(err as Error).message}); ${REMEDY}`, file, 'not-pem'))
      return []
    }
  }
  if (certs.length === 0) problems.push(new TlsMaterialError(`${key} ${file} holds no PEM certificate (no "BEGIN CERTIFICATE" block); check the path`, file, 'not-pem'))
  return certs
}

function parseKey(pem: Buffer, file: string, problems: TlsMaterialError[]): KeyObject | undefined {
  try {
    return createPrivateKey(pem)
  } catch (err) {
    problems.push(new TlsMaterialError(`tls.key ${file} is not an unencrypted PEM private key (${(err as Error).message}); use the -key.pem file \`hearsay tls cert create\` wrote`, file, 'not-pem'))
    return undefined
  }
}

function checkValidity(cert: X509Certificate, file: string, key: string, nowMs: number, problems: TlsMaterialError[]): void {
  const fromMs = Date.parse(cert.validFrom)
  const toMs = Date.parse(cert.validTo)
  const span = `valid from ${new Date(fromMs).toISOString()} to ${new Date(toMs).toISOString()}`
  if (nowMs < fromMs) {
    problems.push(new TlsMaterialError(`${key} ${file} is not yet valid (${span}); check this machine's clock or make a certificate that starts now`, file, 'not-yet-valid'))
  } else if (nowMs > toMs) {
    problems.push(new TlsMaterialError(`${key} ${file} has expired (${span}); ${key === 'tls.ca' ? 'make a new CA and new certificates from it' : REMEDY}`, file, 'expired'))
  }
}
