import { createHash, timingSafeEqual } from 'node:crypto'

/**
 * Bearer token check in constant time. Both sides are hashed first so the comparison takes the
 * same time whatever the length of the presented token, which timingSafeEqual alone would leak.
 */
export function bearerChecker(token: string): (authorization: string | undefined) => boolean {
  const expected = digest(token)
  return authorization => {
    const match = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(authorization ?? '')
    return match?.[1] !== undefined && timingSafeEqual(digest(match[1]), expected)
  }
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest()
}
