/**
 * A small last-write-wins history checker for cluster tests (in the spirit of Jepsen's checkers,
 * much smaller): concurrent clients record every write and delete they send, the test reads what
 * the cluster converged to, and the checker says whether that end state is one LWW allows.
 *
 * Versions are the API's version strings, which sort like the versions themselves, so plain string
 * comparison orders them. Values are assumed unique per write (tests write random values), which
 * lets a write whose version never came back be recognised by its value.
 */

import { hlcWallMs, parseVersion } from '../../lib/clock/version.js'

/** One write (or delete) as a client saw it. */
export interface WriteOp {
  /** Which node coordinated it (for messages only). */
  readonly node: string
  readonly key: string
  /** The value written; unused (conventionally '') for a delete. */
  readonly value: string
  /**
   * `ok`: acknowledged (200). `failed`: a 503 or a lost connection — indeterminate, it may or may
   * not have been applied (a 503'd write is still delivered later by design).
   */
  readonly outcome: 'ok' | 'failed'
  /** The write's version when the answer carried one (200, and 503 bodies); absent otherwise. */
  readonly version?: string
  /** `put` (the default) or `delete`: a delete writes a tombstone, after which the key reads absent. */
  readonly kind?: 'put' | 'delete'
  /** When the client sent it and when its answer came, in ms of the test's clock (the real-time rule). */
  readonly invokedAtMs?: number
  readonly completedAtMs?: number
}

/** What the cluster holds for a key after quiescence; null when the key is absent. */
export interface FinalRead {
  readonly value: string
  readonly version: string
}

/**
 * `lost`: an acknowledged write was replaced by an older version (or vanished);
 * `resurrected`: an acknowledged delete was replaced by an older value (a deleted key came back);
 * `future`: a version further ahead of real time than the skew bound was kept;
 * `phantom`: the final version was never written; `mismatch`: the final value is not the one
 * written with its version; `duplicate`: two writes got one version; `unread`: never read back.
 */
export type ProblemKind = 'lost' | 'resurrected' | 'future' | 'phantom' | 'mismatch' | 'duplicate' | 'unread'

export interface HistoryProblem {
  readonly key: string
  readonly kind: ProblemKind
  readonly message: string
}

export interface CheckOptions {
  /**
   * The cluster's clock skew bound (clock.maxSkewMs plus the test's own timing slack). Turns on
   * the real-time rule: a write acknowledged after it began more than this long after another
   * write was answered must not lose to it — under a working skew bound the later write always
   * gets the greater version, so losing means a version from the future won.
   */
  readonly maxSkewMs?: number
  /**
   * When the final state was read (test clock, ms): a final version past readAtMs + maxSkewMs is
   * from the future, as is one past the answer to its own write + maxSkewMs.
   */
  readonly readAtMs?: number
}

type Versioned = WriteOp & { version: string }

/**
 * Checks, for every key written or read:
 * - the final version is not older than any acknowledged write or delete (an acknowledged write
 *   may only disappear under a greater version — otherwise it was lost, or for a delete, the key
 *   was resurrected);
 * - a key that ends absent ends so by a delete (acknowledged or not) at least as new as every
 *   acknowledged write;
 * - the final version is a put that some recorded operation wrote, acknowledged or indeterminate
 *   (an indeterminate write may legitimately win LWW) — never something nobody wrote;
 * - the final value is the value written with the final version;
 * - no two writes of a key share a version (versions identify writes);
 * - with `maxSkewMs`: the real-time rule above, and no final version from the future.
 * Returns the problems found; an empty list means the history is consistent with LWW.
 */
export function checkLastWriteWins(ops: readonly WriteOp[], finals: ReadonlyMap<string, FinalRead | null>, options: CheckOptions = {}): HistoryProblem[] {
  const problems: HistoryProblem[] = []
  const byKey = new Map<string, WriteOp[]>()
  for (const op of ops) {
    const list = byKey.get(op.key) ?? []
    list.push(op)
    byKey.set(op.key, list)
  }
  const keys = new Set([...byKey.keys(), ...finals.keys()])
  for (const key of [...keys].sort()) {
    const report = (kind: ProblemKind, message: string): void => { problems.push({ key, kind, message }) }
    const keyOps = byKey.get(key) ?? []
    if (!finals.has(key)) {
      report('unread', `written ${keyOps.length} times but its final state was not read`)
      continue
    }
    const final = finals.get(key) ?? null
    checkUniqueVersions(keyOps, report)

    const acked = keyOps.filter((op): op is Versioned => op.outcome === 'ok' && op.version !== undefined)
    for (const op of keyOps) {
      if (op.outcome === 'ok' && op.version === undefined) report('phantom', `acknowledged ${describe(op)} via ${op.node} has no version`)
    }
    const newestAcked = acked.reduce<Versioned | undefined>((max, op) => (max === undefined || op.version > max.version ? op : max), undefined)

    if (final === null) {
      if (newestAcked === undefined || isDelete(newestAcked)) continue
      // Absent is fine only if some delete at least as new as every acknowledged write may have won.
      const deletedLater = keyOps.some(op => isDelete(op) && (op.version === undefined ? op.outcome === 'failed' : op.version > newestAcked.version))
      if (!deletedLater) report('lost', `absent at the end, but ${acked.length} writes were acknowledged (newest ${newestAcked.version} via ${newestAcked.node}) and no later delete was sent: lost`)
      continue
    }
    for (const op of acked) {
      if (op.version > final.version) {
        report(isDelete(op) ? 'resurrected' : 'lost', isDelete(op)
          ? `acknowledged delete ${op.version} via ${op.node} was undone: the key holds ${JSON.stringify(final.value)} at the older version ${final.version}`
          : `acknowledged write ${op.version} of ${JSON.stringify(op.value)} via ${op.node} is lost: the final version ${final.version} is older`)
      }
    }
    const author = keyOps.find((op) => op.version === final.version)
      ?? keyOps.find((op) => op.version === undefined && op.outcome === 'failed' && !isDelete(op) && op.value === final.value)
    if (author === undefined) {
      report('phantom', `final version ${final.version} (${JSON.stringify(final.value)}) was never written by any recorded operation`)
      continue
    }
    if (isDelete(author)) {
      report('mismatch', `final version ${final.version} holds ${JSON.stringify(final.value)}, but that version was a delete via ${author.node}`)
      continue
    }
    if (author.value !== final.value) {
      report('mismatch', `final version ${final.version} holds ${JSON.stringify(final.value)}, but that version wrote ${JSON.stringify(author.value)}`)
    }
    if (options.maxSkewMs !== undefined) checkRealTime(author, final, acked, options.maxSkewMs, options.readAtMs, report)
  }
  return problems
}

/** Distinct keys with at least one problem of each kind. */
export function countProblemKeys(problems: readonly HistoryProblem[]): Record<ProblemKind, number> {
  const keysByKind = new Map<ProblemKind, Set<string>>()
  for (const problem of problems) {
    const keys = keysByKind.get(problem.kind) ?? new Set<string>()
    keys.add(problem.key)
    keysByKind.set(problem.kind, keys)
  }
  const count = (kind: ProblemKind): number => keysByKind.get(kind)?.size ?? 0
  return {
    lost: count('lost'), resurrected: count('resurrected'), future: count('future'), phantom: count('phantom'),
    mismatch: count('mismatch'), duplicate: count('duplicate'), unread: count('unread'),
  }
}

function checkRealTime(author: WriteOp, final: FinalRead, acked: readonly Versioned[], maxSkewMs: number, readAtMs: number | undefined, report: (kind: ProblemKind, message: string) => void): void {
  const finalWallMs = hlcWallMs(parseVersion(final.version).hlc)
  if (author.completedAtMs !== undefined && finalWallMs > author.completedAtMs + maxSkewMs) {
    report('future', `final version ${final.version} (${JSON.stringify(final.value)} via ${author.node}) is ${finalWallMs - author.completedAtMs} ms ahead of the answer to its write (bound ${maxSkewMs} ms)`)
  } else if (readAtMs !== undefined && finalWallMs > readAtMs + maxSkewMs) {
    report('future', `final version ${final.version} is ${finalWallMs - readAtMs} ms ahead of the time it was read (bound ${maxSkewMs} ms)`)
  }
  if (author.completedAtMs === undefined) return
  const answeredAtMs = author.completedAtMs
  for (const op of acked) {
    if (op === author || op.version >= final.version || op.invokedAtMs === undefined) continue
    if (op.invokedAtMs > answeredAtMs + maxSkewMs) {
      report(isDelete(op) ? 'resurrected' : 'lost',
        `acknowledged ${describe(op)} ${op.version} via ${op.node}, sent ${op.invokedAtMs - answeredAtMs} ms after ${author.node} answered the write of ${JSON.stringify(author.value)} (${author.outcome}), lost to it: that version ${final.version} is from the future`)
    }
  }
}

function isDelete(op: WriteOp): boolean {
  return op.kind === 'delete'
}

function describe(op: WriteOp): string {
  return isDelete(op) ? 'delete' : `write of ${JSON.stringify(op.value)}`
}

function checkUniqueVersions(keyOps: readonly WriteOp[], report: (kind: ProblemKind, message: string) => void): void {
  const seen = new Map<string, WriteOp>()
  for (const op of keyOps) {
    if (op.version === undefined) continue
    const earlier = seen.get(op.version)
    if (earlier !== undefined && (earlier.value !== op.value || isDelete(earlier) !== isDelete(op))) {
      report('duplicate', `version ${op.version} was given to two writes: ${describe(earlier)} via ${earlier.node} and ${describe(op)} via ${op.node}`)
    }
    seen.set(op.version, op)
  }
}
