/**
 * A small last-write-wins history checker for cluster tests (in the spirit of Jepsen's checkers,
 * much smaller): concurrent clients record every write they send, the test reads what the cluster
 * converged to, and the checker says whether that end state is one LWW allows.
 *
 * Versions are the API's version strings, which sort like the versions themselves, so plain string
 * comparison orders them. Values are assumed unique per write (tests write random values), which
 * lets a write whose version never came back be recognised by its value.
 */

/** One write as a client saw it. */
export interface WriteOp {
  /** Which node coordinated it (for messages only). */
  readonly node: string
  readonly key: string
  readonly value: string
  /**
   * `ok`: acknowledged (200). `failed`: a 503 or a lost connection — indeterminate, it may or may
   * not have been applied (a 503'd write is still delivered later by design).
   */
  readonly outcome: 'ok' | 'failed'
  /** The write's version when the answer carried one (200, and 503 bodies); absent otherwise. */
  readonly version?: string
}

/** What the cluster holds for a key after quiescence; null when the key is absent. */
export interface FinalRead {
  readonly value: string
  readonly version: string
}

export interface HistoryProblem {
  readonly key: string
  readonly message: string
}

/**
 * Checks, for every key written or read:
 * - the final version is not older than any acknowledged write (an acknowledged write may only
 *   disappear under a greater version — otherwise it was lost);
 * - the final version is the greatest acknowledged one, or else belongs to an indeterminate write
 *   (which may legitimately win LWW) — never to something nobody wrote;
 * - the final value is the value written with the final version;
 * - no two writes of a key share a version (versions identify writes).
 * Returns the problems found; an empty list means the history is consistent with LWW.
 */
export function checkLastWriteWins(ops: readonly WriteOp[], finals: ReadonlyMap<string, FinalRead | null>): HistoryProblem[] {
  const problems: HistoryProblem[] = []
  const byKey = new Map<string, WriteOp[]>()
  for (const op of ops) {
    const list = byKey.get(op.key) ?? []
    list.push(op)
    byKey.set(op.key, list)
  }
  const keys = new Set([...byKey.keys(), ...finals.keys()])
  for (const key of [...keys].sort()) {
    const report = (message: string): void => { problems.push({ key, message }) }
    const keyOps = byKey.get(key) ?? []
    if (!finals.has(key)) {
      report(`written ${keyOps.length} times but its final state was not read`)
      continue
    }
    const final = finals.get(key) ?? null
    checkUniqueVersions(keyOps, report)

    const acked = keyOps.filter((op): op is WriteOp & { version: string } => op.outcome === 'ok' && op.version !== undefined)
    for (const op of keyOps) {
      if (op.outcome === 'ok' && op.version === undefined) report(`acknowledged write of ${JSON.stringify(op.value)} via ${op.node} has no version`)
    }
    const newestAcked = acked.reduce<(WriteOp & { version: string }) | undefined>((max, op) => (max === undefined || op.version > max.version ? op : max), undefined)

    if (final === null) {
      if (newestAcked !== undefined) report(`absent at the end, but ${acked.length} writes were acknowledged (newest ${newestAcked.version} via ${newestAcked.node}): lost`)
      continue
    }
    for (const op of acked) {
      if (op.version > final.version) {
        report(`acknowledged write ${op.version} of ${JSON.stringify(op.value)} via ${op.node} is lost: the final version ${final.version} is older`)
      }
    }
    const author = keyOps.find((op) => op.version === final.version)
      ?? keyOps.find((op) => op.version === undefined && op.outcome === 'failed' && op.value === final.value)
    if (author === undefined) {
      report(`final version ${final.version} (${JSON.stringify(final.value)}) was never written by any recorded operation`)
      continue
    }
    if (author.value !== final.value) {
      report(`final version ${final.version} holds ${JSON.stringify(final.value)}, but that version wrote ${JSON.stringify(author.value)}`)
    }
  }
  return problems
}

function checkUniqueVersions(keyOps: readonly WriteOp[], report: (message: string) => void): void {
  const seen = new Map<string, WriteOp>()
  for (const op of keyOps) {
    if (op.version === undefined) continue
    const earlier = seen.get(op.version)
    if (earlier !== undefined && earlier.value !== op.value) {
      report(`version ${op.version} was given to two writes: ${JSON.stringify(earlier.value)} via ${earlier.node} and ${JSON.stringify(op.value)} via ${op.node}`)
    }
    seen.set(op.version, op)
  }
}
