/**
 * The one place that loads @peculiar/x509. It declares its dependencies through tsyringe, which
 * needs a Reflect metadata polyfill imported before it; and it signs through WebCrypto, which on
 * Node is `crypto.webcrypto` (set once here so every importer gets the same provider).
 */
import 'reflect-metadata'
import { webcrypto } from 'node:crypto'
import * as x509 from '@peculiar/x509'

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0])

export { x509 }
