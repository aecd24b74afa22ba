import { ClientOptionsError } from './errors.js'

/** A validated node base URL: `http(s)://host:port[/base-path]` without a trailing slash. */
export type NodeUrl = string & { readonly __brand: 'NodeUrl' }

/** More nodes than this in one client is a mistake (a pasted member list), not a cluster. */
export const MAX_NODES = 64

/**
 * Validates base URLs at construction so a typo fails with a sentence, not with ECONNREFUSED
 * on the first request. `localhost:7070` parses as a URL with scheme `localhost:`, so the
 * scheme check names the fix.
 */
export function parseNodeUrls(nodes: readonly string[]): NodeUrl[] {
  if (nodes.length === 0) throw new ClientOptionsError('no hearsay node given: pass at least one URL such as http://127.0.0.1:7070')
  if (nodes.length > MAX_NODES) throw new ClientOptionsError(`too many hearsay nodes (${nodes.length}); at most ${MAX_NODES}`)
  return nodes.map(parseNodeUrl)
}

export function parseNodeUrl(text: string): NodeUrl {
  const trimmed = text.trim()
  const quoted = JSON.stringify(text)
  if (trimmed === '') throw new ClientOptionsError('empty hearsay node URL: write it like http://127.0.0.1:7070')
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(trimmed)) {
    throw new ClientOptionsError(`hearsay node URL ${quoted} has no http:// or https:// scheme: write it like http://${trimmed}`)
  }
  let url: URL
  try {
    url = new URL(trimmed)
  } catch {
    throw new ClientOptionsError(`hearsay node URL ${quoted} is not a valid URL: write it like http://127.0.0.1:7070`)
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new ClientOptionsError(`hearsay node URL ${quoted} must use http:// or https://, not ${url.protocol}//`)
  }
  if (url.hostname === '') throw new ClientOptionsError(`hearsay node URL ${quoted} has no host`)
  if (url.username !== '' || url.password !== '') {
    throw new ClientOptionsError(`hearsay node URL ${quoted} must not carry credentials; use the token option`)
  }
  if (url.search !== '' || url.hash !== '') {
    throw new ClientOptionsError(`hearsay node URL ${quoted} must not have a query or fragment`)
  }
  return `${url.origin}${url.pathname.replace(/\/+$/, '')}` as NodeUrl
}
