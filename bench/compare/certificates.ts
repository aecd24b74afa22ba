import { createCa, createCert } from '../../lib/tls/create.js'
import type { ProcessGroup } from './processes.js'

/**
 * Certificates for `--tls`: one CA (made by the same code as `hearsay tls ca create`) and one
 * certificate per server, naming it and 127.0.0.1 (every server listens on loopback), with
 * serverAuth and clientAuth so the same file serves a server's port and its links to its peers.
 * ECDSA P-256 for every system: etcd (Go crypto/tls) and Redis (OpenSSL) take it as they come.
 */

export interface ServerCertificate {
  readonly certPath: string
  readonly keyPath: string
}

export interface CompareTls {
  /** The CA certificate every server and client trusts. */
  readonly caPath: string
  /** The certificate of the server with this name (e.g. `etcd-2`); throws for a name not made. */
  certificateFor(name: string): ServerCertificate
  /** A client certificate (clientAuth only), for servers that require one: etcd with --trusted-ca-file. */
  readonly client: ServerCertificate
}

export async function makeCompareCertificates(group: ProcessGroup, serverNames: readonly string[]): Promise<CompareTls> {
  const dir = group.tempDir('compare-tls-')
  const ca = await createCa({ dir, commonName: 'bench-compare CA' })
  const byName = new Map<string, ServerCertificate>()
  for (const name of serverNames) {
    const made = await createCert({ caDir: dir, name, ips: ['127.0.0.1'], dns: ['localhost'] })
    byName.set(name, { certPath: made.certPath, keyPath: made.keyPath })
  }
  const client = await createCert({ caDir: dir, name: 'bench-client', client: true })
  return {
    caPath: ca.certPath,
    client: { certPath: client.certPath, keyPath: client.keyPath },
    certificateFor(name) {
      const found = byName.get(name)
      if (found === undefined) throw new Error(`no certificate was made for ${name}`)
      return found
    },
  }
}
