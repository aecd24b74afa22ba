import { HearsayClientError, InvalidReplyError, NoNodeAnsweredError } from '../client/errors.js'

/**
 * A short fixed label for a failed operation, so errors group by kind in the report instead of
 * by message (which carries keys, node URLs and numbers).
 */
export function errorLabel(err: unknown): string {
  if (err instanceof HearsayClientError) {
    if (err.status === 503) return 'unavailable_503'
    return err.status === 409 ? 'conflict_409' : `http_${err.status}`
  }
  if (err instanceof NoNodeAnsweredError) return /no answer within|time(d)? ?out/i.test(err.lastReason) ? 'timeout' : 'connection'
  if (err instanceof InvalidReplyError) return 'invalid_reply'
  return 'exception'
}
