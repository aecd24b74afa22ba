import fc from 'fast-check'
import t from 'tap'
import { BadRequestError, HearsayError } from '../../lib/errors.js'
import { decodePathKey, parseQuery, parseScanLimit, parseTtlSeconds } from '../../lib/api/params.js'
import { matchPath, splitTarget } from '../../lib/api/routes.js'
import { parseConsistencyLevel } from '../../lib/replication/consistency.js'
import { TEST_LIMITS, startApi } from '../api/fixtures/harness.js'
import { rawExchange } from '../api/fixtures/raw-http.js'
import { FUZZ_RUNS } from './arbitraries.js'

/**
 * The HTTP router on arbitrary input: its parsers return or throw a typed HearsayError (which
 * becomes a 4xx), and a live API server answers every request — any method, path, query, Expect
 * or body — with a status below 500, in JSON whenever it says so (issue 17).
 */

function typedOrValue(run: () => unknown): void {
  try {
    run()
  } catch (error) {
    if (!(error instanceof HearsayError)) throw error
  }
}

t.test('the router\'s parsers return or throw a typed error on any text', async t => {
  fc.assert(fc.property(fc.string({ unit: 'binary', maxLength: 120 }), text => {
    typedOrValue(() => matchPath(splitTarget(text).path))
    typedOrValue(() => parseQuery(splitTarget(text).rawQuery, ['prefix', 'after', 'limit', 'r', 'w', 'ttl']))
    typedOrValue(() => decodePathKey(text, TEST_LIMITS.maxKeyBytes))
    typedOrValue(() => parseScanLimit(text, 3, 10))
    typedOrValue(() => parseTtlSeconds(text))
    typedOrValue(() => parseConsistencyLevel(text, 'w'))
  }), { numRuns: FUZZ_RUNS * 4 })
  t.throws(() => parseTtlSeconds('x'), BadRequestError)
})

const segment = fc.oneof(
  fc.constantFrom('kv', 'batch', 'health', 'members', 'status', 'metrics', 'admin', 'sync', 'v1', 'stream', '', '..', '%', '%zz', '%00', '%C3%28', 'k'.repeat(70), '%E2%82%AC'),
  fc.string({ maxLength: 12 }).map(encodeURIComponent),
)
const queryPair = fc.tuple(
  fc.constantFrom('prefix', 'after', 'limit', 'r', 'w', 'ttl', 'watch', 'since', 'local', 'x', ''),
  fc.oneof(fc.constantFrom('', 'one', 'quorum', 'all', '0', '-1', '65', '1e9', '3.5', 'abc', '%ff', '%00'), fc.string({ maxLength: 10 }).map(encodeURIComponent)),
).map(([key, value]) => `${key}=${value}`)
const request = fc.record({
  method: fc.constantFrom('GET', 'HEAD', 'PUT', 'DELETE', 'POST', 'PATCH', 'OPTIONS', 'TRACE', 'CONNECT', 'FOO'),
  path: fc.array(segment, { minLength: 1, maxLength: 3 }).map(parts => `/${parts.join('/')}`),
  query: fc.option(fc.array(queryPair, { maxLength: 4 }).map(pairs => pairs.join('&'))),
  expect: fc.option(fc.constantFrom('100-continue', '200-ok', '')),
  body: fc.option(fc.oneof(fc.uint8Array({ maxLength: 64 }).map(bytes => Buffer.from(bytes)), fc.json({ maxDepth: 3 }).map(text => Buffer.from(text)))),
})

t.test('a live API answers any request below 500, in JSON when it says so', async t => {
  const api = await startApi(t)
  await fc.assert(fc.asyncProperty(request, async ({ method, path, query, expect, body }) => {
    const target = method === 'CONNECT' ? 'example.com:443' : `${path}${query === null ? '' : `?${query}`}`
    const head = [`${method} ${target} HTTP/1.1`, 'Host: x', 'Connection: close']
    if (expect !== null) head.push(`Expect: ${expect}`)
    if (body !== null) head.push(`Content-Length: ${body.length}`)
    const answer = await rawExchange(api.host, api.port, Buffer.concat([Buffer.from(`${head.join('\r\n')}\r\n\r\n`), body ?? Buffer.alloc(0)]))
    const match = /^HTTP\/1\.1 (\d{3}) [^\r]*\r\n([\s\S]*?)\r\n\r\n([\s\S]*)$/.exec(answer)
    if (match === null) throw new Error(`${method} ${target}: not an HTTP answer: ${JSON.stringify(answer.slice(0, 120))}`)
    const status = Number(match[1])
    if (status >= 500 && status !== 503) throw new Error(`${method} ${target} answered ${status}: ${match[3]}`)
    if (/content-type: application\/json/i.test(match[2] ?? '') && method !== 'HEAD' && (match[3] ?? '') !== '') JSON.parse(match[3] ?? '')
  }), { numRuns: FUZZ_RUNS })
  t.notOk(api.logLines.some(line => line.level === 50), 'nothing was logged as an error')
})
