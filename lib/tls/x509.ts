/**
 * The one place that loads @peculiar/x509, on first use: a daemon with TLS off never needs it,
 * and it (with tsyringe and its Reflect metadata polyfill) is a sizeable part of start-up
 * (issue 15). The library declares its dependencies through tsyringe, which needs the
 * reflect-metadata polyfill loaded before it; and it signs through WebCrypto, which on Node is
 * `crypto.webcrypto` (set once here so every caller gets the same provider). Both packages ship
 * CommonJS, so they load synchronously where a certificate is first parsed.
 */
import { webcrypto } from 'node:crypto'
import { createRequire } from 'node:module'
import type * as X509 from '@peculiar/x509'

const require = createRequire(import.meta.url)
let loaded: typeof X509 | undefined

export function x509(): typeof X509 {
  if (loaded === undefined) {
    require('reflect-metadata')
    const library = require('@peculiar/x509') as typeof X509
    library.cryptoProvider.set(webcrypto as unknown as Parameters<typeof library.cryptoProvider.set>[0])
    loaded = library
  }
  return loaded
}
