import { UnavailableError } from '../errors.js'
import type { KvService } from './service.js'

/**
 * The client API's view of the cluster while the node may refuse to serve: every call first asks
 * `refusal` and answers 503 with its reason when there is one (e.g. while repairing after an
 * absence longer than the tombstone grace, when its own records may hold forgotten deletes).
 * Writes also ask `writeRefusal`, which returns the error to throw (e.g. ClockSkewedError while
 * this node's clock is beyond the skew bound): it runs before the write takes a timestamp or
 * touches any replica, so a refused write leaves nothing behind. Reads are still served then.
 */
export function guardKvService(
  kv: KvService,
  refusal: () => string | undefined,
  writeRefusal: () => Error | undefined = () => undefined,
  /** Named in the 503 (`nodeState`) so clients know another node may serve (lib/client). */
  nodeState: 'repairing' | 'starting' | 'leaving' = 'repairing',
): KvService {
  const check = (): void => {
    const reason = refusal()
    if (reason !== undefined) throw new UnavailableError(reason, { nodeState })
  }
  const checkWrite = (): void => {
    check()
    const error = writeRefusal()
    if (error !== undefined) throw error
  }
  return {
    put: async (key, value, options) => { checkWrite(); return kv.put(key, value, options) },
    delete: async (key, options) => { checkWrite(); return kv.delete(key, options) },
    get: async (key, options) => { check(); return kv.get(key, options) },
    scan: async (options) => { check(); return kv.scan(options) },
    batch: async (operations, options) => { checkWrite(); return kv.batch(operations, options) },
  }
}
