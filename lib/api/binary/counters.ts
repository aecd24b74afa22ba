import type { Metrics } from '../../metrics/metrics.js'
import { OP_NAMES, STREAM_PATH, type OpCode } from './protocol.js'

/**
 * Stream requests counted in plain integers and added to the Prometheus counters once a second
 * (and on close): a labelled prom-client increment hashes its labels on every call, which at
 * tens of thousands of requests a second costs more than the request's own bookkeeping.
 * Requests appear in hearsay_http_requests_total under route "/v1/stream" with the operation as
 * method, writes in hearsay_kv_writes_total, malformed frames in hearsay_http_client_errors_total
 * with code "stream_<reason>".
 */

/** Why a stream connection was cut: its input (or, for keepalive, its silence) was at fault. */
export type MalformedStreamReason = 'text' | 'undecodable' | 'bad_frame' | 'duplicate_id' | 'oversized' | 'websocket' | 'keepalive' | 'partial_timeout'

/** Metric label for a frame whose op is not one of ours. */
const UNKNOWN_OP_LABEL = 'OTHER'

export class StreamCounters {
  /** Answers by op label, then status code. */
  readonly #answers = new Map<string, Map<number, number>>()
  #puts = 0
  #deletes = 0
  readonly #malformed = new Map<MalformedStreamReason, number>()

  constructor(private readonly metrics: Metrics) {}

  answered(op: OpCode | undefined, status: number): void {
    const label = op === undefined ? UNKNOWN_OP_LABEL : OP_NAMES[op]
    let byStatus = this.#answers.get(label)
    if (byStatus === undefined) this.#answers.set(label, byStatus = new Map())
    byStatus.set(status, (byStatus.get(status) ?? 0) + 1)
  }

  wrote(op: 'put' | 'delete' | 'cas' | 'incr', count = 1): void {
    if (op === 'put') this.#puts += count
    else if (op === 'delete') this.#deletes += count
    // Linearizable changes are rare next to plain writes and cost two round trips: counted at once.
    else this.metrics.kvWrites.inc({ op }, count)
  }

  malformed(reason: MalformedStreamReason): void {
    this.#malformed.set(reason, (this.#malformed.get(reason) ?? 0) + 1)
  }

  /** Adds what was counted since the last flush to the Prometheus metrics. */
  flush(): void {
    for (const [method, byStatus] of this.#answers) {
      for (const [status, count] of byStatus) this.metrics.httpRequests.inc({ route: STREAM_PATH, method, status: String(status) }, count)
    }
    this.#answers.clear()
    if (this.#puts > 0) this.metrics.kvWrites.inc({ op: 'put' }, this.#puts)
    if (this.#deletes > 0) this.metrics.kvWrites.inc({ op: 'delete' }, this.#deletes)
    this.#puts = 0
    this.#deletes = 0
    for (const [reason, count] of this.#malformed) this.metrics.httpClientErrors.inc({ code: `stream_${reason}` }, count)
    this.#malformed.clear()
  }
}
