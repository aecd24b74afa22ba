/**
 * Versions order every write in the cluster: last write wins by (hlc, nodeId).
 *
 * `hlc` is a hybrid logical clock reading in "ticks": wall-clock milliseconds × 1000 plus a
 * logical counter, so it stays a safe integer (< 2^53) until the year 2255 and reads as time.
 */

/** A node's permanent identity: 16 lowercase hex characters, created once per data dir. */
export type NodeId = string & { readonly __brand: 'NodeId' }

export interface Version {
  /** Hybrid logical clock ticks: wallMs × HLC_TICKS_PER_MS + logical counter. */
  readonly hlc: number
  /** Coordinating node; breaks ties between equal hlc readings deterministically. */
  readonly node: NodeId
}

export const HLC_TICKS_PER_MS = 1000
/** Digits of the zero-padded hlc in a version string: enough for any safe integer. */
const HLC_STRING_DIGITS = 16
const NODE_ID_PATTERN = /^[0-9a-f]{16}$/

export function isNodeId(value: unknown): value is NodeId {
  return typeof value === 'string' && NODE_ID_PATTERN.test(value)
}

export function asNodeId(value: string): NodeId {
  if (!isNodeId(value)) throw new TypeError(`not a node id (16 lowercase hex characters): ${JSON.stringify(value)}`)
  return value
}

/** Total order: negative when a < b, 0 when equal, positive when a > b. */
export function compareVersions(a: Version, b: Version): number {
  if (a.hlc !== b.hlc) return a.hlc < b.hlc ? -1 : 1
  if (a.node === b.node) return 0
  return a.node < b.node ? -1 : 1
}

/** The string form sorts lexicographically exactly like compareVersions. */
export function formatVersion(v: Version): string {
  return `${v.hlc.toString().padStart(HLC_STRING_DIGITS, '0')}-${v.node}`
}

export function parseVersion(text: string): Version {
  const match = /^(\d{16})-([0-9a-f]{16})$/.exec(text)
  if (!match) throw new TypeError(`not a version string: ${JSON.stringify(text)}`)
  const hlc = Number(match[1])
  if (!Number.isSafeInteger(hlc)) throw new TypeError(`version hlc out of range: ${JSON.stringify(text)}`)
  return { hlc, node: match[2] as NodeId }
}

/** Wall-clock milliseconds a version's hlc corresponds to (for logs and skew checks). */
export function hlcWallMs(hlc: number): number {
  return Math.floor(hlc / HLC_TICKS_PER_MS)
}
