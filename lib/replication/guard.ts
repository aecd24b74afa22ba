import { UnavailableError } from '../errors.js'
import type { KvService } from './service.js'

/**
 * The client API's view of the cluster while the node may refuse to serve: every call first asks
 * `refusal` and answers 503 with its reason when there is one (e.g. while repairing after an
 * absence longer than the tombstone grace, when its own records may hold forgotten deletes).
 */
export function guardKvService(kv: KvService, refusal: () => string | undefined): KvService {
  const check = (): void => {
    const reason = refusal()
    if (reason !== undefined) throw new UnavailableError(reason)
  }
  return {
    put: async (key, value, options) => { check(); return kv.put(key, value, options) },
    delete: async (key, options) => { check(); return kv.delete(key, options) },
    get: async (key, options) => { check(); return kv.get(key, options) },
    scan: async (options) => { check(); return kv.scan(options) },
    batch: async (operations, options) => { check(); return kv.batch(operations, options) },
  }
}
