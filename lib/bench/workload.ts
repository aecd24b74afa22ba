import type { HearsayClient } from '../client/client.js'
import type { ConsistencyLevel } from '../replication/consistency.js'
import type { PutGetMix } from './args.js'
import type { Operation, OpOutcome } from './closed-loop.js'
import { errorLabel } from './error-label.js'
import { benchKey } from './keys.js'

/** A write the cluster acknowledged, with the version it was given. */
export interface AckedWrite {
  readonly key: string
  readonly version: string
  /** performance.now() when the put was issued: the closed loop measures an operation by when it starts. */
  readonly startedAtMs: number
}

export interface WorkloadOptions {
  /** One client per node; operation n goes to clients[n mod length], a real spread. */
  readonly clients: readonly HearsayClient[]
  readonly keyBytes: number
  readonly keys: number
  readonly mix: PutGetMix
  /** The bytes every put writes (random, made once: generating them is not what is measured). */
  readonly value: Uint8Array
  readonly w?: ConsistencyLevel
  readonly r?: ConsistencyLevel
  readonly onAckedWrite?: (write: AckedWrite) => void
}

export interface Workload {
  readonly operation: Operation
  /** Gets that found no value (404): answered correctly, so not errors, but worth knowing. */
  getMisses(): number
}

/**
 * Puts and gets in the ratio of `mix`. Puts walk the key space in order and wrap around, so a
 * put run of at least `keys` operations fills it; gets pick keys uniformly at random, so after
 * such a fill every get finds a value and none merely trails the puts.
 */
export function createWorkload(options: WorkloadOptions): Workload {
  const { clients, keyBytes, keys, mix, value, w, r, onAckedWrite } = options
  if (clients.length === 0) throw new RangeError('a workload needs at least one client')
  const cycle = mix.put + mix.get
  let issued = 0
  let putsIssued = 0
  let getsIssued = 0
  let misses = 0

  const put = async (client: HearsayClient, key: string): Promise<OpOutcome> => {
    const startedAtMs = performance.now()
    try {
      const reply = await client.put(key, value, w === undefined ? {} : { w })
      onAckedWrite?.({ key, version: reply.version, startedAtMs })
      return { kind: 'put', ok: true }
    } catch (err) {
      return { kind: 'put', ok: false, error: errorLabel(err) }
    }
  }

  const get = async (client: HearsayClient, key: string): Promise<OpOutcome> => {
    try {
      if (await client.get(key, r === undefined ? {} : { r }) === undefined) misses++
      return { kind: 'get', ok: true }
    } catch (err) {
      return { kind: 'get', ok: false, error: errorLabel(err) }
    }
  }

  // Each kind keeps its own count for the node, so both kinds spread over every node whatever
  // the mix (one shared count would send all puts of a 1:1 mix to half the nodes).
  const operation: Operation = async () => {
    if (issued++ % cycle < mix.put) {
      const n = putsIssued++
      return put(clients[n % clients.length] as HearsayClient, benchKey(n % keys, keyBytes, keys))
    }
    const n = getsIssued++
    return get(clients[n % clients.length] as HearsayClient, benchKey(Math.floor(Math.random() * keys), keyBytes, keys))
  }

  return { operation, getMisses: () => misses }
}
