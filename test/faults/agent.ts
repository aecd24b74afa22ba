/**
 * The fault suite's HTTP client, run inside the LAN's switch namespace (the only place that
 * reaches every node's namespace address while partitions cut the nodes apart). It reads one JSON
 * request per line on stdin and writes one JSON answer per line on stdout, in completion order:
 *
 *   → {"id":1,"method":"PUT","url":"http://10.213.11.1:7070/kv/k?w=quorum","body":"v","timeoutMs":5000}
 *   ← {"id":1,"status":200,"version":"…","body":"{…}"}   or   {"id":1,"error":"…"}
 *
 * `version` is the Hearsay-Version header of a GET. The runner bounds how many requests are in
 * flight; each one is bounded by its own timeoutMs here. It exits when stdin closes.
 */
import { createInterface } from 'node:readline'

export interface AgentRequest {
  readonly id: number
  readonly method: 'GET' | 'PUT' | 'DELETE' | 'POST'
  readonly url: string
  readonly body?: string
  readonly timeoutMs: number
}

export interface AgentAnswer {
  readonly id: number
  readonly status?: number
  readonly version?: string
  readonly body?: string
  readonly error?: string
}

/** Longest answer body passed back: above api.maxScanPageBytes (8 MiB), so a scan page is never cut. */
const MAX_BODY_CHARS = 16 * 1024 * 1024

async function perform(request: AgentRequest): Promise<AgentAnswer> {
  try {
    const res = await fetch(request.url, {
      method: request.method,
      ...(request.body !== undefined ? { body: request.body } : {}),
      signal: AbortSignal.timeout(request.timeoutMs),
    })
    const body = (await res.text()).slice(0, MAX_BODY_CHARS)
    const version = res.headers.get('hearsay-version')
    return { id: request.id, status: res.status, body, ...(version !== null ? { version } : {}) }
  } catch (error) {
    const cause = (error as { cause?: { code?: string } }).cause?.code
    return { id: request.id, error: cause !== undefined ? `${String(error)} (${cause})` : String(error) }
  }
}

// Only ever run as a program (the runner imports its types alone, which erase).
createInterface({ input: process.stdin }).on('line', line => {
  if (line.trim() === '') return
  const request = JSON.parse(line) as AgentRequest
  void perform(request).then(answer => { process.stdout.write(`${JSON.stringify(answer)}\n`) })
})
